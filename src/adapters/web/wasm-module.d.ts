// A .wasm import in a Worker is a CompiledWasm module (wrangler's default rule; Miniflare's `modules`).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
