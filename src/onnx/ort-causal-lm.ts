/**
 * A causal LM on any onnxruntime flavour (node or web, injected as `ort`), with the KV cache of
 * every sequence kept here. One `forward` call appends tokens to sequences and returns each one's
 * last-position logits. Also computes mean-pooled hidden states for embeddings, through an
 * extra graph output added at load time.
 * @module
 */
import type * as OrtCommon from 'onnxruntime-common';
import type { BackendModelInfo, ForwardItem } from '../runtime/backend.js';
import { argmax, argmaxAmong } from '../runtime/sampling/sample.js';
import { toFloat32 } from '../internal/float16.js';
import { extractRow, leftPaddedMask, rightPaddedMask, stackRows, widenRows, type KvData } from './kv-layout.js';
import { fuseAttention, type AttentionShape } from './onnx-attention-fusion.js';
import { addHiddenStateOutput } from './onnx-hidden-output.js';
import { LORA_INDEX_INPUT } from './gguf-lora-graph.js';
import { LOGITS_TO_KEEP } from './gguf-decoder-graph.js';
import { dynamicQuantizations, floatActivations, int8Compute, int8MatMulNBits, quantizesActivations, rewriteInt8MatMuls } from './onnx-int8-matmul.js';
import { concatFloats, meanRows } from '../internal/vector.js';
import type { GraphExpectations } from '../model/model-config.js';

/** The part of an onnxruntime package this code uses; onnxruntime-node and onnxruntime-web both fit. */
export type Ort = Pick<typeof OrtCommon, 'Tensor' | 'InferenceSession'>;
type Session = OrtCommon.InferenceSession;
type Tensor = OrtCommon.Tensor;

/**
 * Part of every stored verdict's key: bump it whenever the rewrites (attention, int8 matmuls, the
 * hidden-state output) or the probes change what they decide or write.
 */
export const LOAD_CHECKS_VERSION = 3;

/**
 * What `create` found at load: the step plan and how
 * each rewrite went. A host that stores it, keyed by everything it depends on (the model files, the
 * runtime's version, the execution providers and session settings, LOAD_CHECKS_VERSION), can load the
 * same graph again with `restore`: one session, no rewrite, no probe.
 */
export interface LoadVerdict {
  version: number;
  attention: string;
  matmul: string;
  tokensPlan: string;
  batchPlan: string;
  chunksOnPast: boolean;
  batchesPadded: boolean;
  padRight: boolean;
  batchInvariant: boolean;
  quantizedActivations: boolean;
  /** Whether multi-token steps equal single steps bit for bit (asked of int8-activation bodies only). */
  rowInvariant: boolean;
  /** Whether steps write the KV cache in place (see `OrtCausalLMOptions.kvInPlace`). */
  kvInPlace: boolean;
  kvPlan: string;
  /** The graph output `hiddenStates` reads, when the loaded graph has one. */
  hiddenOutput?: string;
}

export interface OrtCausalLMOptions {
  /** Names the model in errors (a path or URL). */
  name: string;
  contextLength: number;
  hiddenSize: number;
  /** Sizes config.json states; the graph must show the same, or loading fails naming both. */
  expected?: GraphExpectations;
  /** Execution providers, threads, external data: whatever the host's onnxruntime needs. */
  sessionOptions: OrtCommon.InferenceSession.SessionOptions;
  /**
   * Start the next greedy decode step as soon as a step's logits are out, when every row is
   * hinted `greedyNext` (see `lookahead` below). Only where `session.run()` leaves the caller's
   * thread free to deliver the logits first: the Node inference worker.
   */
  lookahead?: boolean;
  /**
   * Rewrite the exported attention into GroupQueryAttention at load (onnxruntime's CPU kernel;
   * see onnx-attention-fusion.ts). The rewritten graph is used only when its logits match the
   * original's on a probe; otherwise the original is loaded.
   */
  attention?: AttentionShape;
  /**
   * Rewrite the Hub's dynamic q8 matmuls into 8-bit MatMulNBits at load (see
   * onnx-int8-matmul.ts): one activation scale per tensor, which makes a row's logits depend on
   * its batch and on prefix-cache hits, becomes per-row activation quantization. Checked by the
   * same probe as the attention, against the int8 weights in float.
   */
  int8MatMul?: boolean;
  /**
   * Run every sequence in a call of its own when the graph computes with int8 activations
   * (MatMulNBits at accuracy_level 4, e.g. the rewritten dynamic q8): a left-padded row's float
   * rounding differs slightly from the same row alone, and the int8 activations amplify that.
   * Exact, without batching.
   */
  exactBatches?: boolean;
  /**
   * Keep each sequence's KV cache in one buffer with room to grow, which every step both reads as
   * `past_key_values.*` and has onnxruntime write as `present.*` (a pre-allocated output over the
   * same memory): GroupQueryAttention then appends the new positions in place instead of copying
   * the whole past into a new `present` every step (what the CPU kernel calls
   * past_present_share_buffer). Only where onnxruntime writes a pre-allocated output into the
   * caller's memory (onnxruntime-node), and only for graphs with GroupQueryAttention whose logits
   * on the load probe equal those of the copying form.
   */
  kvInPlace?: boolean;
  /**
   * Merged into the options of the sessions `create` may serve with (not those it loads only to
   * probe): e.g. onnxruntime's `optimizedModelFilePath`, so the serving session writes its
   * optimized graph for `restore` (the Node adapter does, see load-checks.ts).
   */
  servingSessionOptions?: OrtCommon.InferenceSession.SessionOptions;
}

/** Counters for tests and the benchmark: batched decode calls, rows in them, rebuilds, prefills. */
export interface OrtCausalLMCounters {
  decodeCalls: number;
  decodeRows: number;
  rebuilds: number;
  prefills: number;
  prefillTokens: number;
  /** Milliseconds inside onnxruntime's run() for decode steps. */
  runMs: number;
  /** Decode steps started ahead that the next call used, and those it did not (undone). */
  lookaheadHits: number;
  lookaheadMisses: number;
}

/** A sequence outside the decode batch: its cache per layer as [1, H, capacity, D] buffers, `length` positions used. */
interface Stored {
  past: KvData[];
  length: number;
  capacity: number;
}

/** The running decode batch: per layer one [B, H, capacity, D] tensor, rows left-padded (or right-padded) to `padded`. */
interface Batch {
  seqs: number[];
  /** Each row's LoRA adapter (the `lora_index` feed). */
  adapters: number[];
  past: Tensor[];
  lengths: number[];
  padded: number;
  capacity: number;
  released: Set<number>;
}

/**
 * Room added to a KV buffer written in place when it must grow: an eighth of what it holds, at
 * least this many positions (and capacities in multiples of it). onnxruntime-node copies every
 * fetched output out, the whole buffer with its room, so room costs a little every step, and
 * growing costs one copy of what is held: an eighth keeps both near an eighth of a step's copy. The
 * prefix cache's budget counts positions in use; the room adds at most an eighth and 15 positions.
 */
