/** Runs a GGUF decoder graph built in memory through onnxruntime-node, for tests that compare its logits. */
import * as ort from 'onnxruntime-node';
import { buildDecoderInMemory, type DecoderBuildOptions, type SourceTensor } from '../../src/onnx/gguf-decoder-graph.js';
import type { TinyModel } from './gguf-reference.js';

/**
 * The logits [rows][ids.length x vocab] of `ids` prefilled on an empty cache by the graph built over
 * `tensors` (8-bit matmuls at accuracy level 0 unless `options` says otherwise): one row, or one per
 * entry of `adapters`, each fed as that row's `lora_index`.
 */
export async function prefillLogits(
  model: TinyModel, tensors: readonly SourceTensor[], ids: number[], options: DecoderBuildOptions = {}, adapters?: number[],
): Promise<Float32Array[]> {
  const built = buildDecoderInMemory(model.spec, tensors, model.codec, { accuracyLevel8: 0, ...options });
  const session = await ort.InferenceSession.create(built.model, { externalData: [{ path: built.dataName, data: built.data }], intraOpNumThreads: 1 });
  try {
    const rows = adapters?.length ?? 1;
    const { layers, kvHeads, headDim, vocab } = model.spec;
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: rows * n }, (_, i) => BigInt(ids[i % n])), [rows, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(rows * n).fill(1n), [rows, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: rows * n }, (_, i) => BigInt(i % n)), [rows, n]),
      logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1]),
    };
    if (adapters) feeds.lora_index = new ort.Tensor('int64', BigInt64Array.from(adapters, BigInt), [rows]);
    for (let l = 0; l < layers; l++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [rows, kvHeads, 0, headDim]);
    }
    const logits = (await session.run(feeds)).logits.data as Float32Array;
    return Array.from({ length: rows }, (_, r) => logits.slice(r * n * vocab, (r + 1) * n * vocab));
  } finally {
    await session.release();
  }
}
