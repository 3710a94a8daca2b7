/**
 * scripts/r2-upload.mjs: AWS Signature Version 4 against AWS's documented example, R2's part limits,
 * and real uploads through Miniflare's local R2 S3 API (which checks every signature and payload
 * hash and enforces R2's multipart rules: 5 MiB parts of one size), after which the Worker serves
 * the uploaded model from its R2 binding: a model folder (stories260K), and a tiny GGUF padded to
 * 20 MiB that goes up in 5 MiB parts, converted in the isolate and answering a chat with the tokens
 * a TypeScript reference forward pass predicts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { afterAll, describe, expect, it } from 'vitest';
import { main, objectUrl, partSizeFor, signV4, uploadModel } from '../../scripts/r2-upload.mjs';
import { workerMiniflareOptions } from '../../tools/workerd-dev/server.js';
import { requireBuild } from '../helpers/cli-server.js';
import { referenceLogits, tinyGguf } from '../helpers/gguf-reference.js';
import { SHARED_MODELS, sharedModel, STORIES } from '../helpers/shared-models.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;
const CREDENTIALS = { accessKeyId: 'edgellm-test-key-id', secretAccessKey: 'edgellm-test-secret-access-key' };
const BUCKET = 'edgellm-models';

const dirs: string[] = [];
const disposers: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(disposers.map((d) => d()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('signV4', () => {
  it("gives the signature of AWS's S3 documentation example (GET with a Range header)", () => {
    const headers = signV4({
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { range: 'bytes=0-9' },
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      region: 'us-east-1',
      date: new Date('2013-05-24T00:00:00Z'),
    });
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
  });

  it('encodes keys per path segment as S3 wants (RFC 3986)', () => {
    expect(objectUrl('https://acc.r2.cloudflarestorage.com/', 'b', "m (1)/onnx/model's.onnx").pathname).toBe('/b/m%20%281%29/onnx/model%27s.onnx');
  });
});

describe('partSizeFor', () => {
  it("keeps R2's limits: 5 MiB to 5 GiB, at most 10,000 parts (growing the part when a file needs more)", () => {
    expect(partSizeFor(100 * MiB, 5 * MiB)).toBe(5 * MiB);
    expect(() => partSizeFor(100 * MiB, 4 * MiB)).toThrow(/5 MiB to 5 GiB/);
    expect(partSizeFor(100_000 * MiB, 5 * MiB)).toBe(10 * MiB);
  });

  it('refuses bad options and missing credentials before any request', async () => {
    await expect(main(['model.gguf'], {})).rejects.toThrow(/usage: node scripts\/r2-upload\.mjs/);
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-r2-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'm.gguf'), 'x');
    await expect(main([join(dir, 'm.gguf'), '--bucket', 'b'], {})).rejects.toThrow(/Set R2_ACCOUNT_ID/);
    await expect(main([join(dir, 'm.gguf'), '--bucket', 'b'], { R2_ACCOUNT_ID: 'a' })).rejects.toThrow(
      /Set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY/,
    );
    await expect(
      main([join(dir, 'm.gguf'), '--bucket', 'b', '--part-size', '1'], { R2_ACCOUNT_ID: 'a', R2_ACCESS_KEY_ID: 'k', R2_SECRET_ACCESS_KEY: 's' }),
    ).rejects.toThrow(/5 MiB to 5 GiB/);
  });
});

/** The part of Miniflare's R2 binding the tests use (its own types are the workers-types ones, wrapped). */
interface Bucket {
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
  head(key: string): Promise<unknown>;
}

/** The built Worker with its MODELS binding an R2 bucket that Miniflare also serves over its S3 API. */
async function workerWithR2(vars: Record<string, string>) {
  requireBuild();
  const { assets: _assets, ...options } = workerMiniflareOptions({ root: ROOT, vars: { EMBEDDING_MODEL: '', ...vars }, onSkippedAssets: () => {} });
  const mf = new Miniflare({ ...options, r2Buckets: { MODELS: { id: BUCKET, s3Credentials: CREDENTIALS } } });
  disposers.push(() => mf.dispose());
  const url = (await mf.ready).href.replace(/\/$/, '');
  return { url, bucket: (await mf.getR2Bucket('MODELS')) as unknown as Bucket, endpoint: `${url}/cdn-cgi/local/r2/s3` };
}

