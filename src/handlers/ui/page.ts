/**
 * The chat page: one HTML document with its style and script inline, so it loads nothing else
 * (no CDN, no second request) and its Content-Security-Policy can pin both by hash.
 * @module
 */
import { startChat } from './client.js';
import { renderMarkdown } from './markdown.js';
import { createSseParser } from './sse-parser.js';

export interface UiPage {
  html: string;
  /** The exact text of the inline <script> and <style>, which the CSP hashes. */
  script: string;
  style: string;
}

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f6f8; --fg: #1c1c20; --muted: #62626d; --panel: #fff; --border: #d6d6de;
  --accent: #2e63d6; --on-accent: #fff; --user: #e6eefc; --code: #efeff3; --error: #b3261e;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --bg: #16161a; --fg: #e6e6ea; --muted: #a0a0ab; --panel: #1f1f24;
  --border: #35353d; --accent: #7aa5ff; --on-accent: #0b1733; --user: #233250; --code: #2a2a31; --error: #ff8a80; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; height: 100vh; height: 100dvh; display: flex; flex-direction: column; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; flex-wrap: wrap; gap: .5rem .75rem; padding: .5rem 1rem; background: var(--panel); border-bottom: 1px solid var(--border); }
header h1 { font-size: 1.05rem; margin: 0 auto 0 0; }
header label { font-size: .85rem; color: var(--muted); }
input, select, textarea, button { font: inherit; color: inherit; }
input, select, textarea { background: var(--bg); border: 1px solid var(--border); border-radius: .4rem; padding: .35rem .5rem; min-width: 0; }
select { max-width: 16rem; }
button { background: var(--panel); border: 1px solid var(--border); border-radius: .4rem; padding: .4rem .85rem; cursor: pointer; }
button:disabled { opacity: .45; cursor: default; }
#send { background: var(--accent); border-color: var(--accent); color: var(--on-accent); }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.layout { flex: 1; display: flex; min-height: 0; }
#settings { flex: none; width: 15rem; padding: .75rem 1rem; overflow-y: auto; background: var(--panel); border-right: 1px solid var(--border); }
#settings summary { font-weight: 600; cursor: pointer; }
#settings-form { display: grid; gap: .55rem; margin-top: .75rem; }
#settings-form label { display: grid; gap: .15rem; font-size: .85rem; color: var(--muted); }
#settings-form input { color: var(--fg); }
.hint { margin: 0; font-size: .8rem; color: var(--muted); }
main { flex: 1; min-width: 0; display: flex; flex-direction: column; }
#log { flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: .75rem; }
#log:empty::before { content: "Ask something. Enter sends, Shift+Enter starts a new line."; margin: auto; color: var(--muted); text-align: center; }
.msg { max-width: min(48rem, 100%); width: fit-content; padding: .55rem .9rem; background: var(--panel); border: 1px solid var(--border); border-radius: .8rem; overflow-wrap: anywhere; }
.msg.user { align-self: flex-end; background: var(--user); }
.msg.user .body, .msg.error .body { white-space: pre-wrap; }
.msg.error { color: var(--error); border-color: var(--error); }
.msg.stopped, .msg.unsent { border-style: dashed; }
.who { display: block; font-size: .75rem; color: var(--muted); }
.body > :first-child { margin-top: 0; }
.body > :last-child { margin-bottom: 0; }
.body p, .body ul, .body ol, .body pre, .body blockquote { margin: .45rem 0; }
.body h1, .body h2, .body h3, .body h4, .body h5, .body h6 { margin: .6rem 0 .3rem; line-height: 1.25; }
.body h1 { font-size: 1.3rem; } .body h2 { font-size: 1.15rem; } .body h3, .body h4, .body h5, .body h6 { font-size: 1rem; }
.body ul, .body ol { padding-left: 1.4rem; }
.body code { font: .88em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code); padding: .05rem .3rem; border-radius: .25rem; }
.body pre { background: var(--code); padding: .6rem .75rem; border-radius: .45rem; overflow-x: auto; }
.body pre code { padding: 0; background: none; }
.body blockquote { padding-left: .75rem; border-left: 3px solid var(--border); color: var(--muted); }
.body hr { border: 0; border-top: 1px solid var(--border); }
.body a { color: var(--accent); }
.msg.pending .body::after { content: "…"; animation: pulse 1s infinite; }
@keyframes pulse { 50% { opacity: .2; } }
.note { margin: .25rem 0 0; font-size: .75rem; color: var(--muted); }
#composer { display: flex; align-items: flex-end; gap: .5rem; padding: .6rem 1rem .3rem; background: var(--panel); border-top: 1px solid var(--border); }
#input { flex: 1; resize: none; min-height: 2.6rem; max-height: 12rem; }
#status { margin: 0; min-height: 1.5rem; padding: 0 1rem .3rem; font-size: .8rem; color: var(--muted); background: var(--panel); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
@media (max-width: 720px) {
  .layout { flex-direction: column; }
  #settings { width: auto; max-height: 45vh; border-right: 0; border-bottom: 1px solid var(--border); }
  #settings-form { grid-template-columns: 1fr 1fr; }
  #settings-form .wide { grid-column: 1 / -1; }
  header h1 { flex-basis: 100%; }
  #log { padding: .75rem .5rem; }
  #composer { padding: .5rem; }
}
@media (prefers-reduced-motion: reduce) { .msg.pending .body::after { animation: none; } }
`;

// Ranges are the server's (src/handlers/shared/sampling-schema.ts); defaults are the Chinese-LLaMA-Alpaca demo's.
const CONTROLS: [name: string, label: string, attributes: string][] = [
  ['max_tokens', 'Max tokens', 'min="1" step="1" value="256" placeholder="up to the context"'],
  ['temperature', 'Temperature', 'min="0" max="2" step="0.05" value="0.7"'],
  ['top_p', 'Top-p', 'min="0" max="1" step="0.01" value="0.9"'],
  ['top_k', 'Top-k (0 = off)', 'min="0" step="1" value="40"'],
  ['num_beams', 'Beams', 'min="1" max="16" step="1" value="1"'],
  ['repetition_penalty', 'Repetition penalty', 'min="0.01" max="10" step="0.01" value="1.1"'],
];

function body(): string {
  const controls = CONTROLS.map(
    ([name, label, attributes]) => `<label>${label} <input id="${name}" name="${name}" type="number" inputmode="decimal" ${attributes}></label>`,
  ).join('\n');
  return `<header>
