/**
 * Byte helpers shared by request bodies, model downloads and the protobuf writer.
 * @module
 */

/** The chunks as one array of `size` bytes (their total); a single chunk is returned as it is. */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
