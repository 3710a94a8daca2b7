import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assetsFolder, MAX_ASSET_BYTES, parseWranglerToml, workerMiniflareOptions } from './server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('parseWranglerToml', () => {
  it("reads the repository's wrangler.toml: main, compatibility, vars, assets, the Durable Object", () => {
    const config = parseWranglerToml(readFileSync(`${ROOT}wrangler.toml`, 'utf8'));
    expect(config).toEqual({
      main: 'dist/worker.js',
      compatibilityDate: expect.stringMatching(/^\d{4}-\d\d-\d\d$/),
      compatibilityFlags: ['enable_request_signal'],
      vars: { MODEL: 'karpathy__stories260K', EMBEDDING_MODEL: 'MinishLab__model2vec-test-model-vocab-quantized', SHARDS: '1', MAX_MODEL_BYTES: String(128 * 1024 * 1024) },
      assets: { directory: '../shared/models', binding: 'ASSETS', runWorkerFirst: true },
      durableObjects: { EDGELLM: 'EdgellmModel' },
    });
  });

  it('takes strings, literals, numbers, booleans, string arrays and comments; refuses the rest with the line', () => {
    const config = parseWranglerToml(
      ['# top', 'main = "w.js" # trailing', 'compatibility_flags = ["a", "b"]', '[vars]', 'N = 3', "S = 'lit'", 'B = false'].join('\n'),
    );
    expect(config).toMatchObject({ main: 'w.js', compatibilityFlags: ['a', 'b'], vars: { N: '3', S: 'lit', B: 'false' } });
    expect(() => parseWranglerToml('[vars]\nX = { a = 1 }')).toThrow(/line 2: unsupported value/);
    expect(() => parseWranglerToml('what is this')).toThrow(/line 1: cannot read/);
  });
});

describe('workerMiniflareOptions', () => {
  it('lists the worker and its wasm as modules, the vars as bindings, the models as assets', () => {
    const config = { main: 'dist/worker.js', compatibilityDate: '2025-09-01', compatibilityFlags: [], vars: { MODEL: 'a' }, durableObjects: { EDGELLM: 'EdgellmModel' } };
    let options;
    try {
      options = workerMiniflareOptions({ root: ROOT, config, modelsDir: '/models', vars: { MODEL: 'b', X: '1' }, port: 0 });
    } catch (error) {
      expect((error as Error).message).toMatch(/run `npm run build` first/);
      return;
    }
    expect((options.modules as Array<{ type: string; path: string }>).map((m) => [m.type, m.path.slice(ROOT.length)])).toEqual([
      ['ESModule', 'dist/worker.js'],
      ['CompiledWasm', 'dist/ort-wasm-simd-threaded.wasm'],
    ]);
    expect(options.bindings).toEqual({ MODEL: 'b', X: '1' });
    expect(options.durableObjects).toEqual({ EDGELLM: 'EdgellmModel' });
    expect(options.assets).toMatchObject({ directory: '/models', binding: 'ASSETS', routerConfig: { invoke_user_worker_ahead_of_assets: true } });
  });
});

describe('R2 buckets', () => {
  it('reads [[r2_buckets]] and binds them with S3 credentials and a persistence folder when asked', () => {
    const config = parseWranglerToml(['main = "dist/worker.js"', '[[r2_buckets]]', 'binding = "MODELS"', 'bucket_name = "edgellm-models"'].join('\n'));
    expect(config.r2Buckets).toEqual({ MODELS: 'edgellm-models' });
    let options;
    try {
      options = workerMiniflareOptions({ root: ROOT, config, r2: { s3Credentials: { accessKeyId: 'k', secretAccessKey: 's' }, persist: '/tmp/r2' } });
    } catch (error) {
      expect((error as Error).message).toMatch(/run `npm run build` first/);
      return;
    }
    expect(options.r2Buckets).toEqual({ MODELS: { id: 'edgellm-models', s3Credentials: { accessKeyId: 'k', secretAccessKey: 's' } } });
    expect(options.r2Persist).toBe('/tmp/r2');
    expect(workerMiniflareOptions({ root: ROOT, config: { ...config, r2Buckets: undefined } }).r2Buckets).toBeUndefined();
  });
});

describe('assetsFolder', () => {
  it('is the folder itself when every file fits the 25 MiB asset limit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-assets-test-'));
    writeFileSync(join(dir, 'a.json'), '{}');
    expect(assetsFolder(dir)).toBe(dir);
    rmSync(dir, { recursive: true });
  });

  it('mirrors the others as links when a file is larger, and says which it left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-assets-test-'));
    mkdirSync(join(dir, 'm/onnx'), { recursive: true });
    writeFileSync(join(dir, 'm/config.json'), '{}');
    writeFileSync(join(dir, 'm/onnx/model.onnx'), 'x');
    writeFileSync(join(dir, 'm/big.gguf'), '');
    truncateSync(join(dir, 'm/big.gguf'), MAX_ASSET_BYTES + 1); // sparse: no disk used
    const skipped: string[][] = [];
    const mirror = assetsFolder(dir, (files) => skipped.push(files));
    expect(mirror).not.toBe(dir);
    expect(skipped).toEqual([[join(dir, 'm/big.gguf')]]);
    expect(readlinkSync(join(mirror, 'm/onnx/model.onnx'))).toBe(join(dir, 'm/onnx/model.onnx'));
    expect(readFileSync(join(mirror, 'm/config.json'), 'utf8')).toBe('{}');
    expect(() => readlinkSync(join(mirror, 'm/big.gguf'))).toThrow();
    expect(assetsFolder(dir, () => {})).toBe(mirror); // reused
    rmSync(dir, { recursive: true });
    rmSync(mirror, { recursive: true });
  });
});
