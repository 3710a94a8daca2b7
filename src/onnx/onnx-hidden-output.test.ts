import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { addHiddenStateOutput } from './onnx-hidden-output.js';
import { ProtoReader, ProtoWriter, decodeString } from './protobuf.js';

const SHARED_MODELS =
  process.env.EDGELLM_SHARED_MODELS ?? fileURLToPath(new URL('../../../shared/models', import.meta.url));
const STORIES = join(SHARED_MODELS, 'karpathy__stories260K');
const TINY_RANDOM = join(SHARED_MODELS, 'hf-internal-testing__tiny-random-LlamaForCausalLM');
const missing = (dir: string) => {
  const absent = !existsSync(dir);
  if (absent) console.warn(`[onnx-hidden-output.test] skipping: shared model fixture not found at ${dir} (set EDGELLM_SHARED_MODELS)`);
  return absent;
};

/**
 * onnxruntime-node: a model created from bytes resolves external data against process.cwd(). This session
 * option points it at the model's folder instead (ORT >= 1.19 config key; works in onnxruntime-node 1.30).
 */
export function externalDataFolderOption(modelDir: string): InferenceSession.SessionOptions {
  return { extra: { session: { model_external_initializers_file_folder_path: modelDir } } };
}

/** Prefill of `ids` with an empty KV cache; input shapes and KV dtype come from the session's metadata. */
async function prefill(session: InferenceSession, ids: number[], outputs?: string[]) {
  const int64 = (values: number[]) => new Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
  const feeds: Record<string, Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`unexpected non-tensor input ${meta.name}`);
    if (meta.name === 'input_ids') feeds[meta.name] = int64(ids);
    else if (meta.name === 'attention_mask') feeds[meta.name] = int64(ids.map(() => 1));
    else if (meta.name === 'position_ids') feeds[meta.name] = int64(ids.map((_, i) => i));
    else if (meta.name.startsWith('past_key_values.')) {
      const [, heads, , headDim] = meta.shape as number[];
      const data = meta.type === 'float16' ? new Uint16Array(0) : new Float32Array(0);
      feeds[meta.name] = new Tensor(meta.type as 'float32', data as Float32Array, [1, heads, 0, headDim]);
    } else throw new Error(`unexpected input ${meta.name}`);
  }
  expect(Object.keys(feeds)).toHaveLength(session.inputNames.length);
  return outputs ? session.run(feeds, outputs) : session.run(feeds);
}

/** Patches `file`, checks the new output's shape and that the logits match the unpatched model. */
async function checkPatched(file: string, hiddenSize: number, options: InferenceSession.SessionOptions = {}) {
  const original = readFileSync(file);
  const patch = addHiddenStateOutput(original);
  expect(patch).not.toBeNull();
  const { model, outputName } = patch!;
  expect(model.length - original.length).toBeLessThan(200);
  expect(Buffer.from(model.subarray(0, original.length)).equals(original)).toBe(true);

  const plain = await InferenceSession.create(file);
  const patched = await InferenceSession.create(model, options);
  expect(patched.outputNames).toEqual([...plain.outputNames, outputName]);
  const ids = [1, 5, 17, 42];
  const a = await prefill(plain, ids);
  const b = await prefill(patched, ids);
  const hidden = b[outputName];
  expect(hidden.dims).toEqual([1, ids.length, hiddenSize]);
  expect(hidden.type).toBe(a.logits.type);
  expect(b.logits.dims).toEqual(a.logits.dims);
  expect(Array.from(b.logits.data as Float32Array)).toEqual(Array.from(a.logits.data as Float32Array));
  expect(Array.from(hidden.data as Float32Array).some((v) => v !== 0)).toBe(true);
  return { outputName, patched };
}

describe.skipIf(missing(STORIES))('addHiddenStateOutput on stories260K (hidden 64)', () => {
  for (const file of ['model.onnx', 'model_quantized.onnx', 'model_q4.onnx']) {
    it(`exposes the lm_head input of ${file} without changing the logits`, async () => {
      const { patched, outputName } = await checkPatched(join(STORIES, 'onnx', file), 64);
      // Fetching only the new output works too.
      const only = await prefill(patched, [1, 2, 3], [outputName]);
      expect(only[outputName].dims).toEqual([1, 3, 64]);
    });
  }
});

