import { describe, expect, it } from 'vitest';
import { halfToFloat, toFloat32 } from './float16.js';

describe('toFloat32', () => {
  it('decodes raw half bits from a Uint16Array (hosts without Float16Array)', () => {
    expect(Array.from(toFloat32(Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x7c00]), 1, 3))).toEqual([-2, halfToFloat(0x3555), Infinity]);
  });

  it('copies values from a Float16Array-like array and slices float32 data', () => {
    const f16Like = [0.5, -1.25, 3] as unknown as ArrayLike<number>;
    expect(Array.from(toFloat32(f16Like, 1, 2))).toEqual([-1.25, 3]);
    const f32 = Float32Array.from([1, 2, 3]);
    const copy = toFloat32(f32, 0, 2);
    expect(Array.from(copy)).toEqual([1, 2]);
    expect(copy.buffer).not.toBe(f32.buffer);
  });
});
