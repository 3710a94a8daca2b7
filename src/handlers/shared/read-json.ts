/**
 * Reads a JSON request body with a byte limit (413 beyond it), a time limit (408 when the body
 * has not arrived in time) and a clear 400 for bad JSON. A body the client stops sending is a
 * client error, not an internal one.
 * @module
 */
import { InferenceError, invalidRequest, isInferenceError } from '../../errors.js';
import { concatBytes } from '../../internal/bytes.js';

export interface BodyLimits {
  maxBodyBytes: number;
  /** 0 or undefined: no time limit. */
  requestTimeoutMs?: number;
}

export async function readJson(request: Request, limits: BodyLimits): Promise<unknown> {
  const maxBytes = limits.maxBodyBytes;
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) throw invalidRequest('The request body is empty; send a JSON object.');

  const reader = request.body.getReader();
  const timeoutMs = limits.requestTimeoutMs ?? 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline =
    timeoutMs > 0
      ? new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timedOut(timeoutMs)), timeoutMs);
        })
      : undefined;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await (deadline ? Promise.race([reader.read(), deadline]) : reader.read());
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    if (isInferenceError(error)) throw error;
    // The connection closed mid-body (the client went away or the host dropped it).
    throw new InferenceError(400, 'The request body was not received completely (the connection closed).', { code: 'body_incomplete' });
  } finally {
    clearTimeout(timer);
  }
  const text = new TextDecoder().decode(concatBytes(chunks, size));
  if (text.trim() === '') throw invalidRequest('The request body is empty; send a JSON object.');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidRequest(`The request body is not valid JSON: ${(error as Error).message}`);
  }
}

function tooLarge(maxBytes: number) {
  return new InferenceError(413, `The request body is larger than ${maxBytes} bytes.`, { code: 'request_too_large' });
}

function timedOut(ms: number) {
  return new InferenceError(408, `The request body did not arrive within ${ms / 1000} s.`, {
    code: 'request_timeout',
    headers: { connection: 'close' },
  });
}
