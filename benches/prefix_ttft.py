"""Time to first token for a long shared prefix, first request against second, on an
OpenAI-compatible server (benches/prefix_reuse.sh drives layerfit serve and llama-server alike).

    python3 benches/prefix_ttft.py BASE_URL [--words 1500] [--rounds 5]

Each round makes a new system prompt of about WORDS words (numbered rules, different in every
round, so the first request of a round finds nothing cached), then sends two streamed chat
requests with that system prompt and two different questions: the first reads the whole
prompt, the second can start from the prefix the first left in the cache. Greedy, 8 tokens.
Time to first token: from sending the request to the first chunk with text. The usage chunk
(`stream_options.include_usage`) gives the prompt's tokens and, where the server reports it,
`prompt_tokens_details.cached_tokens`. Plain http.client (standard library). Prints one JSON
line: {"rounds", "prompt_tokens", "first_ms_p50", "second_ms_p50", "ratio_p50", "cached", ...}.
"""
import argparse
import http.client
import json
import statistics
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--words", type=int, default=1500)
ap.add_argument("--rounds", type=int, default=5)
a = ap.parse_args()
url = urllib.parse.urlparse(a.base)
THINGS = ["apple", "river", "copper", "violin", "harbour", "lantern", "meadow", "glacier"]


def system_prompt(round_no):
    rules, words, i = [], 0, 0
    while words < a.words:
        thing = THINGS[(i * 7 + round_no) % len(THINGS)]
        rule = f"Rule {round_no}-{i}: every {thing} numbered {i * 13 + round_no} goes to shelf {i % 11}."
        rules.append(rule)
        words += len(rule.split())
        i += 1
    return "You are a careful clerk. " + " ".join(rules)


def one(system, question):
    """(seconds to the first text chunk, usage) of one streamed answer."""
    body = json.dumps(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": question},
            ],
            "max_tokens": 8,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", url.path + "/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]!r}")
    first, usage = None, {}
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        c = json.loads(data)
        if c.get("usage"):
            usage = c["usage"]
        ch = c.get("choices") or []
        if ch and (ch[0].get("delta") or {}).get("content") and first is None:
            first = time.perf_counter() - t0
    conn.close()
    return (first if first is not None else time.perf_counter() - t0), usage


one("Warm up.", "Say hi.")
firsts, seconds, cached, prompt = [], [], [], []
for k in range(a.rounds):
    system = system_prompt(k + 1)
    t1, u1 = one(system, "Which shelf holds the first copper?")
    t2, u2 = one(system, "Which shelf holds the last apple?")
    firsts.append(t1)
    seconds.append(t2)
    prompt.append(u2.get("prompt_tokens"))
    cached.append((u2.get("prompt_tokens_details") or {}).get("cached_tokens"))
f, s = statistics.median(firsts), statistics.median(seconds)
print(
    json.dumps(
        {
            "rounds": a.rounds,
            "prompt_tokens": prompt,
            "cached_tokens_second": cached,
            "first_ms": [round(x * 1000, 1) for x in firsts],
            "second_ms": [round(x * 1000, 1) for x in seconds],
            "first_ms_p50": round(f * 1000, 1),
            "second_ms_p50": round(s * 1000, 1),
            "ratio_p50": round(s / f, 3),
        }
    )
)
