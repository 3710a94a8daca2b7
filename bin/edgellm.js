#!/usr/bin/env node
// Thin launcher so `npx edgellm` works from the built CLI bundle.
//
// `edgellm serve` runs in a child node with V8's --single-threaded-gc. V8's background GC threads
// otherwise compete with onnxruntime's threads for the cores: on 2 cores, 8 streams gave 8% more
// tokens per second with it (interleaved, 12 runs each), and onnxruntime's step got shorter. Node
// takes that flag only on its own command line, so the launcher starts the CLI again with it,
// forwards signals and exits with the child's status. EDGELLM_SINGLE_THREADED_GC=0 keeps Node's
// default (so do `node dist/cli.js serve` and `node --inspect bin/edgellm.js serve`).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const GC_FLAG = '--single-threaded-gc';
const cli = new URL('../dist/cli.js', import.meta.url);
const relaunch =
  process.argv[2] === 'serve' &&
  process.platform !== 'win32' &&
  !process.execArgv.includes(GC_FLAG) &&
  !process.execArgv.some((flag) => flag.startsWith('--inspect')) && // a debugger attaches to this process
  process.env.EDGELLM_SINGLE_THREADED_GC !== '0' &&
  existsSync(fileURLToPath(cli)); // unbuilt: the import below says so

if (relaunch) {
  const child = spawn(process.execPath, [...process.execArgv, GC_FLAG, fileURLToPath(cli), ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    // Its own process group, so a terminal's Ctrl-C reaches it once: through the forwarding below.
    // If this launcher is killed outright, the child sees its IPC channel close and shuts down.
    detached: true,
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    console.error(`edgellm: could not start the server: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 1)));
} else {
  import(cli.href).catch((error) => {
    if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli.js')) {
      console.error('edgellm: the CLI is not built yet. Run `npm install` (or `npm run build`) first.');
      process.exit(1);
    }
    throw error;
  });
}
