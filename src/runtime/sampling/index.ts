/**
 * Token selection for the engine: seeded randomness, logit processors, sampling, logprobs and
 * beam search.
 * @module
 */

export { createRng, type Rng } from './rng.js';
export { applyLogitBias, applyPresenceFrequencyPenalty, applyRepetitionPenalty, suppressTokens } from './processors.js';
export { argmax, argmaxAmong, sampleToken, type SampleParams } from './sample.js';
export { logSumExp, tokenLogprobs, topIndices, type TokenLogprobs } from './logprobs.js';
export { BeamSearch, type BeamChoice, type BeamSearchOptions } from './beam-search.js';
