import { describe, it, expect } from 'vitest';
import * as sampling from './index.js';

describe('sampling barrel', () => {
  it('re-exports the public API', () => {
    expect(Object.keys(sampling).sort()).toEqual([
      'BeamSearch', 'applyLogitBias', 'applyPresenceFrequencyPenalty', 'applyRepetitionPenalty', 'argmax', 'argmaxAmong',
      'createRng', 'logSumExp', 'sampleToken', 'suppressTokens', 'tokenLogprobs', 'topIndices',
    ]);
  });
});
