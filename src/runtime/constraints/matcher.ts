/**
 * A byte-level pushdown matcher over a flattened grammar, after llama.cpp's grammar sampler: the
 * state is a set of stacks, each stack's top a terminal (a byte set) and the rest return
 * positions. Stacks are hash-consed (one id per distinct (position, parent) pair), so a state is a
 * small sorted array of ids, states compare by key, and every (stack, byte) transition is computed
 * once per grammar and then looked up.
 * @module
 */
import { ConstraintError, END, type FlatGrammar } from './grammar.js';

/** The stack id meaning "the grammar is complete here". */
export const ACCEPT = 0;

/** A matcher state: sorted distinct stack ids (ACCEPT among them when the text so far is complete). */
export type MatchState = Int32Array;

const EMPTY: MatchState = new Int32Array(0);
const MAX_NODES = 1 << 23;
const MAX_MEMO = 4_000_000;
/** Interned states kept for walks (1 KiB of transitions each) before they are dropped and rebuilt. */
const MAX_INTERNED = 32_768;
const UNKNOWN = -2;
export const REFUSED = -1;

export class ByteMatcher {
  private readonly code: Int32Array;
  private readonly sets: Uint32Array[];
  private readonly alts: number[][];
  private nodePos: number[] = [-1];
  private nodeParent: number[] = [-1];
  private readonly nodeIds = new Map<number, number>();
  private readonly stepMemo = new Map<number, MatchState>();
  readonly initial: MatchState;
  /** Fewest bytes from each position to the end of its alternative (Infinity: none). */
  private readonly posMin: Float64Array;
  /** Fewest bytes that complete each stack, by stack id (NaN: not computed yet). */
  private closeCost: number[] = [0];
  /** The most bytes entering any rule can add to the closing distance (a bound used by budget checks). */
  readonly maxRuleMin: number;

  constructor(private readonly grammar: FlatGrammar) {
    this.code = grammar.code;
    this.sets = grammar.sets;
    this.alts = grammar.alts;
    const { posMin, ruleMin } = minimalLengths(grammar);
    this.posMin = posMin;
    this.maxRuleMin = Math.max(0, ...ruleMin.filter((v) => Number.isFinite(v)));
    const out = new Set<number>();
    for (const a of this.alts[grammar.root]) this.expandInto(a, -1, out, 0);
    this.initial = Int32Array.from(out).sort();
  }

  /** Number of distinct stacks seen so far (for tests and diagnostics). */
  get stackCount(): number {
    return this.nodePos.length;
  }

  private intern(pos: number, parent: number): number {
    const key = pos * 16777216 + (parent + 1);
    let id = this.nodeIds.get(key);
    if (id === undefined) {
      id = this.nodePos.length;
      if (id >= MAX_NODES) throw new ConstraintError('The grammar needs too many parser states (too deeply nested).');
      this.nodePos.push(pos);
      this.nodeParent.push(parent);
      this.nodeIds.set(key, id);
    }
    return id;
  }

  /** Adds the stacks reached from position `pos` with return stack `parent`, tops all terminals. */
  private expandInto(pos: number, parent: number, out: Set<number>, depth: number): void {
    if (depth > 10_000) throw new ConstraintError('The grammar nests too deeply.');
    const e = this.code[pos];
    if (e === END) {
      if (parent < 0) out.add(ACCEPT);
      else this.expandInto(this.nodePos[parent], this.nodeParent[parent], out, depth + 1);
    } else if (e >= 0) {
      out.add(this.intern(pos, parent));
    } else {
      const rule = -(e + 2);
      // A reference in tail position returns straight to the parent: right recursion stays flat.
      const ret = this.code[pos + 1] === END ? parent : this.intern(pos + 1, parent);
      for (const a of this.alts[rule]) this.expandInto(a, ret, out, depth + 1);
    }
  }

  /** The stacks one stack becomes after `byte` (empty when the byte is not allowed). */
  private stepStack(stack: number, byte: number): MatchState {
    if (stack === ACCEPT) return EMPTY;
    const pos = this.nodePos[stack];
    const set = this.sets[this.code[pos]];
    if (((set[byte >> 5] >>> (byte & 31)) & 1) === 0) return EMPTY;
    const key = stack * 256 + byte;
    let next = this.stepMemo.get(key);
    if (next === undefined) {
      const out = new Set<number>();
      this.expandInto(pos + 1, this.nodeParent[stack], out, 0);
      next = Int32Array.from(out).sort();
      if (this.stepMemo.size > MAX_MEMO) this.stepMemo.clear();
      this.stepMemo.set(key, next);
    }
    return next;
  }

