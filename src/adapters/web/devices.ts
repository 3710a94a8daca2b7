/**
 * Device -> onnxruntime-web flavour and execution providers: one table, one choice function.
 * @module
 */
import { WORKER_DEVICES } from '../../app/settings.js';
import { InferenceError } from '../../errors.js';

export const WEB_DEVICES = WORKER_DEVICES;
export type WebDevice = (typeof WEB_DEVICES)[number];
export type ResolvedWebDevice = Exclude<WebDevice, 'auto'>;

/**
 * `onnxruntime-web/webgpu` also runs the wasm provider, but its wasm binary is twice the size.
 * `wasmFile` is the binary each build loads (beside the browser bundle).
 */
export const DEVICE_TABLE: Record<ResolvedWebDevice, { flavour: 'webgpu' | 'wasm'; executionProviders: string[]; wasmFile: string }> = {
  webgpu: { flavour: 'webgpu', executionProviders: ['webgpu'], wasmFile: 'ort-wasm-simd-threaded.asyncify.wasm' },
  wasm: { flavour: 'wasm', executionProviders: ['wasm'], wasmFile: 'ort-wasm-simd-threaded.wasm' },
};

interface GpuAdapterLike {
  info?: { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; description?: string };
  /** Older Chromium (before GPUAdapterInfo.isFallbackAdapter). */
  isFallbackAdapter?: boolean;
}
interface GpuNavigator {
  gpu?: { requestAdapter(): Promise<GpuAdapterLike | null | undefined> };
}

/** What navigator.gpu offers: an adapter or not, whether it is a software one, and a sentence saying so. */
export interface WebGpuProbe {
  adapter: boolean;
  /** A software adapter (a fallback adapter, SwiftShader): slower than onnxruntime's wasm on the CPU. */
  software: boolean;
  reason: string;
}

/** Asks navigator.gpu for its adapter (never present in workerd; in a browser only with a GPU, or SwiftShader). */
export async function probeWebGpu(nav: GpuNavigator | undefined = (globalThis as { navigator?: GpuNavigator }).navigator): Promise<WebGpuProbe> {
  if (!nav?.gpu) return { adapter: false, software: false, reason: 'no WebGPU in this host (navigator.gpu)' };
  let adapter: GpuAdapterLike | null | undefined;
  try {
    adapter = await nav.gpu.requestAdapter();
  } catch (error) {
    return { adapter: false, software: false, reason: `navigator.gpu.requestAdapter() failed: ${(error as Error)?.message ?? error}` };
  }
  if (!adapter) return { adapter: false, software: false, reason: 'navigator.gpu has no adapter' };
  const info = adapter.info ?? {};
  const names = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''}`;
  if (info.isFallbackAdapter || adapter.isFallbackAdapter || /swiftshader/i.test(names)) {
    const what = /swiftshader/i.test(names) ? 'SwiftShader, a software renderer' : 'a fallback (software) adapter';
    return { adapter: true, software: true, reason: `the WebGPU adapter is ${what}, slower than wasm on the CPU` };
  }
  const name = names.trim().replace(/\s+/g, ' ');
  return { adapter: true, software: false, reason: `WebGPU adapter${name ? ` ${name}` : ''}` };
}

/** True when this host has a hardware WebGPU adapter. */
export async function hasWebGpuAdapter(nav?: GpuNavigator): Promise<boolean> {
  const probe = await probeWebGpu(nav);
  return probe.adapter && !probe.software;
}

/**
 * `auto` takes WebGPU on a hardware adapter, else wasm; asking for WebGPU without an adapter
 * fails (asked for by name, a software adapter is used). `reason` says why, for the log.
 */
export function chooseDevice(requested: WebDevice, gpu: WebGpuProbe): { device: ResolvedWebDevice; reason: string } {
  if (!(WEB_DEVICES as readonly string[]).includes(requested)) {
    throw new InferenceError(503, `Unknown device "${requested}"; use one of ${WEB_DEVICES.join(', ')}.`);
  }
  if (requested === 'wasm') return { device: 'wasm', reason: 'device "wasm" was asked for' };
  if (requested === 'webgpu') {
    if (!gpu.adapter) {
      throw new InferenceError(503, `device "webgpu" was asked for, but this host has no WebGPU adapter (${gpu.reason}); use "wasm" or "auto".`);
    }
    return { device: 'webgpu', reason: `device "webgpu" was asked for (${gpu.reason})` };
  }
  if (gpu.adapter && !gpu.software) return { device: 'webgpu', reason: `auto: ${gpu.reason}` };
  return { device: 'wasm', reason: `auto: ${gpu.reason}${gpu.software ? ', so wasm' : ''}` };
}

/** `auto` takes WebGPU when there is a (hardware) adapter, else wasm; asking for WebGPU without one fails. */
export function resolveDevice(requested: WebDevice, webgpu: boolean): ResolvedWebDevice {
  return chooseDevice(requested, { adapter: webgpu, software: false, reason: webgpu ? 'WebGPU adapter' : 'no WebGPU adapter (navigator.gpu)' })
    .device;
}
