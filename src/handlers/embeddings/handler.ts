/**
 * POST /v1/embeddings: a sentence-embedding model when one is served, else the generation
 * model's final hidden state, mean-pooled (length = hidden size), as the Chinese-LLaMA-Alpaca
 * server did. Vectors are L2-normalised; `dimensions` keeps the first N and renormalises
 * (meaningful for Matryoshka-trained models).
 * @module
 */
import { invalidRequest } from '../../errors.js';
import { l2Normalize } from '../../internal/vector.js';
import type { Handler } from '../context.js';
import { readJson } from '../shared/read-json.js';
import { jsonResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { embeddingRequestSchema, toEmbedRequest } from './schema.js';
import { EMBEDDING_FIELDS, toWireError } from '../shared/wire-fields.js';

export const handleEmbeddings: Handler = async (request, ctx) => {
  const body = validate(embeddingRequestSchema, await readJson(request, ctx));
  const result = await ctx.runtime.embed(toEmbedRequest(body, request.signal)).catch((error) => Promise.reject(toWireError(error, EMBEDDING_FIELDS)));
  const size = result.embeddings[0]?.length ?? 0;
  if (body.dimensions && body.dimensions > size) {
    throw invalidRequest(`dimensions must be at most ${size} for ${result.model}.`, 'dimensions');
  }
  const data = result.embeddings.map((vector, index) => {
    const v = body.dimensions && body.dimensions < size ? l2Normalize(vector.subarray(0, body.dimensions)) : vector;
    return { object: 'embedding', index, embedding: body.encoding_format === 'base64' ? toBase64(v) : Array.from(v) };
  });
  return jsonResponse({
    object: 'list',
    data,
    model: result.model,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  });
};

/** OpenAI's base64 format: the little-endian float32 bytes. */
function toBase64(v: Float32Array): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
