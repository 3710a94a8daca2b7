/**
 * Streaming detokenization: token ids in, text deltas out.
 *
 * Uses the prefix/read-offset window of HF text-generation-inference: the text of the new tokens is
 * `decode(window + new).slice(decode(window).length)`, where `window` is the tokens emitted in the
 * previous step. Decoding with a little left context keeps SentencePiece's leading space (its decoder
 * strips one space at the start of every decode) and the cost per step is O(window), not O(total).
 * A decode ending in U+FFFD (an incomplete byte-fallback UTF-8 sequence) is held back until it completes.
 * @module
 */

const REPLACEMENT = '\uFFFD';

export class IncrementalDetokenizer {
  /** The window: tokens from the prefix offset on (older ones are dropped, never needed again). */
  private tokens: number[];
  /** Read offset within the window: `tokens[0:read]` is emitted left context, `tokens[read:]` pending. */
  private read: number;
  /** Chars of the text after `tokens[0:read]` already emitted while a trailing U+FFFD is held back. */
  private sent = 0;

  /**
   * @param decode ids -> text (special tokens skipped).
   * @param context the last few prompt token ids, so that the first generated token keeps its
   *   leading space (SentencePiece tokenizers strip a leading space at the start of a decode).
   */
  constructor(
    private readonly decode: (ids: number[]) => string,
    context: number[] = [],
  ) {
    this.tokens = context.slice();
    this.read = this.tokens.length;
  }

  /** Appends ids; returns the newly completed text (maybe ''). Incomplete UTF-8 at the end is held back. */
  push(ids: number[]): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.tokens.push(id);
    return this.step(false);
  }

  /** End of generation: returns whatever is held back (a genuinely invalid sequence comes out as U+FFFD). */
  flush(): string {
    return this.step(true);
  }

  private step(final: boolean): string {
    if (this.read === this.tokens.length) return '';
    const prefixText = this.read === 0 ? '' : this.decode(this.tokens.slice(0, this.read));
    const newText = this.decode(this.tokens);
    // Text ending in U+FFFD may be an incomplete sequence: release only what precedes it, keep the window.
    let end = newText.length;
    if (!final) while (end > prefixText.length && newText[end - 1] === REPLACEMENT) end--;
    const from = prefixText.length + this.sent;
    const out = end > from ? newText.slice(from, end) : '';
    if (final || (end === newText.length && end > prefixText.length)) {
      this.tokens = this.tokens.slice(this.read); // the tokens just emitted become the next left context
      this.read = this.tokens.length;
      this.sent = 0;
    } else {
      this.sent += out.length;
    }
    return out;
  }
}
