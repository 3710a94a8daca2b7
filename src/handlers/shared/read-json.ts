/**
 * Reads a JSON request body with a byte limit (413 beyond it) and a clear 400 for bad JSON.
 * @module
 */
import { InferenceError, invalidRequest } from '../../errors.js';
import { concatBytes } from '../../internal/bytes.js';

export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) throw invalidRequest('The request body is empty; send a JSON object.');

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
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
