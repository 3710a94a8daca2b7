/**
 * The `edgellm` command. `edgellm serve [api_server] <model>` takes both seed servers' flags
 * (lmdeploy's --server_name/--server_port/--instance_num/--tp and Chinese-LLaMA-Alpaca's
 * --base_model/--tokenizer_path/--only_cpu/--gpus/--load_in_8bit); `_` and `-` are interchangeable.
 * @module
 */
import { createLoadingApp } from '../app/loading-app.js';
import { parseServeArgs, SERVE_HELP, UsageError } from './cli-args.js';
import { clientCommand } from './client/client.js';
import { createLogger } from './logger.js';
import { createNodeRuntime } from '../adapters/node/runtime.js';
import { serve } from '../adapters/node/serve.js';
import { swaggerUiAssets } from '../adapters/node/swagger-assets.js';

const printError = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(
      `Usage: edgellm serve [api_server] <model> [options]\n       edgellm client [url] [options]   (chat with a server: edgellm client --help)\n\n${SERVE_HELP}`,
    );
    return command ? 0 : 1;
  }
  if (command === 'client') return clientCommand(rest);
  if (command !== 'serve') throw new UsageError(`unknown command '${command}'. Try: edgellm serve <model>, or edgellm client [url]`);
  const args = parseServeArgs(rest);
  if (args.help) {
    process.stdout.write(`Usage: edgellm serve [api_server] <model> [options]\n\n${SERVE_HELP}`);
    return 0;
  }
  const logger = createLogger({ format: args.logFormat, logHealthChecks: args.logHealthChecks });
  const log = logger.info;
  for (const warning of args.warnings) log(warning);

  let stopping = false;
  let closeServer = async () => {};
  // A dead inference thread cannot be revived in place (its KV caches are gone): answer 503
  // meanwhile, and exit non-zero so that a supervisor (systemd, Docker, Kubernetes) restarts us.
  const onFatal = (error: Error) => {
    logger.error(`the inference thread stopped (${error.message}); exiting with status 1 for a restart.`);
    stopping = true;
    setTimeout(() => process.exit(1), 500).unref();
    void closeServer().then(() => process.exit(1));
  };

  // The server listens first (/health says loading) and loads the model once it does.
  let startLoading!: () => void;
  const loading = new Promise<void>((go) => (startLoading = go)).then(() =>
    createNodeRuntime({ ...args.runtime, log, onError: (e) => logger.error(`engine error: ${(e as Error)?.stack ?? e}`), onFatal }),
  );
  const app = createLoadingApp(loading, {
    apiKeys: args.apiKeys,
    metricsPublic: args.metricsPublic,
    cors: args.cors,
    maxBodyBytes: args.maxBodyBytes,
    requestTimeoutMs: args.requestTimeout * 1000,
    onError: (error) => logger.error(`internal error: ${(error as Error)?.stack ?? String(error)}`),
    onRequestLog: logger.request,
    docsAssets: swaggerUiAssets(),
  });
  const server = await serve(app, { host: args.host, port: args.port, requestTimeoutMs: args.requestTimeout * 1000 }).catch((error: NodeJS.ErrnoException) => {
    if (error?.code === 'EADDRINUSE') {
      throw new Error(`port ${args.port} is already in use on ${args.host ?? '0.0.0.0'} (another edgellm or another server): stop it, or pick another port with --port N.`);
    }
    if (error?.code === 'EACCES') throw new Error(`no permission to listen on port ${args.port}: pick one above 1023 with --port N.`);
    throw error;
  });
  closeServer = () => server.close();
  log(`listening on ${server.url} (loading ${args.runtime.model}...)`);

  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal} received, finishing in-flight requests (Ctrl-C again to force)...`);
    // /health answers 503 "draining" from now until the listener closes, so a balancer stops sending here.
    app.drain();
    if (args.drainDelaySeconds > 0) {
      log(`/health says draining; the listener closes in ${args.drainDelaySeconds} s.`);
      await new Promise((resolve) => setTimeout(resolve, args.drainDelaySeconds * 1000));
    }
    setTimeout(() => process.exit(1), 30_000).unref();
    await server.close();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGHUP', () => void stop('SIGHUP'));
  // Started by bin/edgellm.js: if the launcher dies without forwarding a signal, stop too.
  if (process.send) process.on('disconnect', () => void stop('launcher gone'));

  startLoading();
  const loaded = await loading; // a failure ends the process with its own message
  const info = loaded.loadInfo;
  log(
    `serving ${info.modelNames.join(', ')} at ${server.url} ` +
      `(device ${info.device}, dtype ${info.dtype}, loaded in ${(info.loadMs / 1000).toFixed(1)} s from ${info.dir})`,
  );
  if (info.adapters.length) log(`LoRA adapters (run time, model ids beside the base): ${info.adapters.join(', ')}`);
  log(`attention: ${info.attention}`);
  log(`steps: ${info.steps}`);
  if (info.promptLookup) log(`prompt lookup: ${info.promptLookup}`);
  log(`load checks: ${info.checks}`);
  if (info.matmul) log(`dynamic int8 matmuls: ${info.matmul}`);
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error) => {
    printError(error instanceof UsageError ? `edgellm: ${error.message}\nRun 'edgellm serve --help' for the options.` : `edgellm: ${(error as Error).message}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
