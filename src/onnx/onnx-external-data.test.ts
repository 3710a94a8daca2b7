import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sharedModel, STORIES, TINY_RANDOM } from '../../test/helpers/shared-models.js';
import { externalDataFiles } from './onnx-external-data.js';
import { ProtoWriter } from './protobuf.js';

/** A model whose graph has one inline and two external initializers (two in the same file). */
function modelWithExternal(): Uint8Array {
  const external = (w: ProtoWriter, name: string, location: string) =>
    w.message(5, (t) => {
      t.string(8, name);
      t.message(13, (e) => e.string(1, 'location').string(2, location));
      t.message(13, (e) => e.string(1, 'offset').string(2, '0'));
      t.varint(14, 1);
    });
  return new ProtoWriter()
    .varint(1, 8)
    .message(7, (g) => {
      g.message(5, (t) => t.string(8, 'inline').bytes(9, new Uint8Array(4)));
      external(g, 'a', 'weights.bin');
      external(g, 'b', 'weights.bin');
    })
    .message(7, (g) => external(g, 'c', 'more.bin'))
    .finish();
}

describe('externalDataFiles', () => {
  it('lists each location once, across merged graph fields', () => {
    expect(externalDataFiles(modelWithExternal())).toEqual(['weights.bin', 'more.bin']);
  });

  it('finds model.onnx.data behind the fp16 tiny Llama and nothing behind self-contained files', () => {
    const tiny = sharedModel(TINY_RANDOM);
    const stories = sharedModel(STORIES);
    if (tiny) {
      expect(externalDataFiles(readFileSync(`${tiny}/onnx/model_fp16.onnx`))).toEqual(['model.onnx.data']);
      expect(externalDataFiles(readFileSync(`${tiny}/onnx/model.onnx`))).toEqual([]);
    }
    if (stories) expect(externalDataFiles(readFileSync(`${stories}/onnx/model.onnx`))).toEqual([]);
  });
});
