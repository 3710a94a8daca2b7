/**
 * The `edgellm` command. `edgellm serve [api_server] <model>` takes both seed servers' flags
 * (lmdeploy's --server_name/--server_port/--instance_num/--tp and Chinese-LLaMA-Alpaca's
 * --base_model/--tokenizer_path/--only_cpu/--gpus/--load_in_8bit); `_` and `-` are interchangeable.
 * @module
 */
import { createApp } from '../app/create-app.js';
import { createDeferredRuntime } from '../runtime/deferred-runtime.js';
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

  const runtime = createDeferredRuntime();
  const app = createApp({
    runtime,
    apiKeys: args.apiKeys,
    cors: args.cors,
    maxBodyBytes: args.maxBodyBytes,
    onError: (error) => logger.error(`internal error: ${(error as Error)?.stack ?? String(error)}`),
    onRequestLog: logger.request,
    docsAssets: swaggerUiAssets(),
  });
  const server = await serve(app, { host: args.host, port: args.port });
  log(`listening on ${server.url} (loading ${args.runtime.model}...)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal} received, finishing in-flight requests (Ctrl-C again to force)...`);
    setTimeout(() => process.exit(1), 30_000).unref();
    await server.close();
    await runtime.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGHUP', () => void stop('SIGHUP'));
  // Started by bin/edgellm.js: if the launcher dies without forwarding a signal, stop too.
  if (process.send) process.on('disconnect', () => void stop('launcher gone'));

  const loaded = await createNodeRuntime({ ...args.runtime, log, onError: (e) => logger.error(`engine error: ${(e as Error)?.stack ?? e}`) });
  runtime.resolve(loaded);
  const info = loaded.loadInfo;
  log(
    `serving ${info.modelNames.join(', ')} at ${server.url} ` +
      `(device ${info.device}, dtype ${info.dtype}, loaded in ${(info.loadMs / 1000).toFixed(1)} s from ${info.dir})`,
  );
  log(`attention: ${info.attention}`);
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
