/**
 * The chat page's modules bundled again by esbuild with minify and keepNames, as wrangler does to a
 * Worker that embeds edgellm when `minify` is on (it sets keepNames by default). The page embeds its
 * browser code by source text, which must survive that.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import type { Handler } from '../../src/handlers/context.js';
import type { renderMarkdown } from '../../src/handlers/ui/markdown.js';
import type { uiPage } from '../../src/handlers/ui/page.js';
import type { createSseParser } from '../../src/handlers/ui/sse-parser.js';

const UI_DIR = fileURLToPath(new URL('../../src/handlers/ui/', import.meta.url));

export interface RebundledUi {
  handleUi: Handler;
  uiPage: typeof uiPage;
  renderMarkdown: typeof renderMarkdown;
  createSseParser: typeof createSseParser;
}

export async function rebundledUi(): Promise<RebundledUi> {
  const result = await build({
    stdin: {
      contents: [
        "export { handleUi } from './handler.ts';",
        "export { uiPage } from './page.ts';",
        "export { renderMarkdown } from './markdown.ts';",
        "export { createSseParser } from './sse-parser.ts';",
      ].join('\n'),
      resolveDir: UI_DIR,
      loader: 'ts',
    },
    bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', minify: true, keepNames: true, write: false,
  });
  return import(`data:text/javascript;base64,${Buffer.from(result.outputFiles[0].text).toString('base64')}`);
}