const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('r2-upload into R2 (Miniflare), then the Worker serves the model from its binding', () => {
  it('uploads a GGUF in 5 MiB parts, and the Worker converts it and answers a chat with the reference tokens', async () => {
    // 21 tensors aligned to 1 MiB: a valid 21 MiB file of a tiny model, so it needs several parts.
    // Untied: with the tied embedding a random model repeats the last token, a weak check.
    const model = tinyGguf(
      'llama',
      { weights: 'Q4_K', embedding: 'Q8_0' },
      {
        metadata: true,
        tied: false,
        alignment: MiB,
        extraMetadata: { 'tokenizer.chat_template': "{% for m in messages %}{{ m['content'] }}{% endfor %}" },
      },
    );
    expect(model.bytes.length).toBeGreaterThan(15 * MiB);
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-r2-'));
    dirs.push(dir);
    const path = join(dir, 'tiny-chat.Q4_K.gguf');
    writeFileSync(path, model.bytes);

    const { url, bucket, endpoint } = await workerWithR2({ MODEL: 'tiny-chat.Q4_K.gguf' });
    const logs: string[] = [];
    const result = await uploadModel(path, {
      endpoint,
      bucket: BUCKET,
      ...CREDENTIALS,
      partBytes: 5 * MiB,
      multipartThreshold: 5 * MiB,
      concurrency: 2,
      log: (l) => logs.push(l),
    });
    const parts = Math.ceil(model.bytes.length / (5 * MiB));
    expect(parts).toBe(5);
    expect(result).toEqual({ model: 'tiny-chat.Q4_K.gguf', files: [{ key: 'tiny-chat.Q4_K.gguf', size: model.bytes.length, parts }] });
    expect(logs.at(-1)).toBe(`tiny-chat.Q4_K.gguf: ${(model.bytes.length / MiB).toFixed(1)} MiB in ${parts} parts`);
    const stored = await bucket.get('tiny-chat.Q4_K.gguf');
    expect(Buffer.from(await stored!.arrayBuffer()).equals(Buffer.from(model.bytes))).toBe(true);

    const response = await post(url, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'Hi' }],
      temperature: 0,
      max_tokens: 12,
      logprobs: true,
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.model).toBe('tiny-chat.Q4_K');
    // Byte-level vocabulary: token id = byte + 1 (0 is <|end|>); the template adds nothing to "Hi".
    expect(body.usage.prompt_tokens).toBe(2);
    const content: Array<{ bytes: number[] }> = body.choices[0].logprobs.content;
    expect(content.every((t) => t.bytes.length === 1)).toBe(true);
    const tokens = content.map((t) => t.bytes[0] + 1);
    // The reference forward pass's greedy tokens (its best logit leads by 0.79 or more on this model and prompt).
    const ids = [...Buffer.from('Hi')].map((b) => b + 1);
    let compared = 0;
    for (let i = 0; i < tokens.length; i++) {
      const logits = referenceLogits(model.spec, model.tensors, model.codec, ids).at(-1)!;
      const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a]);
      if (logits[order[0]] - logits[order[1]] < 1e-3) break;
      expect(tokens[i], `token ${i}`).toBe(order[0]);
      ids.push(order[0]);
      compared++;
    }
    expect(compared).toBe(12);
  }, 180_000); // 21 MiB through the S3 API's checks, a conversion and a chat: about 35 s on a busy 2-core machine

  it('says what R2 answered when the keys are wrong, and leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-r2-'));
    dirs.push(dir);
    const path = join(dir, 'big.gguf');
    writeFileSync(path, new Uint8Array(6 * MiB));
    const { endpoint, bucket } = await workerWithR2({ MODEL: 'big.gguf' });
    await expect(
      uploadModel(path, {
        endpoint,
        bucket: BUCKET,
        accessKeyId: CREDENTIALS.accessKeyId,
        secretAccessKey: 'wrong',
        partBytes: 5 * MiB,
        multipartThreshold: 5 * MiB,
      }),
    ).rejects.toThrow(/CreateMultipartUpload big\.gguf: HTTP 403 SignatureDoesNotMatch/);
    expect(await bucket.head('big.gguf')).toBeNull();
  });
});

