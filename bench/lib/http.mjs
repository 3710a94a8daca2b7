// A lean streaming HTTP client (node:http, keep-alive): every SSE event or NDJSON line is timestamped
// with performance.now() as it arrives. Times are relative to the moment the request is written.
import http from 'node:http';

// Idle sockets are dropped after 3 s, before edgellm's 5 s keep-alive timeout. Node 20's agent keeps an idle
// socket for as long as the server does when it has no timeout of its own (it only ever shortens its own
// timeout to the server's Keep-Alive hint), so a request sent on a socket at the moment the server closes it
// failed with "socket hang up" (ECONNRESET): the race's requests follow each other after a llama.cpp run of
// any length, a few seconds is common. `post` also retries once when a reused socket is reset before any
// response byte: the server closed it idle, so it never saw the request (Node's documented remedy).
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 3000 });

/**
 * POSTs `body` to `url`. format 'sse' parses `data:` events, 'ndjson' parses lines, 'json' the whole body.
 * `onEvent(event, ms)` may return true to abort the request (a cancelling client).
 * Resolves { status, events: [{ms, data}], t0, endMs, aborted, body? }.
 */
export async function post(url, body, options = {}) {
  try {
    return await postOnce(url, body, options);
  } catch (error) {
    if (!error.beforeResponseOnReusedSocket) throw error;
    return postOnce(url, body, options);
  }
}

function postOnce(url, body, { format = 'sse', onEvent } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = Buffer.from(JSON.stringify(body));
    const events = [];
    let t0 = 0;
    let aborted = false;
    const req = http.request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        let buf = '';
        const sep = format === 'sse' ? '\n\n' : '\n';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          const ms = performance.now() - t0;
          if (format === 'json' || res.statusCode !== 200) {
            buf += chunk;
            return;
          }
          buf += chunk;
          let i;
          while ((i = buf.indexOf(sep)) >= 0) {
            const raw = buf.slice(0, i);
            buf = buf.slice(i + sep.length);
            let data = raw.trim();
            if (!data) continue;
            if (format === 'sse') {
              data = data
                .split('\n')
                .filter((l) => l.startsWith('data:'))
                .map((l) => l.slice(5).trim())
                .join('\n');
              if (data === '[DONE]') {
                events.push({ ms, done: true });
                continue;
              }
            }
            let parsed;
            try {
              parsed = JSON.parse(data);
            } catch {
              parsed = { unparsed: data };
            }
            events.push({ ms, data: parsed });
            if (onEvent && !aborted && onEvent(parsed, ms)) {
              aborted = true;
              req.destroy();
              resolve({ status: res.statusCode, events, t0, endMs: ms, aborted: true });
              return;
            }
          }
        });
        res.on('end', () => {
          if (aborted) return;
          const endMs = performance.now() - t0;
          let parsedBody;
          if (format === 'json' || res.statusCode !== 200) {
            try {
              parsedBody = JSON.parse(buf);
            } catch {
              parsedBody = buf;
            }
          }
          resolve({ status: res.statusCode, events, t0, endMs, aborted: false, body: parsedBody });
        });
        res.on('error', (e) => (aborted ? undefined : reject(e)));
      },
    );
    req.on('error', (e) => {
      if (aborted) return;
      // Reset before any response on a kept-alive socket: the server closed it idle (see `agent`).
      if (req.reusedSocket && !req.res && e.code === 'ECONNRESET') e.beforeResponseOnReusedSocket = true;
      reject(e);
    });
    t0 = performance.now();
    req.end(payload);
  });
}

export async function getJson(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (buf += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode, body: JSON.parse(buf) });
          } catch {
            resolve({ status: res.statusCode, body: buf });
          }
        });
      })
      .on('error', reject);
  });
}

/**
 * A streamed greedy completion on /v1/completions. Returns the TTFT (first event with text or a finish),
 * the time of the finish event, completion tokens (from usage), the text, and every event's time.
 */
export async function streamCompletion(base, { prompt, maxTokens, model, extra = {} }) {
  const res = await post(`${base}/v1/completions`, {
    ...(model ? { model } : {}),
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
    ...extra,
  });
  if (res.status !== 200) throw new Error(`/v1/completions: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  let text = '';
  let ttftMs;
  let finishMs;
  let usage;
  const textTimes = [];
  for (const e of res.events) {
    if (e.done) continue;
    if (e.data.error) throw new Error(`/v1/completions stream error: ${JSON.stringify(e.data.error)}`);
    const choice = e.data.choices?.[0];
    if (e.data.usage) usage = e.data.usage;
    if (!choice) continue;
    if (choice.text) {
      text += choice.text;
      textTimes.push(e.ms);
    }
    if (ttftMs === undefined && (choice.text || choice.finish_reason)) ttftMs = e.ms;
    if (choice.finish_reason) finishMs = e.ms;
  }
  const tokens = usage?.completion_tokens ?? NaN;
  return {
    t0: res.t0,
    ttftMs,
    finishMs,
    endMs: res.endMs,
    tokens,
    promptTokens: usage?.prompt_tokens,
    cachedTokens: usage?.prompt_tokens_details?.cached_tokens,
    chunks: textTimes.length,
    textTimes,
    text,
    decodeTokS: tokens > 1 ? ((tokens - 1) * 1000) / (finishMs - ttftMs) : NaN,
  };
}
