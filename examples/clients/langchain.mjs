// LangChain JS against edgellm: structured output (enforced by the server) and a tool round trip.
import { ChatOpenAI } from '@langchain/openai';
import { tool } from '@langchain/core/tools';
import { HumanMessage } from '@langchain/core/messages';
import { z } from 'zod';

const llm = new ChatOpenAI({
  model: 'SmolLM2-135M-Instruct.Q4_1',
  apiKey: 'unused', // or one of --api-keys
  configuration: { baseURL: process.env.EDGELLM_URL ?? 'http://localhost:23333/v1' },
  temperature: 0,
  maxTokens: 100,
});

// Structured output: method 'jsonSchema' (response_format) or 'functionCalling' (a forced tool call).
const Person = z.object({ name: z.string(), age: z.number().int().min(0).max(120), role: z.enum(['engineer', 'doctor', 'teacher']) });
const person = await llm.withStructuredOutput(Person, { method: 'jsonSchema' }).invoke('Alice Smith is a 34 year old engineer.');
console.log(person); // { name: 'Alice Smith', age: 34, role: 'engineer' }

// Tools: the model calls get_weather, we run it and send the result back, the model answers.
const getWeather = tool(async ({ city }) => JSON.stringify({ city, celsius: 18 }), {
  name: 'get_weather',
  description: 'The weather in a city',
  schema: z.object({ city: z.string() }),
});
/** @type {import('@langchain/core/messages').BaseMessage[]} */
const messages = [new HumanMessage('What is the weather in Paris?')];
const call = await llm.bindTools([getWeather], { tool_choice: 'get_weather' }).invoke(messages);
const calls = call.tool_calls ?? [];
messages.push(call, ...(await Promise.all(calls.map((c) => getWeather.invoke(c)))));
const answer = await llm.invoke(messages);
console.log(calls[0].args, answer.content);
