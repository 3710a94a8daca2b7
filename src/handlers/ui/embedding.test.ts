/**
 * The page embeds renderMarkdown, createSseParser and startChat by their source text. A bundler
 * that renames (minify) and keeps function names (esbuild's keepNames, which wrangler turns on by
 * default) rewrites `const f = () => …` into a call to a module-level helper the page would not have. These tests re-bundle the page that way and run the embedded functions from their text alone;
 * test/browser/ui.test.ts runs the whole re-bundled page in Chromium.
 */
import { describe, expect, it } from 'vitest';
import { rebundledUi } from '../../../test/helpers/rebundled-ui.js';
import { renderMarkdown } from './markdown.js';

/** A function rebuilt from its source text in an empty scope, as the page gets it. */
const fromText = <T>(fn: T): T => new Function(`return (${String(fn)});`)() as T;

describe('embedded functions survive re-bundling (minify + keepNames)', () => {
  it('renderMarkdown and createSseParser run from their bundled text alone', async () => {
    const bundled = await rebundledUi();
    expect(String(bundled.renderMarkdown)).not.toBe(String(renderMarkdown));
    const sample = '# t\n\n- **a** `b` [c](https://e.com)\n  1. nested\n\n> q *r*\n\n```js\nx\n```\n\n<img onerror=x>';
    expect(fromText(bundled.renderMarkdown)(sample)).toBe(renderMarkdown(sample));
    expect(fromText(bundled.createSseParser)().push('data: a\n\ndata: b\n\n')).toEqual(['a', 'b']);
  });

  it('the bundled page script parses', async () => {
    const { uiPage } = await rebundledUi();
    expect(() => new Function(uiPage().script)).not.toThrow();
  });
});
