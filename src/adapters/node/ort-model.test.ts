import { describe, expect, it } from 'vitest';
import { threadEntries } from './ort-model.js';

describe('onnxruntime thread settings', () => {
  it("keeps onnxruntime's spinning threads unless told to sleep, then for both pools", () => {
    expect(threadEntries()).toEqual({});
    expect(threadEntries(false)).toEqual({});
    expect(threadEntries(true)).toEqual({ 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' });
  });
});
