/**
 * JSON and JSON Schema to grammars. The grammar generates a subset of the valid documents (a
 * bounded amount of whitespace, properties in the schema's order, no extra properties beside
 * declared ones, numbers without exponents when bounded), so that every output validates while
 * the model keeps as much freedom as the schema gives it. Keywords the grammar cannot enforce are
 * refused by name instead of being silently ignored.
 * @module
 */
import { alt, chars, charsOf, ConstraintError, flattenGrammar, lit, opt, ref, rep, seq, type Expr, type Grammar } from './grammar.js';
import { ByteMatcher, type MatchState } from './matcher.js';
import { parseRegex } from './regex.js';

type Schema = Record<string, unknown> | boolean;

/** Keywords that only annotate: accepted and ignored. */
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly',
  '$defs', 'definitions', 'strict', 'discriminator', 'contentMediaType', 'contentEncoding',
]);
const SUPPORTED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'enum', 'const', 'items', 'prefixItems', 'minItems',
  'maxItems', 'anyOf', 'oneOf', 'allOf', '$ref', 'propertyNames', 'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'nullable',
]);
const FORMATS = ['date', 'time', 'date-time', 'uuid', 'email', 'ipv4', 'uri'] as const;

/** The supported keywords, for documentation and error messages. */
export const SUPPORTED_SCHEMA_KEYWORDS = [...SUPPORTED];
export const SUPPORTED_STRING_FORMATS: readonly string[] = FORMATS;

// Whitespace between tokens: nothing, one space, or a line break and up to 8 spaces of indentation.
// Bounded, so that a model cannot spend its tokens on blank lines (on a small vocabulary every
// space is a token).
const WS = opt(alt(lit(' '), seq(lit('\n'), rep(lit(' '), 0, 8))));
const HEX = chars([[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]]);
const DIGIT = chars([[0x30, 0x39]]);
const DIGIT19 = chars([[0x31, 0x39]]);
/** One character of a JSON string: anything but `"`, `\` and controls, or an escape. */
const STRING_CHAR = alt(
  chars([[0x22, 0x22], [0x5c, 0x5c], [0, 0x1f]], true),
  seq(lit('\\'), alt(charsOf('"\\/bfnrt'), seq(lit('u'), rep(HEX, 4, 4)))),
);
const INT_DIGITS = 16;

function baseRules(): Map<string, Expr> {
  const rules = new Map<string, Expr>();
  rules.set('ws', WS);
  rules.set('char', STRING_CHAR);
  rules.set('string', seq(lit('"'), rep(ref('char'), 0), lit('"')));
  rules.set('integer', seq(opt(lit('-')), alt(lit('0'), seq(DIGIT19, rep(DIGIT, 0, INT_DIGITS - 1)))));
  rules.set('number', seq(ref('integer'), opt(seq(lit('.'), rep(DIGIT, 1, 16))), opt(seq(charsOf('eE'), opt(charsOf('+-')), rep(DIGIT, 1, 2)))));
  rules.set('boolean', alt(lit('true'), lit('false')));
  rules.set('null', lit('null'));
  rules.set('value', alt(ref('object'), ref('array'), ref('string'), ref('number'), ref('boolean'), ref('null')));
  const member = seq(ref('string'), ref('ws'), lit(':'), ref('ws'), ref('value'));
  rules.set('object', seq(lit('{'), ref('ws'), opt(seq(member, rep(seq(ref('ws'), lit(','), ref('ws'), member), 0))), ref('ws'), lit('}')));
  rules.set('array', seq(lit('['), ref('ws'), opt(seq(ref('value'), rep(seq(ref('ws'), lit(','), ref('ws'), ref('value')), 0))), ref('ws'), lit(']')));
  return rules;
}

/** Any JSON object (`response_format: {"type": "json_object"}`), with optional surrounding whitespace. */
export function jsonObjectGrammar(): Grammar {
  const rules = baseRules();
  rules.set('root', seq(ref('ws'), ref('object')));
  return { root: 'root', rules };
}

