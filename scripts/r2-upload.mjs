#!/usr/bin/env node
// Puts a model into a Cloudflare R2 bucket for the Worker (README "Deploy to Cloudflare"): a model
// folder (transformers.js layout) as <name>/<file>..., or a .gguf file as <name>.gguf. It speaks R2's
// S3-compatible API (AWS Signature Version 4) with an R2 API token's access keys; files over the
// multipart threshold go up in parts (R2: every part but the last of one size, 5 MiB to 5 GiB,
// at most 10,000 parts), several at a time, each retried, and the upload is aborted on failure.
//
//   R2_ACCOUNT_ID=... R2_ACCESS_KEY_ID=... R2_SECRET_ACCESS_KEY=... \
//     node scripts/r2-upload.mjs ../shared/models/karpathy__stories260K --bucket edgellm-models
//
// Options: --bucket NAME (required), --prefix KEY (default: the folder's or file's name),
// --part-size MiB (default 32), --multipart-threshold MiB (default 25), --concurrency N (default 4),
// --endpoint URL (default https://<R2_ACCOUNT_ID>.r2.cloudflarestorage.com; any S3 endpoint that
// takes path-style requests, e.g. Miniflare's local R2 at http://127.0.0.1:8787/cdn-cgi/local/r2/s3),
// --dry-run (list what would go where). No dependencies: Node's fetch and crypto.
import { createHash, createHmac } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MiB = 1024 * 1024;
/** R2's limits on multipart uploads (and S3's): part sizes, part count, one PUT's size. */
export const R2_LIMITS = { minPartBytes: 5 * MiB, maxPartBytes: 5 * 1024 * MiB, maxParts: 10_000, maxPutBytes: 5 * 1024 * MiB };
export const DEFAULTS = { partBytes: 32 * MiB, multipartThreshold: 25 * MiB, concurrency: 4, region: 'auto' };