const KV_ROOM_MIN = 8;

/** A decode step started before it was asked for, on `batch` with each row's argmax token. */
interface Lookahead {
  batch: Batch;
  tokens: number[];
  /** The outputs and the milliseconds inside run(); undefined when the run failed. */
  result: Promise<{ output: OrtCommon.InferenceSession.ReturnType; ms: number } | undefined>;
}

export class OrtCausalLM {
  private readonly stored = new Map<number, Stored>();
  /** Each live sequence's LoRA adapter when it is not the base (0); see `bindAdapters`. */
  private readonly adapters = new Map<number, number>();
  /** Whether the graph takes `lora_index` (a GGUF built with run-time LoRA adapters). */
  private readonly lora: boolean;
  /** Whether the graph takes `logits_to_keep` (a GGUF conversion): a prefill then computes the LM head for its last position only. */
  private readonly keepsLogits: boolean;
  private batch: Batch | undefined;
  readonly counters: OrtCausalLMCounters = {
    decodeCalls: 0, decodeRows: 0, rebuilds: 0, prefills: 0, prefillTokens: 0, runMs: 0, lookaheadHits: 0, lookaheadMisses: 0,
  };
  private lookahead: Lookahead | undefined;
  private readonly pastNames: string[];
  private readonly presentNames: string[];
  private readonly kvType: 'float32' | 'float16';
  private readonly kvDims: [number, number];
  readonly info: BackendModelInfo;
  /**
   * False when the graph quantizes activations with one scale per call (dynamic int8 that could
   * not be rewritten), or with `exactBatches` per row: a row's logits would depend on the other
   * rows, so every sequence then runs in a call of its own, and the engine reuses no other
   * request's prefix.
   */
  private batchInvariant = true;

  private constructor(
    private readonly ort: Ort,
    private readonly session: Session,
    private readonly hiddenOutput: string | undefined,
    private readonly options: OrtCausalLMOptions,
  ) {
    this.pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    this.lora = session.inputNames.includes(LORA_INDEX_INPUT);
    this.keepsLogits = session.inputNames.includes(LOGITS_TO_KEEP);
    this.presentNames = this.pastNames.map((n) => n.replace('past_key_values.', 'present.'));
    const meta = session.inputMetadata.find((m) => m.name === this.pastNames[0]);
    const shape = meta && meta.isTensor ? meta.shape : [];
    this.kvType = meta && meta.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
    this.kvDims = [Number(shape[1]), Number(shape[3])];
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const vocab = logits && logits.isTensor ? Number(logits.shape[2]) : NaN;
    if (!this.pastNames.length || !Number.isFinite(vocab) || !this.kvDims.every(Number.isFinite)) {
      throw new Error(`${options.name} is not a decoder with past_key_values inputs and a logits output.`);
    }
    checkGraph(options, { vocabSize: vocab, layers: this.pastNames.length / 2, kvHeads: this.kvDims[0], headDim: this.kvDims[1] });
    const kvBytesPerToken = this.pastNames.length * this.kvDims[0] * this.kvDims[1] * (this.kvType === 'float16' ? 2 : 4);
    this.info = {
      vocabSize: vocab, hiddenSize: options.hiddenSize, contextLength: options.contextLength, kvBytesPerToken, hiddenStates: hiddenOutput !== undefined,
    };
  }

  /** How the load checks (rewrites and probes) ran, for the startup log; a host that stores verdicts says more. */
  checks = 'run at load';
  /** Which attention runs: "GroupQueryAttention (...)" or "exported graph (why)". */
  attention = 'exported graph';
  /** How dynamic int8 matmuls run: "8-bit MatMulNBits (...)", "as exported (why)", or "" when the model has none. */
  matmul = '';

  /**
   * Whether the graph takes several new tokens on a non-empty cache (a continued prefill: prefix
   * reuse, a session's next turn, a prompt chunk after the first). Found at load by `probeSteps`.
   */
  private chunksOnPast = true;
  /**
   * Whether one-token steps of sequences of different lengths can share a run over the
   * left-padded batch cache. Found at load by `probeBatch`.
   */
  private batchesPadded = true;
  /** Pad decode batches on the right (rows from position 0): for graphs that read the cache from the front. */
  private padRight = false;
  /** The step plan in words, for the startup log. */
  get steps(): string {
    return `${this.tokensPlan}; ${this.batchPlan}; ${this.kvPlan}`;
  }
  private tokensPlan = 'any number of tokens per step';
  private batchPlan = 'decode steps batched';
  /** Whether steps write the KV cache in place (see `OrtCausalLMOptions.kvInPlace`), and the plan in words. */
  private kvInPlace = false;
  private kvPlan = 'KV copied into a new present each step';

  /** What the load-time rewrites and probes found (see LoadVerdict). */
  get verdict(): LoadVerdict {
    return {
      version: LOAD_CHECKS_VERSION, attention: this.attention, matmul: this.matmul, tokensPlan: this.tokensPlan, batchPlan: this.batchPlan,
      chunksOnPast: this.chunksOnPast, batchesPadded: this.batchesPadded, padRight: this.padRight, batchInvariant: this.batchInvariant,
      quantizedActivations: this.info.quantizedActivations ?? false, rowInvariant: this.info.rowInvariant ?? false, kvInPlace: this.kvInPlace, kvPlan: this.kvPlan, hiddenOutput: this.hiddenOutput,
    };
  }

  /**
   * Loads the graph `create` settled on, with the verdict's plans: one session, no rewrite, no
   * probe. `graph` is that graph as the serving session saw it: its bytes, or a file (on Node, the
   * optimized graph the serving session wrote through `servingSessionOptions`, loaded without
   * optimizing it again). The verdict must come from a load of the same model with the same
   * runtime, providers and settings: the caller's key guarantees that.
   */
  static async restore(ort: Ort, graph: Uint8Array | string, options: OrtCausalLMOptions, verdict: LoadVerdict): Promise<OrtCausalLM> {
    if (verdict.version !== LOAD_CHECKS_VERSION) throw new Error(`load verdict version ${verdict.version}, expected ${LOAD_CHECKS_VERSION}`);
    const sessionOptions = { graphOptimizationLevel: typeof graph === 'string' ? 'disabled' as const : 'all' as const, ...options.sessionOptions };
    const session = typeof graph === 'string'
      ? await ort.InferenceSession.create(graph, sessionOptions)
      : await ort.InferenceSession.create(graph, sessionOptions);
    if (verdict.hiddenOutput && !session.outputNames.includes(verdict.hiddenOutput)) {
      await session.release();
      throw new Error(`the stored graph has no output ${verdict.hiddenOutput}`);
    }
    const lm = new OrtCausalLM(ort, session, verdict.hiddenOutput, options);
    lm.checks = 'restored from a stored verdict: no rewrite and no probe run';
    lm.batchInvariant = verdict.batchInvariant;
    lm.info.batchInvariant = verdict.batchInvariant;
    lm.info.quantizedActivations = verdict.quantizedActivations;
    lm.info.rowInvariant = verdict.rowInvariant;
    Object.assign(lm, {
      attention: verdict.attention, matmul: verdict.matmul, tokensPlan: verdict.tokensPlan, batchPlan: verdict.batchPlan,
      chunksOnPast: verdict.chunksOnPast, batchesPadded: verdict.batchesPadded, padRight: verdict.padRight,
    });
    if (options.kvInPlace) Object.assign(lm, { kvInPlace: verdict.kvInPlace, kvPlan: verdict.kvPlan });
    return lm;
  }

