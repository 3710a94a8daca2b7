// The benchmark's helpers: the race's --hog (busy-looping children that really take a core, stopped with the other children), and overhead.mjs's log parsing.
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

describe('bench/overhead.mjs', () => {
  it("finds the served graph's folder in the server's log, whether the checks ran or were restored", async () => {
    const { verdictDir } = await import(/* @vite-ignore */ new URL('../../bench/overhead.mjs', import.meta.url).href);
    expect(verdictDir('edgellm: steps: any\nedgellm: load checks: run at load; verdict stored in /c/load-checks/ab12\nedgellm: serving x')).toBe('/c/load-checks/ab12');
    expect(verdictDir('edgellm: load checks: from the cache (/c/load-checks/cd34): no rewrite and no probe run')).toBe('/c/load-checks/cd34');
    expect(verdictDir('edgellm: load checks: run at load; the verdict cannot be stored (EACCES)')).toBeUndefined();
  });
});
