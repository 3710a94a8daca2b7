/**
 * Counts responses by method, route pattern and status for `/metrics`. Paths outside the route
 * table count as route 'other', so a scanner cannot grow the label set without bound.
 * @module
 */
import type { HttpCount } from '../handlers/context.js';

export class HttpCounter {
  private readonly byKey = new Map<string, HttpCount>();

  constructor(private readonly routes: Array<[method: string, route: string, pattern: RegExp]>) {}

  count(method: string, path: string, status: number): void {
    const hit = this.routes.find(([m, , pattern]) => m === method && pattern.test(path));
    const route = hit ? hit[1] : 'other';
    const known = hit ? method : method === 'GET' || method === 'POST' || method === 'OPTIONS' ? method : 'other';
    const key = `${known} ${route} ${status}`;
    const entry = this.byKey.get(key);
    if (entry) entry.count++;
    else this.byKey.set(key, { method: known, route, status, count: 1 });
  }

  counts(): HttpCount[] {
    return [...this.byKey.values()].map((c) => ({ ...c }));
  }
}
