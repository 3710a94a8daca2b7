/**
 * A sentence-embedding model (BERT-like or static, e.g. Model2Vec) on any onnxruntime flavour:
 * mean pooling over tokens, then L2 normalisation.
 * @module
 */
import type * as OrtCommon from 'onnxruntime-common';
import type { Ort } from './ort-causal-lm.js';
import { toFloat32 } from '../internal/float16.js';
import { l2Normalize, meanRows } from '../internal/vector.js';

export class OrtEmbedder {
  private constructor(
    private readonly ort: Ort,
    private readonly session: OrtCommon.InferenceSession,
    readonly dimensions: number,
  ) {}

  /** `model` is a path (onnxruntime-node) or the ONNX file's bytes. */
  static async create(ort: Ort, model: string | Uint8Array, sessionOptions: OrtCommon.InferenceSession.SessionOptions, dimensions: number) {
    const session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
    return new OrtEmbedder(ort, session, dimensions);
  }

  async embed(inputs: number[][]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const tokens of inputs) {
      const shape = [1, tokens.length];
      const feeds: Record<string, OrtCommon.Tensor> = { input_ids: new this.ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), shape) };
      if (this.session.inputNames.includes('attention_mask')) {
        feeds.attention_mask = new this.ort.Tensor('int64', new BigInt64Array(tokens.length).fill(1n), shape);
      }
      if (this.session.inputNames.includes('token_type_ids')) {
        feeds.token_type_ids = new this.ort.Tensor('int64', new BigInt64Array(tokens.length), shape);
      }
      const name = this.session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : this.session.outputNames[0];
      const result = await this.session.run(feeds, [name]);
      const hidden = result[name];
      const size = Number(hidden.dims[hidden.dims.length - 1]);
      const rows = hidden.dims.length === 3 ? tokens.length : 1;
      const data = toFloat32(hidden.data as Float32Array | Uint16Array, 0, rows * size);
      hidden.dispose();
      out.push(l2Normalize(meanRows(data, rows, size)));
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
