import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sharedModel } from '../../test/helpers/shared-models.js';
import { randomFloats, typed, writeGguf, quantTensor } from '../../test/helpers/gguf-writer.js';
import { GgufError, GgufTruncatedError, readGguf, readGgufHeader, readGgufStream, tensorByteSize } from './reader.js';

const SMOL = 'SmolLM2-135M-Instruct';

function sample(version: 2 | 3 = 3, alignment?: number) {
  return writeGguf(
    {
      'general.architecture': 'llama',
      'general.name': 'tiny ünïcode 模型',
      'test.u8': typed('UINT8', 255),
      'test.i8': typed('INT8', -128),
      'test.u16': typed('UINT16', 65535),
      'test.i16': typed('INT16', -32768),
      'test.u32': typed('UINT32', 4294967295),
      'test.i32': typed('INT32', -2147483648),
      'test.f32': typed('FLOAT32', 0.1),
      'test.f64': typed('FLOAT64', 0.1),
      'test.bool': true,
      'test.false': false,
      'test.u64': typed('UINT64', 2n ** 63n + 5n),
      'test.u64small': typed('UINT64', 12345),
      'test.i64': typed('INT64', -(2n ** 62n)),
      'test.strings': ['a', '', 'ü', '\uFEFF#'],
      'test.nested': typed('ARRAY', [[1, 2], [], [3]], 'ARRAY'),
      'test.deeper': typed('ARRAY', [[['x']], [['y', 'z']]], 'ARRAY'),
      'test.floats': typed('ARRAY', [1, 0.5, -2], 'FLOAT32'),
      'test.i16s': typed('ARRAY', [-1, 2], 'INT16'),
    },
    [
      quantTensor('a.weight', 'F32', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
      quantTensor('b.weight', 'Q8_0', [32, 3], randomFloats(96, 3)),
      quantTensor('c.weight', 'F16', [5], [1, 2, 3, 4, 5]),
    ],
    { version, alignment },
  );
}

describe('readGguf', () => {
  it('reads every metadata value type, nested arrays and tensor infos (v3)', () => {
    const file = readGguf(sample());
    expect(file.version).toBe(3);
    const m = file.metadata;
    expect(m['general.architecture']).toBe('llama');
    expect(m['general.name']).toBe('tiny ünïcode 模型');
    expect([m['test.u8'], m['test.i8'], m['test.u16'], m['test.i16'], m['test.u32'], m['test.i32']]).toEqual([
      255, -128, 65535, -32768, 4294967295, -2147483648,
    ]);
    expect(m['test.f32']).toBe(Math.fround(0.1));
    expect(m['test.f64']).toBe(0.1);
    expect([m['test.bool'], m['test.false']]).toEqual([true, false]);
    expect(m['test.u64']).toBe(2n ** 63n + 5n);
    expect(m['test.u64small']).toBe(12345);
    expect(m['test.i64']).toBe(-(2n ** 62n));
    expect(m['test.strings']).toEqual(['a', '', 'ü', '\uFEFF#']); // a leading byte-order mark is kept (Gemma 3 has such a token)
    expect(m['test.nested']).toEqual([[1, 2], [], [3]]);
    expect(m['test.deeper']).toEqual([[['x']], [['y', 'z']]]);
    expect(m['test.floats']).toEqual([1, 0.5, -2]);
    expect(m['test.i16s']).toEqual([-1, 2]);
    expect(file.tensors.map((t) => [t.name, t.type, t.dims, t.data.byteLength, t.supported])).toEqual([
      ['a.weight', 'F32', [4, 2], 32, true],
      ['b.weight', 'Q8_0', [32, 3], 3 * 34, true],
      ['c.weight', 'F16', [5], 10, true],
    ]);
    expect(file.alignment).toBe(32);
    expect(file.dataOffset % 32).toBe(0);
    expect([...new Float32Array(file.tensors[0].data.slice().buffer)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('reads version 2 and honours general.alignment; tensor data are views, not copies', () => {
    const bytes = sample(2, 64);
    const file = readGguf(bytes);
    expect(file.version).toBe(2);
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    for (const t of file.tensors) {
      expect(t.data.buffer).toBe(bytes.buffer);
      expect((t.data.byteOffset - file.dataOffset) % 64).toBe(0);
    }
    expect([...new Float32Array(file.tensors[0].data.slice().buffer)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses bad magic, other versions and big-endian files clearly', () => {
    const bytes = sample();
    const bad = bytes.slice();
    bad.set([0x47, 0x47, 0x4d, 0x4c]);
    expect(() => readGguf(bad)).toThrow(/not a GGUF file: the first bytes are 47 47 4d 4c/);
    const v1 = bytes.slice();
    new DataView(v1.buffer).setUint32(4, 1, true);
    expect(() => readGguf(v1)).toThrow(/GGUF version 1 is not supported/);
    const be = bytes.slice();
    new DataView(be.buffer).setUint32(4, 3, false);
    expect(() => readGguf(be)).toThrow(/big-endian/);
  });

  it('reports truncation anywhere: in the header and in the tensor data', () => {
    const bytes = sample();
    const header = readGgufHeader(bytes);
    for (const cut of [0, 3, 10, 30, 200, header.dataOffset - 1, header.dataOffset + 40, bytes.byteLength - 1]) {
      const err = (() => {
        try {
          readGguf(bytes.subarray(0, cut));
        } catch (e) {
          return e;
        }
      })();
      expect(err, `cut at ${cut}`).toBeInstanceOf(GgufTruncatedError);
      expect((err as Error).message).toMatch(/truncated/);
    }
    expect(() => readGguf(bytes.subarray(0, header.dataOffset + 40))).toThrow(/tensor b\.weight needs bytes/);
  });

  it('names the tensor with an unknown ggml type; parses but flags supported: false for unsupported known types', () => {
    const bytes = writeGguf({}, [{ name: 'blk.0.ffn_up.weight', type: 'Q2_K', dims: [256, 1], data: new Uint8Array(84) }]);
    const file = readGguf(bytes);
    expect(file.tensors[0]).toMatchObject({ name: 'blk.0.ffn_up.weight', type: 'Q2_K', supported: false });
    expect(file.tensors[0].data.byteLength).toBe(84);
    // Patch the type number (10 = Q2_K, after the u64 dim 1, before the u64 offset 0) to 99.
    const patched = bytes.slice();
    const view = new DataView(patched.buffer);
    let found = -1;
    for (let i = 0; i + 12 <= patched.byteLength; i++) {
      if (view.getUint32(i, true) === 10 && view.getBigUint64(i + 4, true) === 0n && view.getBigUint64(i - 8, true) === 1n) found = i;
    }
    expect(found).toBeGreaterThan(0);
    view.setUint32(found, 99, true);
    expect(() => readGguf(patched)).toThrow(/tensor blk\.0\.ffn_up\.weight has unknown ggml type 99/);
  });

  it('refuses an unknown metadata value type naming the key, and rows that are not whole blocks', () => {
    const bytes = writeGguf({ 'odd.key': 7 }, []);
    const patched = bytes.slice();
    const view = new DataView(patched.buffer);
    // key "odd.key": u64 length 7, bytes, then u32 type (4 = UINT32)
    const at = 24 + 8 + 7;
    expect(view.getUint32(at, true)).toBe(4);
    view.setUint32(at, 42, true);
    expect(() => readGguf(patched)).toThrow(/metadata odd\.key: unknown metadata value type 42/);
    expect(() => tensorByteSize('x', 'Q4_0', [48, 2])).toThrow(/x: row length 48 is not a multiple of Q4_0's block of 32/);
    expect(() => readGguf(writeGguf({}, [{ name: 'y', type: 'Q8_0', dims: [40], data: new Uint8Array(34) }]))).toThrow(GgufError);
  });

  it('reads a stream in one buffer of the file size, in any chunking, and refuses a short stream', async () => {
    const bytes = sample();
    for (const chunk of [1, 7, 1000, bytes.byteLength]) {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.byteLength; i += chunk) controller.enqueue(bytes.slice(i, i + chunk));
          controller.close();
        },
      });
      const file = await readGgufStream(stream);
      expect(file.metadata['general.name']).toBe('tiny ünïcode 模型');
      expect(file.tensors[1].data).toEqual(readGguf(bytes).tensors[1].data);
      expect(file.tensors[0].data.buffer.byteLength).toBe(bytes.byteLength);
    }
    const file = await readGgufStream(new Response(bytes));
    expect(file.tensors.length).toBe(3);
    await expect(readGgufStream(new Response(bytes.slice(0, bytes.byteLength - 5)))).rejects.toThrow(/stream ended/);
    await expect(readGgufStream(new Response(bytes.slice(0, 50)))).rejects.toThrow(/truncated/);
  });

  const dir = sharedModel(SMOL);
  it.skipIf(!dir)('reads the real SmolLM2 Q4_1 file', () => {
    const path = `${dir}/SmolLM2-135M-Instruct.Q4_1.gguf`;
    if (!existsSync(path)) return;
    const file = readGguf(new Uint8Array(readFileSync(path)));
    expect(file.metadata['general.architecture']).toBe('llama');
    expect(file.metadata['llama.block_count']).toBe(30);
    const counts: Record<string, number> = {};
    for (const t of file.tensors) counts[t.type] = (counts[t.type] ?? 0) + 1;
    expect(counts).toEqual({ Q4_1: 210, Q8_0: 1, F32: 61 });
    expect(file.tensors.find((t) => t.name === 'token_embd.weight')?.dims).toEqual([576, 49152]);
    expect((file.metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(49152);
  });

  it.skipIf(!dir)('reads the real file from a stream into one buffer of its size', async () => {
    const path = `${dir}/SmolLM2-135M-Instruct.Q4_1.gguf`;
    const stream = Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
    const file = await readGgufStream(new Response(stream));
    const direct = readGguf(new Uint8Array(readFileSync(path)));
    expect(file.tensors[0].data.buffer.byteLength).toBe(98362432);
    expect(file.tensors.length).toBe(direct.tensors.length);
    for (const i of [0, file.tensors.length - 1]) {
      expect(Buffer.compare(file.tensors[i].data, direct.tensors[i].data), file.tensors[i].name).toBe(0);
    }
  });
});
