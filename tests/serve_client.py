"""Drives `layerfit serve` with the official `openai` Python client (PyPI), as an application
would: the models list, a chat completion, a streamed one, a text completion, the degraded
header and field on each, four concurrent clients answered as each is alone, and the errors
a client gets for a wrong key and an impossible max_tokens (the server keeps serving).
With `base`, the server runs a base model instead: its chat messages are completed as plain
text, exactly as the same text sent to /v1/completions.

    python tests/serve_client.py BASE_URL API_KEY [base]

Prints one JSON line of figures; exits non-zero (an assertion) on any failure.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

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

print(json.dumps({"model": model, "answer": answer, "concurrent": together}))
