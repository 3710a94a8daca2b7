// Prompts of an exact token length (special tokens included, as the server and the pipeline count
// them), each starting with a word whose first token no earlier prompt of this run started with.
// Distinct first tokens keep edgellm's prefix cache (which reuses >= 2 shared tokens) from serving a
// measured prompt out of an earlier one's KV.
import { AutoTokenizer, env } from '@huggingface/transformers';

const WORDS = `time year people way day man thing woman life child world school state family student group
country problem hand part place case week company system program question work government number night
point home water room mother area money story fact month lot right study book eye job word business issue
side kind head house service friend father power hour game line end member law car city community name
president team minute idea kid body information back parent face others level office door health person art
war history party result change morning reason research girl guy moment air teacher force education foot
boy age policy music market sense nation plan college interest death experience effect class control care
field development role effort rate heart drug show leader light voice wife police mind price report decision
son view relationship town road arm difference value building action model season society tax director
position player record paper space ground form event official matter center couple site project activity
star table need court oil situation cost industry figure street image phone data picture practice piece land
product doctor wall patient worker news test movie north love support technology step baby computer type
attention film tree source organization hair window evidence population truth rule chance river garden
mountain ocean forest island bridge castle village winter summer autumn spring morning evening candle
mirror letter window pencil dragon planet rocket engine violin guitar apple orange lemon bread cheese
butter honey sugar coffee silver golden purple yellow gentle quiet sudden bright simple modern ancient
strange famous happy lucky brave clever proud careful honest`.split(/\s+/).filter(Boolean);

export class PromptMaker {
  static async create(dir, seed = 1) {
    env.allowRemoteModels = false;
    const tok = await AutoTokenizer.from_pretrained(dir);
    return new PromptMaker(tok, seed);
  }

  constructor(tokenizer, seed) {
    this.tok = tokenizer;
    this.state = seed >>> 0 || 1;
    this.usedFirst = new Set();
    // first words: each word capitalised and lower-case ("▁Time" and "▁time" are different tokens)
    this.firstWords = [...WORDS.map((w) => w[0].toUpperCase() + w.slice(1)), ...WORDS];
  }

  count(text) {
    return this.tok.encode(text).length;
  }

  rand() {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 2 ** 32;
  }

  word() {
    return WORDS[Math.floor(this.rand() * WORDS.length)];
  }

  /** A first word whose first real token is new in this run (falls back to any word when exhausted). */
  firstWord() {
    while (this.firstWords.length) {
      const i = Math.floor(this.rand() * this.firstWords.length);
      const w = this.firstWords.splice(i, 1)[0];
      const ids = this.tok.encode(w, { add_special_tokens: false });
      if (!this.usedFirst.has(ids[0])) {
        this.usedFirst.add(ids[0]);
        return w;
      }
    }
    return this.word();
  }

  /** Text of exactly `tokens` tokens (special tokens included), starting with a fresh first token. */
  exact(tokens, { fresh = true } = {}) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const words = [fresh ? this.firstWord() : this.word()];
      let text = words[0];
      let n = this.count(text);
      let guard = 0;
      while (n < tokens && guard++ < 4 * tokens) {
        const next = `${text} ${this.word()}`;
        const m = this.count(next);
        if (m <= tokens) {
          text = next;
          n = m;
        } else if (n === tokens - 1) {
          // try a few words for the last single token
          for (let k = 0; k < 40 && n < tokens; k++) {
            const cand = `${text} ${this.word()}`;
            if (this.count(cand) === tokens) {
              text = cand;
              n = tokens;
            }
          }
          break;
        }
      }
      if (n === tokens) return text;
    }
    throw new Error(`could not make a prompt of exactly ${tokens} tokens`);
  }

  /** Roughly `tokens` tokens of words, no uniqueness (for the memory soak). */
  loose(tokens) {
    const words = [];
    for (let i = 0; i < Math.max(1, Math.round(tokens * 0.75)); i++) words.push(this.word());
    return words.join(' ');
  }
}