  /** The state after one byte; empty when no stack allows it. */
  step(state: MatchState, byte: number): MatchState {
    if (state.length === 1) return this.stepStack(state[0], byte);
    let result: MatchState = EMPTY;
    let merged: Set<number> | undefined;
    for (let i = 0; i < state.length; i++) {
      const next = this.stepStack(state[i], byte);
      if (next.length === 0) continue;
      if (result.length === 0) result = next;
      else {
        merged ??= new Set(result);
        for (const s of next) merged.add(s);
      }
    }
    return merged ? Int32Array.from(merged).sort() : result;
  }

  // Interned states with per-state transition tables, for the vocabulary walk: after the first
  // visit, a (state, byte) step is one typed-array read instead of hashing stacks.
  private readonly stateIds = new Map<string, number>();
  private stateList: MatchState[] = [];
  private trans: Int32Array[] = [];

  /** A small integer for a non-empty state (the same for equal states). */
  internState(state: MatchState): number {
    const key = ByteMatcher.key(state);
    let id = this.stateIds.get(key);
    if (id === undefined) {
      if (this.stateList.length >= MAX_INTERNED) this.resetInterned();
      id = this.stateList.length;
      this.stateList.push(state);
      this.trans.push(new Int32Array(256).fill(UNKNOWN));
      this.stateIds.set(key, id);
    }
    return id;
  }

  stateOf(id: number): MatchState {
    return this.stateList[id];
  }

  /** The interned state after one byte, or REFUSED. Ids stay valid until `internState` resets them (between walks). */
  stepId(id: number, byte: number): number {
    const row = this.trans[id];
    let next = row[byte];
    if (next === UNKNOWN) {
      const s = this.step(this.stateList[id], byte);
      next = s.length === 0 ? REFUSED : this.internStable(s);
      row[byte] = next;
    }
    return next;
  }

  /** Interns without resetting (inside a walk, ids in use must stay valid; the cap is checked at its start). */
  private internStable(state: MatchState): number {
    const key = ByteMatcher.key(state);
    let id = this.stateIds.get(key);
    if (id === undefined) {
      id = this.stateList.length;
      this.stateList.push(state);
      this.trans.push(new Int32Array(256).fill(UNKNOWN));
      this.stateIds.set(key, id);
    }
    return id;
  }

  private resetInterned(): void {
    this.stateIds.clear();
    this.stateList = [];
    this.trans = [];
  }

  /** The state after `bytes`, or an empty state as soon as one byte is refused. */
  stepBytes(state: MatchState, bytes: Uint8Array): MatchState {
    let s = state;
    for (let i = 0; i < bytes.length && s.length > 0; i++) s = this.step(s, bytes[i]);
    return s;
  }

  /** Whether the text so far is a complete match. */
  accepts(state: MatchState): boolean {
    return state.length > 0 && state[0] === ACCEPT;
  }

  /** Whether the match is complete and nothing can follow. */
  onlyEnd(state: MatchState): boolean {
    return state.length === 1 && state[0] === ACCEPT;
  }

  /** Whether a whole text matches (for tests). */
  matches(text: string | Uint8Array): boolean {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    return this.accepts(this.stepBytes(this.initial, bytes));
  }

  /** Whether a text is a prefix of some match (for tests). */
  isPrefix(text: string): boolean {
    return this.stepBytes(this.initial, new TextEncoder().encode(text)).length > 0;
  }

  /** Fewest bytes that complete the text from this state (0 when complete; Infinity when it cannot be). */
  minClose(state: MatchState): number {
    let best = Infinity;
    for (let i = 0; i < state.length; i++) best = Math.min(best, this.stackClose(state[i]));
    return best;
  }

  private stackClose(stack: number): number {
    const cached = this.closeCost[stack];
    if (cached !== undefined) return cached;
    // iterative walk up the parents, then fill in on the way back
    const chain: number[] = [];
    let s = stack;
    while (s >= 0 && this.closeCost[s] === undefined) {
      chain.push(s);
      s = this.nodeParent[s];
    }
    let acc = s >= 0 ? this.closeCost[s] : 0;
    for (let i = chain.length - 1; i >= 0; i--) {
      acc += this.posMin[this.nodePos[chain[i]]];
      this.closeCost[chain[i]] = acc;
    }
    return acc;
  }

  // Context: a state's stacks all continue, once their construct is over, into the same ancestor
  // stack (inside a JSON string, the place after the string). Cut there, the state is the same in
  // every context, so what it allows can be shared (see TokenMasker).

