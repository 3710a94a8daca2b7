// The Vercel AI SDK against edgellm: generateObject (enforced by the server) and tools over several steps.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, stepCountIs, tool } from 'ai';
import { z } from 'zod';

const edgellm = createOpenAICompatible({
  name: 'edgellm',
  baseURL: process.env.EDGELLM_URL ?? 'http://localhost:23333/v1',
  supportsStructuredOutputs: true, // send the schema as response_format json_schema: the server enforces it
});
const model = edgellm.chatModel('SmolLM2-135M-Instruct.Q4_1');

const { object } = await generateObject({
  model,
  schema: z.object({ city: z.string(), celsius: z.number().min(-50).max(60) }),
  prompt: 'It is 21 degrees in Paris.',
  temperature: 0,
});
console.log(object); // { city: 'Paris', celsius: 21 }

const { text, steps } = await generateText({
  model,
  tools: {
    get_weather: tool({
      description: 'The weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => ({ city, celsius: 18 }),
    }),
  },
  toolChoice: 'required',
  // After the call, let the model answer in words.
  prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}),
  stopWhen: stepCountIs(2),
  prompt: 'What is the weather in Paris?',
  temperature: 0,
  maxOutputTokens: 100,
});
console.log(steps[0].toolCalls[0].input, text);