  /**
   * `model` is the ONNX file's bytes. With `options.int8MatMul` and `options.attention`, the
   * graph is rewritten first (each checked against the original, see `verifiedRewrite`); the
   * hidden-state output is added last. Then short probes find the step plan the graph can run
   * (`probeSteps`, `probeBatch`).
   */
  static async create(ort: Ort, model: Uint8Array, options: OrtCausalLMOptions): Promise<OrtCausalLM> {
    const lm = await OrtCausalLM.createChecked(ort, model, options);
    // GroupQueryAttention from the rewrite, or in the graph as exported (then the rewrite declined it).
    const gqa = lm.attention.startsWith('GroupQueryAttention') || lm.attention.includes('already uses GroupQueryAttention');
    if (options.kvInPlace) await lm.checkKvInPlace(gqa);
    return lm;
  }

  private static async createChecked(ort: Ort, model: Uint8Array, options: OrtCausalLMOptions): Promise<OrtCausalLM> {
    const load = async (bytes: Uint8Array, exact = false, serving = true) => {
      const patch = addHiddenStateOutput(bytes);
      const sessionOptions = exact ? exactOptions(options.sessionOptions) : options.sessionOptions;
      const session = await ort.InferenceSession.create(patch?.model ?? bytes, {
        graphOptimizationLevel: 'all', ...sessionOptions, ...(serving && !exact ? options.servingSessionOptions : {}),
      });
      const lm = new OrtCausalLM(ort, session, patch?.outputName, options);
      // A graph that still quantizes activations per tensor: each sequence runs alone (see `forward`).
      lm.batchInvariant = dynamicQuantizations(bytes) === 0 && !(options.exactBatches && int8Compute(bytes));
      lm.info.batchInvariant = lm.batchInvariant;
      lm.info.quantizedActivations = quantizesActivations(bytes);
      const counters = { ...lm.counters };
      await lm.probeSteps();
      await lm.probeBatch();
      if (lm.chunksOnPast && int8MatMulNBits(bytes) > 1) await lm.probeRowInvariance();
      Object.assign(lm.counters, counters); // the probes are not traffic
      return lm;
    };
    const original = { attention: 'exported graph', matmul: '' };
    const int8 = options.int8MatMul
      ? rewriteInt8MatMuls(model, { accuracyLevel: 4 })
      : undefined;
    if (int8 && 'reason' in int8 && int8.reason !== 'no dynamic int8 matmuls') original.matmul = `as exported (${int8.reason})`;
    const fuse = (bytes: Uint8Array) => (options.attention ? fuseAttention(bytes, options.attention) : { reason: '' });
    const q8 = int8 && 'model' in int8 ? int8 : undefined;
    // The attention matches the same way with or without the int8 rewrite: fuse one graph now,
    // the other only if it is tried (one model copy less in memory meanwhile).
    const fused = fuse(q8 ? q8.model : model);
    if (options.attention && 'reason' in fused) original.attention = `exported graph (${fused.reason})`;
    const fusedOriginal = () => {
      const f = q8 ? fuse(model) : fused;
      if ('reason' in f) throw new Error(f.reason);
      return f.model;
    };
    const candidates: Candidate[] = [];
    const matmul = q8 && `8-bit MatMulNBits (${q8.rewritten} dynamic int8 matmuls, activations quantized per row${q8.remaining ? `; ${q8.remaining} dynamic quantizations left` : ''})`;
    if (q8 && 'model' in fused) candidates.push({ bytes: () => fused.model, attention: fused.layers, matmul });
    if (q8) candidates.push({ bytes: () => q8.model, matmul });
    // int8 activations inside the body (MatMulNBits at accuracy level 4 beyond a quantized LM head, e.g. a
    // GGUF imported with int8 accuracy) amplify the rewrite's float rounding past the graph's own noise;
    // such a rewrite gets a second check with float activations (see verifiedRewrite).
    const inFloat = !q8 && int8MatMulNBits(model) > 1;
    if ('model' in fused) candidates.push({ bytes: fusedOriginal, attention: fused.layers, inFloat });
    if (!candidates.length) return Object.assign(await load(model), original);
    // The int8 rewrite's reference: the same int8 weights with float activations.
    const exact = () => {
      const dq = rewriteInt8MatMuls(model, { accuracyLevel: 4, form: 'dequantize' });
      return 'model' in dq ? dq.model : model;
    };
    return verifiedRewrite(load, model, candidates, original, exact);
  }

  /**
   * Prefills (several tokens, or a new sequence) run one sequence per call. All one-token decodes
   * run as one batched call on the decode batch, which is rebuilt only when its members change.
   */
  async forward(items: ForwardItem[]): Promise<Float32Array[]> {
    this.bindAdapters(items);
    // The batch's rows of a step started early, when `items` asked for exactly that step.
    const early = await this.settleLookahead(items);
    const results: Float32Array[] = new Array(items.length);
    const decodes: number[] = [];
    for (const [i, item] of items.entries()) {
      const row = early?.get(item.seq);
      if (row) results[i] = row;
      else if (!early && this.batchInvariant && this.batchesPadded && item.tokens.length === 1 && !item.source && this.has(item.seq)) decodes.push(i);
      else results[i] = await this.prefill(item);
    }
    if (decodes.length > 0) {
      const rows = await this.decode(decodes.map((i) => items[i]));
      decodes.forEach((i, k) => (results[i] = rows[k]));
    }
    // Only when the whole call was one decode step: after a prefill the next step has a new member.
    const stepped = early ? early.size : decodes.length;
    if (this.options.lookahead && stepped === items.length && items.every((item) => item.greedyNext)) {
      // a constrained greedy row promises the argmax among the tokens its constraint allows
      const tokens = results.map((row, i) => (items[i].greedyAmong ? argmaxAmong(row, items[i].greedyAmong!) : argmax(row)));
      if (tokens.every((t) => t >= 0)) this.startLookahead(items.map((item) => item.seq), tokens);
    }
    return results;
  }

