/**
 * What a model costs in memory on onnxruntime-web's wasm build, from its ONNX file size. Measured in
 * workerd (scripts/measure-wasm-memory.mjs; README "Deploy to Cloudflare"): the wasm memory starts at
 * 16 MiB and grows by 3.8-4.3x the file for fp32, 2.7-2.8x for q8 and q4 (models of 27-95 MiB) and
 * 5.6-7.0x for fp16 (30-72 MiB: the CPU kernels run float32, so the weights are upcast). While
 * loading, the file's bytes are also held in JS. So: 16 MiB + (factor + 1) x file bytes, with the
 * largest factor measured. WebGPU keeps the weights on the GPU: there only the JS copy counts.
 *
 * A GGUF file is converted in memory first (gguf-source.ts): its cost is the file, the ONNX graph
 * made from it (sized from the header's tensor infos, as the importer lays the weights out) and the
 * wasm growth on that graph.
 * @module
 */
import { blockLayout } from '../../gguf/quants.js';
import type { GgmlType } from '../../gguf/reader.js';
import type { Dtype } from '../../model/model-config.js';

export const WASM_BASE_BYTES = 16 * 1024 * 1024;

/** Wasm memory growth per ONNX file byte, by dtype: the largest measured (wasm memory less its 16 MiB start, over the file). */
export const WASM_GROWTH_PER_FILE_BYTE: Record<Dtype, number> = { fp32: 4.3, fp16: 7.1, q8: 2.8, q4: 2.8 };

export interface MemoryCost {
  /** Bytes of memory per byte of ONNX file (external data included). */
  perFileByte: number;
  /** Bytes needed before any file (the wasm memory's initial size). */
  baseBytes: number;
}

export function memoryCost(dtype: Dtype, onWasm: boolean): MemoryCost {
  return onWasm ? { perFileByte: WASM_GROWTH_PER_FILE_BYTE[dtype] + 1, baseBytes: WASM_BASE_BYTES } : { perFileByte: 1, baseBytes: 0 };
}

/** What the GGUF header tells: where the tensor data start, how long they are, and each tensor's type and shape. */
export interface GgufLayout {
  dataOffset: number;
  dataSize: number;
  tensors: ReadonlyArray<{ type: GgmlType; dims: readonly number[] }>;
}

/**
 * Bytes of the ONNX graph's weights the importer (src/onnx/gguf-decoder-graph.ts) writes for these
 * tensors: `q4` keeps each quantized tensor in its block form (4 or 8 bits a weight, a float32 scale
 * per block, and a float32 offset per block for the formats with a minimum), floats as float32;
 * `fp32` dequantizes everything to float32. The graph's own nodes (a few KB) are not counted.
 */
export function ggufGraphBytes(tensors: GgufLayout['tensors'], dtype: 'q4' | 'fp32'): number {
  let bytes = 0;
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    const block = dtype === 'q4' ? blockLayout(t.type) : undefined;
    if (!block) bytes += 4 * n;
    else bytes += (n * block.bits) / 8 + (4 * n * (block.hasOffset ? 2 : 1)) / block.blockSize;
  }
  return bytes;
}

export interface GgufMemoryEstimate {
  /** The GGUF file (header and tensor data), held in JS while it is converted. */
  fileBytes: number;
  /** The converted ONNX graph's weights, held in JS while onnxruntime loads them. */
  graphBytes: number;
  /** Wasm memory growth per graph byte (0 off wasm). */
  growth: number;
  baseBytes: number;
  /** All of it: what the budget is checked against. */
  total: number;
}

/** The memory a GGUF costs once converted and loaded: base + file + graph x (1 + the dtype's wasm growth). */
export function ggufMemoryEstimate(layout: GgufLayout, dtype: 'q4' | 'fp32', onWasm: boolean): GgufMemoryEstimate {
  const fileBytes = layout.dataOffset + layout.dataSize;
  const graphBytes = ggufGraphBytes(layout.tensors, dtype);
  const growth = onWasm ? WASM_GROWTH_PER_FILE_BYTE[dtype] : 0;
  const baseBytes = onWasm ? WASM_BASE_BYTES : 0;
  return { fileBytes, graphBytes, growth, baseBytes, total: baseBytes + fileBytes + graphBytes * (1 + growth) };
}
