/**
 * The README's "Embed it" and client snippets are the examples' own files (which other suites run), and its
 * links to its own sections lead somewhere, and its settings tables are made from the settings table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cliSettingsMarkdown, envSettingsMarkdown } from '../../src/app/settings.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const readme = read('README.md');

/** The fenced block (```js, or ```python for a .py file) that follows the line naming `file` in backticks. */
function snippetAfter(file: string): string {
  const at = readme.indexOf(`(\`${file}\``);
  expect(at, `README names ${file}`).toBeGreaterThan(-1);
  const fence = file.endsWith('.py') ? '```python\n' : '```js\n';
  const open = readme.indexOf(fence, at);
  const close = readme.indexOf('```\n', open + fence.length);
  return readme.slice(open + fence.length, close);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
const anchor = (heading: string) =>
  heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');

describe('README', () => {
  it.each([
    'examples/hono/app.mjs',
    'examples/itty-router/app.mjs',
    'examples/worker/src/index.js',
    // test/clients/ runs these against the real SmolLM2 GGUF.
    'examples/clients/langchain.mjs',
    'examples/clients/ai-sdk.mjs',
    'examples/clients/openai_python.py',
  ])(
    'embeds %s exactly as the tested example',
    (file) => {
      expect(snippetAfter(file)).toBe(read(file));
    },
  );

  it('links only to headings it has', () => {
    const headings = new Set(readme.split('\n').filter((line) => /^#{1,4} /.test(line)).map((line) => anchor(line.replace(/^#+ /, ''))));
    const links = [...readme.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((link) => !headings.has(link))).toEqual([]);
  });
});

describe("README's settings tables", () => {
  it.each([
    ['edgellm serve', cliSettingsMarkdown],
    ['Worker', envSettingsMarkdown],
  ])('%s: the table is the one made from the settings table (EDGELLM_UPDATE_README=1 rewrites it)', (name, make) => {
    const open = `<!-- settings: ${name} (made from src/app/settings.ts; a test checks it) -->\n`;
    const start = readme.indexOf(open);
    expect(start, `README has the marker ${open}`).toBeGreaterThan(-1);
    const end = readme.indexOf('<!-- /settings -->', start);
    const current = readme.slice(start + open.length, end);
    if (process.env.EDGELLM_UPDATE_README === '1' && current !== make()) {
      const fresh = read('README.md');
      const at = fresh.indexOf(open) + open.length;
      writeFileSync(new URL('README.md', root), fresh.slice(0, at) + make() + fresh.slice(fresh.indexOf('<!-- /settings -->', at)));
      return;
    }
    expect(current).toBe(make());
  });
});
