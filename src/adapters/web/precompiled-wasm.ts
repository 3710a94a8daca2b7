/**
 * onnxruntime-web with an already compiled WebAssembly.Module. workerd refuses to compile wasm
 * from bytes ("Wasm code generation disallowed by embedder") and onnxruntime-web only takes bytes
 * or a URL, so it gets a marker as its "binary" and WebAssembly.instantiate answers the marker
 * with the compiled module (imported in the Worker as a CompiledWasm module). Any other call
 * passes through untouched.
 * @module
 */

const MARKER = new TextEncoder().encode('edgellm:precompiled-wasm');
let compiled: WebAssembly.Module | undefined;
let installed = false;
/** The memory of the last instance made from the marker (imported or exported), for /metrics. */
let memory: WebAssembly.Memory | undefined;

/** Bytes of onnxruntime-web's wasm memory now (it only grows), when it was instantiated from the marker. */
export function precompiledWasmMemoryBytes(): number | undefined {
  return memory?.buffer.byteLength;
}

function findMemory(instance: WebAssembly.Instance, imports?: WebAssembly.Imports): WebAssembly.Memory | undefined {
  const isMemory = (value: unknown): value is WebAssembly.Memory => value instanceof WebAssembly.Memory;
  const own = Object.values(instance.exports).find(isMemory);
  return own ?? Object.values(imports ?? {}).flatMap((module) => Object.values(module)).find(isMemory);
}

export interface OrtWasmEnv {
  wasm: { wasmBinary?: ArrayBufferLike | Uint8Array; numThreads?: number };
}

/** True for the marker, as a Uint8Array, an ArrayBuffer or a copy of either. */
export function isMarker(source: unknown): boolean {
  const view = source instanceof Uint8Array ? source : source instanceof ArrayBuffer ? new Uint8Array(source) : undefined;
  return view !== undefined && view.length === MARKER.length && view.every((byte, i) => byte === MARKER[i]);
}

export function usePrecompiledWasm(env: OrtWasmEnv, module: WebAssembly.Module): void {
  compiled = module;
  if (!installed) {
    const original = WebAssembly.instantiate.bind(WebAssembly) as (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
    (WebAssembly as { instantiate: unknown }).instantiate = (source: unknown, imports?: WebAssembly.Imports) =>
      isMarker(source)
        ? (original(compiled, imports) as Promise<WebAssembly.Instance>).then((instance) => {
            memory = findMemory(instance, imports);
            return { instance, module: compiled };
          })
        : original(source, imports);
    installed = true;
  }
  env.wasm.wasmBinary = MARKER;
  // A compiled module cannot be shared with pthread workers, and workerd has none.
  env.wasm.numThreads = 1;
}
