/**
 * Device -> onnxruntime-web flavour and execution providers: one table, one choice function.
 * @module
 */
import { WORKER_DEVICES } from '../../app/settings.js';
import { InferenceError } from '../../errors.js';

export const WEB_DEVICES = WORKER_DEVICES;
export type WebDevice = (typeof WEB_DEVICES)[number];
export type ResolvedWebDevice = Exclude<WebDevice, 'auto'>;

/** `onnxruntime-web/webgpu` also runs the wasm provider, but its wasm binary is twice the size. */
export const DEVICE_TABLE: Record<ResolvedWebDevice, { flavour: 'webgpu' | 'wasm'; executionProviders: string[] }> = {
  webgpu: { flavour: 'webgpu', executionProviders: ['webgpu'] },
  wasm: { flavour: 'wasm', executionProviders: ['wasm'] },
};

interface GpuNavigator {
  gpu?: { requestAdapter(): Promise<unknown> };
}

/** True when this host has WebGPU with a usable adapter (never in workerd; in a browser only with a GPU). */
export async function hasWebGpuAdapter(nav: GpuNavigator | undefined = (globalThis as { navigator?: GpuNavigator }).navigator): Promise<boolean> {
  try {
    return Boolean(await nav?.gpu?.requestAdapter());
  } catch {
    return false;
  }
}

/** `auto` takes WebGPU when there is an adapter, else wasm; asking for WebGPU without one fails. */
export function resolveDevice(requested: WebDevice, webgpu: boolean): ResolvedWebDevice {
  if (!(WEB_DEVICES as readonly string[]).includes(requested)) {
    throw new InferenceError(503, `Unknown device "${requested}"; use one of ${WEB_DEVICES.join(', ')}.`);
  }
  if (requested === 'auto') return webgpu ? 'webgpu' : 'wasm';
  if (requested === 'webgpu' && !webgpu) {
    throw new InferenceError(503, 'device "webgpu" was asked for, but this host has no WebGPU adapter (navigator.gpu); use "wasm" or "auto".');
  }
  return requested;
}
