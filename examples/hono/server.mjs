// node server.mjs <model directory or Hub id>   then: curl localhost:3000/llm/v1/models
import { serve } from '@hono/node-server';
import { createNodeRuntime } from 'edgellm/node';
import { buildApp } from './app.mjs';

const runtime = await createNodeRuntime({ model: process.argv[2] ?? '../../../shared/models/karpathy__stories260K' });
serve({ fetch: buildApp(runtime).fetch, port: Number(process.env.PORT ?? 3000) }, (info) => console.log(`listening on :${info.port}`));