/** A grammar for the documents valid under `schema`. Throws ConstraintError naming what it cannot enforce. */
export function jsonSchemaGrammar(schema: unknown): Grammar {
  if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
    throw new ConstraintError('The JSON Schema must be an object.');
  }
  const c = new SchemaCompiler(schema as Schema);
  const rules = c.rules;
  rules.set('root', seq(ref('ws'), c.compile(schema as Schema, '#')));
  return { root: 'root', rules };
}

class SchemaCompiler {
  readonly rules = baseRules();
  private readonly refs = new Map<string, string>();
  private counter = 0;

  constructor(private readonly rootSchema: Schema) {}

  private fresh(hint: string): string {
    return `${hint.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40)}-${this.counter++}`;
  }

  compile(schema: Schema, path: string): Expr {
    if (schema === true) return ref('value');
    if (schema === false) throw new ConstraintError(`The schema at ${path} is \`false\`: nothing can match it.`);
    const s = schema;
    const unknown = Object.keys(s).filter((k) => !SUPPORTED.has(k) && !ANNOTATIONS.has(k));
    if (unknown.length > 0) {
      throw new ConstraintError(
        `Unsupported JSON Schema keyword${unknown.length > 1 ? 's' : ''} at ${path}: ${unknown.join(', ')}. ` +
          `Supported: ${SUPPORTED_SCHEMA_KEYWORDS.join(', ')}.`,
      );
    }
    if (s.$ref !== undefined) {
      if (Object.keys(s).some((k) => SUPPORTED.has(k) && k !== '$ref')) {
        throw new ConstraintError(`At ${path}: $ref beside other keywords is not supported.`);
      }
      return ref(this.resolve(String(s.$ref), path));
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) throw new ConstraintError(`At ${path}: allOf is only supported with one schema.`);
      const rest = { ...s };
      delete rest.allOf;
      if (Object.keys(rest).some((k) => SUPPORTED.has(k))) throw new ConstraintError(`At ${path}: allOf beside other keywords is not supported.`);
      return this.compile(s.allOf[0] as Schema, `${path}/allOf/0`);
    }
    if (s.oneOf !== undefined) {
      if (!Array.isArray(s.oneOf) || s.oneOf.length === 0) throw new ConstraintError(`At ${path}: oneOf must be a non-empty array.`);
      // "Exactly one" is "any" when no document can match two branches: then it is compiled as anyOf.
      if (!this.exclusive(s.oneOf as Schema[])) {
        throw new ConstraintError(
          `At ${path}: oneOf is only supported when no value can match two branches (each an object with a required ` +
            'property whose const/enum values differ between branches, as a discriminator; or each of another type). Use anyOf.',
        );
      }
      const rest: Record<string, unknown> = { ...s, anyOf: s.oneOf };
      delete rest.oneOf;
      return this.compile(rest, path);
    }
    if (s.anyOf !== undefined) {
      if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) throw new ConstraintError(`At ${path}: anyOf must be a non-empty array.`);
      const rest = { ...s };
      delete rest.anyOf;
      // Sibling keywords apply to every branch (pydantic puts `default`/`title` there; those are annotations).
      const siblings = Object.keys(rest).filter((k) => SUPPORTED.has(k));
      return alt(...(s.anyOf as Schema[]).map((b, i) => this.compile(siblings.length && typeof b === 'object' ? { ...rest, ...b } : b, `${path}/anyOf/${i}`)));
    }
    if (s.const !== undefined) return lit(JSON.stringify(s.const));
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new ConstraintError(`At ${path}: enum must be a non-empty array.`);
      return alt(...s.enum.map((v) => lit(JSON.stringify(v))));
    }
    let types: string[];
    if (s.type === undefined) types = this.inferTypes(s);
    else if (typeof s.type === 'string') types = [s.type];
    else if (Array.isArray(s.type) && s.type.length > 0) types = s.type.map(String);
    else throw new ConstraintError(`At ${path}: type must be a string or a non-empty array.`);
    if (s.nullable === true && !types.includes('null')) types.push('null');
    return alt(...types.map((t) => this.typed(t, s, path)));
  }

  /** A schema with local `$ref`s and one-schema `allOf`s followed (undefined when one does not resolve). */
  private deref(schema: Schema, depth = 0): Schema | undefined {
    if (typeof schema !== 'object' || depth > 32) return schema;
    if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#')) {
      let target: unknown = this.rootSchema;
      for (const part of schema.$ref.slice(1).split('/').filter(Boolean)) {
        const key = decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~');
        target = target && typeof target === 'object' ? (target as Record<string, unknown>)[key] : undefined;
      }
      return target === undefined ? undefined : this.deref(target as Schema, depth + 1);
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return this.deref(schema.allOf[0] as Schema, depth + 1);
    return schema;
  }

  /**
   * Whether no value can match two of these schemas: each is an object schema requiring one
   * common property whose allowed values (`const` or `enum`) differ between all branches (a
   * discriminator, as zod's discriminatedUnion and pydantic write), or each allows one type that
   * no other allows.
   */
  private exclusive(branches: Schema[]): boolean {
    const schemas = branches.map((b) => this.deref(b));
    if (schemas.length === 1) return true;
    if (schemas.some((b) => typeof b !== 'object' || b === undefined)) return false;
    const objects = schemas as Array<Record<string, unknown>>;
    const valuesOf = (b: Record<string, unknown>, name: string): string[] | undefined => {
      if (!Array.isArray(b.required) || !b.required.includes(name)) return undefined;
      const prop = this.deref(((b.properties ?? {}) as Record<string, Schema>)[name] ?? true);
      if (typeof prop !== 'object' || prop === undefined) return undefined;
      if (prop.const !== undefined) return [JSON.stringify(prop.const)];
      return Array.isArray(prop.enum) ? prop.enum.map((v) => JSON.stringify(v)) : undefined;
    };
    const first = objects[0];
    for (const name of Array.isArray(first.required) ? (first.required as string[]) : []) {
      const seen = new Set<string>();
      const disjoint = objects.every((b) => {
        const values = valuesOf(b, name);
        if (!values || values.some((v) => seen.has(v))) return false;
        values.forEach((v) => seen.add(v));
        return true;
      });
      if (disjoint) return true;
    }
    // Distinct single types (integer and number overlap, so they count as one).
    const kinds = objects.map((b) => (typeof b.type === 'string' && b.nullable !== true ? (b.type === 'integer' ? 'number' : b.type) : undefined));
    return kinds.every((k) => k !== undefined) && new Set(kinds).size === kinds.length;
  }

  /** Types implied by the keywords present when `type` is absent. */
  private inferTypes(s: Record<string, unknown>): string[] {
    if (s.properties !== undefined || s.additionalProperties !== undefined || s.required !== undefined) return ['object'];
    if (s.items !== undefined || s.prefixItems !== undefined || s.minItems !== undefined || s.maxItems !== undefined) return ['array'];
    if (s.pattern !== undefined || s.format !== undefined || s.minLength !== undefined || s.maxLength !== undefined) return ['string'];
    if (s.minimum !== undefined || s.maximum !== undefined || s.exclusiveMinimum !== undefined || s.exclusiveMaximum !== undefined) return ['number'];
    return ['object', 'array', 'string', 'number', 'boolean', 'null'];
  }

  private resolve(pointer: string, path: string): string {
    let name = this.refs.get(pointer);
    if (name !== undefined) return name;
    if (!pointer.startsWith('#')) throw new ConstraintError(`At ${path}: only local $ref ("#/...") is supported, not ${pointer}.`);
    let target: unknown = this.rootSchema;
    for (const part of pointer.slice(1).split('/').filter(Boolean)) {
      const key = decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~');
      target = target && typeof target === 'object' ? (target as Record<string, unknown>)[key] : undefined;
    }
    if (target === undefined) throw new ConstraintError(`At ${path}: $ref ${pointer} does not resolve.`);
    name = this.fresh(`ref-${pointer.split('/').pop()}`);
    this.refs.set(pointer, name);
    this.rules.set(name, this.compile(target as Schema, pointer));
    return name;
  }

  private typed(type: string, s: Record<string, unknown>, path: string): Expr {
    switch (type) {
      case 'object':
        return this.object(s, path);
      case 'array':
        return this.array(s, path);
      case 'string':
        return this.string(s, path);
      case 'integer':
        return this.numberRange(s, path, true);
      case 'number':
        return this.numberRange(s, path, false);
      case 'boolean':
        return ref('boolean');
      case 'null':
        return ref('null');
      default:
        throw new ConstraintError(`At ${path}: unknown type ${JSON.stringify(type)}.`);
    }
  }

  private object(s: Record<string, unknown>, path: string): Expr {
    // zod's z.record(z.string(), ...) writes propertyNames {type: "string"}: true of every key. Others would need enforcing.
    const keys = s.propertyNames;
    const vacuous = (k: unknown) =>
      k === undefined || k === true || (typeof k === 'object' && k !== null && Object.entries(k).every(([key, v]) => ANNOTATIONS.has(key) || (key === 'type' && v === 'string')));
    if (!vacuous(keys)) {
      throw new ConstraintError(`At ${path}: propertyNames is only supported as {"type": "string"} (true of every key).`);
    }
    const props = (s.properties ?? {}) as Record<string, Schema>;
    if (typeof props !== 'object' || Array.isArray(props)) throw new ConstraintError(`At ${path}: properties must be an object.`);
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const names = Object.keys(props);
    for (const r of required) if (!names.includes(r)) names.push(r); // required but undeclared: any value
    const extra = s.additionalProperties;
    if (names.length === 0) {
      if (extra === false) return seq(lit('{'), ref('ws'), lit('}'));
      const value = extra === undefined || extra === true ? ref('value') : this.compile(extra as Schema, `${path}/additionalProperties`);
      const member = seq(ref('string'), ref('ws'), lit(':'), ref('ws'), value);
      return seq(lit('{'), ref('ws'), opt(seq(member, rep(seq(ref('ws'), lit(','), ref('ws'), member), 0))), ref('ws'), lit('}'));
    }
    const kv = names.map((n) => {
      const sub = props[n] ?? true;
      const name = this.fresh(`prop-${n}`);
      this.rules.set(name, seq(lit(JSON.stringify(n)), ref('ws'), lit(':'), ref('ws'), this.compile(sub, `${path}/properties/${n}`)));
      return ref(name);
    });
    const sep = seq(ref('ws'), lit(','), ref('ws'));
    // after[i]: members i.. once something was written (each with a leading comma);
    // first[i]: members i.. when nothing was written yet. Both linear in the number of properties.
    const after: string[] = [];
    const first: string[] = [];
    for (let i = names.length; i >= 0; i--) {
      after[i] = this.fresh('after');
      first[i] = this.fresh('first');
      if (i === names.length) {
        this.rules.set(after[i], lit(''));
        this.rules.set(first[i], lit(''));
        continue;
      }
      const one = seq(sep, kv[i]);
      this.rules.set(after[i], seq(required.has(names[i]) ? one : opt(one), ref(after[i + 1])));
      const withIt = seq(kv[i], ref(after[i + 1]));
      this.rules.set(first[i], required.has(names[i]) ? withIt : alt(withIt, ref(first[i + 1])));
    }
    return seq(lit('{'), ref('ws'), ref(first[0]), ref('ws'), lit('}'));
  }

  private array(s: Record<string, unknown>, path: string): Expr {
    const min = s.minItems === undefined ? 0 : Number(s.minItems);
    const max = s.maxItems === undefined ? Infinity : Number(s.maxItems);
    if (!Number.isInteger(min) || min < 0 || !(max === Infinity || (Number.isInteger(max) && max >= min))) {
      throw new ConstraintError(`At ${path}: minItems/maxItems must be integers with minItems <= maxItems.`);
    }
    const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as Schema[]) : [];
    const itemSchema = (s.items ?? true) as Schema;
    const sep = seq(ref('ws'), lit(','), ref('ws'));
    const name = this.fresh('item');
    const restItems = s.items === false ? undefined : name;
    if (restItems) this.rules.set(name, this.compile(itemSchema, `${path}/items`));
    const prefixRefs = prefix.map((p, i) => {
      const n = this.fresh(`prefix-${i}`);
      this.rules.set(n, this.compile(p, `${path}/prefixItems/${i}`));
      return ref(n);
    });
    // Element k (0-based) is prefix[k] or the items schema; lengths from min to max.
    const element = (k: number): Expr | undefined => (k < prefixRefs.length ? prefixRefs[k] : restItems ? ref(restItems) : undefined);
    const limit = max === Infinity ? Infinity : max;
    // tail(k): elements k.. given k were written (k >= 1), as a chain of rules.
    const tail = (k: number): Expr => {
      if (k >= limit) return lit('');
      if (k >= prefixRefs.length && limit === Infinity) {
        const more = rep(seq(sep, element(k)!), Math.max(0, min - k));
        return restItems ? more : lit('');
      }
      const e = element(k);
      if (!e) return lit('');
      const n = this.fresh('tail');
      const next = seq(sep, e, ref(n + '-r'));
      this.rules.set(n + '-r', tail(k + 1));
      this.rules.set(n, k < min ? next : opt(next));
      return ref(n);
    };
    if (max === 0 || element(0) === undefined) {
      if (min > 0) throw new ConstraintError(`At ${path}: minItems ${min} cannot be met.`);
      return seq(lit('['), ref('ws'), lit(']'));
    }
    if (min > prefixRefs.length && !restItems) throw new ConstraintError(`At ${path}: minItems ${min} cannot be met with items: false.`);
    const body = seq(element(0)!, tail(1));
    return seq(lit('['), ref('ws'), min > 0 ? body : opt(body), ref('ws'), lit(']'));
  }

  private string(s: Record<string, unknown>, path: string): Expr {
    const present = ['pattern', 'format'].filter((k) => s[k] !== undefined);
    const minLength = s.minLength === undefined ? 0 : Number(s.minLength);
    const maxLength = s.maxLength === undefined ? Infinity : Number(s.maxLength);
    if (!Number.isInteger(minLength) || minLength < 0 || !(maxLength === Infinity || (Number.isInteger(maxLength) && maxLength >= minLength))) {
      throw new ConstraintError(`At ${path}: minLength/maxLength must be integers with minLength <= maxLength.`);
    }
    if (present.length > 0 && (s.minLength !== undefined || s.maxLength !== undefined)) {
      throw new ConstraintError(`At ${path}: minLength/maxLength together with ${present.join('/')} are not supported.`);
    }
    if (present.length > 1) {
      // zod writes both for z.email(), z.uuid(), z.iso.date()...: the strings that match both.
      const f = String(s.format);
      const format = FORMAT_PATTERNS[f];
      if (!format) throw new ConstraintError(`At ${path}: string format ${JSON.stringify(f)} is not supported (supported: ${FORMATS.join(', ')}).`);
      return seq(lit('"'), ref(this.intersection(format, String(s.pattern), path)), lit('"'));
    }
    if (s.format !== undefined) {
      const f = String(s.format);
      const pattern = FORMAT_PATTERNS[f];
      if (!pattern) throw new ConstraintError(`At ${path}: string format ${JSON.stringify(f)} is not supported (supported: ${FORMATS.join(', ')}).`);
      return seq(lit('"'), parseRegex(pattern), lit('"'));
    }
    if (s.pattern !== undefined) {
      const source = String(s.pattern);
      const anchoredStart = source.startsWith('^');
      const anchoredEnd = /(^|[^\\])(\\\\)*\$$/.test(source);
      const body = jsonSafe(parseRegex(source));
      const any = rep(ref('char'), 0);
      return seq(lit('"'), anchoredStart ? lit('') : any, body, anchoredEnd ? lit('') : any, lit('"'));
    }
    if (minLength === 0 && maxLength === Infinity) return ref('string');
    if (minLength > 10_000 || (maxLength !== Infinity && maxLength > 10_000)) throw new ConstraintError(`At ${path}: string lengths above 10000 are not supported.`);
    return seq(lit('"'), rep(ref('char'), minLength, maxLength), lit('"'));
  }

  /**
   * A rule for the strings that match both a format's pattern (ASCII, anchored) and a schema
   * `pattern` (anchored or not): the product of their byte automata, written back as one rule per
   * reachable pair of states that can still reach a pair where both accept. Every format pattern
   * excludes `"`, `\\` and control characters, so the strings need no JSON escapes.
   */
  private intersection(format: string, pattern: string, path: string): string {
    const matcher = (e: Expr) => new ByteMatcher(flattenGrammar({ root: 'root', rules: new Map([['root', e]]) }));
    const any = rep(chars([[0, 0x10ffff]]), 0);
    const anchoredStart = pattern.startsWith('^');
    const anchoredEnd = /(^|[^\\])(\\\\)*\$$/.test(pattern);
    const f = matcher(parseRegex(format));
    const p = matcher(seq(anchoredStart ? lit('') : any, parseRegex(pattern), anchoredEnd ? lit('') : any));
    const keys = new Map<string, number>();
    const pairs: Array<[MatchState, MatchState]> = [];
    const edges: Array<Array<[number, number]>> = []; // per pair: [byte, target pair]
    const add = (a: MatchState, b: MatchState): number => {
      const key = `${ByteMatcher.key(a)}|${ByteMatcher.key(b)}`;
      let id = keys.get(key);
      if (id === undefined) {
        if (pairs.length >= 20_000) throw new ConstraintError(`At ${path}: pattern together with format ${JSON.stringify(format)} is too large to combine.`);
        id = pairs.length;
        keys.set(key, id);
        pairs.push([a, b]);
        edges.push([]);
      }
      return id;
    };
    add(f.initial, p.initial);
    for (let i = 0; i < pairs.length; i++) {
      const [a, b] = pairs[i];
      for (let byte = 0x20; byte < 0x7f; byte++) {
        const na = f.step(a, byte);
        if (na.length === 0) continue;
        const nb = p.step(b, byte);
        if (nb.length > 0) edges[i].push([byte, add(na, nb)]);
      }
    }
    // Keep the pairs from which both can still accept together.
    const accepting = pairs.map(([a, b]) => f.accepts(a) && p.accepts(b));
    const live = accepting.slice();
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i < pairs.length; i++) if (!live[i] && edges[i].some(([, t]) => live[t])) changed = live[i] = true;
    }
    if (!live[0]) throw new ConstraintError(`At ${path}: no string matches both the pattern and format ${JSON.stringify(format)} (as enforced: ${format}).`);
    const base = this.fresh('format-pattern');
    for (let i = 0; i < pairs.length; i++) {
      if (!live[i]) continue;
      const byTarget = new Map<number, number[]>();
      for (const [byte, t] of edges[i]) if (live[t]) byTarget.set(t, [...(byTarget.get(t) ?? []), byte]);
      const options: Expr[] = [...byTarget].map(([t, bytes]) => seq(chars(bytes.map((c) => [c, c])), ref(`${base}-${t}`)));
      if (accepting[i]) options.push(lit(''));
      this.rules.set(`${base}-${i}`, alt(...options));
    }
    return `${base}-0`;
  }

  private numberRange(s: Record<string, unknown>, path: string, integer: boolean): Expr {
    const num = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined || typeof v === 'boolean') return undefined; // draft-4 boolean exclusives: refused below
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConstraintError(`At ${path}: ${k} must be a finite number.`);
      return v;
    };
    for (const k of ['exclusiveMinimum', 'exclusiveMaximum']) {
      if (typeof s[k] === 'boolean') throw new ConstraintError(`At ${path}: boolean ${k} (draft 4) is not supported; give the bound as a number.`);
    }
    const min = num('minimum');
    const max = num('maximum');
    const xmin = num('exclusiveMinimum');
    const xmax = num('exclusiveMaximum');
    if (min === undefined && max === undefined && xmin === undefined && xmax === undefined) return ref(integer ? 'integer' : 'number');
    if (integer) {
      let lo = -Infinity;
      let hi = Infinity;
      if (min !== undefined) lo = Math.max(lo, Math.ceil(min));
      if (xmin !== undefined) lo = Math.max(lo, Math.floor(xmin) + 1);
      if (max !== undefined) hi = Math.min(hi, Math.floor(max));
      if (xmax !== undefined) hi = Math.min(hi, Math.ceil(xmax) - 1);
      if (lo > hi) throw new ConstraintError(`At ${path}: no integer lies in the range.`);
      return integerRange(lo, hi);
    }
    const bounds = [min, max, xmin, xmax].filter((v) => v !== undefined) as number[];
    if (bounds.some((v) => !Number.isInteger(v))) {
      throw new ConstraintError(`At ${path}: number bounds must be integers (use type "integer", or scale the value).`);
    }
    // The tighter of each pair of bounds; at equal values the exclusive one.
    const lower = xmin !== undefined && (min === undefined || xmin >= min) ? { v: xmin, x: true } : { v: min ?? -Infinity, x: false };
    const upper = xmax !== undefined && (max === undefined || xmax <= max) ? { v: xmax, x: true } : { v: max ?? Infinity, x: false };
    if (lower.v > upper.v || (lower.v === upper.v && (lower.x || upper.x))) throw new ConstraintError(`At ${path}: no number lies in the range.`);
    return lower.x || upper.x ? realRangeExclusive(lower.v, lower.x, upper.v, upper.x) : realRange(lower.v, upper.v);
  }
}