describe('r2-upload when a part fails', () => {
  it('retries a part that failed once, and aborts the upload when a part keeps failing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgellm-r2-'));
    dirs.push(dir);
    const path = join(dir, 'm.gguf');
    writeFileSync(
      path,
      Uint8Array.from({ length: 11 * MiB }, (_, i) => (i * 7) & 255),
    );
    const { endpoint, bucket } = await workerWithR2({ MODEL: 'm.gguf' });
    /** A fetch whose part-2 requests fail (a network error) the first `failures` times. */
    const flaky = (failures: number) => {
      const seen: string[] = [];
      let failed = 0;
      const f = (async (input: URL, init?: RequestInit) => {
        const url = new URL(input);
        seen.push(
          `${init?.method} ${url.searchParams.has('partNumber') ? `part ${url.searchParams.get('partNumber')}` : [...url.searchParams.keys()].join(',')}`,
        );
        if (url.searchParams.get('partNumber') === '2' && failed < failures) {
          failed++;
          throw new TypeError('fetch failed');
        }
        return fetch(input, init);
      }) as typeof fetch;
      return { f, seen };
    };
    const options = { endpoint, bucket: BUCKET, ...CREDENTIALS, partBytes: 5 * MiB, multipartThreshold: 5 * MiB, concurrency: 1 };
    const once = flaky(1);
    await expect(uploadModel(path, { ...options, fetch: once.f })).resolves.toMatchObject({ files: [{ key: 'm.gguf', parts: 3 }] });
    expect(once.seen).toEqual(['POST uploads', 'PUT part 1', 'PUT part 2', 'PUT part 2', 'PUT part 3', 'POST uploadId', 'HEAD ']);
    expect(await bucket.head('m.gguf')).not.toBeNull();

    const always = flaky(Infinity);
    await expect(uploadModel(path, { ...options, prefix: 'n.gguf', fetch: always.f })).rejects.toThrow(
      /UploadPart n\.gguf #2: fetch failed \(4 tries\)/,
    );
    expect(always.seen.at(-1)).toBe('DELETE uploadId');
    expect(await bucket.head('n.gguf')).toBeNull();
  }, 60_000);
});

const stories = sharedModel(STORIES);
describe.skipIf(!stories)('r2-upload of a model folder', () => {
  it('puts every file under <folder name>/ and the Worker serves stories260K from R2', async () => {
    const { url, bucket, endpoint } = await workerWithR2({ MODEL: STORIES });
    const result = await uploadModel(join(SHARED_MODELS, STORIES), { endpoint, bucket: BUCKET, ...CREDENTIALS });
    expect(result.model).toBe(STORIES);
    expect(result.files.map((f) => f.key)).toContain(`${STORIES}/onnx/model.onnx`);
    expect(result.files.map((f) => f.key)).toContain(`${STORIES}/config.json`);
    const onnx = await bucket.get(`${STORIES}/onnx/model.onnx`);
    expect(Buffer.from(await onnx!.arrayBuffer()).equals(readFileSync(join(SHARED_MODELS, STORIES, 'onnx/model.onnx')))).toBe(true);
    const body = await (await post(url, '/v1/completions', { prompt: 'Once upon a time', temperature: 0, max_tokens: 20 })).json();
    // karpathy's temperature-0 sample (llama2.c doc/stories260K.md).
    expect(', there was a little girl named Lily. She loved to play outside in the park.'.startsWith(body.choices[0].text)).toBe(true);
    expect(body.choices[0].text.length).toBeGreaterThan(20);
  });
});