describe.skipIf(missing(TINY_RANDOM))('addHiddenStateOutput on tiny-random Llama (hidden 16)', () => {
  const onnxDir = join(TINY_RANDOM, 'onnx');

  it('works on the fp32 model.onnx (self-contained)', async () => {
    await checkPatched(join(onnxDir, 'model.onnx'), 16);
  });

  it('works on model_fp16.onnx (float16 KV, external data model.onnx.data) with the folder session option', async () => {
    const { patched, outputName } = await checkPatched(join(onnxDir, 'model_fp16.onnx'), 16, externalDataFolderOption(onnxDir));
    const meta = patched.outputMetadata.find((m) => m.name === outputName);
    expect(meta?.isTensor && meta.type).toBe('float16');
  });

  it('finds external data from bytes via externalData; not by default, nor through a symlinked data file', async () => {
    const patched = addHiddenStateOutput(readFileSync(join(onnxDir, 'model_fp16.onnx')))!.model;
    // Default: resolved against process.cwd(), which has no model.onnx.data.
    await expect(InferenceSession.create(patched)).rejects.toThrow(/external data/i);
    // In-memory external data (the same option onnxruntime-web takes); the whole data file is read into memory.
    const data = readFileSync(join(onnxDir, 'model.onnx.data'));
    const viaMemory = await InferenceSession.create(patched, { externalData: [{ path: 'model.onnx.data', data }] });
    expect((await prefill(viaMemory, [1, 2]))[viaMemory.outputNames.at(-1)!].dims).toEqual([1, 2, 16]);
    // ORT 1.30 resolves symlinks and refuses data outside the model's directory, so a patched copy next to a
    // symlink to the original data file does not load.
    const tmp = mkdtempSync(join(tmpdir(), 'edgellm-hidden-'));
    try {
      symlinkSync(join(onnxDir, 'model.onnx.data'), join(tmp, 'model.onnx.data'));
      writeFileSync(join(tmp, 'model.onnx'), patched);
      await expect(InferenceSession.create(join(tmp, 'model.onnx'))).rejects.toThrow(/escapes model directory/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

type NodeSpec = [op: string, inputs: string[], outputs: string[]];

/** A model with the given nodes, initializer names (no data) and float outputs, for pattern tests only. */
function graphModel(nodes: NodeSpec[], initializers: string[] = [], outputs = ['logits']): Uint8Array {
  const info = (name: string) => (v: ProtoWriter) =>
    v.string(1, name).message(2, (t) => t.message(1, (tt) => tt.varint(1, 1)));
  return new ProtoWriter()
    .varint(1, 8)
    .message(7, (g) => {
      for (const [op, inputs, outs] of nodes) {
        g.message(1, (n) => {
          for (const i of inputs) n.string(1, i);
          for (const o of outs) n.string(2, o);
          n.string(4, op);
        });
      }
      for (const name of initializers) g.message(5, (t) => t.string(8, name));
      g.message(11, info('x'));
      for (const o of outputs) g.message(12, info(o));
    })
    .message(8, (o) => o.string(1, '').varint(2, 17))
    .finish();
}

/** The element type declared by the appended output (0 when left for the runtime to infer). */
function appendedElemType(patched: Uint8Array, originalLength: number): number {
  const graph = new ProtoReader(patched, originalLength).next().bytes!;
  const output = new ProtoReader(graph).next().bytes!;
  const type = [...new ProtoReader(output).fields()].find((f) => f.field === 2);
  if (!type) return 0;
  const tensorType = new ProtoReader(type.bytes!).next().bytes!;
  return new ProtoReader(tensorType).next().value!;
}

describe('addHiddenStateOutput patterns', () => {
  it('returns null when the graph has no logits output, or logits do not come from a matmul', () => {
    expect(addHiddenStateOutput(graphModel([['Relu', ['x'], ['y']]], [], ['y']))).toBeNull();
    expect(addHiddenStateOutput(graphModel([['Relu', ['x'], ['logits']]]))).toBeNull();
    expect(addHiddenStateOutput(graphModel([['MatMul', ['x', 'w'], ['logits']]], ['w']), 'scores')).toBeNull();
  });

  it('handles Gemm + bias Add, and MatMulNBits + Identity, keeping the logits element type', () => {
    for (const nodes of [
      [['Gemm', ['h', 'w'], ['g']], ['Add', ['b', 'g'], ['logits']]],
      [['MatMulNBits', ['h', 'w', 's'], ['m']], ['Identity', ['m'], ['logits']]],
    ] as NodeSpec[][]) {
      const model = graphModel([['Relu', ['x'], ['h']], ...nodes], ['w', 's', 'b']);
      const patch = addHiddenStateOutput(model)!;
      expect(patch.outputName).toBe('h');
      expect(appendedElemType(patch.model, model.length)).toBe(1);
    }
  });

  it('walks back through a Cast wrapper and dynamic int8 quantisation, leaving the type to the runtime', () => {
    const model = graphModel(
      [
        ['Relu', ['x'], ['h']],
        ['DynamicQuantizeLinear', ['h'], ['hq', 'hs', 'hz']],
        ['Mul', ['hs', 'w_scale'], ['scale']],
        ['MatMulInteger', ['hq', 'w_q', 'hz', 'w_zp'], ['mi']],
        ['Cast', ['mi'], ['mf']],
        ['Mul', ['scale', 'mf'], ['logits']],
      ],
      ['w_scale', 'w_q', 'w_zp'],
    );
    const patch = addHiddenStateOutput(model)!;
    expect(patch.outputName).toBe('h');
    expect(appendedElemType(patch.model, model.length)).toBe(0);
  });
});

describe('protobuf reader/writer', () => {
  it('round-trips varints (including negative int64), strings and nested messages', () => {
    const bytes = new ProtoWriter()
      .varint(1, 300)
      .varint(2, -1)
      .varint(3, 2 ** 40)
      .string(4, 'héllo')
      .message(5, (w) => w.packedVarints(1, [0, 1, 127, 128]))
      .finish();
    const fields = [...new ProtoReader(bytes).fields()];
    expect(fields.map((f) => f.field)).toEqual([1, 2, 3, 4, 5]);
    expect(fields[0].value).toBe(300);
    expect(fields[1].value).toBe(2 ** 64); // 0xFFFF_FFFF_FFFF_FFFF as a (rounded) JS number
    expect(fields[2].value).toBe(2 ** 40);
    expect(decodeString(fields[3].bytes!)).toBe('héllo');
    const packed = new ProtoReader(fields[4].bytes!).next().bytes!;
    const r = new ProtoReader(packed);
    expect([r.varint(), r.varint(), r.varint(), r.varint()]).toEqual([0, 1, 127, 128]);
  });
  it('rejects truncated input', () => {
    expect(() => [...new ProtoReader(Uint8Array.from([0x0a, 0x05, 0x01])).fields()]).toThrow(/past the end/);
  });
});
