import { describe, expect, it } from 'vitest';
import { finishNote } from './client.js';

const turn = (over: Partial<Parameters<typeof finishNote>[0]>) => ({ text: 'some reply', finishReason: 'stop', interrupted: false, ...over });

describe('finishNote', () => {
  it('says nothing after a reply that ended by itself', () => {
    expect(finishNote(turn({}), {}, 'generate')).toBeUndefined();
  });

  it('marks an interrupted reply', () => {
    expect(finishNote(turn({ finishReason: null, interrupted: true }), {}, 'chat')).toBe('interrupted');
  });

  it('names the token limit that cut a reply', () => {
    expect(finishNote(turn({ finishReason: 'length', tokens: 8 }), { max_tokens: 8 }, 'generate')).toBe('stopped at max_tokens=8');
    expect(finishNote(turn({ finishReason: 'length' }), {}, 'chat')).toMatch(/^stopped at the server's token limit; \/params max_tokens=N/);
  });

  it('tells a full /generate session apart, as lmdeploy answers it: length and nothing', () => {
    expect(finishNote(turn({ text: '', finishReason: 'length', tokens: 0 }), {}, 'generate')).toMatch(/fills the model context.*\/reset/);
  });
});
