import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufTruncatedError, readGgufHeader, type GgmlType, type GgufHeader } from '../../gguf/reader.js';
import { convertGguf, ggufModelJson } from '../../onnx/gguf-import.js';
import type { ExternalDataSink } from '../../onnx/onnx-graph-writer.js';
import { readGguf } from '../../gguf/reader.js';
import { tinyGguf } from '../../../test/helpers/gguf-reference.js';
import { SHARED_MODELS, sharedModel, SMOLLM2 } from '../../../test/helpers/shared-models.js';
import { loadGgufSource } from './gguf-source.js';
import { ggufGraphBytes, ggufMemoryEstimate, WASM_BASE_BYTES, WASM_GROWTH_PER_FILE_BYTE } from './memory-estimate.js';
import { MemoryBudget } from './model-files.js';

const MiB = 1024 * 1024;

/** Counts the weight bytes the graph writer puts in the external data, without its alignment padding. */
class CountingSink implements ExternalDataSink {
  readonly location = 'model_q4.onnx.data';
  size = 0;
  weights = 0;
  append(bytes: Uint8Array): number {
    const offset = this.size;
    // The writer pads each tensor to a 4 KiB offset with a separate append: tensors start aligned, padding does not.
    if (offset % 4096 === 0) this.weights += bytes.byteLength;
    this.size += bytes.byteLength;
    return offset;
  }
}

describe('ggufGraphBytes', () => {
  const cases: Array<[GgmlType, boolean]> = [
    ['Q4_0', true],
    ['Q4_1', true],
    ['Q5_0', true],
    ['Q5_1', false],
    ['Q8_0', true],
    ['Q4_K', true],
    ['Q5_K', false],
    ['Q6_K', true],
    ['F16', true],
    ['BF16', true],
    ['F32', false],
  ];
  for (const [type, tied] of cases) {
    it(`sizes the converted graph of ${type} weights${tied ? '' : ' (untied LM head)'} as the importer writes it`, () => {
      const model = tinyGguf('llama', { weights: type }, { metadata: true, tied });
      const file = readGguf(model.bytes);
      for (const dtype of ['q4', 'fp32'] as const) {
        const sink = new CountingSink();
        convertGguf(file, ggufModelJson(file, dtype).config, sink, { dtype });
        // Within 8 KB: the norm vectors under 1 KB stay in the model file; a wrong bit width or missing
        // offsets would be 8-32 KB per matrix.
        expect(Math.abs(ggufGraphBytes(file.tensors, dtype) - sink.weights), `${type} ${dtype}`).toBeLessThan(8 * 1024);
      }
    });
  }
});

/** The header of a GGUF file, reading only as much of it as the header needs. */
function headerOf(path: string): { header: GgufHeader; bytes: Uint8Array } {
  const fd = openSync(path, 'r');
  try {
    for (let size = 1 << 20; ; size *= 2) {
      const bytes = new Uint8Array(size);
      const read = readSync(fd, bytes, 0, size, 0);
      try {
        const header = readGgufHeader(bytes.subarray(0, read));
        return { header, bytes: bytes.subarray(0, header.dataOffset) };
      } catch (error) {
        if (!(error instanceof GgufTruncatedError)) throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
}

const smol = sharedModel(SMOLLM2);
describe.skipIf(!smol)('the real SmolLM2 GGUF against the 128 MiB budget', () => {
  const path = join(SHARED_MODELS, SMOLLM2, 'SmolLM2-135M-Instruct.Q4_1.gguf');

  it('estimates file, graph and wasm growth from the header alone', () => {
    const { header } = headerOf(path);
    const estimate = ggufMemoryEstimate(header, 'q4', true);
    expect(estimate.fileBytes).toBe(statSync(path).size); // the header knows where the file ends
    // 134.5M weights: Q4_1 -> 4-bit + float32 scale and offset per 32 (6 bits a weight), more than the file's 5.
    expect(estimate.graphBytes).toBeGreaterThan(estimate.fileBytes);
    expect(estimate.total).toBe(WASM_BASE_BYTES + estimate.fileBytes + estimate.graphBytes * (1 + WASM_GROWTH_PER_FILE_BYTE.q4));
    expect(estimate.total).toBeGreaterThan(128 * MiB);
  });

  it('refuses it before reading any tensor data: only the header is there to read', async () => {
    const { bytes } = headerOf(path);
    let pulled = 0;
    const fetcher = async () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (pulled >= bytes.length) return controller.close(); // a truncated file: reading on would fail differently
            controller.enqueue(bytes.slice(pulled, pulled + 65536));
            pulled += 65536;
          },
        }),
      );
    const budget = new MemoryBudget(128 * MiB);
    const error = await loadGgufSource('SmolLM2-135M-Instruct.Q4_1.gguf', 'https://models/', fetcher, budget).catch((e) => e);
    expect(error).toMatchObject({ status: 503, code: 'model_too_large' });
    expect(error.message).toMatch(
      /^SmolLM2-135M-Instruct\.Q4_1\.gguf is \d+\.\d MB: loading it needs about \d+\.\d MB of memory \(the file, the ONNX graph converted from it \(about \d+\.\d MB\), onnxruntime-web's wasm growth of 2\.8 x that graph, and 16\.0 MB the wasm memory starts with\), more than the memory budget of 128\.0 MB\./,
    );
    expect(budget.used).toBe(0);
  });
});

describe('loadGgufSource under a budget', () => {
  it('counts the file and the estimate of a GGUF that fits, so a second model is checked against what is left', async () => {
    const model = tinyGguf('llama', { weights: 'Q4_0' }, { metadata: true });
    const budget = new MemoryBudget(64 * MiB);
    const source = await loadGgufSource('tiny.gguf', 'https://models/', async () => new Response(model.bytes.slice()), budget);
    expect(source.name).toBe('tiny');
    expect(budget.used).toBe(model.bytes.length);
    const estimate = ggufMemoryEstimate(readGgufHeader(model.bytes), 'q4', true);
    expect(budget.estimated).toBe(estimate.total);
    // Off wasm (WebGPU) only the JS copies count.
    const gpu = new MemoryBudget(64 * MiB);
    await loadGgufSource('tiny.gguf', 'https://models/', async () => new Response(model.bytes.slice()), gpu, { onWasm: false });
    expect(gpu.estimated).toBe(estimate.fileBytes + estimate.graphBytes);
  });
});
