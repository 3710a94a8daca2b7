/**
 * A causal LM on onnxruntime-node, with the KV cache of every sequence kept here (inside the
 * inference worker). One `forward` call appends tokens to sequences and returns each one's
 * last-position logits. Also computes mean-pooled hidden states for embeddings, through an
 * extra graph output added at load time.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { addHiddenStateOutput } from '../../internal/onnx-hidden-output.js';
import type { BackendModelInfo, ForwardItem } from '../../runtime/backend.js';
import { toFloat32 } from './float16.js';

export interface OrtModelOptions {
  path: string;
  executionProviders: ort.InferenceSession.ExecutionProviderConfig[];
  threads?: number;
  contextLength: number;
  hiddenSize: number;
}

interface SeqState {
  past: ort.Tensor[];
  length: number;
}

export class OrtCausalLM {
  private readonly seqs = new Map<number, SeqState>();
  private readonly pastNames: string[];
  private readonly presentNames: string[];
  private readonly kvType: 'float32' | 'float16';
  private readonly kvDims: [number, number];
  readonly info: BackendModelInfo;

  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly hiddenOutput: string | undefined,
    options: OrtModelOptions,
  ) {
    this.pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    this.presentNames = this.pastNames.map((n) => n.replace('past_key_values.', 'present.'));
    const meta = session.inputMetadata.find((m) => m.name === this.pastNames[0]);
    const shape = meta && meta.isTensor ? meta.shape : [];
    this.kvType = meta && meta.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
    this.kvDims = [Number(shape[1]), Number(shape[3])];
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const vocab = logits && logits.isTensor ? Number(logits.shape[2]) : NaN;
    if (!this.pastNames.length || !Number.isFinite(vocab) || !this.kvDims.every(Number.isFinite)) {
      throw new Error(`${options.path} is not a decoder with past_key_values inputs and a logits output.`);
    }
    this.info = { vocabSize: vocab, hiddenSize: options.hiddenSize, contextLength: options.contextLength };
  }

  static async create(options: OrtModelOptions): Promise<OrtCausalLM> {
    const bytes = new Uint8Array(await readFile(options.path));
    const patch = addHiddenStateOutput(bytes);
    const session = await ort.InferenceSession.create(patch?.model ?? bytes, {
      executionProviders: options.executionProviders,
      graphOptimizationLevel: 'all',
      ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      // A model created from bytes looks for external data next to the process; point it at the model's folder.
      extra: { session: { model_external_initializers_file_folder_path: dirname(options.path) } },
    });
    return new OrtCausalLM(session, patch?.outputName, options);
  }

  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const item of items) {
      const state = this.seqs.get(item.seq) ?? { past: this.emptyPast(), length: 0 };
      const result = await this.session.run(this.feeds(item.tokens, state), ['logits', ...this.presentNames]);
      const logits = result.logits;
      const vocab = this.info.vocabSize;
      const last = toFloat32(logits.data as Float32Array | Uint16Array, (item.tokens.length - 1) * vocab, vocab);
      this.seqs.set(item.seq, { past: this.presentNames.map((n) => result[n]), length: state.length + item.tokens.length });
      logits.dispose();
      for (const t of state.past) t.dispose();
      out.push(last);
    }
    return out;
  }

  fork(src: number, dst: number): void {
    const state = this.seqs.get(src);
    if (!state) throw new Error(`fork: unknown sequence ${src}`);
    this.release(dst);
    const past = state.past.map((t) => new ort.Tensor(t.type, (t.data as Float32Array).slice(), t.dims));
    this.seqs.set(dst, { past, length: state.length });
  }

  release(seq: number): void {
    const state = this.seqs.get(seq);
    if (!state) return;
    for (const t of state.past) t.dispose();
    this.seqs.delete(seq);
  }

  get liveSequences(): number {
    return this.seqs.size;
  }

  async hiddenStates(inputs: number[][]): Promise<Float32Array[]> {
    if (!this.hiddenOutput) throw new Error('This model graph does not expose its hidden state; serve an --embedding-model.');
    const out: Float32Array[] = [];
    for (const tokens of inputs) {
      const result = await this.session.run(this.feeds(tokens, { past: this.emptyPast(), length: 0 }), [this.hiddenOutput]);
      const hidden = result[this.hiddenOutput];
      const size = Number(hidden.dims[2]);
      const data = toFloat32(hidden.data as Float32Array | Uint16Array, 0, tokens.length * size);
      hidden.dispose();
      out.push(meanRows(data, tokens.length, size));
    }
    return out;
  }

  async dispose(): Promise<void> {
    for (const seq of [...this.seqs.keys()]) this.release(seq);
    await this.session.release();
  }

  private emptyPast(): ort.Tensor[] {
    const [heads, dim] = this.kvDims;
    const empty = this.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    return this.pastNames.map(() => new ort.Tensor(this.kvType, empty, [1, heads, 0, dim]));
  }

  private feeds(tokens: number[], state: SeqState): Record<string, ort.Tensor> {
    const total = state.length + tokens.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.session.inputNames.includes('position_ids')) {
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(tokens, (_, i) => BigInt(state.length + i)), [1, tokens.length]);
    }
    this.pastNames.forEach((name, i) => (feeds[name] = state.past[i]));
    return feeds;
  }
}

export function meanRows(data: Float32Array, rows: number, size: number): Float32Array {
  const mean = new Float32Array(size);
  for (let r = 0; r < rows; r++) for (let k = 0; k < size; k++) mean[k] += data[r * size + k];
  for (let k = 0; k < size; k++) mean[k] /= rows;
  return mean;
}
