import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { onnxFileName, pickDtype, resolveModelDir, type ResolveOptions } from './model-files.js';
import { createProgress } from './progress.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const sharedModels = process.env.EDGELLM_SHARED_MODELS ?? resolve(repoRoot, '../shared/models');
const FIXTURE = join(sharedModels, 'karpathy__stories260K');
const hasFixture = existsSync(join(FIXTURE, 'config.json'));
if (!hasFixture) console.warn(`[model-files.test] skipping Hub tests: ${FIXTURE} not found (set EDGELLM_SHARED_MODELS)`);

const TEXT_FILES = ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'];
const noFetch = (() => Promise.reject(new Error('network used'))) as unknown as typeof fetch;
const temps: string[] = [];
const tmp = () => temps[temps.push(mkdtempSync(join(tmpdir(), 'edgellm-mf-'))) - 1];

/** All files under dir, relative, sorted. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort();
}

/** A Hub look-alike: /{owner}/{name}/resolve/{revision}/{file}, serving FIXTURE for repo "test/stories". */
interface FakeHub {
  requests: string[];
  auth: (string | undefined)[];
  hidden: Set<string>;
  needToken?: string;
  dropOnce: Set<string>;
}
const hub: FakeHub = { requests: [], auth: [], hidden: new Set(), dropOnce: new Set() };
let server: Server;
let endpoint = '';

beforeAll(async () => {
  vi.stubEnv('HF_TOKEN', '');
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hub.requests.push(path);
    hub.auth.push(req.headers.authorization);
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (hub.needToken && req.headers.authorization !== `Bearer ${hub.needToken}`) {
      res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('gated');
      return;
    }
    const file = m && `${m[1]}/${m[2]}` === 'test/stories' && m[3] === 'main' ? m[4] : undefined;
    const local = file && !file.includes('..') && !hub.hidden.has(file) ? join(FIXTURE, file) : undefined;
    if (!local || !existsSync(local)) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      return;
    }
    const body = readFileSync(local);
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    if (hub.dropOnce.delete(file!)) {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  vi.unstubAllEnvs();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
  await new Promise((ok) => server?.close(ok));
});
afterEach(() => {
  Object.assign(hub, { requests: [], auth: [], hidden: new Set(), dropOnce: new Set(), needToken: undefined });
});

const opts = (cacheDir: string, extra: ResolveOptions = {}): ResolveOptions => ({ cacheDir, endpoint, log: () => {}, progress: false, ...extra });

