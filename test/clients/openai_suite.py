"""The official openai Python client against an edgellm server (run by openai-python.test.ts).

argv[1]: the server's /v1 URL; stdin: {"model", "schemas": [{"name", "prompt", "schema", "maxTokens"}]}.
Prints one JSON object with what each part got back; the test validates it (ajv and zod). Requests
run concurrently on threads, so the server batches them.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Literal, Optional

import openai
from openai import OpenAI
from pydantic import BaseModel, Field

url = sys.argv[1]
job = json.load(sys.stdin)
MODEL = job["model"]
client = OpenAI(base_url=url, api_key="unused", max_retries=0)


class Country(BaseModel):
    name: str
    code: Literal["FR", "DE", "US", "GB"]


class City(BaseModel):
    """Nested models become $defs and $ref in the schema parse() sends."""

    name: str
    country: Country
    population_millions: float = Field(ge=0, le=40)


class Answer(BaseModel):
    answer: str
    source: Optional[str]
    confidence: int = Field(ge=1, le=5)


class Cart(BaseModel):
    items: List[str] = Field(min_length=1, max_length=3)
    budget: float = Field(gt=0, le=100)
    express: bool


PARSED = [
    (City, "Paris is the capital of France, with about 2.1 million people.", 48),
    (Answer, "What is the capital of Italy?", 40),
    (Cart, "Put milk and bread in my cart, no rush, I can spend 20 dollars.", 40),
]


def parse(model, prompt, max_tokens, temperature):
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": prompt}], response_format=model,
        temperature=temperature, max_tokens=max_tokens,
    )
    choice = completion.choices[0]
    # parse() has validated with pydantic already (it raises otherwise); send it back as JSON.
    return {"model": model.__name__, "temperature": temperature, "finish_reason": choice.finish_reason,
            "parsed": choice.message.parsed.model_dump(), "schema": model.model_json_schema()}


def json_schema(schema, temperature):
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": schema["prompt"]}], temperature=temperature,
        max_tokens=schema["maxTokens"],
        response_format={"type": "json_schema", "json_schema": {"name": schema["name"], "schema": schema["schema"], "strict": True}},
    )
    choice = completion.choices[0]
    return {"name": schema["name"], "temperature": temperature, "finish_reason": choice.finish_reason, "content": choice.message.content}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}


def round_trip():
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False, temperature=1, max_tokens=40,
    )
    message = first.choices[0].message
    calls = message.tool_calls or []
    messages.append(message)  # the pydantic message object, as the openai docs do
    for call in calls:
        args = json.loads(call.function.arguments)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"city": args["city"], "celsius": 18})})
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=30)
    return {
        "finish_reason": first.choices[0].finish_reason,
        "content": message.content,
        "calls": [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in calls],
        "answer": answer.choices[0].message.content,
        "answer_finish_reason": answer.choices[0].finish_reason,
        "answer_calls": len(answer.choices[0].message.tool_calls or []),
    }


def streamed_calls():
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Rome and in Oslo?"}], tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, temperature=0.8, seed=5,
        max_tokens=60, stream=True, stream_options={"include_usage": True},
    )
    calls, pieces, finish, usage = {}, 0, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage.completion_tokens
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function and delta.function.name:
                    call["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
                    pieces += 1
    return {"finish_reason": finish, "calls": [calls[i] for i in sorted(calls)], "pieces": pieces, "usage": usage}


def streamed_helper():
    # The client's own stream helper assembles the calls and parses their arguments (strict tools).
    with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Madrid?"}], tools=[WEATHER], tool_choice="required",
        temperature=0, max_tokens=40,
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    return {"finish_reason": choice.finish_reason,
            "calls": [{"name": c.function.name, "parsed_arguments": c.function.parsed_arguments} for c in choice.message.tool_calls or []]}


class GetWeather(BaseModel):
    """The current weather in a city"""

    city: str
    unit: Literal["C", "F"]


def parsed_tool():
    # pydantic_function_tool writes a strict tool; parse() checks the call and fills parsed_arguments.
    completion = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Is it cold in Oslo?"}], tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required", temperature=1, max_tokens=48,
    )
    choice = completion.choices[0]
    return {"finish_reason": choice.finish_reason,
            "calls": [{"name": c.function.name, "parsed": c.function.parsed_arguments.model_dump()} for c in choice.message.tool_calls or []]}


def streamed_parse():
    # The stream helper with a response_format model: content events as the JSON grows, then the parsed object.
    with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Answer: what is the capital of Spain?"}], response_format=Answer,
        temperature=0, max_tokens=40,
    ) as stream:
        deltas = sum(1 for event in stream if event.type == "content.delta")
        final = stream.get_final_completion()
    return {"deltas": deltas, "finish_reason": final.choices[0].finish_reason, "parsed": final.choices[0].message.parsed.model_dump()}


with ThreadPoolExecutor(max_workers=40) as pool:
    parsed = [pool.submit(parse, m, p, n, t) for (m, p, n) in PARSED for t in (0, 1)]
    raw = [pool.submit(json_schema, s, t) for s in job["schemas"] for t in (0, 1)]
    trip = pool.submit(round_trip)
    streamed = pool.submit(streamed_calls)
    helper = pool.submit(streamed_helper)
    tool_parse = pool.submit(parsed_tool)
    stream_parse = pool.submit(streamed_parse)
    print(json.dumps({
        "parsed": [f.result() for f in parsed],
        "json_schema": [f.result() for f in raw],
        "round_trip": trip.result(),
        "streamed": streamed.result(),
        "helper": helper.result(),
        "parsed_tool": tool_parse.result(),
        "streamed_parse": stream_parse.result(),
    }))
