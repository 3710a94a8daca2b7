// Child processes of the benchmark: every one is tracked and killed on exit, on errors and on signals.
import { fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpu } from './cpu.mjs';

const children = new Set();
let stoppingAll = false;

function track(child, { ours = true } = {}) {
  children.add(child);
  if (ours) cpu.track(child.pid);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kills one child: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited. */
export function kill(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  cpu.finalize(child.pid);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try { child.kill('SIGKILL'); } catch {}
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try { child.kill('SIGTERM'); } catch { clearTimeout(timer); resolve(); }
  });
}

export async function killAll() {
  stoppingAll = true;
  await Promise.all([...children].map((c) => kill(c)));
}

function killAllSync() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch {}
  }
}

let installed = false;
export function installCleanup() {
  if (installed) return;
  installed = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`bench: ${sig}, stopping children`);
      killAllSync();
      process.exit(130);
    });
  }
}

/** A Node child with IPC; request() sends a message and awaits the reply with the same id. */
export async function startWorkerChild(script, args, { name, execArgv = [], readyTimeoutMs = 300_000 } = {}) {
  const child = track(fork(script, args, { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], execArgv }));
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  const pending = new Map();
  let nextId = 1;
  child.on('message', (msg) => {
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${name}: ${msg.error}`));
    else p.resolve(msg);
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${name} exited (${code ?? signal}): ${stderr.slice(-2000)}`));
    pending.clear();
  });
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs);
    child.on('message', (msg) => {
      if (msg.ready) {
        clearTimeout(timer);
        resolve(msg);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${stderr.slice(-2000)}`));
    });
  });
  return {
    child,
    pid: child.pid,
    ready,
    request(msg) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ ...msg, id });
      });
    },
    stop: () => kill(child),
  };
}

/**
 * Starts `edgellm serve` (node --single-threaded-gc <cli> serve <model> ... --host 127.0.0.1 --port 0) and waits for its
 * "serving ... at http://127.0.0.1:PORT" line on stderr.
 */
export async function startServer(cli, model, args, { readyTimeoutMs = 300_000 } = {}) {
  // As bin/edgellm.js starts `serve` (V8's single-threaded GC), minus the launcher process, so the
  // PID (and RSS) measured is the server's own. EDGELLM_SINGLE_THREADED_GC=0 measures without it.
  const gc = process.env.EDGELLM_SINGLE_THREADED_GC === '0' ? [] : ['--single-threaded-gc'];
  const argv = [...gc, cli, 'serve', model, ...args, '--host', '127.0.0.1', '--port', '0'];
  const child = track(spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready after ${readyTimeoutMs} ms:\n${stderr}`)), readyTimeoutMs);
    const onData = (d) => {
      stderr += d;
      const m = /edgellm: serving .* at (http:\/\/127\.0\.0\.1:\d+) .*/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        resolve(m);
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before it was ready:\n${stderr}`));
    });
  });
  // keep draining stderr (bounded) so the pipe never fills
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 50000) stderr = stderr.slice(-20000);
  });
  let stopping = false;
  // A server that dies mid-run would otherwise show only as a client's "socket hang up".
  child.once('exit', (code, signal) => {
    if (!stopping && !stoppingAll) process.stderr.write(`[bench] edgellm server exited (${code ?? signal}) during the run; its log ends:\n${stderr.slice(-4000)}\n`);
  });
  return {
    child,
    pid: child.pid,
    url: line[1],
    banner: line[0],
    argv: argv.slice(1),
    stderr: () => stderr,
    stop: () => {
      stopping = true;
      return kill(child, 35_000);
    },
  };
}

/**
 * `n` CPU hogs: child processes that busy-loop on one core each until they are killed (at the end, on
 * errors and on signals, like every child here), for measuring an engine while other processes hold
 * cores. They are not counted as the benchmark's own CPU time (cpu.mjs sees them as another process's).
 * Resolves once each one runs, with their handles.
 */
export async function startHogs(n) {
  const hogs = Array.from({ length: n }, () =>
    track(spawn(process.execPath, ['-e', "process.stdout.write('hog\\n'); for (;;) {}"], { stdio: ['ignore', 'pipe', 'ignore'] }), { ours: false }),
  );
  await Promise.all(hogs.map((child) => new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`CPU hog exited (${code ?? signal}) before it ran`)));
  })));
  return hogs.map((child) => ({ child, pid: child.pid, stop: () => kill(child, 1000) }));
}

/** Resident memory of a process in bytes (VmRSS from /proc), or NaN where /proc is missing. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