  /** The lowest stack that is a strict ancestor of every stack of the state; -1 when there is none. */
  commonAncestor(state: MatchState): number {
    if (state.length === 0 || state[0] === ACCEPT) return -1;
    const chain: number[] = [];
    const index = new Map<number, number>();
    for (let a = this.nodeParent[state[0]]; a >= 0; a = this.nodeParent[a]) {
      index.set(a, chain.length);
      chain.push(a);
    }
    let lowest = 0;
    for (let i = 1; i < state.length && chain.length > 0; i++) {
      let k = -1;
      for (let a = this.nodeParent[state[i]]; a >= 0 && k < 0; a = this.nodeParent[a]) k = index.get(a) ?? -1;
      if (k < 0) return -1;
      if (k > lowest) lowest = k;
    }
    return chain.length > 0 ? chain[lowest] : -1;
  }

  /**
   * The state with every stack's chain cut just below `ancestor` (a strict ancestor of each
   * stack): returning to `ancestor` becomes ACCEPT. Bytes take the detached state where they take
   * the real one until the return; from there the real state goes on with `continuation(ancestor)`.
   */
  detach(state: MatchState, ancestor: number): MatchState {
    const memo = new Map<number, number>();
    const cut = (s: number): number => {
      let id = memo.get(s);
      if (id === undefined) {
        const parent = this.nodeParent[s];
        id = this.intern(this.nodePos[s], parent === ancestor ? -1 : cut(parent));
        memo.set(s, id);
      }
      return id;
    };
    return Int32Array.from(new Set(Array.from(state, cut))).sort();
  }

  /** The stacks a return to stack `ancestor` leads to (what follows the construct it called). */
  continuation(ancestor: number): MatchState {
    const out = new Set<number>();
    this.expandInto(this.nodePos[ancestor], this.nodeParent[ancestor], out, 0);
    return Int32Array.from(out).sort();
  }

  private readonly setKeys: string[] = [];

  /**
   * A text that describes how a state matches bytes in any grammar (the code each stack has left,
   * and every rule it can reach, renumbered), so that equal keys from two grammars mean equal
   * behaviour; undefined when the description would pass `limit` characters.
   */
  structureKey(state: MatchState, limit = 8192): string | undefined {
    const ruleNo = new Map<number, number>();
    const queue: number[] = [];
    let size = 0;
    const setKey = (i: number) => (this.setKeys[i] ??= Array.from(this.sets[i], (w) => w.toString(36)).join('.'));
    const suffix = (pos: number): string => {
      let text = '';
      for (let p = pos; this.code[p] !== END; p++) {
        const e = this.code[p];
        if (e >= 0) text += setKey(e) + ' ';
        else {
          const r = -(e + 2);
          let n = ruleNo.get(r);
          if (n === undefined) {
            ruleNo.set(r, (n = ruleNo.size));
            queue.push(r);
          }
          text += `r${n} `;
        }
      }
      size += text.length;
      return text;
    };
    // a stable order across grammars: by the top terminal's set, then by id
    const tops = Array.from(state).map((s) => ({ s, top: s === ACCEPT ? '' : setKey(this.code[this.nodePos[s]]) }));
    tops.sort((x, y) => (x.top < y.top ? -1 : x.top > y.top ? 1 : x.s - y.s));
    const parts: string[] = [];
    for (const { s } of tops) {
      let text = '';
      for (let a = s; a > ACCEPT && size <= limit; a = this.nodeParent[a]) text += suffix(this.nodePos[a]) + '/';
      parts.push(s === ACCEPT ? '!' : text);
    }
    for (let q = 0; q < queue.length && size <= limit; q++) parts.push(`R${q}=` + this.alts[queue[q]].map(suffix).join('|'));
    return size <= limit ? parts.join(';') : undefined;
  }

  static key(state: MatchState): string {
    return state.join(',');
  }
}

/** Fewest bytes from each position to the end of its alternative, and for each rule, by fixed point. */
function minimalLengths(g: FlatGrammar): { posMin: Float64Array; ruleMin: number[] } {
  const posMin = new Float64Array(g.code.length).fill(Infinity);
  const ruleMin = new Array<number>(g.alts.length).fill(Infinity);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < g.alts.length; r++) {
      for (const start of g.alts[r]) {
        let end = start;
        while (g.code[end] !== END) end++;
        posMin[end] = 0;
        for (let p = end - 1; p >= start; p--) {
          const e = g.code[p];
          const v = (e >= 0 ? 1 : ruleMin[-(e + 2)]) + posMin[p + 1];
          if (v < posMin[p]) {
            posMin[p] = v;
            changed = true;
          }
        }
        if (posMin[start] < ruleMin[r]) {
          ruleMin[r] = posMin[start];
          changed = true;
        }
      }
    }
  }
  return { posMin, ruleMin };
}