  /**
   * Records each item's adapter for its sequence, refusing (before anything runs) a sequence
   * continued or started from a cached prefix under another adapter than the one its KV was
   * computed with. The engine keys its prefix cache by adapter, so this is a guard, not a path.
   */
  private bindAdapters(items: ForwardItem[]): void {
    const adapterOf = (seq: number) => this.adapters.get(seq) ?? 0;
    for (const item of items) {
      const adapter = item.adapter ?? 0;
      this.checkAdapter(adapter);
      const from = item.source ? item.source.seq : this.has(item.seq) ? item.seq : undefined;
      if (from !== undefined && adapterOf(from) !== adapter) {
        throw new Error(`sequence ${from}'s KV was computed under LoRA adapter ${adapterOf(from)}; it cannot be reused under adapter ${adapter}.`);
      }
    }
    for (const item of items) {
      if (item.adapter) this.adapters.set(item.seq, item.adapter);
      else this.adapters.delete(item.seq);
    }
  }

  private checkAdapter(adapter: number): void {
    if (adapter !== 0 && !this.lora) throw new Error(`LoRA adapter ${adapter} requested, but the graph ${this.options.name} has no run-time adapters.`);
  }

  async fork(src: number, dst: number): Promise<void> {
    await this.settleLookahead();
    this.release(dst);
    const adapter = this.adapters.get(src);
    if (adapter) this.adapters.set(dst, adapter);
    const row = this.batch && !this.batch.released.has(src) ? this.batch.seqs.indexOf(src) : -1;
    if (row >= 0) return void this.stored.set(dst, this.extract(this.batch!, row, true));
    const state = this.stored.get(src);
    if (!state) throw new Error(`fork: unknown sequence ${src}`);
    this.stored.set(dst, { past: state.past.map((d) => d.slice()), length: state.length, capacity: state.capacity });
  }

  release(seq: number): void {
    this.stored.delete(seq);
    this.adapters.delete(seq);
    const batch = this.batch;
    if (!batch?.seqs.includes(seq)) return;
    batch.released.add(seq);
    if (batch.released.size === batch.seqs.length) this.batch = undefined;
  }

  get liveSequences(): number {
    return this.stored.size + (this.batch ? this.batch.seqs.length - this.batch.released.size : 0);
  }

  private has(seq: number): boolean {
    return this.stored.has(seq) || (this.batch !== undefined && this.batch.seqs.includes(seq) && !this.batch.released.has(seq));
  }

  private async prefill(item: ForwardItem): Promise<Float32Array> {
    this.counters.prefills++;
    this.counters.prefillTokens += item.tokens.length;
    if (this.batch?.seqs.includes(item.seq) || (item.source && this.batch?.seqs.includes(item.source.seq))) this.flushBatch();
    if (item.source) this.copyPrefix(item.source.seq, item.source.length, item.seq, item.tokens.length);
    const state = this.stored.get(item.seq) ?? this.emptyState();
    if (state.length > 0 && item.tokens.length > 1 && !this.chunksOnPast) return this.prefillByToken(item.seq, state, item.tokens, item.allLogits);
    return this.runPrefill(item.seq, state, item.tokens, false, item.allLogits);
  }

  /** The step plan of a graph that takes many tokens only on an empty cache: one token per run. */
  private async prefillByToken(seq: number, state: Stored, tokens: number[], all = false): Promise<Float32Array> {
    const rows: Float32Array[] = [];
    for (const token of tokens) {
      rows.push(await this.runPrefill(seq, state, [token]));
      state = this.stored.get(seq)!;
    }
    return all ? concatFloats(rows) : rows[rows.length - 1];
  }

  private async runPrefill(seq: number, state: Stored, tokens: number[], quiet = false, all = false): Promise<Float32Array> {
    const [heads, dim] = this.kvDims;
    const total = state.length + tokens.length;
    if (this.kvInPlace && state.capacity < total) {
      const capacity = this.room(total);
      state = { past: state.past.map((d) => extractRow(d, heads, state.capacity, dim, 0, 0, state.length, capacity)), length: state.length, capacity };
    }
    const past = state.past.map((data) => new this.ort.Tensor(this.kvType, data, [1, heads, state.capacity, dim]));
    const feeds = this.feeds([tokens], [state.length], state.length, past, new BigInt64Array(total).fill(1n), [this.adapters.get(seq) ?? 0], all ? tokens.length : 1);
    // A probe that is expected to fail may not print onnxruntime's error line (4: fatal only).
    const result = await this.session.run(feeds, this.fetches(past), quiet ? { logSeverityLevel: 4 } : {});
    const stored = this.kvInPlace
      ? { past: state.past, length: total, capacity: state.capacity }
      : { past: this.presentNames.map((n) => result[n].data as KvData), length: total, capacity: total };
    this.stored.set(seq, stored);
    return all ? this.allLogits(result.logits, tokens.length) : this.lastLogits(result.logits, 0);
  }

  /**
   * What a step fetches: the logits and every `present.*`, which with KV in place are the `past`
   * tensors themselves (onnxruntime writes them where they are; GroupQueryAttention sees one buffer
   * and appends to it). onnxruntime-node still returns a copy of each, which is dropped.
   */
  private fetches(past: Tensor[]): string[] | Record<string, Tensor | null> {
    if (!this.kvInPlace) return ['logits', ...this.presentNames];
    const fetches: Record<string, Tensor | null> = { logits: null };
    this.presentNames.forEach((name, i) => (fetches[name] = past[i]));
    return fetches;
  }

  /** A capacity for `needed` positions written in place: with room to grow (a copying step's buffers have exactly their length). */
  private room(needed: number): number {
    const roomy = Math.ceil((needed + Math.max(KV_ROOM_MIN, needed / 8)) / KV_ROOM_MIN) * KV_ROOM_MIN;
    return Math.max(needed, Math.min(roomy, this.options.contextLength));
  }

  private emptyState(): Stored {
    return { past: this.pastNames.map(() => this.emptyKv()), length: 0, capacity: 0 };
  }

  /**
   * Turns KV in place on when the graph has GroupQueryAttention and the load probe's logits are
   * the same with it as without: the kernel must take a past that is longer than the positions in
   * use (its `total_sequence_length` comes from the attention mask) and write the shared buffer.
   */
  private async checkKvInPlace(gqa: boolean): Promise<void> {
    if (!gqa) {
      this.kvPlan = 'KV copied into a new present each step (the graph has no GroupQueryAttention)';
      return;
    }
    const counters = { ...this.counters };
    let why: string;
    try {
      const copied = (await this.probe(false)).rows;
      this.kvInPlace = true;
      const inPlace = (await this.probe(false)).rows;
      const diff = Math.max(...copied.map((row, i) => maxAbsDiff(row, inPlace[i])));
      const allowed = 1e-6 * Math.max(...copied.map((row) => maxAbs(row)));
      if (diff <= allowed) {
        this.kvPlan = `KV written in place (probe logits within ${diff.toPrecision(2)} of the copying form)`;
        return;
      }
      why = `its probe logits differ by ${diff.toPrecision(2)}, allowed ${allowed.toPrecision(2)}`;
    } catch (error) {
      why = `it failed: ${(error as Error).message.split('\n')[0]}`;
    } finally {
      Object.assign(this.counters, counters); // the probes are not traffic
    }
    this.kvInPlace = false;
    for (const seq of [1, 2, 3]) this.release(seq);
    this.kvPlan = `KV copied into a new present each step (in place was rejected: ${why})`;
  }

