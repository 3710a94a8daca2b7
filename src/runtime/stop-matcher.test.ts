import { describe, expect, it } from 'vitest';
import { StopMatcher } from './stop-matcher.js';

/** Feeds parts; returns everything emitted (including flush when not stopped) and the stop. */
function run(stops: string[], parts: string[]): { text: string; stop?: string } {
  const m = new StopMatcher(stops);
  let text = '';
  for (const p of parts) {
    const r = m.push(p);
    text += r.text;
    if (r.stopped) return { text, stop: r.stop };
  }
  return { text: text + m.flush() };
}

/** Reference: the first end offset at which some stop string is complete; at equal end the longest. */
function oracle(stops: string[], s: string): { text: string; stop?: string } {
  for (let end = 1; end <= s.length; end++) {
    const done = stops.filter((st) => s.slice(0, end).endsWith(st)).sort((a, b) => b.length - a.length);
    if (done.length) return { text: s.slice(0, end - done[0].length), stop: done[0] };
  }
  return { text: s };
}

describe('StopMatcher', () => {
  it('empty stop list is a pass-through with nothing held back', () => {
    const m = new StopMatcher([]);
    expect(m.push('Hello\n')).toEqual({ text: 'Hello\n', stopped: false });
    expect(m.flush()).toBe('');
    expect(new StopMatcher(['']).push('abc').text).toBe('abc');
  });

  it('holds back only the minimal suffix that could start a stop string', () => {
    const m = new StopMatcher(['\n\nUser:']);
    expect(m.push('Hello\n')).toEqual({ text: 'Hello', stopped: false });
    expect(m.push('\nUs')).toEqual({ text: '', stopped: false });
    expect(m.push('ually')).toEqual({ text: '\n\nUsually', stopped: false });
    expect(m.push('\n\n\n')).toEqual({ text: '\n', stopped: false });
    expect(m.flush()).toBe('\n\n');
    expect(m.flush()).toBe('');
  });

  it('matches a stop string spanning several pushes and returns the text before it', () => {
    const m = new StopMatcher(['\n\nUser:']);
    expect(m.push('Hi there.\n').text).toBe('Hi there.');
    expect(m.push('\nUs').text).toBe('');
    expect(m.push('er: more')).toEqual({ text: '', stopped: true, stop: '\n\nUser:' });
    expect(m.push('ignored')).toEqual({ text: '', stopped: true, stop: '\n\nUser:' });
    expect(m.flush()).toBe('');
  });

  it('stop at the very start', () => {
    expect(new StopMatcher(['###']).push('###abc')).toEqual({ text: '', stopped: true, stop: '###' });
    expect(run(['###'], ['#', '#', '#', 'x'])).toEqual({ text: '', stop: '###' });
  });

  it('text before the stop in the same push is returned', () => {
    expect(new StopMatcher(['END']).push('abcENDdef')).toEqual({ text: 'abc', stopped: true, stop: 'END' });
  });

  it('overlapping stops: at equal end the earliest start (longest) wins', () => {
    expect(run(['ab', 'b'], ['xab'])).toEqual({ text: 'x', stop: 'ab' });
    expect(run(['b', 'ab'], ['xa', 'b'])).toEqual({ text: 'x', stop: 'ab' });
    expect(run(['ab', 'b'], ['xb'])).toEqual({ text: 'x', stop: 'b' });
  });

  it('prefix stops: the first one to complete wins, at equal start the shorter', () => {
    expect(run(['abc', 'ab'], ['xabc'])).toEqual({ text: 'x', stop: 'ab' });
    expect(run(['abcd', 'bc'], ['abcd'])).toEqual({ text: 'a', stop: 'bc' });
    expect(run(['abcd', 'bc'], ['a', 'bcd'])).toEqual({ text: 'a', stop: 'bc' });
  });

  it('a partial match that fails is released, and a later occurrence still matches', () => {
    const m = new StopMatcher(['aab']);
    expect(m.push('aa').text).toBe('');
    expect(m.push('a').text).toBe('a');
    expect(m.push('b')).toEqual({ text: '', stopped: true, stop: 'aab' });
  });

  it('multi-byte and long stop strings', () => {
    expect(run(['🎉!'], ['I love 🍕 and 🎉', '! more'])).toEqual({ text: 'I love 🍕 and ', stop: '🎉!' });
    expect(run(['西湖'], ['杭州的西', '湖很美'])).toEqual({ text: '杭州的', stop: '西湖' });
    const long = '<|end_of_turn|>'.repeat(20);
    const m = new StopMatcher([long]);
    expect(m.push('ok' + long.slice(0, 100)).text).toBe('ok');
    expect(m.push(long.slice(100))).toEqual({ text: '', stopped: true, stop: long });
  });

  it('result does not depend on how the text is split into pushes', () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const stopSets = [['ab', 'b'], ['abcd', 'bc', 'cd'], ['\n\nUser:', 'User'], ['aab', 'aaa'], ['zz']];
    for (let trial = 0; trial < 300; trial++) {
      const s = Array.from({ length: 30 }, () => 'abcd\nUsezr:'[Math.floor(rand() * 11)]).join('');
      const stops = stopSets[trial % stopSets.length];
      const reference = oracle(stops, s);
      const parts: string[] = [];
      for (let i = 0; i < s.length; ) {
        const n = Math.floor(rand() * 6);
        parts.push(s.slice(i, i + n));
        i += n;
      }
      expect(run(stops, parts)).toEqual(reference);
      expect(run(stops, [...s])).toEqual(reference);
    }
  });
});
