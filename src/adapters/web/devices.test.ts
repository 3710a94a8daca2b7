import { describe, expect, it } from 'vitest';
import { chooseDevice, DEVICE_TABLE, hasWebGpuAdapter, probeWebGpu, resolveDevice } from './devices.js';

describe('resolveDevice', () => {
  it('auto takes WebGPU only with an adapter', () => {
    expect(resolveDevice('auto', true)).toBe('webgpu');
    expect(resolveDevice('auto', false)).toBe('wasm');
    expect(resolveDevice('wasm', true)).toBe('wasm');
    expect(resolveDevice('webgpu', true)).toBe('webgpu');
  });

  it('fails clearly when WebGPU is demanded without an adapter, or the device is unknown', () => {
    expect(() => resolveDevice('webgpu', false)).toThrow(/no WebGPU adapter/);
    expect(() => resolveDevice('cuda' as never, true)).toThrow(/Unknown device "cuda"/);
  });

  it('maps each device to one onnxruntime-web build and its provider', () => {
    expect(DEVICE_TABLE.webgpu).toEqual({ flavour: 'webgpu', executionProviders: ['webgpu'], wasmFile: 'ort-wasm-simd-threaded.asyncify.wasm' });
    expect(DEVICE_TABLE.wasm).toEqual({ flavour: 'wasm', executionProviders: ['wasm'], wasmFile: 'ort-wasm-simd-threaded.wasm' });
  });
});

describe('hasWebGpuAdapter', () => {
  it('is true only when navigator.gpu gives an adapter', async () => {
    expect(await hasWebGpuAdapter({ gpu: { requestAdapter: async () => ({}) } })).toBe(true);
    expect(await hasWebGpuAdapter({ gpu: { requestAdapter: async () => null } })).toBe(false);
    expect(await hasWebGpuAdapter({ gpu: { requestAdapter: async () => Promise.reject(new Error('blocked')) } })).toBe(false);
    expect(await hasWebGpuAdapter({})).toBe(false);
    expect(await hasWebGpuAdapter(undefined)).toBe(false);
  });
});

/** A fake navigator.gpu whose requestAdapter() answers `adapter`. */
const gpuWith = (adapter: unknown) => ({ gpu: { requestAdapter: async () => adapter as never } });

describe('probeWebGpu and chooseDevice: auto skips a software adapter', () => {
  const hardware = { info: { isFallbackAdapter: false, vendor: 'nvidia', architecture: 'ampere', description: '' } };

  it('takes a hardware adapter for auto, naming it', async () => {
    const probe = await probeWebGpu(gpuWith(hardware));
    expect(probe).toEqual({ adapter: true, software: false, reason: 'WebGPU adapter nvidia ampere' });
    expect(chooseDevice('auto', probe)).toEqual({ device: 'webgpu', reason: 'auto: WebGPU adapter nvidia ampere' });
    expect(await hasWebGpuAdapter(gpuWith(hardware))).toBe(true);
  });

  it('skips a fallback adapter (GPUAdapterInfo.isFallbackAdapter, or the older GPUAdapter.isFallbackAdapter) for wasm, saying why', async () => {
    for (const adapter of [{ info: { isFallbackAdapter: true, vendor: 'google' } }, { isFallbackAdapter: true, info: {} }]) {
      const probe = await probeWebGpu(gpuWith(adapter));
      expect(probe).toMatchObject({ adapter: true, software: true });
      expect(chooseDevice('auto', probe)).toEqual({
        device: 'wasm',
        reason: 'auto: the WebGPU adapter is a fallback (software) adapter, slower than wasm on the CPU, so wasm',
      });
      expect(await hasWebGpuAdapter(gpuWith(adapter))).toBe(false);
    }
  });

  it('skips SwiftShader even when it does not call itself a fallback adapter', async () => {
    const probe = await probeWebGpu(
      gpuWith({ info: { isFallbackAdapter: false, vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' } }),
    );
    expect(chooseDevice('auto', probe)).toEqual({
      device: 'wasm',
      reason: 'auto: the WebGPU adapter is SwiftShader, a software renderer, slower than wasm on the CPU, so wasm',
    });
  });

  it('uses a software adapter when WebGPU is asked for by name, and says why wasm was chosen without one', async () => {
    const software = await probeWebGpu(gpuWith({ info: { isFallbackAdapter: true } }));
    expect(chooseDevice('webgpu', software).device).toBe('webgpu');
    expect(chooseDevice('auto', await probeWebGpu(gpuWith(null)))).toEqual({ device: 'wasm', reason: 'auto: navigator.gpu has no adapter' });
    expect(chooseDevice('auto', await probeWebGpu({}))).toEqual({ device: 'wasm', reason: 'auto: no WebGPU in this host (navigator.gpu)' });
    const failing = await probeWebGpu({ gpu: { requestAdapter: () => Promise.reject(new Error('blocked')) } });
    expect(chooseDevice('auto', failing).reason).toBe('auto: navigator.gpu.requestAdapter() failed: blocked');
    expect(() => chooseDevice('webgpu', failing)).toThrow(
      /asked for, but this host has no WebGPU adapter \(navigator.gpu.requestAdapter\(\) failed: blocked\)/,
    );
  });
});
