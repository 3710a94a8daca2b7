// The race's --hog: busy-looping children that really take a core, and are stopped with the benchmark's other children.
import { describe, expect, it } from 'vitest';

// The benchmark's plain-JS helpers, loaded by URL (they are not part of the typed sources).
const lib = (name: string) => import(/* @vite-ignore */ new URL(`../../bench/lib/${name}`, import.meta.url).href);
const { processCpuSeconds } = await lib('cpu.mjs');
const { killAll, startHogs } = await lib('procs.mjs');

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('bench CPU hogs', () => {
  it('start busy, and killAll stops them', async () => {
    const hogs: { pid: number }[] = await startHogs(2);
    expect(hogs).toHaveLength(2);
    const before: number[] = hogs.map((h) => processCpuSeconds(h.pid) as number);
    await new Promise((r) => setTimeout(r, 1500));
    // Each spins: it used CPU time while this test slept (any share of a core, on a loaded machine).
    hogs.forEach((h, i) => expect(processCpuSeconds(h.pid) - before[i]).toBeGreaterThan(0.05));
    await killAll();
    for (const h of hogs) expect(alive(h.pid)).toBe(false);
  });
});
