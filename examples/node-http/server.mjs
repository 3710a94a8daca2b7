// node server.mjs <model directory or Hub id>   then: curl localhost:3000/llm/v1/models
import { createServer } from 'node:http';
import { createNodeRuntime } from 'edgellm/node';
import { buildListener } from './listener.mjs';

const runtime = await createNodeRuntime({ model: process.argv[2] ?? '../../../shared/models/karpathy__stories260K' });
const server = createServer(buildListener(runtime));
server.requestTimeout = 0; // long generations must not be cut after Node's default 5 minutes
const port = Number(process.env.PORT ?? 3000);
server.listen(port, () => console.log(`listening on :${port}`));