describe.skipIf(!hasFixture)('resolveModelDir from a Hub', () => {
  it('downloads every file once, byte-identical, then serves the cache with no request', async () => {
    const cache = tmp();
    const lines: string[] = [];
    const first = await resolveModelDir('test/stories', opts(cache, { log: (l) => lines.push(l) }));
    expect(first).toEqual({ dir: join(cache, 'test--stories', 'main'), downloaded: true, hubId: 'test/stories' });
    for (const f of [...TEXT_FILES, 'onnx/model.onnx']) {
      expect(readFileSync(join(first.dir, f)).equals(readFileSync(join(FIXTURE, f))), f).toBe(true);
    }
    expect(listFiles(first.dir)).toEqual(['.complete', ...TEXT_FILES, 'onnx/model.onnx'].sort());
    expect(hub.requests).not.toContain('/test/stories/resolve/main/onnx/model_quantized.onnx');
    expect(hub.requests).toContain('/test/stories/resolve/main/onnx/model.onnx_data'); // optional, 404 is fine
    expect(lines.some((l) => l.includes('Downloading test/stories'))).toBe(true);
    expect(lines.some((l) => l.startsWith('onnx/model.onnx: done'))).toBe(true);
    expect(pickDtype(first.dir)).toBe('fp32');

    hub.requests.length = 0;
    const second = await resolveModelDir('test/stories', opts(cache, { fetch: noFetch }));
    expect(second).toEqual({ dir: first.dir, downloaded: false, hubId: 'test/stories' });
    expect(hub.requests).toEqual([]);
    rmSync(cache, { recursive: true });
  });

  it('downloads model_q4.onnx for dtype q4, and falls back fp32 -> q8 when fp32 is missing', async () => {
    const cache = tmp();
    const q4 = await resolveModelDir('test/stories', opts(cache, { dtype: 'q4' }));
    expect(listFiles(join(q4.dir, 'onnx'))).toEqual(['model_q4.onnx']);
    expect(readFileSync(join(q4.dir, 'onnx/model_q4.onnx')).equals(readFileSync(join(FIXTURE, 'onnx/model_q4.onnx')))).toBe(true);
    expect(pickDtype(q4.dir)).toBe('q4');
    // Same cache, another dtype: only that file is fetched.
    hub.requests.length = 0;
    await resolveModelDir('test/stories', opts(cache, { dtype: 'q8' }));
    const base = '/test/stories/resolve/main/onnx/model_quantized.onnx';
    expect(hub.requests).toEqual([base, `${base}_data`, `${base}.data`]);

    const cache2 = tmp();
    hub.hidden.add('onnx/model.onnx');
    const q8 = await resolveModelDir('test/stories', opts(cache2));
    expect(listFiles(join(q8.dir, 'onnx'))).toEqual(['model_quantized.onnx']);
    rmSync(cache, { recursive: true });
    rmSync(cache2, { recursive: true });
  });

  it('says clearly when the model does not exist, needs a token, or the Hub is unreachable', async () => {
    const cache = tmp();
    await expect(resolveModelDir('nobody/nothing', opts(cache))).rejects.toThrow(/neither a local directory nor a model on the Hub/);
    await expect(resolveModelDir('test/stories', opts(cache, { dtype: 'fp16' }))).rejects.toThrow(/no onnx\/model_fp16\.onnx/);

    hub.needToken = 'secret';
    await expect(resolveModelDir('test/stories', opts(cache))).rejects.toThrow(/gated or private.*HF_TOKEN/);
    await expect(resolveModelDir('test/stories', opts(cache, { token: 'wrong' }))).rejects.toThrow(/token in use/);
    const ok = await resolveModelDir('test/stories', opts(cache, { token: 'secret' }));
    expect(ok.downloaded).toBe(true);
    expect(hub.auth.at(-1)).toBe('Bearer secret');

    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const dead = `http://127.0.0.1:${port}`;
    const err = await resolveModelDir('test/other', opts(cache, { endpoint: dead })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/unreachable at http:\/\/127\.0\.0\.1:\d+/);
    expect((err as Error).message).toMatch(/local model directory/);
    rmSync(cache, { recursive: true });
  });

  it('leaves no complete-looking file when the connection drops mid-file, and a retry resumes', async () => {
    const cache = tmp();
    hub.dropOnce.add('onnx/model.onnx');
    await expect(resolveModelDir('test/stories', opts(cache))).rejects.toThrow(/interrupted.*run again/);
    const dir = join(cache, 'test--stories', 'main');
    expect(existsSync(join(dir, 'onnx/model.onnx'))).toBe(false);
    expect(existsSync(join(dir, '.complete'))).toBe(false);
    expect(listFiles(dir).filter((f) => f.endsWith('.part'))).toEqual([]);

    hub.requests.length = 0;
    const again = await resolveModelDir('test/stories', opts(cache));
    expect(again.downloaded).toBe(true);
    expect(hub.requests).not.toContain('/test/stories/resolve/main/config.json'); // kept from the first run
    expect(readFileSync(join(dir, 'onnx/model.onnx')).equals(readFileSync(join(FIXTURE, 'onnx/model.onnx')))).toBe(true);
    rmSync(cache, { recursive: true });
  });

  it('returns a local directory as is, without the network', async () => {
    expect(await resolveModelDir(FIXTURE, { fetch: noFetch })).toEqual({ dir: resolve(FIXTURE), downloaded: false });
  });
});

