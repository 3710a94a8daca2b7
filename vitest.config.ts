import { defineConfig } from 'vitest/config';

// vitest 5's reporter calls Map.groupBy (Node >= 21) when it prints failures; Node 20 lacks it.
const MapWithGroupBy = Map as unknown as { groupBy?: unknown };
MapWithGroupBy.groupBy ??= <K, V>(items: Iterable<V>, key: (item: V, index: number) => K) => {
  const groups = new Map<K, V[]>();
  let i = 0;
  for (const item of items) {
    const k = key(item, i++);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
};

const src = (path: string) => new URL(`./src/${path}`, import.meta.url).pathname;

export default defineConfig({
  // The examples import the published names; tests run them against the sources.
  resolve: {
    alias: [
      { find: /^edgellm$/, replacement: src('index.ts') },
      { find: /^edgellm\/node$/, replacement: src('adapters/node/index.ts') },
      { find: /^edgellm\/testing$/, replacement: src('testing/index.ts') },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'tools/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start servers and ORT workers: keep files in one pool of 2 on a 2-core box.
    maxWorkers: 2,
    // GGUF conversions and load-check verdicts (a copy of the weights per key) go to a git-ignored
    // folder of the checkout, shared by the test files, not into the user's ~/.cache/edgellm.
    env: { EDGELLM_CACHE: process.env.EDGELLM_CACHE ?? new URL('./test/.artifacts/edgellm-cache', import.meta.url).pathname },
  },
});
