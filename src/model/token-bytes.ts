/**
 * The bytes each token adds to the decoded text, read from a tokenizer.json: what logprobs report as
 * a token's `bytes` and what constrained decoding matches tokens against. Handles the two decoders
 * causal LMs use: byte-level BPE (GPT-2's byte-to-character table: SmolLM, Llama 3, Qwen) and
 * SentencePiece-style BPE (`▁` for a space, `<0xNN>` byte-fallback tokens: Llama 2, stories260K).
 * @module
 */

type Json = Record<string, unknown>;

/**
 * GPT-2's table from the 256 byte values to printable characters (index = byte): printable
 * Latin-1 bytes map to themselves, the others to U+0100 onwards in byte order.
 */
export function byteLevelSymbols(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + next++));
}

function byteLevelDecoder(): Map<string, number> {
  return new Map(byteLevelSymbols().map((symbol, b) => [symbol, b]));
}

/** Decoder types in the tokenizer's decoder, flattening `Sequence`. */
function decoderTypes(decoder: unknown): string[] {
  if (!decoder || typeof decoder !== 'object') return [];
  const d = decoder as Json;
  if (d.type === 'Sequence' && Array.isArray(d.decoders)) return d.decoders.flatMap(decoderTypes);
  return typeof d.type === 'string' ? [d.type] : [];
}

const utf8 = new TextEncoder();
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * One entry per token id: the bytes it adds to the text in the middle of a sequence, or null for a
 * special token (control tokens such as `<|im_end|>` are not text). Ids the tokenizer does not use
 * are null too. A leading space a SentencePiece decoder strips at the very start of a text is kept:
 * generated tokens always follow a prompt.
 */
export function tokenByteTable(tokenizerJson: object): (Uint8Array | null)[] {
  const json = tokenizerJson as Json;
  const model = (json.model ?? {}) as Json;
  const vocab = (model.vocab ?? {}) as Record<string, number> | Array<[string, number]>;
  const entries: Array<[string, number]> = Array.isArray(vocab)
    ? vocab.map(([piece], id) => [piece, id]) // Unigram: [piece, score] pairs, id = position
    : Object.entries(vocab);
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as Array<{ id: number; content: string; special?: boolean }>;
  // A loop, not Math.max(...ids): spread arguments overflow the stack on 262k-token vocabularies (Gemma 3).
  let size = 0;
  for (const [, id] of entries) size = Math.max(size, id + 1);
  for (const token of added) size = Math.max(size, token.id + 1);
  const table: (Uint8Array | null)[] = new Array(size).fill(null);

  const types = decoderTypes(json.decoder);
  const byteLevel = types.includes('ByteLevel') ? byteLevelDecoder() : undefined;
  const byteFallback = types.includes('ByteFallback') || model.byte_fallback === true;
  const metaspace = types.includes('Metaspace') || types.includes('Replace');
  for (const [piece, id] of entries) {
    if (byteLevel) {
      const bytes = [...piece].map((ch) => byteLevel.get(ch));
      table[id] = bytes.every((b) => b !== undefined) ? Uint8Array.from(bytes as number[]) : utf8.encode(piece);
      continue;
    }
    const byte = byteFallback ? BYTE_TOKEN.exec(piece) : null;
    table[id] = byte ? Uint8Array.of(parseInt(byte[1], 16)) : utf8.encode(metaspace ? piece.replaceAll('\u2581', ' ') : piece);
  }
  for (const token of added) table[token.id] = token.special === false ? utf8.encode(token.content) : null;
  return table;
}