  /**
   * Finds how the graph batches decode steps of sequences of different lengths: a short and a
   * long row run together must give the short row what it gets alone. Left padding is tried
   * first (position_ids and a mask over the padding: optimum-style exports). Graphs that read
   * each row's cache from position 0 get it wrong (GroupQueryAttention takes
   * `seqlens_k = sum(attention_mask) - 1`, as onnxruntime-genai wires it), and are tried with
   * right padding; a graph neither layout suits decodes one sequence per run. The longest row,
   * which has no padding, shows how much batching alone moves the logits (dynamic int8), and that
   * much is allowed.
   */
  private async probeBatch(): Promise<void> {
    const left = await this.batchError();
    if (left === undefined) return;
    this.padRight = true;
    const right = await this.batchError();
    if (right === undefined) {
      this.batchPlan = `decode steps batched, right-padded (left padding: ${left}; the graph reads each row's cache from position 0)`;
      return;
    }
    this.padRight = false;
    this.batchesPadded = false;
    this.batchPlan = `one sequence per decode run (left padding: ${left}; right padding: ${right})`;
  }

  /** Why a decode batch of a short and a long row is wrong in the current layout, or undefined. */
  private async batchError(): Promise<string | undefined> {
    const vocab = this.info.vocabSize;
    const t = (i: number) => (i * 13 + 5) % vocab;
    const seqs = [-3, -4, -5, -6];
    try {
      await this.forward([{ seq: -3, tokens: [t(1), t(2), t(3)] }]);
      await this.forward([{ seq: -4, tokens: [t(1)] }]);
      const [long, short] = (await this.forward([{ seq: -3, tokens: [t(4)] }, { seq: -4, tokens: [t(5)] }])).map((row) => row.slice());
      await this.forward([{ seq: -5, tokens: [t(1), t(2), t(3)] }]);
      const longAlone = (await this.forward([{ seq: -5, tokens: [t(4)] }]))[0].slice();
      await this.forward([{ seq: -6, tokens: [t(1)] }]);
      const shortAlone = (await this.forward([{ seq: -6, tokens: [t(5)] }]))[0];
      const diff = maxAbsDiff(short, shortAlone);
      const allowed = Math.max(4 * maxAbsDiff(long, longAlone), 0.01 * maxAbs(shortAlone));
      return diff <= allowed ? undefined : `a padded row's logits are off by ${diff.toPrecision(2)}, allowed ${allowed.toPrecision(2)}`;
    } catch (error) {
      return `the run failed: ${(error as Error).message.split('\n')[0]}`;
    } finally {
      seqs.forEach((seq) => this.release(seq));
    }
  }

  /**
   * Whether multi-token steps give the same logits, bit for bit, as single steps: a whole prefill,
   * and a 4-token step on a cache, against the same tokens one at a time. Only asked of graphs
   * whose body computes with int8 activations, where any rounding difference between call shapes
   * can change a greedy reply: with it, drafts (prompt lookup) and prefix-cache hits cannot.
   */
  private async probeRowInvariance(): Promise<void> {
    const vocab = this.info.vocabSize;
    const prompt = [5, 6, 7, 8, 9].map((i) => (i * 131) % vocab);
    const draft = [1, 2, 3, 4].map((i) => (i * 977) % vocab);
    try {
      const stepped = await this.prefillByToken(-1, this.emptyState(), [...prompt, ...draft], true);
      const whole = await this.runPrefill(-2, this.emptyState(), [...prompt, ...draft], true, true);
      await this.runPrefill(-3, this.emptyState(), prompt, true);
      const onPast = await this.runPrefill(-3, this.stored.get(-3)!, draft, true, true);
      const tail = stepped.subarray(stepped.length - onPast.length);
      this.info.rowInvariant = maxAbsDiff(whole, stepped) === 0 && maxAbsDiff(onPast, tail) === 0;
    } catch {
      this.info.rowInvariant = false;
    } finally {
      for (const seq of [-1, -2, -3]) this.stored.delete(seq);
    }
  }

  /**
   * Finds whether the graph takes several tokens on a non-empty cache: three tokens as one prefill,
   * one token at a time (what decoding does, so every graph runs it), and one then two on top.
   * Some exports cannot take the last (onnxruntime-genai's `attn_mask_reformat` builds its causal
   * mask as [S, S] and expands it to [S, past + S], which only works when S is 1 or the past is
   * empty); those get one token per run after the first prefill. So does a graph whose split
   * logits stray from the token-by-token ones far more than the whole prefill's do: the usual
   * rounding between call shapes (large for dynamic int8, whose activation scales span the call)
   * is allowed, a wrong mask is not.
   */
  private async probeSteps(): Promise<void> {
    const vocab = this.info.vocabSize;
    const tokens = [1, 2, 3].map((i) => (i * 11) % vocab);
    try {
      const whole = await this.runPrefill(-1, this.emptyState(), tokens);
      const stepped = await this.prefillByToken(-1, this.emptyState(), tokens);
      await this.runPrefill(-2, this.emptyState(), tokens.slice(0, 1));
      const split = await this.runPrefill(-2, this.stored.get(-2)!, tokens.slice(1), true);
      const diff = maxAbsDiff(split, stepped);
      const allowed = Math.max(4 * maxAbsDiff(whole, stepped), 0.01 * maxAbs(whole));
      if (!(diff <= allowed)) {
        this.chunksOnPast = false;
        this.tokensPlan = `prefill on an empty cache, then one token per step (the graph's logits for 2 tokens on a 1-token cache are off by ${diff.toPrecision(2)}, allowed ${allowed.toPrecision(2)})`;
      }
    } catch (error) {
      this.chunksOnPast = false;
      this.tokensPlan = `prefill on an empty cache, then one token per step (2 tokens on a 1-token cache failed: ${(error as Error).message.split('\n')[0]})`;
    } finally {
      this.stored.delete(-1);
      this.stored.delete(-2);
    }
  }

  private async decode(items: ForwardItem[]): Promise<Float32Array[]> {
    const batch = this.decodeBatch(items.map((item) => item.seq));
    const feeds = this.decodeFeeds(batch, items.map((item) => item.tokens[0]));
    const started = performance.now();
    const result = await this.session.run(feeds, this.fetches(batch.past));
    return this.applyDecode(batch, result, performance.now() - started);
  }

  /** The decode batch holding exactly `order`, rebuilt when its members changed. */
  private decodeBatch(order: number[]): Batch {
    if (!this.batch || this.batch.released.size > 0 || !sameOrder(this.batch.seqs, order)) this.rebuild(order);
    return this.batch!;
  }

