/**
 * The Vercel AI SDK (`ai` with @ai-sdk/openai-compatible) against `edgellm serve` with the real
 * SmolLM2-135M-Instruct GGUF, over loopback HTTP: generateObject (12 schemas at temperature 0 and
 * 1, every object valid), generateText with tools over several steps (the SDK runs the tool and
 * sends its result back as a `tool` message), streamText with tools (the call streamed in pieces),
 * and the README's example script.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { CliServer } from '../helpers/cli-server.js';
import { runExample } from './run-example.js';
import { checkValid, SCHEMAS } from './schemas.js';
import { GGUF, MODEL, startSmolLM2 } from './smollm2-server.js';

// The SDK's deprecation notice for generateObject and its other warnings would flood the test output.
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const weatherInput = z.object({ city: z.string(), unit: z.enum(['C', 'F']) });
const executed: Array<z.infer<typeof weatherInput>> = [];
const tools = {
  get_weather: tool({
    description: 'The current weather in a city',
    inputSchema: weatherInput,
    execute: async (input) => {
      executed.push(input);
      return { city: input.city, temperature: 18, unit: input.unit, sky: 'clear' };
    },
  }),
};

describe.skipIf(!GGUF)('the AI SDK against SmolLM2 through edgellm serve', () => {
  let server: CliServer;
  let model: ReturnType<ReturnType<typeof createOpenAICompatible>['chatModel']>;

  beforeAll(async () => {
    server = await startSmolLM2();
    const edgellm = createOpenAICompatible({ name: 'edgellm', baseURL: `${server.url}/v1`, supportsStructuredOutputs: true, includeUsage: true });
    model = edgellm.chatModel(MODEL);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('generateObject: every object of 12 schemas at temperature 0 and 1 is valid, and generateText with Output.object too', async () => {
    const runs = SCHEMAS.flatMap((schema) =>
      [0, 1].map(async (temperature) => {
        const { object, finishReason } = await generateObject({
          model,
          schema: schema.zod,
          schemaName: schema.name,
          prompt: schema.prompt,
          temperature,
          maxOutputTokens: schema.maxTokens,
          maxRetries: 0,
        });
        expect(finishReason, `${schema.name} t=${temperature}`).toBe('stop');
        checkValid(schema.name, object);
      }),
    );
    // The SDK's newer spelling of the same request.
    const [person] = SCHEMAS;
    const viaText = generateText({
      model,
      output: Output.object({ schema: person.zod }),
      prompt: person.prompt,
      temperature: 1,
      maxOutputTokens: person.maxTokens,
      maxRetries: 0,
    });
    await Promise.all(runs);
    checkValid(person.name, (await viaText).output);
  }, 300_000);

  it('generateText with tools: the model calls the tool, the SDK runs it and sends the result, the model answers', async () => {
    executed.length = 0;
    const result = await generateText({
      model,
      tools,
      toolChoice: 'required',
      prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}),
      stopWhen: stepCountIs(3),
      system: 'You are a helpful assistant.',
      prompt: 'What is the weather in Paris, in Celsius?',
      temperature: 1,
      maxOutputTokens: 40,
      maxRetries: 0,
    });
    expect(result.steps).toHaveLength(2);
    const [first, second] = result.steps;
    expect(first.finishReason).toBe('tool-calls');
    // The SDK sends no parallel_tool_calls: at temperature 1 one or more calls may come, each valid and run.
    expect(first.toolCalls.length).toBeGreaterThan(0);
    for (const call of first.toolCalls) {
      expect(call.toolName).toBe('get_weather');
      expect(weatherInput.safeParse(call.input).success, JSON.stringify(call.input)).toBe(true);
    }
    expect(executed).toEqual(first.toolCalls.map((call) => call.input));
    expect(first.toolResults).toHaveLength(first.toolCalls.length);
    for (const result of first.toolResults) expect(result.output).toMatchObject({ temperature: 18 });
    // The second request carried the assistant's call and the `tool` message; the model answered in text.
    expect(second.toolCalls).toHaveLength(0);
    expect(['stop', 'length']).toContain(second.finishReason);
    expect(result.text.trim().length).toBeGreaterThan(0);
    expect(result.totalUsage.outputTokens).toBeGreaterThan(0);
  }, 120_000);

  it('streamText with tools: tool-input deltas add up to the call, the result goes back, the answer streams', async () => {
    executed.length = 0;
    const result = streamText({
      model,
      tools,
      toolChoice: { type: 'tool', toolName: 'get_weather' },
      prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}),
      stopWhen: stepCountIs(2),
      prompt: 'Weather in Rome?',
      temperature: 0,
      maxOutputTokens: 40,
      maxRetries: 0,
    });
    const deltas: string[] = [];
    const types: string[] = [];
    let text = '';
    for await (const part of result.fullStream) {
      if (types[types.length - 1] !== part.type) types.push(part.type);
      if (part.type === 'tool-input-delta') deltas.push(part.delta);
      if (part.type === 'text-delta') text += part.text;
      if (part.type === 'error') throw part.error;
    }
    const steps = await result.steps;
    expect(steps).toHaveLength(2);
    const call = steps[0].toolCalls[0];
    expect(call.toolName).toBe('get_weather');
    expect(deltas.length).toBeGreaterThan(1);
    expect(JSON.parse(deltas.join(''))).toEqual(call.input);
    expect(weatherInput.safeParse(call.input).success).toBe(true);
    expect(executed).toEqual([call.input]);
    expect(types).toEqual(expect.arrayContaining(['tool-input-start', 'tool-input-delta', 'tool-call', 'tool-result', 'text-delta']));
    expect(types.indexOf('tool-result')).toBeLessThan(types.lastIndexOf('text-delta'));
    expect(text.trim().length).toBeGreaterThan(0);
  }, 120_000);

  it("runs the README's AI SDK example", async () => {
    const out = await runExample('ai-sdk.mjs', `${server.url}/v1`);
    expect(out).toContain("{ city: 'Paris', celsius: 21 }");
    expect(out).toContain("{ city: 'Paris' }");
  }, 120_000);
});
