"""Drives `layerfit serve --embeddings` with the official `openai` Python client (PyPI), as an
application would: the models list says what is served; every vector is as wide as the model
and of unit length; the same input gives the same vector; a batch gives what each input
gives alone; base64 (as OpenAI sends it: little-endian f32) decodes to the float answer;
token-id inputs are embedded; different inputs differ.

    python tests/serve_embeddings.py BASE_URL API_KEY

Prints one JSON line of figures; exits non-zero (an assertion) on any failure.
"""
import base64
import json
import math
import struct
import sys
import urllib.request

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)

models = client.models.list()
assert len(models.data) == 1, models
model = models.data[0].id
meta = models.data[0].model_extra["meta"]
assert meta["serves"] == "embeddings", meta
width = meta["embedding_dimensions"]

TEXTS = [
    "The capital of France is Paris.",
    "The capital of Italy is Rome.",
    "Rust programs free memory without a garbage collector.",
    "def add(a, b):\n    return a + b",
    "Bonjour",
]


def floats(inp, **kw):
    r = client.embeddings.create(model=model, input=inp, encoding_format="float", **kw)
    assert r.object == "list" and r.model == model, r
    assert [d.index for d in r.data] == list(range(len(r.data))), r.data
    assert all(d.object == "embedding" for d in r.data)
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0, r.usage
    return r


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def max_diff(a, b):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


alone = [floats(t) for t in TEXTS]
vectors = [r.data[0].embedding for r in alone]
for v in vectors:
    assert len(v) == width, len(v)
    assert abs(norm(v) - 1.0) < 1e-4, norm(v)

again = floats(TEXTS[0]).data[0].embedding
same_input_diff = max_diff(again, vectors[0])
assert same_input_diff < 1e-6, same_input_diff

batch = floats(TEXTS)
assert len(batch.data) == len(TEXTS)
batch_diff = max(max_diff(d.embedding, v) for d, v in zip(batch.data, vectors))
assert batch_diff < 1e-4, batch_diff
assert batch.usage.prompt_tokens == sum(r.usage.prompt_tokens for r in alone), batch.usage

# The client's default asks for base64 and decodes it; a raw request shows the bytes.
default = client.embeddings.create(model=model, input=TEXTS[1]).data[0].embedding
assert max_diff(default, vectors[1]) < 1e-6
req = urllib.request.Request(
    base + "/embeddings",
    data=json.dumps({"input": TEXTS[1], "encoding_format": "base64"}).encode(),
    headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"},
)
raw = json.load(urllib.request.urlopen(req))
decoded = struct.unpack("<%df" % width, base64.b64decode(raw["data"][0]["embedding"]))
base64_diff = max_diff(decoded, vectors[1])
assert base64_diff == 0.0, base64_diff

cosines = [
    sum(x * y for x, y in zip(vectors[i], vectors[j]))
    for i in range(len(vectors))
    for j in range(i + 1, len(vectors))
]
assert max(cosines) < 1.0 - 1e-6, cosines
min_diff_between_different = min(
    max_diff(vectors[i], vectors[j]) for i in range(len(vectors)) for j in range(i + 1, len(vectors))
)
assert min_diff_between_different > 1e-3, min_diff_between_different

# Token ids: one list, and a list of lists (two of one length share a decode), the same
# vectors either way.
ids = [[1, 2, 3, 4, 5], [100, 200, 300], [10, 20, 30, 40, 50]]
one = floats(ids[0]).data[0].embedding
many = floats(ids).data
assert len(one) == width and abs(norm(one) - 1.0) < 1e-4
assert max_diff(many[0].embedding, one) < 1e-4
assert max_diff(many[0].embedding, many[1].embedding) > 1e-3

# dimensions equal to the width is honoured.
assert len(floats(TEXTS[3], dimensions=width).data[0].embedding) == width

print(json.dumps({
    "width": width,
    "pooling": meta["pooling"],
    "norms": [norm(v) for v in vectors],
    "same_input_max_diff": same_input_diff,
    "batch_vs_alone_max_diff": batch_diff,
    "base64_max_diff": base64_diff,
    "max_cosine_between_different_inputs": max(cosines),
    "min_max_abs_diff_between_different_inputs": min_diff_between_different,
    "first_vector_head": vectors[0][:4],
}))
