/**
 * The official openai Python client (pinned in test/clients/requirements.txt; .ci/run installs it
 * in the git-ignored .venv) against `edgellm serve` with the real SmolLM2-135M-Instruct GGUF:
 * `chat.completions.parse` with pydantic models ($defs/$ref, Optional, conlist), response_format
 * json_schema for the 12 schemas at temperature 0 and 1, a tool round trip, streamed tool calls
 * (raw deltas and the client's stream helper), pydantic_function_tool, the stream helper with a
 * response_format model, and the README's example script. Skips with a
 * message when python3 or the package is missing, unless EDGELLM_REQUIRE_PYTHON is set.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliServer } from '../helpers/cli-server.js';
import { runExample } from './run-example.js';
import { checkValid, jsonSchemaOf, SCHEMAS } from './schemas.js';
import { GGUF, MODEL, startSmolLM2 } from './smollm2-server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VENV_PYTHON = `${ROOT}.venv/bin/python3`;
const PYTHON = existsSync(VENV_PYTHON) ? VENV_PYTHON : 'python3';

function pythonProblem(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import openai, pydantic; print(openai.__version__)'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not found`;
  if (probe.status !== 0)
    return `the openai package is missing for ${PYTHON} (python3 -m venv .venv && .venv/bin/pip install -r test/clients/requirements.txt)`;
  return undefined;
}
const problem = pythonProblem();
if (problem && process.env.EDGELLM_REQUIRE_PYTHON) throw new Error(`EDGELLM_REQUIRE_PYTHON is set but ${problem}`);
if (problem) console.warn(`[edgellm tests] skipping the Python openai client suite: ${problem}`);

function runSuite(url: string): Promise<any> {
  const input = JSON.stringify({
    model: MODEL,
    schemas: SCHEMAS.map((s) => ({ name: s.name, prompt: s.prompt, maxTokens: s.maxTokens, schema: jsonSchemaOf(s) })),
  });
  return new Promise((resolve, reject) => {
    const proc = spawn(PYTHON, [fileURLToPath(new URL('openai_suite.py', import.meta.url)), url], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`openai_suite.py exited ${code}:\n${stderr}`))));
    proc.stdin.end(input);
  });
}

const weatherArgs = new Ajv2020({ strict: false }).compile({
  type: 'object',
  properties: { city: { type: 'string' }, unit: { enum: ['C', 'F'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
});

describe.skipIf(!GGUF || problem)('the official openai Python client against SmolLM2 through edgellm serve', () => {
  let server: CliServer;
  let out: any;

  beforeAll(async () => {
    server = await startSmolLM2();
    out = await runSuite(`${server.url}/v1`);
  }, 400_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('chat.completions.parse: pydantic models (nested $defs, Optional, conlist) parse at temperature 0 and 1', () => {
    expect(out.parsed).toHaveLength(6);
    const ajv = new Ajv2020({ strict: false });
    for (const p of out.parsed) {
      expect(p.finish_reason, `${p.model} t=${p.temperature}`).toBe('stop');
      expect(ajv.validate(p.schema, p.parsed), `${p.model} ${JSON.stringify(p.parsed)} ${ajv.errorsText()}`).toBe(true);
    }
    expect(out.parsed.map((p: any) => p.model)).toEqual(['City', 'City', 'Answer', 'Answer', 'Cart', 'Cart']);
  });

  it('response_format json_schema: every output of 12 schemas at temperature 0 and 1 is valid', () => {
    expect(out.json_schema).toHaveLength(SCHEMAS.length * 2);
    for (const r of out.json_schema) {
      expect(r.finish_reason, `${r.name} t=${r.temperature}`).toBe('stop');
      checkValid(r.name, JSON.parse(r.content));
    }
  });

  it('a tool round trip: a forced call (content None), the tool message back, then an answer without calls', () => {
    const trip = out.round_trip;
    expect(trip.finish_reason).toBe('tool_calls');
    expect(trip.content).toBeNull();
    expect(trip.calls).toHaveLength(1);
    expect(trip.calls[0]).toMatchObject({ name: 'get_weather', id: expect.stringMatching(/^call_/) });
    expect(weatherArgs(JSON.parse(trip.calls[0].arguments)), trip.calls[0].arguments).toBe(true);
    expect(trip.answer_calls).toBe(0);
    expect(trip.answer.trim().length).toBeGreaterThan(0);
    expect(trip.answer_finish_reason).toMatch(/^(stop|length)$/);
  });

  it('streams tool calls in pieces that add up to valid calls, with usage; the stream helper parses them', () => {
    const { streamed, helper } = out;
    expect(streamed.finish_reason).toBe('tool_calls');
    expect(streamed.calls.length).toBeGreaterThan(0);
    expect(streamed.pieces).toBeGreaterThan(streamed.calls.length);
    for (const call of streamed.calls) {
      expect(call).toMatchObject({ name: 'get_weather', id: expect.stringMatching(/^call_/) });
      expect(weatherArgs(JSON.parse(call.arguments)), call.arguments).toBe(true);
    }
    expect(streamed.usage).toBeGreaterThan(0);
    expect(helper.finish_reason).toBe('tool_calls');
    expect(helper.calls).toHaveLength(1);
    expect(weatherArgs(helper.calls[0].parsed_arguments)).toBe(true);
  });

  it('parse() with pydantic_function_tool (a strict tool) and the stream helper with a response_format model', () => {
    const { parsed_tool: tool, streamed_parse: streamed } = out;
    expect(tool.finish_reason).toBe('tool_calls');
    expect(tool.calls.length).toBeGreaterThan(0);
    for (const call of tool.calls) {
      expect(call.name).toBe('GetWeather');
      expect(weatherArgs(call.parsed), JSON.stringify(call.parsed)).toBe(true);
    }
    expect(streamed.finish_reason).toBe('stop');
    expect(streamed.deltas).toBeGreaterThan(3);
    expect(streamed.parsed).toMatchObject({ answer: expect.any(String), confidence: expect.any(Number) });
  });

  it("runs the README's Python example", async () => {
    const stdout = await runExample('openai_python.py', `${server.url}/v1`, PYTHON);
    expect(stdout).toContain("name='Alice Smith' age=34 role='engineer'");
    expect(stdout).toContain("{'city': 'Paris'}");
  }, 120_000);
});