const FORMAT_PATTERNS: Record<string, string> = {
  // Days 01-28 in every month: always a real date (a subset, so every output validates).
  date: '[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])',
  time: '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])',
  'date-time':
    '[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])',
  uuid: '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
  email: '[a-z0-9]{1,32}(\\.[a-z0-9]{1,32}){0,3}@([a-z0-9]{1,32}\\.){1,3}[a-z]{2,8}',
  ipv4: '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])',
  // zod's z.url(): an http(s) URL with a host name and up to 4 path segments of unreserved characters.
  uri: 'https?://([a-z0-9]{1,32}\\.){1,3}[a-z]{2,8}(/[A-Za-z0-9._~-]{1,32}){0,4}/?',
};

/**
 * A regex body as JSON string content: literal `"`, `\` and control characters are written as
 * escapes; character sets lose them (a subset: never an invalid string).
 */
function jsonSafe(e: Expr): Expr {
  switch (e.t) {
    case 'lit':
      return lit(JSON.stringify(e.text).slice(1, -1));
    case 'set':
      if (e.negated) return { t: 'set', negated: true, ranges: [...e.ranges, [0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]] };
      return { t: 'set', ranges: subtract(e.ranges, [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]]) };
    case 'seq':
    case 'alt':
      return { t: e.t, items: e.items.map(jsonSafe) };
    case 'rep':
      return { ...e, item: jsonSafe(e.item) };
    default:
      return e;
  }
}

