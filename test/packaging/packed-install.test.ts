/**
 * What a consumer of the published package gets: `npm pack`, then the tarball installed into a
 * scratch project with the network off (`npm ci --offline`: dependencies from npm's cache, as CI's
 * own `npm ci` left it, pinned by a lockfile made from this repository's non-dev entries, since npm
 * resolves nothing offline without one), then every export imported (ESM and CommonJS), publint on
 * the installed package, and the optional onnxruntime peers: without them edgellm/node says what
 * to install; with them the CLI runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = existsSync(join(root, 'dist/index.js')) && existsSync(join(root, 'dist/worker.js'));
if (!built) console.warn('packed-install: skipped, dist/ is not built (npm test builds it first)');

const npm = (args: string[], cwd: string) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_offline: 'true' },
  });
const node = (code: string, cwd: string, type: 'module' | 'commonjs' = 'module') =>
  execFileSync(process.execPath, [type === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', code], { cwd, encoding: 'utf8' });

describe.skipIf(!built)('the packed package, installed offline into a scratch project', () => {
  const work = mkdtempSync(join(tmpdir(), 'edgellm-pack-'));
  const app = join(work, 'app');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(() => {
    npm(['pack', '--ignore-scripts', '--pack-destination', work], root);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const runtimeDeps = Object.entries(lock.packages as Record<string, { dev?: boolean; link?: boolean }>).filter(
      ([path, entry]) => path.startsWith('node_modules/') && !entry.dev && !entry.link,
    );
    const spec = `file:../${tarball}`;
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module', dependencies: { edgellm: spec } }));
    writeFileSync(
      join(app, 'package-lock.json'),
      JSON.stringify({
        name: 'scratch',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'scratch', dependencies: { edgellm: spec } },
          'node_modules/edgellm': {
            version: pkg.version,
            resolved: spec,
            dependencies: pkg.dependencies,
            peerDependencies: pkg.peerDependencies,
            peerDependenciesMeta: pkg.peerDependenciesMeta,
            bin: pkg.bin,
          },
          ...Object.fromEntries(runtimeDeps),
        },
      }),
    );
    npm(['ci', '--ignore-scripts'], app);
  }, 120_000);

  it('brings no onnxruntime, transformers.js or sharp (the peers are optional)', () => {
    const installed = readdirSync(join(app, 'node_modules'));
    for (const heavy of ['onnxruntime-node', 'onnxruntime-web', 'sharp']) expect(installed).not.toContain(heavy);
    expect(existsSync(join(app, 'node_modules/@huggingface/transformers'))).toBe(false);
  });

  it('imports every export, as ESM and as CommonJS', () => {
    const esm = node(
      `const out = {};
       for (const name of ['edgellm', 'edgellm/node', 'edgellm/testing', 'edgellm/web']) out[name] = Object.keys(await import(name)).length;
       out.worker = import.meta.resolve('edgellm/worker');
       out.pkg = (await import('edgellm/package.json', { with: { type: 'json' } })).default.name;
       console.log(JSON.stringify(out));`,
      app,
    );
    const found = JSON.parse(esm);
    for (const name of ['edgellm', 'edgellm/node', 'edgellm/testing', 'edgellm/web']) expect(found[name], name).toBeGreaterThan(0);
    // The Worker bundle imports its .wasm as workerd does; Node can only resolve it.
    expect(found.worker).toMatch(/node_modules\/edgellm\/dist\/worker\.js$/);
    expect(found.pkg).toBe('edgellm');
    const cjs = node(
      `console.log(JSON.stringify(['edgellm', 'edgellm/node', 'edgellm/testing'].map((n) => { const m = require(n); return typeof (m.createApp ?? m.MockRuntime); })));`,
      app,
      'commonjs',
    );
    expect(JSON.parse(cjs)).toEqual(['function', 'function', 'function']);
  });

  it('passes publint', async () => {
    const pkgDir = join(app, 'node_modules/edgellm');
    const { messages, pkg } = await publint({ pkgDir, level: 'warning', pack: false });
    expect(messages.map((m) => formatMessage(m, pkg))).toEqual([]);
  });

  it('without onnxruntime-node, edgellm/node says what to install', () => {
    const out = node(
      `import { createNodeRuntime } from 'edgellm/node';
       try { await createNodeRuntime({ model: './nowhere' }); } catch (e) { console.log(e.message); }`,
      app,
    );
    expect(out).toMatch(/onnxruntime-node, which is not installed: npm install onnxruntime-node/);
  });

  it('with the onnxruntime peers installed, the CLI runs', () => {
    for (const peer of ['onnxruntime-node', 'onnxruntime-common']) symlinkSync(join(root, 'node_modules', peer), join(app, 'node_modules', peer), 'dir');
    const help = execFileSync(join(app, 'node_modules/.bin/edgellm'), ['serve', '--help'], { cwd: app, encoding: 'utf8' });
    expect(help).toMatch(/--server-port/);
    const missing = (() => {
      try {
        execFileSync(join(app, 'node_modules/.bin/edgellm'), ['serve', './nowhere', '--port', '0'], { cwd: app, encoding: 'utf8', stdio: 'pipe' });
        return '';
      } catch (error) {
        return String((error as { stderr: string }).stderr);
      }
    })();
    expect(missing).toMatch(/no such directory/);
  });
});
