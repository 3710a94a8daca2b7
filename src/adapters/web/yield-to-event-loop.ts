/**
 * Gives the event loop one turn. onnxruntime-web's wasm `run()` finishes without ever returning
 * to the event loop, so a decode loop of awaited runs would hold every stream write, timer and
 * cancellation until it ends (in workerd all SSE chunks then arrive at once). The backend yields
 * before each step, the way the Node adapter keeps inference off the event loop with a thread.
 * @module
 */

interface YieldGlobals {
  scheduler?: { yield?: () => Promise<void> };
  MessageChannel?: typeof MessageChannel;
  setImmediate?: (callback: () => void) => unknown;
  navigator?: { userAgent?: string };
}

export type YieldStrategy = 'scheduler' | 'immediate' | 'message-channel' | 'timeout';

/**
 * setTimeout in workerd, where a MessageChannel message does not let I/O out. setImmediate in
 * Node (its ports deliver a ping-pong of messages without ever returning to the event loop). A
 * MessageChannel task in browsers, where setTimeout is clamped to 4 ms once nested. Not
 * `scheduler.yield()`: its continuation runs ahead of other work, and in a Chromium Service Worker
 * a decode loop yielding with it held every SSE chunk until the end (measured; MessageChannel
 * delivered them one by one). `scheduler.yield()` only where there is nothing else.
 */
export function yieldStrategy(g: YieldGlobals = globalThis as YieldGlobals): YieldStrategy {
  if (g.navigator?.userAgent === 'Cloudflare-Workers') return 'timeout';
  if (typeof g.setImmediate === 'function') return 'immediate';
  if (typeof g.MessageChannel === 'function') return 'message-channel';
  if (typeof g.scheduler?.yield === 'function') return 'scheduler';
  return 'timeout';
}

export function createYield(g: YieldGlobals = globalThis as YieldGlobals): () => Promise<void> {
  switch (yieldStrategy(g)) {
    case 'scheduler':
      return () => g.scheduler!.yield!();
    case 'immediate':
      return () => new Promise<void>((resolve) => g.setImmediate!(resolve));
    case 'message-channel': {
      const channel = new g.MessageChannel!();
      const waiting: Array<() => void> = [];
      channel.port1.onmessage = () => waiting.shift()?.();
      return () =>
        new Promise<void>((resolve) => {
          waiting.push(resolve);
          channel.port2.postMessage(0);
        });
    }
    case 'timeout':
      return () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  }
}
