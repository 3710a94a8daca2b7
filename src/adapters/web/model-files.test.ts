import { describe, expect, it } from 'vitest';
import { memoryCost } from './memory-estimate.js';
import { formatBytes, MemoryBudget, modelDirUrl, ModelFiles } from './model-files.js';

/** A body of `size` bytes in 1 KB chunks that counts how many chunks were pulled. */
function counted(size: number, withLength: boolean) {
  let pulled = 0;
  const chunk = 1024;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const left = size - pulled * chunk;
      if (left <= 0) return controller.close();
      pulled++;
      controller.enqueue(new Uint8Array(Math.min(chunk, left)).fill(pulled));
    },
  });
  const response = new Response(body, { headers: withLength ? { 'content-length': String(size) } : {} });
  return { response, pulled: () => pulled };
}

describe('modelDirUrl', () => {
  it('resolves names against the base, keeps full URLs, and needs a base for names', () => {
    expect(modelDirUrl('stories', 'https://cdn.example/models/')).toBe('https://cdn.example/models/stories/');
    expect(modelDirUrl('https://hf.example/m/', 'https://other/')).toBe('https://hf.example/m/');
    expect(modelDirUrl('https://hf.example/m')).toBe('https://hf.example/m/');
    expect(() => modelDirUrl('stories')).toThrow(/no base URL/);
  });
});

describe('MemoryBudget', () => {
  it('reads whole bodies within the budget and counts them', async () => {
    const budget = new MemoryBudget(5000);
    const bytes = await budget.read(counted(3000, true).response, 'a');
    expect(bytes.length).toBe(3000);
    expect(bytes[0]).toBe(1);
    expect(bytes[2999]).toBe(3);
    expect(budget.used).toBe(3000);
    await expect(budget.read(counted(3000, false).response, 'm/onnx/b.onnx')).rejects.toThrow(
      /m\/onnx\/b\.onnx is 2\.9 KB, after 2\.9 KB of other model files: loading it needs about 5\.9 KB of memory \(its size\), more than the memory budget of 4\.9 KB/,
    );
  });

  it('refuses a body with a declared length before reading it', async () => {
    const body = counted(10_000, true);
    const error = await new MemoryBudget(4096).read(body.response, 'big.onnx').catch((e) => e);
    expect(error).toMatchObject({ status: 503, code: 'model_too_large' });
    expect(error.message).toMatch(/big\.onnx is 9\.8 KB: loading it needs about 9\.8 KB of memory \(its size\), more than the memory budget of 4\.0 KB\. .*128 MB/);
    expect(body.pulled()).toBeLessThanOrEqual(1);
  });

  it("counts a file at its cost on wasm: the start-up memory once, then the measured growth per byte plus the JS copy", async () => {
    const cost = memoryCost('q8', true); // 2.8 x growth + 1 copy, 16 MiB base
    expect(cost).toEqual({ perFileByte: 3.8, baseBytes: 16 * 1024 * 1024 });
    const budget = new MemoryBudget(20 * 1024 * 1024);
    await budget.read(counted(1000 * 1024, true).response, 'small.onnx', cost);
    expect(budget.estimated).toBe(16 * 1024 * 1024 + 3.8 * 1000 * 1024);
    // 1 MiB more file is 3.8 MiB more memory: over 20 MiB, though the files are only 2 MiB.
    const error = await budget.read(counted(1024 * 1024, true).response, 'm/onnx/model_quantized.onnx', cost).catch((e) => e);
    expect(error).toMatchObject({ status: 503, code: 'model_too_large' });
    expect(error.message).toMatch(
      /model_quantized\.onnx is 1\.0 MB, after 1000\.0 KB of other model files: loading it needs about 23\.5 MB of memory \(3\.8 x its size: onnxruntime-web's wasm memory grows 2\.8 x an ONNX file of this dtype, plus the file's copy in JS, plus 16\.0 MB the wasm memory starts with\), more than the memory budget of 20\.0 MB/,
    );
    // On WebGPU the weights leave for the GPU: only the JS copy counts.
    expect(memoryCost('fp32', false)).toEqual({ perFileByte: 1, baseBytes: 0 });
    expect(memoryCost('fp32', true).perFileByte).toBeGreaterThan(memoryCost('q4', true).perFileByte);
  });

  it('without a length, counts the whole body to report its real size', async () => {
    const error = await new MemoryBudget(4096).read(counted(10_000, false).response, 'big.onnx').catch((e) => e);
    expect(error.message).toMatch(/big\.onnx is 9\.8 KB/);
  });
});

describe('ModelFiles', () => {
  const files = new ModelFiles('m', 'https://x/', async (input) => {
    const path = new URL(String(input)).pathname;
    if (path === '/m/config.json') return Response.json({ hidden_size: 8 });
    if (path === '/m/broken.json') return new Response('{');
    if (path === '/m/down.json') throw new TypeError('connection refused');
    return new Response('', { status: path.includes('secret') ? 403 : 404 });
  });

  it('reads JSON, treats a missing optional file as empty, and names the file and URL in errors', async () => {
    expect(await files.json('config.json')).toEqual({ hidden_size: 8 });
    expect(await files.json('generation_config.json', true)).toEqual({});
    await expect(files.json('tokenizer.json')).rejects.toThrow('Could not fetch tokenizer.json of model m from https://x/m/tokenizer.json: HTTP 404 (not found).');
    await expect(files.json('secret.json', true)).rejects.toThrow(/HTTP 403/);
    await expect(files.json('broken.json')).rejects.toThrow(/broken\.json of model m is not valid JSON/);
    await expect(files.json('down.json')).rejects.toThrow(/down\.json of model m .*connection refused/);
  });
});

it('formats sizes', () => {
  expect([formatBytes(12), formatBytes(2048), formatBytes(1_202_884)]).toEqual(['12 B', '2.0 KB', '1.1 MB']);
});
