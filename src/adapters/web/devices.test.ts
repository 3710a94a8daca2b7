import { describe, expect, it } from 'vitest';
import { DEVICE_TABLE, hasWebGpuAdapter, resolveDevice } from './devices.js';

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
    expect(DEVICE_TABLE.webgpu).toEqual({ flavour: 'webgpu', executionProviders: ['webgpu'] });
    expect(DEVICE_TABLE.wasm).toEqual({ flavour: 'wasm', executionProviders: ['wasm'] });
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
