/**
 * Constrained decoding: grammars (JSON, JSON Schema, regex, GBNF, and compositions of them) that
 * decide token by token what a row may generate. Platform-neutral.
 * @module
 */
export * from './grammar.js';
export { parseGbnf } from './gbnf.js';
export { parseRegex } from './regex.js';
export { jsonObjectGrammar, jsonSchemaGrammar, SUPPORTED_SCHEMA_KEYWORDS, SUPPORTED_STRING_FORMATS } from './json-schema.js';
export { ByteMatcher, type MatchState } from './matcher.js';
export { TokenTrie, TokenMasker, tokenTrie, maskHas, type TokenMask } from './token-index.js';
export { CompiledConstraint, ConstraintCache, ConstraintState, primeJsonStrings, sampleConstrained } from './constraint.js';
export { grammarOf } from './spec.js';