  /** Feeds of one decode step on `batch`; with KV in place, first makes room for the step's position. */
  private decodeFeeds(batch: Batch, tokens: number[]) {
    if (this.kvInPlace && batch.capacity < batch.padded + 1) {
      const [heads, dim] = this.kvDims;
      const capacity = this.room(batch.padded + 1);
      const rows = batch.seqs.length;
      batch.past = batch.past.map((t) =>
        new this.ort.Tensor(this.kvType, widenRows(t.data as KvData, rows, heads, batch.capacity, dim, batch.padded, capacity), [rows, heads, capacity, dim]));
      batch.capacity = capacity;
    }
    const mask = (this.padRight ? rightPaddedMask : leftPaddedMask)(batch.lengths, batch.padded, 1);
    return this.feeds(tokens.map((t) => [t]), batch.lengths, batch.padded, batch.past, mask, batch.adapters);
  }

  /** Appends a decode step's output to the batch; returns every row's logits. */
  private applyDecode(batch: Batch, result: OrtCommon.InferenceSession.ReturnType, ms: number): Float32Array[] {
    this.counters.runMs += ms;
    this.counters.decodeCalls++;
    this.counters.decodeRows += batch.seqs.length - batch.released.size;
    if (!this.kvInPlace) batch.past = this.presentNames.map((n) => result[n]);
    batch.lengths = batch.lengths.map((length) => length + 1);
    batch.padded += 1;
    if (!this.kvInPlace) batch.capacity = batch.padded;
    // Views, not copies: a decode step's logits are small, and callers may only use them until the next call.
    return batch.seqs.map((_, row) => this.lastLogits(result.logits, row, true));
  }

  /**
   * Lookahead: while the caller samples from a step's logits (another thread, on Node), the next
   * step already runs with each row's argmax, which is what a greedy caller will send. The batch
   * is left as it was until the next call shows what it wants: that step's rows (used), or
   * anything else (the early step is dropped, as if it had never run). This removes the
   * round trip between two decode steps from a greedy stream's time per token.
   */
  private startLookahead(order: number[], tokens: number[]): void {
    const batch = this.decodeBatch(order);
    const feeds = this.decodeFeeds(batch, tokens);
    const started = performance.now();
    // With KV in place this step writes the position after the batch's last: harmless when it is
    // dropped, as nothing reads past `padded` and the step asked for instead writes it again.
    const result = this.session.run(feeds, this.fetches(batch.past)).then(
      (output) => ({ output, ms: performance.now() - started }),
      () => undefined, // dropped; the step asked for then runs again and reports the error
    );
    this.lookahead = { batch, tokens, result };
  }

  /**
   * Waits for the step started ahead, if any. When `items` are exactly that step (the batch's
   * live sequences in order, each with its predicted token, and nothing that touches the batch
   * otherwise), applies it and returns the logits of those sequences by id; otherwise drops it.
   */
  private async settleLookahead(items?: ForwardItem[]): Promise<Map<number, Float32Array> | undefined> {
    const ahead = this.lookahead;
    if (!ahead) return undefined;
    this.lookahead = undefined;
    const result = await ahead.result;
    const batch = ahead.batch;
    const live = batch.seqs.flatMap((seq, row) => (batch.released.has(seq) ? [] : [row]));
    const inBatch = (seq: number | undefined) => seq !== undefined && batch.seqs.includes(seq);
    const decodes = items?.filter((item) => inBatch(item.seq) || inBatch(item.source?.seq)) ?? [];
    const used =
      result !== undefined &&
      this.batch === batch &&
      decodes.length === live.length &&
      decodes.every(
        (item, k) => !item.source && item.tokens.length === 1 && item.seq === batch.seqs[live[k]] && item.tokens[0] === ahead.tokens[live[k]],
      );
    if (!used) {
      this.counters.lookaheadMisses++;
      return undefined;
    }
    this.counters.lookaheadHits++;
    const rows = this.applyDecode(batch, result.output, result.ms);
    return new Map(live.map((row) => [batch.seqs[row], rows[row]]));
  }

  /**
   * `dst` becomes the first `length` tokens of `src` (both outside the batch), with room for
   * `adding` more. With KV in place a sequence cut back to its own prefix keeps its buffer: the
   * positions after `length` are written again before anything reads them.
   */
  private copyPrefix(src: number, length: number, dst: number, adding: number): void {
    const state = this.stored.get(src);
    if (!state || length > state.length) throw new Error(`cannot reuse ${length} tokens of sequence ${src}`);
    if (this.kvInPlace && src === dst) return void this.stored.set(dst, { ...state, length });
    const [heads, dim] = this.kvDims;
    const capacity = this.kvInPlace ? this.room(length + adding) : length;
    this.stored.set(dst, { past: state.past.map((d) => extractRow(d, heads, state.capacity, dim, 0, 0, length, capacity)), length, capacity });
  }