describe('resolveModelDir argument checks', () => {
  it('rejects missing paths and non-Hub names without the network', async () => {
    const fetchSpy = vi.fn(noFetch);
    const o = { fetch: fetchSpy as unknown as typeof fetch, cacheDir: tmp() };
    await expect(resolveModelDir('./no/such/model', o)).rejects.toThrow(/no such directory/);
    await expect(resolveModelDir('../nope-model', o)).rejects.toThrow(/no such directory/);
    await expect(resolveModelDir('~/edgellm-nope-model', o)).rejects.toThrow(/no such directory/);
    await expect(resolveModelDir('/abs/nope-model', o)).rejects.toThrow(/no such directory/);
    await expect(resolveModelDir('just-a-name', o)).rejects.toThrow(/neither a local directory nor a Hugging Face Hub id/);
    const empty = tmp();
    await expect(resolveModelDir(empty, o)).rejects.toThrow(/has no config\.json/);
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});

describe('onnxFileName / pickDtype', () => {
  it('uses the transformers.js names', () => {
    expect(['fp32', 'fp16', 'q8', 'q4'].map((d) => onnxFileName(d as never))).toEqual(['model.onnx', 'model_fp16.onnx', 'model_quantized.onnx', 'model_q4.onnx']);
    expect(onnxFileName('q4', 'decoder_model_merged')).toBe('decoder_model_merged_q4.onnx');
  });

  it('picks the requested, the configured, or the first present dtype, and lists files when missing', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'onnx'));
    writeFileSync(join(dir, 'config.json'), '{}');
    for (const f of ['model_q4.onnx', 'model_quantized.onnx', 'model_fp16.onnx']) writeFileSync(join(dir, 'onnx', f), '');
    expect(pickDtype(dir)).toBe('q8');
    expect(pickDtype(dir, 'fp16')).toBe('fp16');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ 'transformers.js_config': { dtype: 'q4' } }));
    expect(pickDtype(dir)).toBe('q4');
    expect(() => pickDtype(dir, 'fp32')).toThrow(/model\.onnx.*onnx\/model_fp16\.onnx, onnx\/model_q4\.onnx, onnx\/model_quantized\.onnx/);
    expect(() => pickDtype(tmp())).toThrow(/No ONNX model.*present: none/);
    if (hasFixture) expect(pickDtype(FIXTURE)).toBe('fp32');
  });
});

describe('createProgress', () => {
  it('redraws one line on a TTY at most every 100 ms', () => {
    let t = 0;
    const out: string[] = [];
    const p = createProgress('onnx/model.onnx', 10_000_000, { tty: true, write: (s) => out.push(s), now: () => t });
    for (let i = 0; i < 100; i++) {
      t += 10;
      p.update(100_000);
    }
    p.done();
    p.done();
    expect(out.filter((s) => s.startsWith('\r')).length).toBeLessThanOrEqual(12);
    expect(out.at(-1)).toBe('\n');
    expect(out.at(-2)).toMatch(/^\ronnx\/model\.onnx \[#{20}\] 100% 10\.0 MB\/10\.0 MB 10\.0 MB\/s/);
    expect(out.join('')).not.toContain('\n\r');
    expect(out[1]).toMatch(/\[#*-+\]\s+\d+%/);
  });

  it('logs every 10% off a TTY, or every 5 s when the total is unknown, plus a final line', () => {
    let t = 0;
    const out: string[] = [];
    const p = createProgress('f', 1000, { tty: false, write: (s) => out.push(s), now: () => t });
    for (let i = 0; i < 40; i++) {
      t += 50;
      p.update(25);
    }
    p.done();
    expect(out).toHaveLength(10);
    expect(out[0]).toBe('f: 10% (100 B/1.0 KB, 500 B/s)\n');
    expect(out[8]).toMatch(/^f: 90% /);
    expect(out[9]).toBe('f: done, 1.0 KB in 2.0 s (500 B/s)\n');

    const u: string[] = [];
    t = 0;
    const q = createProgress('g', undefined, { tty: false, write: (s) => u.push(s), now: () => t });
    for (let i = 0; i < 12; i++) {
      t += 1000;
      q.update(2_000_000);
    }
    q.done();
    expect(u).toEqual(['g: 10.0 MB (2.0 MB/s)\n', 'g: 20.0 MB (2.0 MB/s)\n', 'g: done, 24.0 MB in 12.0 s (2.0 MB/s)\n']);
  });
});
