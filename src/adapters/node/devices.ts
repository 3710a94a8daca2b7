/**
 * Device -> onnxruntime-node execution providers: one table, one choice function.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { CLI_DEVICES } from '../../app/settings.js';

export const DEVICES = CLI_DEVICES;
export type Device = (typeof DEVICES)[number];

type Providers = InferenceSession.ExecutionProviderConfig[];

const PROVIDERS: Record<Exclude<Device, 'auto'>, (deviceId: number) => Providers> = {
  cpu: () => ['cpu'],
  cuda: (deviceId) => [{ name: 'cuda', deviceId }, 'cpu'],
  webgpu: () => ['webgpu', 'cpu'],
};

/** What to try, in order: `auto` tries CUDA, then falls back to the CPU. */
export function deviceCandidates(device: Device): Array<Exclude<Device, 'auto'>> {
  return device === 'auto' ? ['cuda', 'cpu'] : [device];
}

export function executionProviders(device: Exclude<Device, 'auto'>, deviceId = 0): Providers {
  return PROVIDERS[device](deviceId);
}

/** A one-line explanation for a device that failed to start. */
export function deviceHint(device: Exclude<Device, 'auto'>): string {
  if (device === 'cuda') {
    return 'The CUDA provider is not installed: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm install ' +
      '(needs CUDA 12 and cuDNN 9 on the host), or use --device cpu.';
  }
  if (device === 'webgpu') return 'WebGPU needs a GPU with a Vulkan driver (libvulkan1) on Linux; use --device cpu.';
  return '';
}

/**
 * onnxruntime-node is an optional peer dependency (a Worker or browser user does not need its
 * 290 MB): when it is missing, say how to install it instead of failing inside the inference thread.
 */
export function assertOnnxruntimeNode(): void {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch {
    throw new Error('edgellm runs models in Node on onnxruntime-node, which is not installed: npm install onnxruntime-node@^1.30.0');
  }
}

/**
 * Whether onnxruntime-node's CUDA provider library is installed. Checked before trying CUDA in
 * `auto` mode, so a CPU-only install does not print onnxruntime's native load error.
 */
export function cudaProviderInstalled(): boolean {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const dir = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(dir, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}
