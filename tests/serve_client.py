"""Drives `layerfit serve` with the official `openai` Python client (PyPI), as an application
would: the models list, a chat completion, a streamed one, a text completion, the degraded
header and field on each, four concurrent clients answered as each is alone, and the errors
a client gets for a wrong key and an impossible max_tokens (the server keeps serving).
Then what applications send besides (tools_and_parameters): a tool-call round trip, whole
and streamed; JSON-schema output checked by a JSON-schema validator (the `jsonschema`
package); log-probabilities; the usage chunk; seed, penalties and logit_bias; and
/v1/responses.
With `base`, the server runs a base model instead: its chat messages are completed as plain
text, exactly as the same text sent to /v1/completions.

    python tests/serve_client.py BASE_URL API_KEY [base]

Prints one JSON line of figures; exits non-zero (an assertion) on any failure.
"""
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)

models = client.models.list()
ids = [m.id for m in models.data]
assert len(ids) == 1, ids
model = ids[0]
meta = models.data[0].model_extra["meta"]


def base_model_case():
    """A base model: the chat endpoint completes the messages' text, one line apart."""
    assert meta["base_model"] is True and meta["chat_prompt_format"] == "raw", meta
    messages = [
        {"role": "system", "content": "Facts about Europe."},
        {"role": "user", "content": "The capital of France is"},
    ]
    r = client.chat.completions.create(model=model, messages=messages, max_tokens=12, temperature=0)
    ext = r.model_extra["layerfit"]
    assert ext["base_model"] is True and ext["prompt_format"] == "raw", ext
    chat = r.choices[0].message.content
    assert r.choices[0].message.role == "assistant" and r.object == "chat.completion", r
    assert r.choices[0].finish_reason in ("stop", "length")
    c = client.completions.create(
        model=model, prompt="Facts about Europe.\nThe capital of France is", max_tokens=12, temperature=0
    )
    assert c.choices[0].text == chat, (c.choices[0].text, chat)
    assert c.usage.prompt_tokens == r.usage.prompt_tokens, (c.usage, r.usage)
    assert c.model_extra["layerfit"]["prompt_format"] == "raw"
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=12, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks[0].model_extra["layerfit"]["prompt_format"] == "raw", chunks[0]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == chat, (streamed, chat)
    print(json.dumps({
        "model": model, "meta": meta, "chat": chat, "completion": c.choices[0].text,
        "prompt_tokens": r.usage.prompt_tokens,
    }))
    sys.exit(0)


if sys.argv[3:] == ["base"]:
    base_model_case()

# A chat model: its messages go through its chat template.
assert meta["base_model"] is False and meta["chat_prompt_format"] == "chat_template", meta


def ask(text, max_tokens=16):
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=max_tokens,
        temperature=0,
    )
    assert raw.headers.get("x-layerfit-degraded"), dict(raw.headers)
    r = raw.parse()
    ext = r.model_extra["layerfit"]
    assert ext["degraded"] is True and ext["reasons"], ext
    assert ext["base_model"] is False and ext["prompt_format"] == "chat_template", ext
    return r


# SmolLM2 through its own template (with its default system message, as llama-server renders
# it) answers the bare question with a French list; asked for one word, it answers.
QUESTION = "What is the capital of France? Answer in one word."
r = ask(QUESTION)
answer = r.choices[0].message.content
assert "Paris" in answer, answer
assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0, r.usage
assert r.choices[0].finish_reason in ("stop", "length")
assert r.usage.prompt_tokens_details.cached_tokens == 0, r.usage

# The same prompt again starts from the cache the first answer left: all of it but the last
# token (whose logits are needed) is reused, and the answer is the same.
again = ask(QUESTION)
assert again.usage.prompt_tokens == r.usage.prompt_tokens, (again.usage, r.usage)
assert again.usage.prompt_tokens_details.cached_tokens == r.usage.prompt_tokens - 1, again.usage
assert again.choices[0].message.content == answer, (again.choices[0].message.content, answer)

# Streamed: the first chunk carries the extension, the text arrives in deltas.
stream = client.chat.completions.create(
    model="any-name-works",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=16,
    temperature=0,
    stream=True,
)
chunks = list(stream)
assert chunks[0].model_extra.get("layerfit", {}).get("degraded") is True, chunks[0]
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert streamed == answer, (streamed, answer)
assert chunks[-1].choices[0].finish_reason in ("stop", "length")

