/**
 * What a model costs in memory on onnxruntime-web's wasm build, from its ONNX file size. Measured in
 * workerd (scripts/measure-wasm-memory.mjs; README "Deploy to Cloudflare"): the wasm memory starts at
 * 16 MiB and grows by 3.8-4.3x the file for fp32 and 2.7-2.8x for q8 and q4 (models of 27-95 MiB).
 * While loading, the file's bytes are also held in JS. So: 16 MiB + (factor + 1) x file bytes, with
 * the largest factor measured. WebGPU keeps the weights on the GPU: there only the JS copy counts.
 * @module
 */
import type { Dtype } from '../../model/model-config.js';

export const WASM_BASE_BYTES = 16 * 1024 * 1024;

/** Wasm memory growth per ONNX file byte, by dtype (fp16 not measured: assumed to be upcast, 2x fp32's). */
export const WASM_GROWTH_PER_FILE_BYTE: Record<Dtype, number> = { fp32: 4.3, fp16: 8.6, q8: 2.8, q4: 2.8 };

export interface MemoryCost {
  /** Bytes of memory per byte of ONNX file (external data included). */
  perFileByte: number;
  /** Bytes needed before any file (the wasm memory's initial size). */
  baseBytes: number;
}

export function memoryCost(dtype: Dtype, onWasm: boolean): MemoryCost {
  return onWasm ? { perFileByte: WASM_GROWTH_PER_FILE_BYTE[dtype] + 1, baseBytes: WASM_BASE_BYTES } : { perFileByte: 1, baseBytes: 0 };
}
