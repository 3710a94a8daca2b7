// The edgellm server inside the browser: a module Service Worker that answers this origin's API
// paths with edgellm's fetch handlers on onnxruntime-web (WebGPU when there is an adapter, else
// wasm). Register it with navigator.serviceWorker.register('./sw.js?model=NAME', { type: 'module' }).
import { createWebApp } from './edgellm/edgellm.sw.js';

const params = new URL(location.href).searchParams;
const MODEL = params.get('model') || 'karpathy__stories260K';
// As the page's: ?dtype=, ?device= (auto, wasm, webgpu), ?cache=off|opfs|cache-api.
const OPTIONS = {
  dtype: params.get('dtype') || undefined,
  device: params.get('device') || undefined,
  cache: params.get('cache') === 'off' ? false : params.get('cache') ? { store: params.get('cache') } : undefined,
};
const API = /^\/(v1\/|generate$|health$|openapi\.json$)/;

// The browser stops an idle Service Worker and starts it again for the next request, so the app
// (and its model) is made on first use by whichever run of this script is alive. The model files
// and the wasm come from the Cache API after the first load, so a restart downloads nothing.
let app;
let state = { state: 'loading', model: MODEL };
function getApp() {
  if (!app) {
    app = createWebApp({ model: MODEL, ...OPTIONS, baseUrl: new URL('/models/', location.href), onProgress });
    app.ready.then(
      ({ loadInfo }) =>
        (state = {
          state: 'ready', model: loadInfo.modelNames[0], device: loadInfo.device, deviceReason: loadInfo.deviceReason, dtype: loadInfo.dtype,
          loadMs: loadInfo.loadMs, threads: loadInfo.threads, cache: loadInfo.cache,
        }),
      (error) => (state = { state: 'failed', model: MODEL, error: error.message }),
    );
  }
  return app;
}

// Each load step goes to every page of this origin, for its progress bar and status line. The
// pages are looked up ahead, so a step is posted at once even when the work after it (a GGUF
// conversion, a session) keeps this worker busy for seconds.
let pages = [];
const findPages = () => self.clients.matchAll({ includeUncontrolled: true, type: 'window' }).then((found) => (pages = found));
findPages();
function onProgress(event) {
  state = { ...state, progress: event };
  const post = (to) => to.forEach((page) => page.postMessage({ type: 'edgellm-progress', event }));
  if (pages.length) post(pages);
  else findPages().then(post);
  findPages(); // pages opened since
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => {
  getApp(); // start loading the model now
  event.waitUntil(self.clients.claim()); // control the page that registered us, without a reload
});
self.addEventListener('message', (event) => {
  if (event.data === 'claim') event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== location.origin) return;
  if (url.pathname === '/sw-status') {
    getApp();
    event.respondWith(Response.json({ ...state, webgpu: 'gpu' in navigator }));
  } else if (API.test(url.pathname)) {
    event.respondWith(answer(event));
  }
  // everything else goes to the network
});

async function answer(event) {
  const response = await getApp().fetch(event.request);
  if (!response.body) return response;
  // Keep this worker alive until the whole body is sent: a long generation outlasts the idle
  // timeout. Cancelling the reader (the page stops reading) still cancels the generation.
  const { readable, writable } = new TransformStream();
  event.waitUntil(response.body.pipeTo(writable).catch(() => {}));
  return new Response(readable, response);
}
