/**
 * The web and Worker bundles must load where there is no Node: no `node:` module, no Node
 * built-in, no onnxruntime-node (nor transformers.js, which pulls it in), in any module they
 * import. Scans the built files (and the chunks they import) for import, export-from, dynamic
 * import and require specifiers. The workerd suites check the same at run time: the Worker runs
 * without nodejs_compat.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/cli-server.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const FORBIDDEN_PACKAGES = ['onnxruntime-node', '@huggingface/transformers'];
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Module specifiers in (possibly minified) ESM: import/export ... from, bare import, import(), require(). */
function specifiers(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /(?:^|[;}\s)])(?:import|export)\b[^;'"`]*?\bfrom\s*(["'`])([^"'`\n]+)\1/g,
    /(?:^|[;}\s)])import\s*(["'`])([^"'`\n]+)\1/g,
    /\bimport\s*\(\s*(["'`])([^"'`\n]+)\1\s*\)/g,
    /\brequire\s*\(\s*(["'`])([^"'`\n]+)\1\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.add(match[2]);
  return [...found];
}

function forbidden(specifier: string): boolean {
  const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  return specifier.startsWith('node:') || BUILTINS.has(specifier) || BUILTINS.has(pkg) || FORBIDDEN_PACKAGES.includes(pkg);
}

/** The file and every relative module it imports, with the specifiers each one uses. */
function moduleGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (file: string) => {
    if (graph.has(file)) return;
    const found = specifiers(readFileSync(file, 'utf8'));
    graph.set(file, found);
    for (const s of found) if (s.startsWith('.') && s.endsWith('.js')) visit(resolve(dirname(file), s));
  };
  visit(entry);
  return graph;
}

describe('specifier scanning', () => {
  it('finds imports in minified and formatted code, and flags Node modules', () => {
    const code = 'import{a as b}from"node:fs";export*from"./x.js";import "fs";const c=await import("onnxruntime-node");require("os/x");' +
      'const s="this is from the text";import{z}from"zod"';
    expect(specifiers(code).sort()).toEqual(['./x.js', 'fs', 'node:fs', 'onnxruntime-node', 'os/x', 'zod'].sort());
    expect(['node:fs', 'fs', 'os/x', 'onnxruntime-node', '@huggingface/transformers'].every(forbidden)).toBe(true);
    expect(['zod', './x.js', 'onnxruntime-web/wasm', '@huggingface/tokenizers', 'cloudflare:workers'].some(forbidden)).toBe(false);
  });
});

describe('the web and Worker bundles', () => {
  const entries = ['web.js', 'web.workerd.js', 'worker.js', 'browser/edgellm.js'];

  it.each(entries)('%s imports no Node built-in and no onnxruntime-node, in any module it loads', (entry) => {
    requireBuild();
    const path = join(DIST, entry);
    expect(existsSync(path), `${path} (run npm run build)`).toBe(true);
    const graph = moduleGraph(path);
    const bad = [...graph].flatMap(([file, found]) => found.filter(forbidden).map((s) => `${file.slice(DIST.length)}: ${s}`));
    expect(bad).toEqual([]);
    // The libraries leave onnxruntime-web to the user's bundler; the bundles contain it.
    const external = new Set([...graph.values()].flat().filter((s) => !s.startsWith('.')));
    if (entry === 'web.js') expect([...external].filter((s) => s.startsWith('onnxruntime')).sort()).toEqual(['onnxruntime-web/wasm', 'onnxruntime-web/webgpu']);
    else if (entry === 'web.workerd.js') expect([...external].filter((s) => s.startsWith('onnxruntime'))).toEqual(['onnxruntime-web/wasm']);
    else expect([...external].filter((s) => !s.endsWith('.wasm'))).toEqual([]);
  });

  it('flags the Node inference worker, so a Node import in the web graph would not go unseen', () => {
    requireBuild();
    const flagged = [...moduleGraph(join(DIST, 'inference-thread.js')).values()].flat().filter(forbidden);
    expect(flagged).toEqual(expect.arrayContaining(['onnxruntime-node', 'worker_threads']));
  });

  it('the Worker imports onnxruntime-web wasm as a module beside it, and the file is there', () => {
    requireBuild();
    const found = specifiers(readFileSync(join(DIST, 'worker.js'), 'utf8'));
    expect(found).toEqual(['./ort-wasm-simd-threaded.wasm']);
    expect(existsSync(join(DIST, 'ort-wasm-simd-threaded.wasm'))).toBe(true);
  });

  it('edgellm/worker has types: the Durable Object class, the default export and the env (SHARDS included)', () => {
    requireBuild();
    const pkg = JSON.parse(readFileSync(join(DIST, '../package.json'), 'utf8'));
    expect(pkg.exports['./worker']).toEqual({ types: './dist/worker.d.ts', default: './dist/worker.js' });
    const types = readFileSync(join(DIST, 'worker.d.ts'), 'utf8');
    expect(types).toMatch(/declare class EdgellmModel/);
    expect(types).toMatch(/export \{[^}]*EdgellmModel[^}]*\}/);
    expect(types).toMatch(/export \{[^}]*\b_default as default\b[^}]*\}|export default/);
    expect(types).toMatch(/SHARDS\?: string/);
    for (const s of specifiers(types)) expect(existsSync(join(DIST, s.replace(/\.js$/, '.d.ts'))), s).toBe(true);
  });
});
