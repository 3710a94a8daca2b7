/**
 * A push-to-pull bridge: the scheduler pushes events, the handler pulls them with `for await`.
 * Breaking out of the loop (or the client going away) calls `onCancel`.
 * @module
 */
export class EventChannel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private waiter: ((result: IteratorResult<T>) => void) | undefined;
  private failer: ((error: unknown) => void) | undefined;
  private closed = false;
  private error: unknown;

  constructor(private readonly onCancel: () => void) {}

  push(value: T): void {
    if (this.closed) return;
    if (this.waiter) this.settle().resolve({ value, done: false });
    else this.buffer.push(value);
  }

  close(error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.error = error;
    if (!this.waiter) return;
    const { resolve, reject } = this.settle();
    if (error !== undefined) reject(error);
    else resolve({ value: undefined, done: true });
  }

  private settle() {
    const resolve = this.waiter!;
    const reject = this.failer!;
    this.waiter = this.failer = undefined;
    return { resolve, reject };
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.buffer.length > 0) return Promise.resolve({ value: this.buffer.shift()!, done: false });
        if (this.closed) {
          return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.waiter = resolve;
          this.failer = reject;
        });
      },
      return: () => {
        if (!this.closed) {
          this.closed = true;
          this.onCancel();
        }
        this.buffer.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
