import { describe, expect, it } from 'vitest';
import { isMarker, usePrecompiledWasm } from './precompiled-wasm.js';

// The smallest valid module: exports one function `answer` returning 42.
const WASM = Uint8Array.from([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 10, 1, 6, 97, 110, 115, 119, 101, 114, 0, 0, 10, 6, 1, 4, 0, 65, 42, 11,
]);

describe('usePrecompiledWasm', () => {
  it('answers the marker with the compiled module, for copies too, and leaves other calls alone', async () => {
    const module = await WebAssembly.compile(WASM);
    const env = { wasm: {} as { wasmBinary?: Uint8Array | ArrayBufferLike; numThreads?: number } };
    usePrecompiledWasm(env, module);
    expect(env.wasm.numThreads).toBe(1);
    expect(isMarker(env.wasm.wasmBinary)).toBe(true);

    // onnxruntime-web's glue copies the binary (new Uint8Array(binary)) before instantiating it.
    const copy = new Uint8Array(env.wasm.wasmBinary as Uint8Array);
    const fromMarker = (await WebAssembly.instantiate(copy, {})) as unknown as WebAssembly.WebAssemblyInstantiatedSource;
    expect(fromMarker.module).toBe(module);
    expect((fromMarker.instance.exports.answer as () => number)()).toBe(42);

    const fromBytes = await WebAssembly.instantiate(WASM, {});
    expect(fromBytes.module).not.toBe(module);
    const instance = await WebAssembly.instantiate(module, {});
    expect(instance).toBeInstanceOf(WebAssembly.Instance);
  });

  it('recognises only the marker', () => {
    expect(isMarker(WASM)).toBe(false);
    expect(isMarker(new Uint8Array(1))).toBe(false);
    expect(isMarker('edgellm:precompiled-wasm')).toBe(false);
    expect(isMarker(new TextEncoder().encode('edgellm:precompiled-wasm').buffer)).toBe(true);
  });
});