const size = (/** @type {number} */ n) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const sha256Hex = (/** @type {string | Uint8Array} */ data) => createHash('sha256').update(data).digest('hex');
const hmac = (/** @type {string | Buffer} */ key, /** @type {string} */ data) => createHmac('sha256', key).update(data).digest();
/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const uriEncode = (/** @type {string} */ s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * AWS Signature Version 4 for one request: the headers to send (x-amz-date, x-amz-content-sha256,
 * authorization, plus the given ones). `url`'s path must already be URI-encoded (see objectUrl); S3
 * does not encode it again.
 * @param {{ method: string, url: URL, headers?: Record<string, string>, payloadHash: string, accessKeyId: string,
 *   secretAccessKey: string, region?: string, service?: string, date?: Date }} r
 * @returns {Record<string, string>}
 */
export function signV4(r) {
  const amzDate = (r.date ?? new Date())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const region = r.region ?? DEFAULTS.region;
  const service = r.service ?? 's3';
  /** @type {Record<string, string>} */
  const headers = { ...r.headers, 'x-amz-content-sha256': r.payloadHash, 'x-amz-date': amzDate };
  /** @type {Array<[string, string]>} */
  const signed = [
    ['host', r.url.host],
    ...Object.entries(headers).map(([k, v]) => /** @type {[string, string]} */ ([k.toLowerCase(), String(v).trim().replace(/ +/g, ' ')])),
  ];
  signed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const query = [...r.url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  query.sort(([a, x], [b, y]) => (a !== b ? (a < b ? -1 : 1) : x < y ? -1 : x > y ? 1 : 0));
  const signedHeaders = signed.map(([k]) => k).join(';');
  const canonical = [
    r.method,
    r.url.pathname,
    query.map(([k, v]) => `${k}=${v}`).join('&'),
    signed.map(([k, v]) => `${k}:${v}\n`).join(''),
    signedHeaders,
    r.payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${r.secretAccessKey}`, day);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${r.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

/**
 * The part size for a file: the requested one, grown (in whole MiB) when the file would need more than
 * 10,000 parts. Refuses sizes R2 refuses.
 * @param {number} fileBytes @param {number} partBytes
 */
export function partSizeFor(fileBytes, partBytes) {
  if (!Number.isInteger(partBytes) || partBytes < R2_LIMITS.minPartBytes || partBytes > R2_LIMITS.maxPartBytes) {
    throw new Error(`The part size must be 5 MiB to 5 GiB (R2 refuses smaller parts except the last): ${(partBytes / MiB).toFixed(1)} MiB given.`);
  }
  if (fileBytes <= partBytes * R2_LIMITS.maxParts) return partBytes;
  const grown = Math.ceil(fileBytes / R2_LIMITS.maxParts / MiB) * MiB;
  if (grown > R2_LIMITS.maxPartBytes) throw new Error(`${fileBytes} bytes do not fit in 10,000 parts of at most 5 GiB.`);
  return grown;
}

/** @param {string} endpoint @param {string} bucket @param {string} key */
export function objectUrl(endpoint, bucket, key) {
  return new URL(`${endpoint.replace(/\/+$/, '')}/${uriEncode(bucket)}/${key.split('/').map(uriEncode).join('/')}`);
}

/**
 * The files of a model folder (or one .gguf) and the keys they go to: `<prefix>/<path in the folder>`
 * (hidden files and folders left out), or `<prefix>` for a file (default: its name).
 * @param {string} source @param {string} [prefix]
 * @returns {Promise<Array<{ path: string, key: string, size: number }>>}
 */
export async function listUploads(source, prefix) {
  const info = await stat(source);
  if (info.isFile()) return [{ path: source, key: prefix ?? basename(source), size: info.size }];
  const base = (prefix ?? basename(source.replace(/[/\\]+$/, ''))).replace(/\/+$/, '');
  /** @type {Array<{ path: string, key: string, size: number }>} */
  const files = [];
  /** @param {string} dir */
  const walk = async (dir) => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files.push({ path, key: `${base}/${relative(source, path).split(sep).join('/')}`, size: (await stat(path)).size });
    }
  };
  await walk(source);
  if (files.length === 0) throw new Error(`${source} holds no files.`);
  return files;
}

/** An S3 error answer (`<Error><Code>...</Code><Message>...</Message>`) as an Error. */
class S3Error extends Error {
  /** @param {string} what @param {number} status @param {string} body */
  constructor(what, status, body) {
    const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
    const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
    super(`${what}: HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : body && !code ? `: ${body.slice(0, 200)}` : ''}`);
    this.status = status;
    this.code = code;
  }
}

/**
 * A signed-request client for one bucket.
 * @param {{ endpoint: string, bucket: string, accessKeyId: string, secretAccessKey: string, region?: string,
 *   retries?: number, fetch?: typeof fetch }} o
 */
export function s3Client(o) {
  const doFetch = o.fetch ?? fetch;
  const retries = o.retries ?? 3;
  /**
   * @param {string} method @param {string} key @param {Record<string, string>} query @param {string} what
   * @param {Uint8Array | string} [body] @returns {Promise<Response>}
   */
  async function request(method, key, query, what, body) {
    const url = objectUrl(o.endpoint, o.bucket, key);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    const payloadHash = sha256Hex(bytes ?? '');
    for (let attempt = 1; ; attempt++) {
      // Signed per attempt: the date is part of the signature.
      const headers = signV4({ method, url, payloadHash, accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey, region: o.region });
      let response;
      try {
        response = await doFetch(url, { method, headers, body: /** @type {BodyInit | undefined} */ (/** @type {unknown} */ (bytes)) });
      } catch (error) {
        if (attempt > retries) throw new Error(`${what}: ${/** @type {Error} */ (error).message} (${attempt} tries)`, { cause: error });
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        continue;
      }
      if (response.ok) return response;
      const text = await response.text();
      if (response.status < 500 || attempt > retries) throw new S3Error(what, response.status, text);
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  return {
    /** @param {string} key @param {Uint8Array} body */
    put: (key, body) => request('PUT', key, {}, `PUT ${key}`, body),
    /** @param {string} key */
    head: (key) => request('HEAD', key, {}, `HEAD ${key}`),
    /** @param {string} key @returns {Promise<string>} the upload id */
    async createMultipart(key) {
      const text = await (await request('POST', key, { uploads: '' }, `CreateMultipartUpload ${key}`)).text();
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(text)?.[1];
      if (!id) throw new Error(`CreateMultipartUpload ${key}: no UploadId in ${text.slice(0, 200)}`);
      return id;
    },
    /** @param {string} key @param {string} uploadId @param {number} partNumber @param {Uint8Array} body @returns {Promise<string>} the ETag */
    async uploadPart(key, uploadId, partNumber, body) {
      const response = await request('PUT', key, { partNumber: String(partNumber), uploadId }, `UploadPart ${key} #${partNumber}`, body);
      await response.arrayBuffer();
      const etag = response.headers.get('etag');
      if (!etag) throw new Error(`UploadPart ${key} #${partNumber}: no ETag in the answer`);
      return etag;
    },
    /** @param {string} key @param {string} uploadId @param {string[]} etags */
    async completeMultipart(key, uploadId, etags) {
      const xml = `<CompleteMultipartUpload>${etags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
      const text = await (await request('POST', key, { uploadId }, `CompleteMultipartUpload ${key}`, xml)).text();
      // S3 may answer 200 with an <Error> body when completing fails late.
      if (/<Error>/.test(text)) throw new S3Error(`CompleteMultipartUpload ${key}`, 200, text);
    },
    /** @param {string} key @param {string} uploadId */
    abortMultipart: (key, uploadId) => request('DELETE', key, { uploadId }, `AbortMultipartUpload ${key}`),
  };
}

/**
 * Uploads one file: one PUT up to the threshold, else a multipart upload, `concurrency` parts at a
 * time (each read from the file when its turn comes, so memory is concurrency x part size), aborted
 * if a part fails after its retries. Checks the stored size with a HEAD at the end.
 * @param {ReturnType<typeof s3Client>} client
 * @param {{ path: string, key: string, size: number }} file
 * @param {{ partBytes?: number, multipartThreshold?: number, concurrency?: number, log?: (line: string) => void }} [o]
 * @returns {Promise<{ key: string, size: number, parts: number }>}
 */
export async function uploadFile(client, file, o = {}) {
  const log = o.log ?? (() => {});
  const threshold = o.multipartThreshold ?? DEFAULTS.multipartThreshold;
  const handle = await open(file.path, 'r');
  /** @param {number} offset @param {number} length */
  const read = async (offset, length) => {
    const buffer = new Uint8Array(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    if (bytesRead !== length) throw new Error(`${file.path}: read ${bytesRead} bytes at ${offset}, expected ${length} (did the file change?)`);
    return buffer;
  };
  try {
    let parts = 1;
    if (file.size <= threshold) {
      if (file.size > R2_LIMITS.maxPutBytes) throw new Error(`${file.path}: one PUT takes at most 5 GiB; lower --multipart-threshold.`);
      await client.put(file.key, await read(0, file.size));
    } else {
      const partBytes = partSizeFor(file.size, o.partBytes ?? DEFAULTS.partBytes);
      parts = Math.ceil(file.size / partBytes);
      const uploadId = await client.createMultipart(file.key);
      /** @type {string[]} */
      const etags = new Array(parts);
      let next = 0;
      let done = 0;
      const worker = async () => {
        while (next < parts) {
          const i = next++;
          const offset = i * partBytes;
          etags[i] = await client.uploadPart(file.key, uploadId, i + 1, await read(offset, Math.min(partBytes, file.size - offset)));
          log(`  ${file.key}: part ${++done}/${parts}`);
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(o.concurrency ?? DEFAULTS.concurrency, parts) }, worker));
        await client.completeMultipart(file.key, uploadId, etags);
      } catch (error) {
        await client.abortMultipart(file.key, uploadId).catch(() => {});
        throw error;
      }
    }
    const stored = Number((await client.head(file.key)).headers.get('content-length'));
    if (stored !== file.size) throw new Error(`${file.key}: R2 holds ${stored} bytes after the upload, the file has ${file.size}.`);
    return { key: file.key, size: file.size, parts };
  } finally {
    await handle.close();
  }
}

/**
 * Uploads a model folder or a .gguf file; returns the MODEL value for wrangler.toml.
 * @param {string} source
 * @param {{ endpoint: string, bucket: string, accessKeyId: string, secretAccessKey: string, prefix?: string, partBytes?: number,
 *   multipartThreshold?: number, concurrency?: number, region?: string, fetch?: typeof fetch, log?: (line: string) => void }} o
 */
export async function uploadModel(source, o) {
  const log = o.log ?? (() => {});
  const files = await listUploads(source, o.prefix);
  if (o.partBytes !== undefined) partSizeFor(0, o.partBytes); // refuse a bad size before any request
  const client = s3Client(o);
  const uploaded = [];
  for (const file of files) {
    const result = await uploadFile(client, file, o);
    log(`${file.key}: ${size(file.size)}${result.parts > 1 ? ` in ${result.parts} parts` : ''}`);
    uploaded.push(result);
  }
  const single = files.length === 1 && (await stat(source)).isFile();
  return { model: single ? files[0].key : files[0].key.slice(0, files[0].key.indexOf('/')), files: uploaded };
}

/** @param {string[]} argv @param {Record<string, string | undefined>} env */
export async function main(argv, env) {
  /** @type {Record<string, string>} */
  const opts = {};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--dry-run') opts['dry-run'] = 'true';
    else if (arg === '--help' || arg === '-h') opts.help = 'true';
    else if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split('=', 2);
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      opts[name] = value;
    } else positional.push(arg);
  }
  const usage =
    'usage: node scripts/r2-upload.mjs <model folder | file.gguf> --bucket NAME [--prefix KEY] [--part-size MiB] [--multipart-threshold MiB] [--concurrency N] [--endpoint URL] [--dry-run]\n' +
    'credentials: R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY (an R2 API token), R2_ACCOUNT_ID (or --endpoint)';
  if (opts.help) return console.log(usage);
  const known = new Set(['bucket', 'prefix', 'part-size', 'multipart-threshold', 'concurrency', 'endpoint', 'dry-run', 'account-id']);
  const unknown = Object.keys(opts).filter((k) => !known.has(k));
  if (unknown.length || positional.length !== 1 || !opts.bucket)
    throw new Error(`${unknown.length ? `unknown option --${unknown[0]}\n` : ''}${usage}`);
  /** @param {string} name */
  const mib = (name) => {
    if (opts[name] === undefined) return undefined;
    const n = Number(opts[name]);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number of MiB`);
    return Math.round(n * MiB);
  };
  const concurrency = opts.concurrency === undefined ? undefined : Number(opts.concurrency);
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error('--concurrency must be an integer >= 1');
  const source = positional[0];
  const settings = { prefix: opts.prefix, partBytes: mib('part-size'), multipartThreshold: mib('multipart-threshold'), concurrency };
  if (opts['dry-run']) {
    for (const f of await listUploads(source, opts.prefix)) console.log(`${f.path} -> r2://${opts.bucket}/${f.key} (${size(f.size)})`);
    return;
  }
  const account = opts['account-id'] ?? env.R2_ACCOUNT_ID;
  const endpoint = opts.endpoint ?? (account && `https://${account}.r2.cloudflarestorage.com`);
  const accessKeyId = env.R2_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.R2_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
  if (!endpoint) throw new Error('Set R2_ACCOUNT_ID (or pass --account-id or --endpoint).');
  if (!accessKeyId || !secretAccessKey)
    throw new Error(
      'Set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY: an R2 API token with Object Read & Write on the bucket (dashboard: R2 > Manage API tokens).',
    );
  const { model, files } = await uploadModel(source, {
    ...settings,
    endpoint,
    bucket: opts.bucket,
    accessKeyId,
    secretAccessKey,
    log: (l) => console.log(l),
  });
  const total = files.reduce((n, f) => n + f.size, 0);
  console.log(`\n${files.length} file(s), ${size(total)} in r2://${opts.bucket}/. In wrangler.toml:\n`);
  console.log(`[[r2_buckets]]\nbinding = "MODELS"\nbucket_name = "${opts.bucket}"\n\n[vars]\nMODEL = "${model}"`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2), process.env).catch((error) => {
    console.error(`r2-upload: ${error.message}`);
    process.exit(1);
  });
}