<h1>edgellm chat</h1>
<label for="model">Model</label> <select id="model"></select>
<button type="button" id="new-session">New session</button>
</header>
<div class="layout">
<details id="settings" open>
<summary>Settings</summary>
<form id="settings-form" novalidate>
${controls}
<label class="wide"><input id="json_output" name="json_output" type="checkbox"> JSON output (the reply is a JSON object, enforced while decoding)</label>
<p id="beam-note" class="hint wide" hidden>Beam search: the reply arrives in one piece when it is done; temperature, top-p and top-k are not used.</p>
<label id="key-row" class="wide" hidden>API key <input id="api-key" type="password" autocomplete="off" spellcheck="false"></label>
</form>
</details>
<main>
<div id="log" role="log" aria-live="polite" aria-label="Conversation"></div>
<form id="composer">
<label for="input" class="visually-hidden">Message</label>
<textarea id="input" rows="1" placeholder="Message"></textarea>
<button type="submit" id="send">Send</button>
<button type="button" id="stop" disabled>Stop</button>
</form>
<p id="status" role="status"></p>
</main>
</div>`;
}

/** Builds the page; the browser code is embedded from its one tested source (see markdown.ts, client.ts). */
export function uiPage(): UiPage {
  const script = `
(function () {
"use strict";
// A failure must not leave a page that silently does nothing.
window.addEventListener("error", function (event) {
  var status = document.getElementById("status");
  if (status) status.textContent = "The page failed: " + event.message;
});
(${startChat.toString()})({ renderMarkdown: ${renderMarkdown.toString()}, createSseParser: ${createSseParser.toString()} });
})();
`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgellm chat</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${body()}
<script>${script}</script>
</body>
</html>
`;
  return { html, script, style: STYLE };
}