# A text completion.
c = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
assert c.choices[0].text.strip(), c
assert c.model_extra["layerfit"]["degraded"] is True
assert c.model_extra["layerfit"]["prompt_format"] == "raw"

# Four clients at once, each answered as it is alone (temperature 0).
prompts = [
    "Name a colour.",
    "What is 2 + 2?",
    "Say hello in French.",
    "Name a fruit.",
]
alone = [ask(p, 24).choices[0].message.content for p in prompts]
with ThreadPoolExecutor(4) as pool:
    together = list(pool.map(lambda p: ask(p, 24).choices[0].message.content, prompts))
assert together == alone, (together, alone)

# Errors: a wrong key, then max_tokens beyond the context; the server keeps serving.
bad = openai.OpenAI(base_url=base, api_key="wrong-key", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401
try:
    client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=10_000_000
    )
    raise AssertionError("max_tokens beyond the context was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and "context" in str(e), e
assert "Paris" in ask(QUESTION).choices[0].message.content


def raw_post(path, body):
    root = base.rsplit("/v1", 1)[0]
    req = urllib.request.Request(
        root + path, data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}


def tools_and_parameters():
    """The figures of the tool, schema, logprobs, usage and responses cases."""
    figures = {}
    user = {"role": "user", "content": "What is the weather in Paris?"}

    # A tool-call round trip: the call, the tool's result, the final answer.
    r1 = client.chat.completions.create(
        model=model, messages=[user], tools=[WEATHER, TIME], tool_choice="required", temperature=0
    )
    c1 = r1.choices[0]
    assert c1.finish_reason == "tool_calls", c1
    call = c1.message.tool_calls[0]
    assert call.type == "function" and call.id and call.function.name in ("get_weather", "get_time"), call
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str), args
    # A named function: only it is called.
    named = client.chat.completions.create(
        model=model, messages=[user], tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}}, temperature=0,
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_time"], named
    result = "Sunny, 24 degrees Celsius"
    history = [user, c1.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": result}]
    # The result reaches the model: it is in the prompt the server builds.
    prompt = raw_post("/apply-template", {"messages": history, "tools": [WEATHER, TIME]})["prompt"]
    assert result in prompt and call.function.name in prompt, prompt
    r2 = client.chat.completions.create(
        model=model, messages=history, tools=[WEATHER, TIME], tool_choice="none", temperature=0, max_tokens=40
    )
    c2 = r2.choices[0]
    assert c2.finish_reason in ("stop", "length") and not c2.message.tool_calls, c2
    assert c2.message.content, c2
    figures["tool_call"] = {"name": call.function.name, "arguments": args, "final": c2.message.content}

    # The same call streamed: OpenAI-shaped deltas (index, id, type, name, argument pieces).
    stream = client.chat.completions.create(
        model=model, messages=[user], tools=[WEATHER, TIME], tool_choice="required", temperature=0, stream=True
    )
    calls, finish = {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        for d in chunk.choices[0].delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            if d.id:
                assert c["id"] is None and d.type == "function", d
                c["id"] = d.id
            c["name"] += (d.function.name or "") if d.function else ""
            c["arguments"] += (d.function.arguments or "") if d.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls", finish
    assert calls[0]["id"] and calls[0]["name"] == call.function.name, calls
    assert json.loads(calls[0]["arguments"]) == args, (calls, args)

    # JSON-schema output (strict), checked by a validator; json_object mode; streamed.
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    ask_person = [{"role": "user", "content": "Describe a person."}]
    j = client.chat.completions.create(model=model, messages=ask_person, response_format=fmt, temperature=0)
    person = json.loads(j.choices[0].message.content)
    jsonschema.validate(person, schema)
    streamed = "".join(
        c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=model, messages=ask_person, response_format=fmt, temperature=0, stream=True) if c.choices
    )
    assert json.loads(streamed) == person, (streamed, person)
    obj = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is the capital of France? Answer as JSON."}],
        response_format={"type": "json_object"}, temperature=0, max_tokens=80,
    )
    assert obj.choices[0].finish_reason == "stop", obj
    assert isinstance(json.loads(obj.choices[0].message.content), dict), obj
    figures["json_schema"] = person

    # Log-probabilities: one per generated token, all <= 0, the alternatives most likely first.
    lp = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], logprobs=True, top_logprobs=3,
        temperature=0, max_tokens=16,
    )
    content = lp.choices[0].logprobs.content
    assert len(content) == lp.usage.completion_tokens, (len(content), lp.usage)
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3, t
        tops = [x.logprob for x in t.top_logprobs]
        assert tops == sorted(tops, reverse=True) and all(x <= 0 for x in tops), t
        # Greedy: the token taken is the most likely one.
        assert abs(t.logprob - tops[0]) < 1e-4, t
    cl = client.completions.create(model=model, prompt="The capital of France is", max_tokens=6,
                                   temperature=0, logprobs=2)
    assert all(x <= 0 for x in cl.choices[0].logprobs.token_logprobs), cl
    figures["logprobs"] = [t.logprob for t in content]

    # The usage chunk: last, no choices, the same counts as the whole answer.
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=16,
        stream=True, stream_options={"include_usage": True},
    ))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, chunks[-1]
    assert all(c.usage is None for c in chunks[:-1])
    whole = ask(QUESTION)
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens, (chunks[-1].usage, whole.usage)
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens

    # seed, penalties, logit_bias, stop: each changes the answer as it says.
    story = [{"role": "user", "content": "Tell me a story."}]
    a, b = (client.chat.completions.create(model=model, messages=story, temperature=1.0, seed=5,
                                           max_tokens=12).choices[0].message.content for _ in range(2))
    assert a == b, (a, b)
    zeros = " 0, 0, 0, 0, 0, 0,"
    plain = client.completions.create(model=model, prompt=zeros, max_tokens=12, temperature=0).choices[0].text
    pen = client.completions.create(model=model, prompt=zeros, max_tokens=12, temperature=0,
                                    frequency_penalty=2.0).choices[0].text
    assert pen.count("0,") < plain.count("0,"), (plain, pen)
    la = "la la la la la la"
    plain = client.completions.create(model=model, prompt=la, max_tokens=12, temperature=0).choices[0].text
    pen = client.completions.create(model=model, prompt=la, max_tokens=12, temperature=0,
                                    presence_penalty=2.0).choices[0].text
    assert pen != plain, (plain, pen)
    forced = client.chat.completions.create(model=model, messages=story, temperature=0, max_tokens=3,
                                            logit_bias={"1000": 100}, logprobs=True)
    toks = [t.token for t in forced.choices[0].logprobs.content]
    assert len(toks) == 3 and len(set(toks)) == 1, toks
    cut = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 7"])
    assert "7" not in cut.choices[0].text and cut.choices[0].finish_reason == "stop", cut

    # /v1/responses: text with instructions, a function call, streamed events.
    resp = client.responses.create(model=model, input=QUESTION, instructions="Answer briefly.",
                                   max_output_tokens=16, temperature=0)
    assert resp.status in ("completed", "incomplete") and "Paris" in resp.output_text, resp
    assert resp.usage.output_tokens > 0
    fc = client.responses.create(
        model=model, input=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[{"type": "function", **WEATHER["function"]}], tool_choice="required", temperature=0,
    )
    item = [o for o in fc.output if o.type == "function_call"][0]
    assert item.name == "get_weather" and isinstance(json.loads(item.arguments)["city"], str), fc
    back = client.responses.create(
        model=model, temperature=0, max_output_tokens=30, tools=[{"type": "function", **WEATHER["function"]}],
        tool_choice="none",
        input=[{"role": "user", "content": "What is the weather in Paris?"},
               {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments},
               {"type": "function_call_output", "call_id": item.call_id, "output": result}],
    )
    assert back.output_text, back
    events = list(client.responses.create(model=model, input=QUESTION, max_output_tokens=16,
                                          temperature=0, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete"), kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == resp.output_text, (text, resp.output_text)
    try:
        client.responses.create(model=model, input="hi", previous_response_id="resp_1")
        raise AssertionError("previous_response_id was accepted")
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.body["param"] == "previous_response_id", e.body
    figures["responses"] = resp.output_text
    return figures


extra = tools_and_parameters()
print(json.dumps({"model": model, "answer": answer, "concurrent": together, **extra}))
