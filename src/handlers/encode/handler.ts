/**
 * POST /v1/encode: lmdeploy's tokenize endpoint. A string answers `{input_ids: number[], length}`,
 * a list of strings `{input_ids: number[][], length: number[]}`, as lmdeploy's `APIClient.encode`
 * reads them.
 * @module
 */
import type { Handler } from '../context.js';
import { readJson } from '../shared/read-json.js';
import { jsonResponse } from '../shared/stream-response.js';
import { validate } from '../shared/validate.js';
import { encodeRequestSchema, toPromptInput } from './schema.js';

export const handleEncode: Handler = async (request, ctx) => {
  const body = validate(encodeRequestSchema, await readJson(request, ctx));
  const model = body.model ?? undefined;
  const encode = (prompt: string) => ctx.runtime.tokenize(model, toPromptInput(prompt, body));
  if (typeof body.input === 'string') {
    const ids = await encode(body.input);
    return jsonResponse({ input_ids: ids, length: ids.length });
  }
  const all = await Promise.all(body.input.map(encode));
  return jsonResponse({ input_ids: all, length: all.map((ids) => ids.length) });
};
