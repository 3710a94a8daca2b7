/**
 * The lint step (`.oxlintrc.json`, run by `npm run lint` and `.ci/run`) enforces the layer seams:
 * probe files that break each rule, placed at the paths the rules cover, must each be reported,
 * and the allowed forms must not be.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'edgellm-lint-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const probes: Record<string, string> = {
  'src/handlers/node-builtin.ts': "import { readFileSync } from 'node:fs';\nexport const a = readFileSync;\n",
  'src/runtime/onnxruntime.ts': "import * as ort from 'onnxruntime-node';\nexport const a = ort;\n",
  'src/model/adapter.ts': "import { createNodeRuntime } from '../adapters/node/runtime.js';\nexport const a = createNodeRuntime;\n",
  'src/app/cli.ts': "import { SERVE_HELP } from '../cli/cli-args.js';\nexport const a = SERVE_HELP;\n",
  'src/onnx/value-import.ts': "import { Tensor } from 'onnxruntime-common';\nexport const a = Tensor;\n",
  'src/onnx/type-import.ts': "import type { Tensor } from 'onnxruntime-common';\nexport type A = Tensor;\n",
  'src/adapters/web/node-ort.ts': "import * as ort from 'onnxruntime-node';\nexport const a = ort;\n",
  'src/adapters/node/node-builtin.ts': "import { readFileSync } from 'node:fs';\nexport const a = readFileSync;\n",
  'src/runtime/comma.ts': 'export function f(a: number[]) {\n  a.push(1), a.push(2);\n  return () => (a.pop(), a);\n}\n',
};

function lint(): Array<{ filename: string; code: string }> {
  copyFileSync(join(root, '.oxlintrc.json'), join(work, '.oxlintrc.json'));
  for (const [path, text] of Object.entries(probes)) {
    mkdirSync(dirname(join(work, path)), { recursive: true });
    writeFileSync(join(work, path), text);
  }
  let out: string;
  try {
    out = execFileSync(join(root, 'node_modules/.bin/oxlint'), ['-c', '.oxlintrc.json', '-f', 'json', '.'], { cwd: work, encoding: 'utf8' });
  } catch (error) {
    out = (error as { stdout: string }).stdout; // exit status 1: there are errors
  }
  return JSON.parse(out).diagnostics;
}

describe('lint rules for the seams', () => {
  const found = lint();
  const codes = (file: string) => found.filter((d) => d.filename === file).map((d) => d.code);

  it.each([
    'src/handlers/node-builtin.ts',
    'src/runtime/onnxruntime.ts',
    'src/model/adapter.ts',
    'src/app/cli.ts',
    'src/onnx/value-import.ts',
    'src/adapters/web/node-ort.ts',
  ])('reports the forbidden import in %s', (file) => {
    expect(codes(file)).toEqual(['eslint(no-restricted-imports)']);
  });

  it('allows type imports from onnxruntime-common in src/onnx, and Node built-ins in the Node adapter', () => {
    expect(codes('src/onnx/type-import.ts')).toEqual([]);
    expect(codes('src/adapters/node/node-builtin.ts')).toEqual([]);
  });

  it('reports comma expressions, parenthesised or not', () => {
    expect(codes('src/runtime/comma.ts').filter((c) => c === 'eslint(no-sequences)')).toHaveLength(2);
  });
});
