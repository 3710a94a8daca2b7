/**
 * The Swagger UI page at /docs. The page and its initializer are generated here; the static files
 * (swagger-ui-dist's bundle, CSS, icons) come from the host's asset source, so nothing is fetched
 * from a CDN and the page works offline.
 * @module
 */

/** The swagger-ui-dist files the page loads, with their content types: nothing else is served. */
export const SWAGGER_UI_FILES: Record<string, string> = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

/** Generated next to the files, so the page needs no inline script and its CSP can forbid them. */
export const INITIALIZER_FILE = 'swagger-initializer.js';

/** Only this server: scripts, styles and "Try it out" requests go nowhere else. */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Swagger UI sets style attributes, and draws some icons as data: images.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'self'",
].join('; ');

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** `base`: where the app is mounted ('' or e.g. '/llm'). */
export function swaggerPage(base: string): string {
  const at = (file: string) => escapeHtml(`${base}/docs/${file}`);
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>edgellm API</title>
  <link rel="stylesheet" href="${at('swagger-ui.css')}">
  <link rel="icon" type="image/png" href="${at('favicon-32x32.png')}" sizes="32x32">
  <link rel="icon" type="image/png" href="${at('favicon-16x16.png')}" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${at('swagger-ui-bundle.js')}"></script>
  <script src="${at(INITIALIZER_FILE)}"></script>
</body>
</html>
`;
}

export function swaggerInitializer(base: string): string {
  const config = {
    url: `${base}/openapi.json`,
    dom_id: '#swagger-ui',
    deepLinking: true,
    layout: 'BaseLayout',
    // The default posts the document to validator.swagger.io: no requests leave this server.
    validatorUrl: null,
    persistAuthorization: true,
    displayRequestDuration: true,
  };
  return `window.ui = SwaggerUIBundle(Object.assign(${JSON.stringify(config)}, { presets: [SwaggerUIBundle.presets.apis] }));\n`;
}

/** Shown at /docs when the host gave createApp no asset source. */
export function missingAssetsPage(base: string): string {
  const spec = escapeHtml(`${base}/openapi.json`);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>edgellm API: Swagger UI not enabled</title></head>
<body>
  <h1>Swagger UI is not enabled on this server</h1>
  <p>The OpenAPI document is at <a href="${spec}">${spec}</a>.</p>
  <p>This host gave <code>createApp</code> no source for Swagger UI's files (edgellm loads none from a CDN). To enable it:</p>
  <ul>
    <li>Node: <code>edgellm serve</code> does it; in your own app pass
      <code>docsAssets: swaggerUiAssets()</code> (from <code>edgellm/node</code>) to <code>createApp</code>.</li>
    <li>Other hosts: pass <code>docsAssets: (name) =&gt; Response | undefined</code> serving these files of the
      <code>swagger-ui-dist</code> npm package: ${Object.keys(SWAGGER_UI_FILES).map((f) => `<code>${f}</code>`).join(', ')}
      (in a Worker, from a static-assets binding).</li>
  </ul>
</body>
</html>
`;
}
