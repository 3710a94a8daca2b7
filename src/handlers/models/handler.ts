/**
 * GET /v1/models and GET /v1/models/{id}: the served models in OpenAI's list format.
 * @module
 */
import { notFound } from '../../errors.js';
import type { ModelInfo } from '../../runtime/types.js';
import type { HandlerContext } from '../context.js';
import { jsonResponse } from '../shared/stream-response.js';

const toModel = (m: ModelInfo) => ({
  id: m.id,
  object: 'model',
  created: m.created,
  owned_by: m.ownedBy,
  max_model_len: m.contextLength,
  parent: m.parent ?? null,
});

export async function handleListModels(_request: Request, ctx: HandlerContext): Promise<Response> {
  return jsonResponse({ object: 'list', data: ctx.runtime.models().map(toModel) });
}

export async function handleRetrieveModel(id: string, ctx: HandlerContext): Promise<Response> {
  const model = ctx.runtime.models().find((m) => m.id === id);
  if (!model) throw notFound(`The model \`${id}\` does not exist.`, 'model', 'model_not_found');
  return jsonResponse(toModel(model));
}
