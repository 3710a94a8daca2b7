/**
 * Logit processors: in-place edits of one step's logits (a Float32Array of vocabulary size),
 * applied by the engine before sampling. Token ids outside the vocabulary are ignored, so a
 * request cannot write past the array or grow it.
 * @module
 */

function inVocab(logits: Float32Array, id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id < logits.length;
}

/** Adds `bias[id]` to each listed logit (OpenAI `logit_bias`; keys arrive as strings from JSON). */
export function applyLogitBias(logits: Float32Array, bias: Record<number, number>): void {
  for (const key of Object.keys(bias)) {
    const id = Number(key);
    const b = bias[id];
    if (inVocab(logits, id) && typeof b === 'number' && !Number.isNaN(b)) logits[id] += b;
  }
}

/**
 * CTRL / Hugging Face repetition penalty over the distinct ids seen (prompt and output):
 * positive logits are divided by `penalty`, negative ones multiplied, so a penalty > 1 always
 * makes the token less likely whatever the sign. Each id is penalised once however often it
 * occurred.
 */
export function applyRepetitionPenalty(logits: Float32Array, tokenIds: Iterable<number>, penalty: number): void {
  if (penalty === 1 || !(penalty > 0)) return;
  const seen = new Set<number>();
  for (const id of tokenIds) {
    if (seen.has(id) || !inVocab(logits, id)) continue;
    seen.add(id);
    const x = logits[id];
    logits[id] = x < 0 ? x * penalty : x / penalty;
  }
}

/**
 * OpenAI presence / frequency penalties: `logit -= count * frequency + (count > 0 ? presence : 0)`,
 * where `counts` holds how often each id occurs in the generated text.
 */
export function applyPresenceFrequencyPenalty(
  logits: Float32Array,
  counts: Map<number, number>,
  presence: number,
  frequency: number,
): void {
  if (presence === 0 && frequency === 0) return;
  for (const [id, count] of counts) {
    if (count > 0 && inVocab(logits, id)) logits[id] -= count * frequency + presence;
  }
}

/** Makes the given ids impossible (EOS before `min_tokens`, stop ids under `ignore_eos`). */
export function suppressTokens(logits: Float32Array, ids: Iterable<number>): void {
  for (const id of ids) if (inVocab(logits, id)) logits[id] = -Infinity;
}
