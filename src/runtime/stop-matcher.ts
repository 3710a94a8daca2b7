/**
 * Stop strings over a streamed text.
 *
 * Rule: generation stops as soon as any stop string is complete in the text seen so far (we never wait
 * for a longer stop string that might still match). Among the stop strings completed by the same push,
 * the one that completes first wins (smallest end offset); at equal end, the earliest start (the longest).
 * So the result is the same however the text is split into pushes: it is what feeding the text one
 * character at a time would give. E.g. stops ["ab", "b"] on "ab" match "ab"; stops ["a", "ab"] on "ab"
 * match "a"; stops ["abcd", "bc"] on "abcd" match "bc" (it completes first).
 * Held back is exactly the longest suffix of the text that is a proper prefix of some stop string.
 * Empty stop strings are ignored.
 * @module
 */

export interface StopResult {
  /** Text that is safe to emit now. */
  text: string;
  /** True once a stop string has matched (and on every later push). */
  stopped: boolean;
  /** The matched stop string. */
  stop?: string;
}

export class StopMatcher {
  private readonly stops: string[];
  private held = '';
  private matched: string | undefined;

  constructor(stops: string[]) {
    this.stops = [...new Set(stops.filter((s) => s.length > 0))];
  }

  /** Feeds new text; returns the text safe to emit, or the text before the stop string once it matches. */
  push(text: string): StopResult {
    if (this.matched !== undefined) return { text: '', stopped: true, stop: this.matched };
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.held + text;
    let best: { start: number; end: number; stop: string } | undefined;
    for (const stop of this.stops) {
      const start = buf.indexOf(stop);
      if (start < 0) continue;
      const end = start + stop.length;
      if (!best || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
    }
    if (best) {
      this.matched = best.stop;
      this.held = '';
      return { text: buf.slice(0, best.start), stopped: true, stop: best.stop };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** End of stream without a stop: releases the held-back text ('' after a stop). */
  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    if (buf.length === 0) return 0;
    const last = buf.charCodeAt(buf.length - 1);
    let best = 0;
    for (const stop of this.stops) {
      for (let len = Math.min(buf.length, stop.length - 1); len > best; len--) {
        if (stop.charCodeAt(len - 1) === last && buf.endsWith(stop.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
