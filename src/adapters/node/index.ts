/**
 * edgellm for Node: the platform-neutral API plus the onnxruntime-node runtime and a server.
 * @example
 * import { createApp } from 'edgellm';
 * import { createNodeRuntime, serve } from 'edgellm/node';
 * const runtime = await createNodeRuntime({ model: './models/my-model' });
 * const server = await serve(createApp({ runtime }), { port: 23333 });
 * @module
 */
export * from '../../index.js';
export { createNodeRuntime, type NodeRuntime, type NodeRuntimeOptions } from './runtime.js';
export { serve, type RunningServer, type ServeOptions } from './serve.js';
export { swaggerUiAssets, swaggerUiDistDir } from './swagger-assets.js';
export { DEVICES, type Device } from './devices.js';
export type { Dtype } from './model-files.js';
