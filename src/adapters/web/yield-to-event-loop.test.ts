import { describe, expect, it } from 'vitest';
import { createYield, yieldStrategy } from './yield-to-event-loop.js';

describe('yieldStrategy', () => {
  it('setTimeout in workerd, setImmediate in Node, a MessageChannel in browsers; scheduler.yield only without those', () => {
    const scheduler = { yield: async () => {} };
    expect(yieldStrategy({ scheduler, MessageChannel, navigator: { userAgent: 'Mozilla/5.0' } })).toBe('message-channel');
    expect(yieldStrategy({ scheduler })).toBe('scheduler');
    expect(yieldStrategy({ MessageChannel, setImmediate, navigator: { userAgent: 'Cloudflare-Workers' } })).toBe('timeout');
    expect(yieldStrategy({ MessageChannel, setImmediate })).toBe('immediate');
    expect(yieldStrategy({ MessageChannel, navigator: { userAgent: 'Mozilla/5.0' } })).toBe('message-channel');
    expect(yieldStrategy({})).toBe('timeout');
    expect(yieldStrategy()).toBe('immediate'); // this test runs on Node
  });
});

describe('createYield', () => {
  it.each([
    ['timeout', {}],
    ['immediate', { setImmediate }],
  ])('(%s) lets a pending timer run inside an otherwise microtask-only loop', async (_name, globals) => {
    const turn = createYield(globals);
    let fired = false;
    setTimeout(() => (fired = true), 0);
    let iterations = 0;
    while (!fired && iterations < 1000) {
      await Promise.resolve();
      await turn();
      iterations++;
    }
    expect(fired).toBe(true);
    expect(iterations).toBeLessThan(1000);
  });

  it('a loop without it starves the same timer', async () => {
    let fired = false;
    setTimeout(() => (fired = true), 0);
    for (let i = 0; i < 1000; i++) await Promise.resolve();
    expect(fired).toBe(false);
  });
});
