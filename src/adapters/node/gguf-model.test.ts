import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GGUF_IMPORTER_VERSION } from '../../onnx/gguf-import.js';
import type { GenerateRequest } from '../../runtime/types.js';
import { requireBuild } from '../../../test/helpers/cli-server.js';
import { tinyGguf } from '../../../test/helpers/gguf-reference.js';
import { isGgufModel, locateGguf, resolveGgufModel } from './gguf-model.js';
import { createNodeRuntime } from './runtime.js';

const temps: string[] = [];
const tmp = () => temps[temps.push(mkdtempSync(join(tmpdir(), 'edgellm-gguf-'))) - 1];
const noFetch = (() => Promise.reject(new Error('network used'))) as unknown as typeof fetch;

/** A Hub look-alike: the file listing API and /resolve/ downloads of repo "test/gguf". */
const FILES: Record<string, string> = {
  'model-Q4_K_M.gguf': 'q4km bytes',
  'model-Q8_0.gguf': 'q8 bytes',
  'big-Q6_K-00001-of-00002.gguf': 'a',
  'big-Q6_K-00002-of-00002.gguf': 'b',
  'README.md': 'readme',
};
const requests: string[] = [];
let server: Server;
let endpoint = '';

beforeAll(async () => {
  vi.stubEnv('HF_TOKEN', '');
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    requests.push(path);
    if (path === '/api/models/test/gguf/tree/main') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.keys(FILES).map((p) => ({ type: 'file', path: p, size: FILES[p].length }))));
      return;
    }
    const m = /^\/test\/gguf\/resolve\/main\/(.+)$/.exec(path);
    if (m && FILES[m[1]] !== undefined) {
      res.writeHead(200, { 'content-length': FILES[m[1]].length }).end(FILES[m[1]]);
      return;
    }
    res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  vi.unstubAllEnvs();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  await new Promise((ok) => server?.close(ok));
});

describe('isGgufModel', () => {
  it('recognises .gguf paths, folders holding one without config.json, and owner/name:QUANT', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'a.gguf'), 'x');
    const onnxDir = tmp();
    writeFileSync(join(onnxDir, 'config.json'), '{}');
    writeFileSync(join(onnxDir, 'extra.gguf'), 'x');
    expect(isGgufModel(join(dir, 'a.gguf'))).toBe(true);
    expect(isGgufModel('/no/such/file.GGUF')).toBe(true);
    expect(isGgufModel(dir)).toBe(true);
    expect(isGgufModel(onnxDir)).toBe(false);
    expect(isGgufModel('bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M')).toBe(true);
    expect(isGgufModel('HuggingFaceTB/SmolLM2-135M-Instruct')).toBe(false);
    expect(isGgufModel(tmp())).toBe(false);
  });
});

describe('locateGguf', () => {
  it('takes a file, or the one .gguf of a folder; refuses a folder with several', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'm.gguf'), 'x');
    expect(await locateGguf(join(dir, 'm.gguf'), {})).toBe(join(dir, 'm.gguf'));
    expect(await locateGguf(dir, {})).toBe(join(dir, 'm.gguf'));
    writeFileSync(join(dir, 'n.gguf'), 'y');
    await expect(locateGguf(dir, {})).rejects.toThrow(/2 GGUF files \(m\.gguf, n\.gguf\); give one of them/);
  });

  it('downloads owner/name:QUANT by the quant name in the repo listing, once', async () => {
    const cacheDir = tmp();
    const opts = { cacheDir, endpoint, log: () => {}, progress: false };
    requests.length = 0;
    const file = await locateGguf('test/gguf:q4_k_m', opts);
    expect(file).toBe(join(cacheDir, 'test--gguf', 'main', 'gguf', 'model-Q4_K_M.gguf'));
    expect(readFileSync(file, 'utf8')).toBe('q4km bytes');
    expect(requests).toEqual(['/api/models/test/gguf/tree/main', '/test/gguf/resolve/main/model-Q4_K_M.gguf']);
    // Second time: from the cache, no request.
    expect(await locateGguf('test/gguf:Q4_K_M', { ...opts, fetch: noFetch })).toBe(file);
    expect(await locateGguf('test/gguf:Q8_0', opts)).toMatch(/model-Q8_0\.gguf$/);
  });

  it('names the files there are when the quant is missing, and refuses split files', async () => {
    const opts = { cacheDir: tmp(), endpoint, log: () => {}, progress: false };
    await expect(locateGguf('test/gguf:Q5_K_M', opts)).rejects.toThrow(/test\/gguf has no GGUF file for Q5_K_M \(its GGUF files: model-Q4_K_M\.gguf, model-Q8_0\.gguf, big-Q6_K-00001/);
    await expect(locateGguf('test/gguf:Q6_K', opts)).rejects.toThrow(/2 GGUF files for Q6_K .*split files are not supported/);
    await expect(locateGguf('test/missing:Q4_0', opts)).rejects.toThrow(/Could not list the files of test\/missing .*HTTP 404/);
  });
});