  /** Moves every live row of the batch out to `stored`, unpadded. */
  private flushBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    batch.seqs.forEach((seq, row) => batch.released.has(seq) || this.stored.set(seq, this.extract(batch, row, false)));
    this.batch = undefined;
  }

  private rebuild(order: number[]): void {
    this.counters.rebuilds++;
    this.flushBatch();
    const states = order.map((seq) => this.stored.get(seq)!);
    order.forEach((seq) => this.stored.delete(seq));
    const lengths = states.map((s) => s.length);
    const strides = states.map((s) => s.capacity);
    const padded = Math.max(0, ...lengths);
    // A lone sequence keeps its buffer when it has room for the next step (and, copying, always).
    const lone = states.length === 1 && (!this.kvInPlace || states[0].capacity > padded);
    const capacity = lone ? states[0].capacity : this.kvInPlace ? this.room(padded + 1) : padded;
    const [heads, dim] = this.kvDims;
    const past = this.pastNames.map((_, layer) => {
      const stacked = stackRows(states.map((s) => s.past[layer]), lengths, strides, heads, dim, capacity, this.padRight);
      return new this.ort.Tensor(this.kvType, stacked.data, [order.length, heads, capacity, dim]);
    });
    this.batch = { seqs: order, adapters: order.map((seq) => this.adapters.get(seq) ?? 0), past, lengths, padded, capacity, released: new Set() };
  }

  /**
   * A batch row as a stored sequence. A batch of one unpadded row hands over its buffers, except
   * when the batch lives on (`keep`, a fork) and steps write the buffers in place.
   */
  private extract(batch: Batch, row: number, keep: boolean): Stored {
    const [heads, dim] = this.kvDims;
    const length = batch.lengths[row];
    const start = this.padRight ? 0 : batch.padded - length;
    if (batch.seqs.length === 1 && start === 0 && !(keep && this.kvInPlace)) {
      return { past: batch.past.map((t) => t.data as KvData), length, capacity: batch.capacity };
    }
    return { past: batch.past.map((t) => extractRow(t.data as KvData, heads, batch.capacity, dim, row, start, length)), length, capacity: length };
  }

  /** A row's last-position logits: a copy, or with `view` a view of float32 output (fp16 is always converted). */
  private lastLogits(logits: Tensor, row: number, view = false): Float32Array {
    const vocab = this.info.vocabSize;
    // The positions with logits: every new token's, or with `logits_to_keep` the last one(s).
    const positions = Number(logits.dims[1]);
    const start = (row * positions + positions - 1) * vocab;
    if (view && logits.data instanceof Float32Array) return logits.data.subarray(start, start + vocab);
    return toFloat32(logits.data as Float32Array | Uint16Array, start, vocab);
  }

  /** The last `tokens` positions' logits of a one-row run (`ForwardItem.allLogits`): a tokens x vocab copy. */
  private allLogits(logits: Tensor, tokens: number): Float32Array {
    const vocab = this.info.vocabSize;
    const positions = Number(logits.dims[1]);
    if (positions < tokens) throw new Error(`the graph returned logits for ${positions} positions, ${tokens} asked for`);
    return toFloat32(logits.data as Float32Array | Uint16Array, (positions - tokens) * vocab, tokens * vocab);
  }

  async hiddenStates(inputs: number[][], adapter = 0): Promise<Float32Array[]> {
    this.checkAdapter(adapter);
    if (!this.hiddenOutput) throw new Error('This model graph does not expose its hidden state.'); // the engine checks info.hiddenStates first
    const out: Float32Array[] = [];
    for (const tokens of inputs) {
      const [heads, dim] = this.kvDims;
      const past = this.pastNames.map(() => new this.ort.Tensor(this.kvType, this.emptyKv(), [1, heads, 0, dim]));
      const feeds = this.feeds([tokens], [0], 0, past, new BigInt64Array(tokens.length).fill(1n), [adapter]);
      const result = await this.session.run(feeds, [this.hiddenOutput]);
      const hidden = result[this.hiddenOutput];
      const size = Number(hidden.dims[2]);
      const data = toFloat32(hidden.data as Float32Array | Uint16Array, 0, tokens.length * size);
      hidden.dispose();
      out.push(meanRows(data, tokens.length, size));
    }
    return out;
  }

  /**
   * Logits of a fixed sequence of calls that covers every way `forward` runs the graph; with
   * `floor`, also how far the last step is from the same tokens prefilled in one call.
   */
  async probe(floor: boolean): Promise<{ rows: Float32Array[]; floor: { max: number; mean: number } }> {
    const vocab = this.info.vocabSize;
    const ids = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (1 + i * 7 + salt * 13) % vocab);
    const calls: ForwardItem[][] = [
      [{ seq: 1, tokens: ids(6, 0) }],
      [{ seq: 2, tokens: ids(3, 1) }],
      [{ seq: 1, tokens: ids(2, 2) }],
      [{ seq: 1, tokens: ids(1, 3) }, { seq: 2, tokens: ids(1, 4) }],
      [{ seq: 1, tokens: ids(1, 5) }, { seq: 2, tokens: ids(1, 6) }],
    ];
    const rows: Float32Array[] = [];
    for (const items of calls) rows.push(...(await this.forward(items)).map((row) => row.slice()));
    const noise = { max: 0, mean: 0 };
    if (floor) {
      const all = calls.flatMap((items) => items.filter((item) => item.seq === 1).flatMap((item) => item.tokens));
      const [whole] = await this.forward([{ seq: 3, tokens: all }]);
      noise.max = maxAbsDiff(rows[rows.length - 2], whole);
      noise.mean = meanAbsDiff(rows[rows.length - 2], whole);
    }
    for (const seq of [1, 2, 3]) this.release(seq);
    return { rows, floor: noise };
  }

  async dispose(): Promise<void> {
    await this.settleLookahead();
    this.stored.clear();
    this.batch = undefined;
    if (this.options.sessionOptions.enableProfiling) this.session.endProfiling();
    await this.session.release();
  }

  private emptyKv(): KvData {
    return this.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  }

  /**
   * Feeds for rows of equal new-token count; `lengths` are each row's real past length, `keep` the
   * last positions that get logits where the graph takes `logits_to_keep`.
   */
  private feeds(tokens: number[][], lengths: number[], padded: number, past: Tensor[], mask: BigInt64Array, adapters: number[], keep = 1) {
    const rows = tokens.length;
    const width = tokens[0].length;
    const feeds: Record<string, Tensor> = {
      input_ids: new this.ort.Tensor('int64', BigInt64Array.from(tokens.flat(), BigInt), [rows, width]),
      attention_mask: new this.ort.Tensor('int64', mask, [rows, padded + width]),
    };
    if (this.session.inputNames.includes('position_ids')) {
      const positions = lengths.flatMap((length) => Array.from({ length: width }, (_, i) => BigInt(length + i)));
      feeds.position_ids = new this.ort.Tensor('int64', BigInt64Array.from(positions), [rows, width]);
    }
    if (this.lora) feeds[LORA_INDEX_INPUT] = new this.ort.Tensor('int64', BigInt64Array.from(adapters, BigInt), [rows]);
    if (this.keepsLogits) feeds[LOGITS_TO_KEEP] = new this.ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), [1]);
    this.pastNames.forEach((name, i) => (feeds[name] = past[i]));
    return feeds;
  }
}

/** A rewritten model to try: its bytes (made when tried), and what it changed. */
interface Candidate {
  bytes: () => Uint8Array;
  /** GroupQueryAttention layers, when the attention was rewritten. */
  attention?: number;
  /** What the int8 matmuls became, when they were rewritten. */
  matmul?: string;
  /**
   * Failing the probe, check it again with float activations (every MatMulNBits at accuracy level 0,
   * the original too), where the probe's float tolerance applies: a graph with int8 activations
   * amplifies any rounding difference, a correct rewrite's included, and the rewrite does not touch
   * the matmuls, so the same graph with int8 activations computes the same attention.
   */
  inFloat?: boolean;
}

/**
 * Loads the first candidate that computes what the original does, else the original. Both run
 * the same probe through `forward` (a prefill, a second sequence, a continuation prefill on a
 * cache, two batched decode steps over left padding), one after the other so that only one is
 * in memory. Their logits may differ by rounding, as much as the original differs from itself
 * when the same tokens are split into calls differently (its last step against one prefill of
 * them all): zero for float models, a lot for dynamic int8, whose activation scales span whole
 * tensors. Both the largest and the mean difference must stay within that, and within 0.2% /
 * 0.02% of the largest logit.
 *
 * A candidate with rewritten int8 matmuls is more precise than a dynamic-int8 original, so it is
 * compared instead with `exact`: the original's int8 weights as DequantizeLinear + MatMul, run with
 * onnxruntime's QDQ fusion off (float activations), which must itself be within twice the
 * original's noise of the original (it would not be if the weights or scales were misread).
 */
