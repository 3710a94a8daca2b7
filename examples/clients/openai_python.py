# The official openai Python client against edgellm: parse() with pydantic, and a tool round trip.
import json
import os
from typing import Literal

from openai import OpenAI
from pydantic import BaseModel, Field

client = OpenAI(base_url=os.environ.get("EDGELLM_URL", "http://localhost:23333/v1"), api_key="unused")
MODEL = "SmolLM2-135M-Instruct.Q4_1"


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=120)
    role: Literal["engineer", "doctor", "teacher"]


completion = client.chat.completions.parse(
    model=MODEL,
    messages=[{"role": "user", "content": "Alice Smith is a 34 year old engineer."}],
    response_format=Person,
    temperature=0,
)
print(completion.choices[0].message.parsed)  # name='Alice Smith' age=34 role='engineer'

tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
reply = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="required", temperature=0)
call = reply.choices[0].message.tool_calls[0]
messages.append(reply.choices[0].message)
messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 18})})
answer = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="none", temperature=0, max_tokens=100)
print(json.loads(call.function.arguments), answer.choices[0].message.content)