describe('resolveGgufModel and createNodeRuntime on a tiny GGUF', () => {
  it('converts once into the cache (both dtypes), then serves it', async () => {
    requireBuild();
    const dir = tmp();
    const cacheDir = tmp();
    const file = join(dir, 'tiny-Q4_K.gguf');
    writeFileSync(file, tinyGguf('llama', { weights: 'Q4_K', embedding: 'Q8_0' }, { metadata: true }).bytes);
    const logs: string[] = [];
    const opts = { cacheDir, log: (l: string) => logs.push(l), progress: false };
    const first = await resolveGgufModel(file, 'q4', opts);
    expect(first).toMatchObject({ converted: true, dtype: 'q4', file, name: 'tiny-Q4_K' });
    expect(first.dir).toMatch(new RegExp(`^${cacheDir}/gguf/[0-9a-f]{32}-v${GGUF_IMPORTER_VERSION}$`));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'onnx/model_q4.onnx', 'onnx/model_q4.onnx.data']) {
      expect(existsSync(join(first.dir, f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(first.dir, 'config.json'), 'utf8'))).toMatchObject({ model_type: 'llama', hidden_size: 256, 'transformers.js_config': { dtype: 'q4' } });
    expect(logs.join('\n')).toMatch(/14 x Q4_K -> 4-bit MatMulNBits, block 32 \+ block offsets \(exact\)/);
    expect(readdirSync(join(first.dir, 'onnx')).filter((f) => f.endsWith('.part'))).toEqual([]);

    logs.length = 0;
    const again = await resolveGgufModel(file, 'q4', opts);
    expect(again).toMatchObject({ converted: false, dir: first.dir });
    expect(logs.join('\n')).toMatch(/14 x Q4_K -> 4-bit MatMulNBits/); // the mapping is logged on every start

    const fp32 = await resolveGgufModel(file, 'fp32', opts);
    expect(fp32).toMatchObject({ converted: true, dir: first.dir });
    expect(readFileSync(join(first.dir, 'onnx', 'model.onnx.mapping.txt'), 'utf8')).toMatch(/Q4_K -> float32 \(dequantized\)/);

    const runtime = await createNodeRuntime({ model: file, device: 'cpu', cacheDir, log: () => {} });
    try {
      expect(runtime.loadInfo).toMatchObject({ dir: first.dir, dtype: 'q4', modelNames: ['tiny-Q4_K'], gguf: { converted: false } });
      expect(runtime.loadInfo.attention).toMatch(/^GroupQueryAttention \(2 layers/);
      const request = { input: { kind: 'text', text: 'hi' }, sampling: { temperature: 0 }, stop: [], ignoreEos: true, n: 1, maxTokens: 3 } as unknown as GenerateRequest;
      const tokens: number[] = [];
      for await (const event of runtime.generate(request)) if (event.type === 'delta') tokens.push(...event.tokens);
      expect(tokens).toHaveLength(3);
    } finally {
      await runtime.close();
    }
  }, 120_000);
});