async function verifiedRewrite(
  load: (bytes: Uint8Array, exact?: boolean, serving?: boolean) => Promise<OrtCausalLM>,
  original: Uint8Array,
  candidates: Candidate[],
  described: { attention: string; matmul: string },
  exact: () => Uint8Array,
): Promise<OrtCausalLM> {
  const probeOf = async (bytes: Uint8Array, floor: boolean, exactSession = false) => {
    const lm = await load(bytes, exactSession, false);
    try {
      return { ...(await lm.probe(floor)), rowInvariant: lm.info.rowInvariant ?? false };
    } finally {
      await lm.dispose();
    }
  };
  const expected = await probeOf(original, true);
  const scale = Math.max(...expected.rows.map((row) => maxAbs(row)));
  const tolerance = Math.max(expected.floor.max, 2e-3 * scale);
  const meanTolerance = Math.max(expected.floor.mean, 2e-4 * scale);
  const compare = (want: Float32Array[], got: Float32Array[], factor = 1) => {
    const diff = Math.max(...want.map((row, i) => maxAbsDiff(row, got[i])));
    const mean = Math.max(...want.map((row, i) => meanAbsDiff(row, got[i])));
    const ok = diff <= factor * tolerance && mean <= factor * meanTolerance;
    return { diff, ok, why: `differ by up to ${diff.toPrecision(2)} (allowed ${(factor * tolerance).toPrecision(2)}), ${mean.toPrecision(2)} on average (allowed ${(factor * meanTolerance).toPrecision(2)})` };
  };
  let reference: { rows: Float32Array[]; failure?: string } | undefined;
  for (const c of candidates) {
    let candidate: OrtCausalLM | undefined;
    let failure: string;
    try {
      let want = expected.rows;
      let against = "the exported graph's";
      if (c.matmul) {
        if (!reference) {
          const rows = (await probeOf(exact(), false, true)).rows;
          const check = compare(expected.rows, rows, 2);
          reference = check.ok ? { rows } : { rows, failure: `its float reference's logits ${check.why}` };
        }
        if (reference.failure) throw new Error(reference.failure);
        want = reference.rows;
        against = "the int8 weights' in float";
      }
      candidate = await load(c.bytes());
      const got = await candidate.probe(false);
      const check = compare(want, got.rows);
      let within = `probe logits within ${check.diff.toPrecision(2)} of ${against}, allowed ${tolerance.toPrecision(2)}`;
      if (!check.ok && c.inFloat) {
        const floatCheck = await checkInFloat(probeOf, original, c.bytes());
        if (floatCheck.ok) {
          check.ok = true;
          within = `with float activations ${floatCheck.within}; with int8 activations ${check.why}`;
        }
      }
      // int8 activations: a rewrite may not cost the original's row invariance (see probeRowInvariance).
      const keepsRows = !expected.rowInvariant || candidate.info.rowInvariant === true;
      if (check.ok && keepsRows) {
        return Object.assign(candidate, {
          attention: c.attention ? `GroupQueryAttention (${c.attention} layers; ${within})` : described.attention,
          matmul: c.matmul ? `${c.matmul}; ${within}` : described.matmul,
        });
      }
      failure = check.ok
        ? "its multi-token steps round differently from single steps with int8 activations, and the exported graph's do not"
        : `its logits ${check.why}`;
    } catch (error) {
      failure = (error as Error).message.startsWith('its float reference') ? (error as Error).message : `it failed: ${(error as Error).message.split('\n')[0]}`;
    }
    await candidate?.dispose();
    if (c.attention) described.attention = `exported graph (the GroupQueryAttention rewrite was rejected: ${failure})`;
    if (c.matmul) described.matmul = `as exported (the MatMulNBits rewrite was rejected: ${failure})`;
  }
  return Object.assign(await load(original), described);
}

/**
 * The probe of `verifiedRewrite` for the original and the candidate with float activations: the
 * candidate must match the original within the float original's own noise (at least 0.2% / 0.02%
 * of the largest logit), as for a float model.
 */
async function checkInFloat(
  probeOf: (bytes: Uint8Array, floor: boolean) => Promise<{ rows: Float32Array[]; floor: { max: number; mean: number } }>,
  original: Uint8Array,
  candidate: Uint8Array,
): Promise<{ ok: boolean; within: string }> {
  const expected = await probeOf(floatActivations(original), true);
  const got = await probeOf(floatActivations(candidate), false);
  const scale = Math.max(...expected.rows.map((row) => maxAbs(row)));
  const tolerance = Math.max(expected.floor.max, 2e-3 * scale);
  const meanTolerance = Math.max(expected.floor.mean, 2e-4 * scale);
  const diff = Math.max(...expected.rows.map((row, i) => maxAbsDiff(row, got.rows[i])));
  const mean = Math.max(...expected.rows.map((row, i) => meanAbsDiff(row, got.rows[i])));
  return {
    ok: diff <= tolerance && mean <= meanTolerance,
    within: `probe logits within ${diff.toPrecision(2)} of the exported graph's, allowed ${tolerance.toPrecision(2)}`,
  };
}

/** Session options with onnxruntime's QDQ fusion off: DequantizeLinear + MatMul then runs in float. */
function exactOptions(options: OrtCommon.InferenceSession.SessionOptions): OrtCommon.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as { session?: Record<string, string> };
  return { ...options, extra: { ...extra, session: { ...extra.session, disable_quant_qdq: '1' } } };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return Number.isNaN(max) || a.length !== b.length ? Infinity : max;
}

function meanAbsDiff(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return Number.isNaN(sum) || a.length !== b.length ? Infinity : sum / a.length;
}

function maxAbs(a: Float32Array): number {
  let max = 0;
  for (const x of a) max = Math.max(max, Math.abs(x));
  return max;
}

function sameOrder(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const CONFIG_NAMES: Record<keyof GraphExpectations, string> = {
  vocabSize: 'vocab_size', layers: 'num_hidden_layers', kvHeads: 'num_key_value_heads', headDim: 'head_dim',
};

/** config.json and the graph must agree on the sizes both state; a mismatch names the field and the file. */
function checkGraph(options: OrtCausalLMOptions, graph: Required<GraphExpectations>): void {
  for (const key of Object.keys(CONFIG_NAMES) as Array<keyof GraphExpectations>) {
    const stated = options.expected?.[key];
    if (stated === undefined || !Number.isFinite(graph[key])) continue;
    // A graph may pad its vocabulary beyond the tokenizer's; it must never have fewer rows.
    const ok = key === 'vocabSize' ? graph[key] >= stated : graph[key] === stated;
    if (!ok) {
      throw new Error(`config.json says ${CONFIG_NAMES[key]} ${stated}, but the graph ${options.name} has ${graph[key]}.`);
    }
  }
}
