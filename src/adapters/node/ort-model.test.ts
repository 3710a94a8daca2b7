import { describe, expect, it } from 'vitest';
import { threadEntries } from './ort-model.js';

describe('onnxruntime thread settings', () => {
  it('turns spinning off for both pools unless asked for (onnxruntime then keeps its own default)', () => {
    expect(threadEntries()).toEqual({ 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' });
    expect(threadEntries(false)).toEqual(threadEntries());
    expect(threadEntries(true)).toEqual({});
  });
});
