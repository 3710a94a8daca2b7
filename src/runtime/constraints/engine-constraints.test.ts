import { describe, expect, it } from 'vitest';
import { attempt, collect, finishOf, makeEngine, request, textOf, VOCAB } from '../../../test/fixtures/fake-backend.js';
import type { Tokenizer } from '../tokenizer.js';
import { maskHas } from './token-index.js';

/** The fake engine with token bytes (word tokens with their leading space; specials null). */
function engineWithBytes() {
  const made = makeEngine();
  const bytes = VOCAB.map((piece, id) => (id < 3 ? null : new TextEncoder().encode(piece.replaceAll('▁', ' '))));
  (made.tokenizer as Tokenizer).tokenBytes = () => bytes;
  return made;
}

describe('constraints in the engine (fake model counting one, two, three...)', () => {
  it('greedy takes the best token the constraint allows, ends when nothing can follow, and promises the argmax among the allowed tokens', async () => {
    const { engine, backend } = engineWithBytes();
    // The model wants " two three four"; the regex allows " two" then " five" or " six", then nothing.
    const events = await collect(() =>
      engine.generate(request({ prompt: 'one', maxTokens: 10, constraint: { spec: { kind: 'regex', pattern: ' two (five|six)' } } })),
    );
    expect(textOf(events)).toBe(' two five');
    expect(finishOf(events)).toBe('stop');
    // prefill, then the step after " two": the model wants " three", the regex " five" or " six"
    expect(backend.hints).toEqual([[false], [true]]);
    const among = backend.among[1][0]!;
    const has = (word: string) => maskHas(among, VOCAB.indexOf(word));
    expect([has('▁five'), has('▁six'), has('▁three'), has('▁two')]).toEqual([true, true, false, false]);
  });

  it('gives each of n choices its own state, and beams their own masks', async () => {
    const { engine } = engineWithBytes();
    const spec = { kind: 'choice' as const, options: [{ kind: 'literal' as const, text: ' two three' }, { kind: 'literal' as const, text: ' seven' }] };
    const events = await collect(() => engine.generate(request({ prompt: 'one', n: 3, sampling: { temperature: 1, seed: 4 }, constraint: { spec } })));
    for (let i = 0; i < 3; i++) {
      const text = events.filter((e) => e.type === 'delta' && e.index === i).map((e) => (e as { text: string }).text).join('');
      expect([' two three', ' seven']).toContain(text);
    }
    const beams = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 5, sampling: { numBeams: 2 }, constraint: { spec } })));
    expect([' two three', ' seven']).toContain(textOf(beams));
  });

  it('an output complete at max_tokens stops; one the limit cuts short says length (sampling and beams)', async () => {
    const { engine } = engineWithBytes();
    // The model wants " two three four"; the regex would take more words, but " two three" is already complete.
    const open = { spec: { kind: 'regex' as const, pattern: '( two| three| four)+' } };
    for (const sampling of [{}, { numBeams: 2 }]) {
      const events = await collect(() => engine.generate(request({ prompt: 'one', maxTokens: 2, sampling, constraint: open })));
      expect(textOf(events)).toBe(' two three');
      expect(finishOf(events)).toBe('stop');
      // Below the shortest valid output: cut, incomplete, length.
      const cut = await collect(() =>
        engine.generate(request({ prompt: 'one', maxTokens: 2, sampling, constraint: { spec: { kind: 'regex', pattern: ' two three four' } } })),
      );
      expect(textOf(cut)).toBe(' two three');
      expect(finishOf(cut)).toBe('length');
    }
  });

  it('a spec it cannot compile is a 400 naming the request field', async () => {
    const { engine } = engineWithBytes();
    const { error } = await attempt(() =>
      engine.generate(request({ constraint: { spec: { kind: 'jsonSchema', schema: { type: 'string', format: 'hostname' } }, param: 'guided_json' } })),
    );
    expect(error).toMatchObject({ status: 400, param: 'guided_json', code: 'invalid_constraint', message: expect.stringContaining('hostname') });
  });

  it('a tokenizer without token bytes cannot constrain: 400', async () => {
    const { engine } = makeEngine();
    const { error } = await attempt(() => engine.generate(request({ constraint: { spec: { kind: 'json' }, param: 'response_format' } })));
    expect(error).toMatchObject({ status: 400, param: 'response_format' });
  });
});
