"""Load for an OpenAI-compatible server, measured with the official `openai` client: single-
stream decode tokens/s (completion tokens after the first, over the time after the first
token, streamed) and aggregate tokens/s with N concurrent clients (all completion tokens over
the wall time). Used by benches/serve_vs_llama_cpp_python.sh for both servers alike.

    python benches/serve_load.py BASE_URL [--clients 4] [--tokens 128] [--rounds 3]

Prints one JSON line: {"single_decode_tokens_per_s", "aggregate_tokens_per_s", ...}, each the
median of the rounds.
"""
import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import openai

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--tokens", type=int, default=128)
ap.add_argument("--rounds", type=int, default=3)
a = ap.parse_args()
client = openai.OpenAI(base_url=a.base, api_key="bench", max_retries=0, timeout=600)
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe a walk through a forest in autumn.",
    "Tell me about the history of bread.",
]


def stream_once(prompt):
    """(completion tokens, seconds after the first token) of one streamed answer."""
    t0 = time.perf_counter()
    first = None
    n = 0
    for c in client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=a.tokens,
        temperature=0,
        stream=True,
    ):
        if c.choices and c.choices[0].delta.content:
            n += 1
            if first is None:
                first = time.perf_counter()
    return n, time.perf_counter() - (first or t0)


def whole(prompt):
    r = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": prompt}], max_tokens=a.tokens, temperature=0
    )
    return r.usage.completion_tokens


stream_once(PROMPTS[0])  # warm-up
singles, aggregates, counts = [], [], []
for _ in range(a.rounds):
    n, secs = stream_once(PROMPTS[1])
    singles.append((n - 1) / secs)
    counts.append(n)
    t = time.perf_counter()
    with ThreadPoolExecutor(a.clients) as pool:
        total = sum(pool.map(whole, [PROMPTS[i % len(PROMPTS)] for i in range(a.clients)]))
    counts.append(total)
    aggregates.append(total / (time.perf_counter() - t))
print(json.dumps({
    "single_decode_tokens_per_s": round(statistics.median(singles), 2),
    "aggregate_tokens_per_s": round(statistics.median(aggregates), 2),
    "clients": a.clients,
    "tokens": a.tokens,
    "rounds": a.rounds,
    "singles": [round(x, 2) for x in singles],
    "aggregates": [round(x, 2) for x in aggregates],
    "tokens_counted": counts,
}))
