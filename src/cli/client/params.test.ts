import { describe, expect, it } from 'vitest';
import { applyParams, formatParams, ParamError, parseValue, splitAssignments, toWireParams } from './params.js';

describe('splitAssignments', () => {
  it('reads key=value pairs separated by any whitespace', () => {
    expect(splitAssignments('  temperature=0.7\ttop_k=40  ')).toEqual([
      ['temperature', '0.7'],
      ['top_k', '40'],
    ]);
  });

  it('reads double-quoted values as JSON strings, and empty values', () => {
    expect(splitAssignments('stop="\\n\\nUser: hi" seed=')).toEqual([
      ['stop', '\n\nUser: hi'],
      ['seed', ''],
    ]);
    expect(splitAssignments('stop="say \\"hi\\""')).toEqual([['stop', 'say "hi"']]);
  });

  it.each([
    ['temperature', /expected key=value, got 'temperature'/],
    ['=3', /missing a name before '=3'/],
    ['stop="open', /stop: unterminated quoted value/],
    ['stop="\\q"', /stop: invalid quoted value/],
  ])('rejects %j', (text, message) => {
    expect(() => splitAssignments(text)).toThrow(message);
  });
});

describe('parseValue', () => {
  it('converts numbers, integers and booleans', () => {
    expect(parseValue('temperature', '0.5')).toBe(0.5);
    expect(parseValue('temperature', '.5')).toBe(0.5);
    expect(parseValue('top_k', '-1')).toBe(-1);
    expect(parseValue('seed', '1e3')).toBe(1000);
    expect(parseValue('ignore_eos', 'yes')).toBe(true);
    expect(parseValue('ignore_eos', 'OFF')).toBe(false);
    expect(parseValue('stop', 'END')).toBe('END');
  });

  it.each([
    ['temperature', '2.5', "temperature must be a number from 0 to 2 (got '2.5')"],
    ['temperature', 'hot', "temperature must be a number from 0 to 2 (got 'hot')"],
    ['temperature', ' ', "temperature must be a number from 0 to 2 (got ' ')"],
    ['top_k', '4.5', "top_k must be an integer >= -1 (got '4.5')"],
    ['max_tokens', '0', "max_tokens must be an integer >= 1 (got '0')"],
    ['repetition_penalty', '0', "repetition_penalty must be a number above 0 and at most 10 (got '0')"],
    ['seed', 'Infinity', "seed must be an integer (got 'Infinity')"],
    ['ignore_eos', 'maybe', "ignore_eos must be true or false (got 'maybe')"],
  ])('rejects %s=%j with the allowed range', (name, raw, message) => {
    expect(() => parseValue(name, raw)).toThrow(new ParamError(message));
  });
});

describe('applyParams', () => {
  it('sets, replaces and unsets values without touching the original', () => {
    const first = applyParams({}, 'temperature=0.7 top_k=40');
    expect(first).toEqual({ temperature: 0.7, top_k: 40 });
    const second = applyParams(first, 'temperature=0.2 top_k=');
    expect(second).toEqual({ temperature: 0.2 });
    expect(first).toEqual({ temperature: 0.7, top_k: 40 });
  });

  it('maps the other servers\' names to one parameter', () => {
    expect(applyParams({}, 'request_output_len=64 repeat_penalty=1.1 top-p=0.9')).toEqual({
      max_tokens: 64,
      repetition_penalty: 1.1,
      top_p: 0.9,
    });
  });

  it('changes nothing when one assignment is wrong', () => {
    const current = { temperature: 0.7 };
    expect(() => applyParams(current, 'temperature=0.1 top_k=lots')).toThrow(/top_k must be an integer/);
    expect(current).toEqual({ temperature: 0.7 });
  });

  it('names the known parameters for an unknown one', () => {
    expect(() => applyParams({}, 'temprature=1')).toThrow(/unknown parameter 'temprature'; known: temperature, top_p, top_k/);
  });
});

describe('formatParams', () => {
  it('prints in a fixed order, quoting strings that need it, and reads back', () => {
    const params = applyParams({}, 'stop="\\n\\n" seed=7 temperature=0');
    const text = formatParams(params);
    expect(text).toBe('temperature=0 seed=7 stop="\\n\\n"');
    expect(applyParams({}, text)).toEqual(params);
    expect(formatParams({})).toBe('');
  });
});

describe('toWireParams', () => {
  it('calls max_tokens request_output_len on /generate and max_tokens on chat', () => {
    const params = { max_tokens: 32, top_k: 5 };
    expect(toWireParams(params, 'generate')).toEqual({ request_output_len: 32, top_k: 5 });
    expect(toWireParams(params, 'chat')).toEqual({ max_tokens: 32, top_k: 5 });
    expect(toWireParams({ seed: 1 }, 'generate')).toEqual({ seed: 1 });
  });

  it('turns response_format=json into a json_object response format on both endpoints', () => {
    const params = applyParams({}, 'response_format=JSON');
    expect(params).toEqual({ response_format: 'json' });
    expect(formatParams(params)).toBe('response_format=json');
    for (const endpoint of ['generate', 'chat'] as const) expect(toWireParams(params, endpoint)).toEqual({ response_format: { type: 'json_object' } });
    expect(toWireParams(applyParams(params, 'response_format=text'), 'chat')).toEqual({});
    expect(() => applyParams({}, 'response_format=xml')).toThrow(/one of json, text/);
  });
});
