import { describe, expect, it } from 'vitest';
import { EventChannel } from './event-channel.js';

async function drain<T>(channel: EventChannel<T>): Promise<{ values: T[]; error?: unknown }> {
  const values: T[] = [];
  try {
    for await (const v of channel) values.push(v);
    return { values };
  } catch (error) {
    return { values, error };
  }
}

describe('EventChannel', () => {
  it('buffers values pushed before anyone reads, in order', async () => {
    const channel = new EventChannel<number>(() => {});
    channel.push(1);
    channel.push(2);
    channel.push(3);
    channel.close();
    expect(await drain(channel)).toEqual({ values: [1, 2, 3] });
  });

  it('hands a value straight to a waiting reader', async () => {
    const channel = new EventChannel<string>(() => {});
    const it = channel[Symbol.asyncIterator]();
    const pending = it.next();
    channel.push('a');
    expect(await pending).toEqual({ value: 'a', done: false });
    const end = it.next();
    channel.close();
    expect(await end).toEqual({ value: undefined, done: true });
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('interleaves pushes and reads across ticks', async () => {
    const channel = new EventChannel<number>(() => {});
    const reading = drain(channel);
    for (let i = 0; i < 5; i++) {
      channel.push(i);
      await new Promise((r) => setTimeout(r, 0));
    }
    channel.close();
    expect((await reading).values).toEqual([0, 1, 2, 3, 4]);
  });

  it('close with an error: buffered values first, then the error; a waiting reader is rejected', async () => {
    const boom = new Error('boom');
    const buffered = new EventChannel<number>(() => {});
    buffered.push(1);
    buffered.close(boom);
    expect(await drain(buffered)).toEqual({ values: [1], error: boom });

    const waiting = new EventChannel<number>(() => {});
    const it = waiting[Symbol.asyncIterator]();
    const pending = it.next();
    waiting.close(boom);
    await expect(pending).rejects.toBe(boom);
    await expect(it.next()).rejects.toBe(boom);
  });

  it('ignores pushes and closes after close', async () => {
    const channel = new EventChannel<number>(() => {});
    channel.push(1);
    channel.close();
    channel.push(2);
    channel.close(new Error('late'));
    expect(await drain(channel)).toEqual({ values: [1] });
  });

  it('return() (breaking out of for-await) calls onCancel exactly once and drops the buffer', async () => {
    let cancels = 0;
    const channel = new EventChannel<number>(() => cancels++);
    channel.push(1);
    channel.push(2);
    channel.push(3);
    for await (const v of channel) {
      expect(v).toBe(1);
      break;
    }
    expect(cancels).toBe(1);
    const it = channel[Symbol.asyncIterator]();
    expect(await it.return!()).toEqual({ value: undefined, done: true });
    expect(cancels).toBe(1);
    expect(await it.next()).toEqual({ value: undefined, done: true });
    channel.push(4);
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('return() after a normal close does not cancel', async () => {
    let cancels = 0;
    const channel = new EventChannel<number>(() => cancels++);
    channel.push(1);
    channel.close();
    const it = channel[Symbol.asyncIterator]();
    await it.return!();
    expect(cancels).toBe(0);
  });

  it('a throw inside for-await cancels too', async () => {
    let cancels = 0;
    const channel = new EventChannel<number>(() => cancels++);
    channel.push(1);
    await expect(
      (async () => {
        for await (const _ of channel) throw new Error('consumer failed');
      })(),
    ).rejects.toThrow('consumer failed');
    expect(cancels).toBe(1);
  });
});
