/**
 * LangChain JS (@langchain/openai's ChatOpenAI) against `edgellm serve` with the real
 * SmolLM2-135M-Instruct GGUF, over loopback HTTP: withStructuredOutput in its three methods (every
 * output valid under its schema, 12 schemas at temperature 0 and 1), bindTools with a tool round
 * trip, streamed tool calls, and the README's example script.
 */
import { AIMessageChunk, HumanMessage, SystemMessage, type BaseMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { CliServer } from '../helpers/cli-server.js';
import { runExample } from './run-example.js';
import { checkValid, SCHEMAS } from './schemas.js';
import { GGUF, MODEL, startSmolLM2 } from './smollm2-server.js';

const getWeather = tool(async ({ city }) => JSON.stringify({ city, celsius: 18, sky: 'clear' }), {
  name: 'get_weather',
  description: 'The current weather in a city',
  schema: z.object({ city: z.string().describe('the city name'), unit: z.enum(['C', 'F']) }),
});

describe.skipIf(!GGUF)('LangChain JS against SmolLM2 through edgellm serve', () => {
  let server: CliServer;
  let llm: (temperature: number, maxTokens?: number) => ChatOpenAI;

  beforeAll(async () => {
    server = await startSmolLM2();
    llm = (temperature, maxTokens = 100) =>
      new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, temperature, maxTokens, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  // The two methods that carry the schema, at both temperatures, as one batch of concurrent requests:
  // jsonSchema (response_format) for every schema, functionCalling (a forced call) for three of them.
  it('withStructuredOutput jsonSchema (12 schemas) and functionCalling (3): every output at temperature 0 and 1 is valid', async () => {
    const FUNCTION_CALLING = ['person', 'contact', 'payment'];
    const runs = SCHEMAS.flatMap((schema) =>
      (['jsonSchema', 'functionCalling'] as const)
        .filter((method) => method === 'jsonSchema' || FUNCTION_CALLING.includes(schema.name))
        .flatMap((method) =>
          [0, 1].map(async (temperature) => {
            // A call's wrapper (<tool_call>{"name": ..., "arguments": ...}</tool_call>) takes about 30 tokens more.
            const maxTokens = method === 'functionCalling' ? schema.maxTokens + 32 : schema.maxTokens;
            const structured = llm(temperature, maxTokens).withStructuredOutput(schema.zod, { method, name: schema.name, includeRaw: true });
            const { raw, parsed } = await structured.invoke(schema.prompt);
            const label = `${schema.name} ${method} t=${temperature}`;
            // Closed within max_tokens by the engine: stop, never length.
            expect((raw as AIMessageChunk).response_metadata.finish_reason, label).toBe(method === 'jsonSchema' ? 'stop' : 'tool_calls');
            if (method === 'functionCalling') expect((raw as AIMessageChunk).tool_calls?.[0]?.name, label).toBe(schema.name);
            checkValid(schema.name, parsed);
          }),
        ),
    );
    expect(runs).toHaveLength(SCHEMAS.length * 2 + FUNCTION_CALLING.length * 2);
    await Promise.all(runs);
  }, 300_000);

  it('withStructuredOutput jsonMode: a JSON object at temperature 0 and 1 (json_object promises JSON, not a schema)', async () => {
    // LangChain sends only response_format json_object: the schema never reaches the server, so only "an object" is enforced.
    const anyObject = z.record(z.string(), z.unknown());
    const outputs = await Promise.all(
      [0, 1].map((t) =>
        llm(t, 60).withStructuredOutput(anyObject, { method: 'jsonMode' }).invoke('Describe Paris as JSON with keys name and country.'),
      ),
    );
    for (const out of outputs) expect(out).toBeTypeOf('object');
  }, 120_000);

  it('bindTools: a forced call with strict and parallel_tool_calls false, the ToolMessage back, then an answer', async () => {
    const messages: BaseMessage[] = [
      new SystemMessage('You are a helpful assistant.'),
      new HumanMessage('What is the weather in Paris, in Celsius?'),
    ];
    const withTools = llm(0).bindTools([getWeather], { tool_choice: 'get_weather', strict: true, parallel_tool_calls: false });
    const ai = await withTools.invoke(messages);
    expect(ai.response_metadata.finish_reason).toBe('tool_calls');
    expect(ai.tool_calls).toHaveLength(1);
    const call = ai.tool_calls![0];
    expect(call).toMatchObject({ name: 'get_weather', id: expect.stringMatching(/^call_/) });
    expect(getWeather.schema.safeParse(call.args).success, JSON.stringify(call.args)).toBe(true);
    const result = await getWeather.invoke(call);
    expect(result.tool_call_id).toBe(call.id);
    // LangChain sends the AIMessage back with content "" and tool_calls, and the ToolMessage with a name.
    const answer = await llm(0, 40)
      .bindTools([getWeather], { tool_choice: 'none' })
      .invoke([...messages, ai, result]);
    expect(answer.tool_calls ?? []).toEqual([]);
    expect(typeof answer.content === 'string' && answer.content.trim().length).toBeGreaterThan(0);
    expect(answer.response_metadata.finish_reason).toMatch(/^(stop|length)$/);
  }, 120_000);

  it('streams tool calls in pieces (tool_call_chunks) that add up to valid calls, parallel ones included, with usage', async () => {
    // LangChain sends no parallel_tool_calls, so one or more calls may come: three seeds, each call valid.
    const streamed = await Promise.all(
      [1, 2, 3].map(async (seed) => {
        const model = new ChatOpenAI({
          model: MODEL,
          apiKey: 'unused',
          configuration: { baseURL: `${server.url}/v1` },
          temperature: 1,
          maxTokens: 100,
          maxRetries: 0,
          modelKwargs: { seed },
        });
        let gathered: AIMessageChunk | undefined;
        let chunks = 0;
        for await (const chunk of await model
          .bindTools([getWeather], { tool_choice: 'required' })
          .stream([new HumanMessage('Weather in Rome and in Oslo?')])) {
          chunks++;
          gathered = gathered ? gathered.concat(chunk) : chunk;
        }
        return { gathered: gathered!, chunks };
      }),
    );
    for (const { gathered, chunks } of streamed) {
      const calls = gathered.tool_calls ?? [];
      const detail = JSON.stringify(gathered.tool_call_chunks);
      expect(chunks).toBeGreaterThan(3);
      expect(calls.length, detail).toBeGreaterThan(0);
      expect(gathered.invalid_tool_calls ?? [], detail).toEqual([]);
      for (const call of calls) {
        expect(call.name).toBe('get_weather');
        expect(getWeather.schema.safeParse(call.args).success, JSON.stringify(call.args)).toBe(true);
      }
      expect(gathered.response_metadata.finish_reason).toBe('tool_calls');
      expect(gathered.usage_metadata).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
      expect(gathered.usage_metadata!.output_tokens).toBeGreaterThan(0);
    }
  }, 120_000);

  it("runs the README's LangChain example", async () => {
    const out = await runExample('langchain.mjs', `${server.url}/v1`);
    expect(out).toContain("{ name: 'Alice Smith', age: 34, role: 'engineer' }");
    expect(out).toContain("{ city: 'Paris' }");
  }, 120_000);
});