function subtract(ranges: Array<[number, number]>, cut: Array<[number, number]>): Array<[number, number]> {
  let out = ranges;
  for (const [c0, c1] of cut) {
    out = out.flatMap(([a, b]): Array<[number, number]> => {
      if (b < c0 || a > c1) return [[a, b]];
      const parts: Array<[number, number]> = [];
      if (a < c0) parts.push([a, c0 - 1]);
      if (b > c1) parts.push([c1 + 1, b]);
      return parts;
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Numeric ranges as digit grammars.

const digitRange = (a: number, b: number): Expr => chars([[0x30 + a, 0x30 + b]]);
const anyDigits = (n: number): Expr => rep(DIGIT, n, n);

/** Decimal strings of exactly the same length L, from lo to hi (strings, leading zeros allowed). */
function sameLength(lo: string, hi: string): Expr {
  if (lo.length === 0) return lit('');
  if (lo.length === 1) return digitRange(+lo, +hi);
  const a = +lo[0];
  const b = +hi[0];
  const restLo = lo.slice(1);
  const restHi = hi.slice(1);
  if (a === b) return seq(lit(lo[0]), sameLength(restLo, restHi));
  const nines = '9'.repeat(restLo.length);
  const zeros = '0'.repeat(restLo.length);
  // First digits whose every continuation is in range form one class followed by any digits.
  const from = restLo === zeros ? a : a + 1;
  const to = restHi === nines ? b : b - 1;
  const parts: Expr[] = [];
  if (from > a) parts.push(seq(lit(lo[0]), sameLength(restLo, nines)));
  if (to >= from) parts.push(seq(digitRange(from, to), anyDigits(restLo.length)));
  if (to < b) parts.push(seq(lit(hi[0]), sameLength(zeros, restHi)));
  return alt(...parts);
}

/** Canonical non-negative integers (no leading zeros) from a to b; b may be Infinity. */
function naturalRange(a: number, b: number): Expr {
  const parts: Expr[] = [];
  const la = String(a).length;
  const lb = b === Infinity ? Infinity : String(b).length;
  const upto = Math.min(lb, INT_DIGITS);
  for (let L = la; L <= upto; L++) {
    const lo = Math.max(a, L === 1 ? 0 : 10 ** (L - 1));
    const hi = Math.min(b, 10 ** L - 1);
    if (lo > hi) continue;
    parts.push(sameLength(String(lo), String(hi)));
  }
  if (parts.length === 0) throw new ConstraintError('The numeric range is too large.');
  return alt(...parts);
}

export function integerRange(lo: number, hi: number): Expr {
  const parts: Expr[] = [];
  if (hi >= 0) parts.push(naturalRange(Math.max(lo, 0), hi));
  if (lo < 0) parts.push(seq(lit('-'), naturalRange(Math.max(-hi, 1), -lo)));
  return alt(...parts);
}

/** Decimal numbers (no exponent) in [lo, hi], integer bounds. */
/**
 * Decimals between integer bounds where either may be exclusive (`exclusiveMinimum: 0` is zod's
 * `.positive()`, pydantic's `gt=0`): the excluded bound's integer part only with a fraction that
 * does not end in 0, so no spelling of the bound itself (`0`, `0.0`) gets through.
 */
function realRangeExclusive(lo: number, loX: boolean, hi: number, hiX: boolean): Expr {
  const frac = opt(seq(lit('.'), rep(DIGIT, 1, 16)));
  const zeroFrac = opt(seq(lit('.'), rep(lit('0'), 1, 16)));
  const nonzeroFrac = seq(lit('.'), rep(DIGIT, 0, 15), DIGIT19);
  // magnitudes m with a <(=) m <(=) b, a >= 0, b may be Infinity
  const magnitude = (a: number, aX: boolean, b: number, bX: boolean): Expr | undefined => {
    const parts: Expr[] = [];
    if (aX && a < b) parts.push(seq(lit(String(a)), nonzeroFrac));
    const start = aX ? a + 1 : a;
    if (b === Infinity) parts.push(seq(naturalRange(start, Infinity), frac));
    else {
      if (b - 1 >= start) parts.push(seq(naturalRange(start, b - 1), frac));
      if (!bX && b >= start) parts.push(seq(lit(String(b)), zeroFrac));
    }
    return parts.length ? alt(...parts) : undefined;
  };
  const parts: Expr[] = [];
  // v >= 0 (or > 0), when the range reaches it
  if (hi > 0 || (hi === 0 && !hiX)) {
    const side = lo >= 0 ? magnitude(lo, loX, hi, hiX) : magnitude(0, false, hi, hiX);
    if (side) parts.push(side);
  }
  // v < 0: its magnitude above max(-hi, 0) (above 0 strictly: zero is the other side's) and up to -lo
  if (lo < 0) {
    const side = hi < 0 ? magnitude(-hi, hiX, -lo, loX) : magnitude(0, true, -lo, loX);
    if (side) parts.push(seq(lit('-'), side));
  }
  return alt(...parts);
}

function realRange(lo: number, hi: number): Expr {
  const frac = opt(seq(lit('.'), rep(DIGIT, 1, 16)));
  const zeroFrac = opt(seq(lit('.'), rep(lit('0'), 1, 16)));
  // magnitudes m with a <= m <= b (b may be Infinity)
  const magnitude = (a: number, b: number): Expr => {
    if (b === Infinity) return seq(naturalRange(a, Infinity), frac);
    const parts: Expr[] = [];
    if (b - 1 >= a) parts.push(seq(naturalRange(a, b - 1), frac));
    parts.push(seq(lit(String(b)), zeroFrac));
    return alt(...parts);
  };
  const parts: Expr[] = [];
  if (hi >= 0) parts.push(magnitude(Math.max(lo, 0), hi));
  // Negative side: "-" and a magnitude in [max(-hi, 0), -lo]; "-0" equals 0, which is in range when hi >= 0.
  if (lo < 0) parts.push(seq(lit('-'), magnitude(Math.max(-hi, 0), -lo)));
  return alt(...parts);
}
