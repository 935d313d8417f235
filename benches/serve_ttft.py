"""Time to first token and throughput of an OpenAI-compatible server, for
benches/serve_vs_llama_server.sh (both servers are driven alike).

    python3 benches/serve_ttft.py BASE_URL --clients N [--requests 24] [--tokens 64]

Each of N clients sends streamed /v1/chat/completions requests one after another (greedy,
`max_tokens` TOKENS), cycling through the same list of questions, until REQUESTS answers are
in. Plain http.client (standard library), so the client adds no more than a socket read per
chunk. Time to first token: from sending the request to the first chunk with text.
Throughput: every answer's text chunks (one per token in both servers) over the wall time.
One warm-up request first. Prints one JSON line:
{"clients", "requests", "tokens", "tokens_per_s", "ttft_ms_p50", "ttft_ms_p95", ...}.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("base")
ap.add_argument("--clients", type=int, default=1)
ap.add_argument("--requests", type=int, default=24)
ap.add_argument("--tokens", type=int, default=64)
a = ap.parse_args()
url = urllib.parse.urlparse(a.base)
QUESTIONS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe a walk through a forest in autumn.",
    "Tell me about the history of bread.",
    "What makes a good cup of tea?",
    "Why is the sky blue?",
    "Give three tips for learning a language.",
    "How do bees make honey?",
]


def one(question):
    """(seconds to the first text chunk, text chunks) of one streamed answer."""
    body = json.dumps(
        {
            "model": "m",
            "messages": [{"role": "user", "content": question}],
            "max_tokens": a.tokens,
            "temperature": 0,
            "stream": True,
        }
    )
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", url.path + "/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]!r}")
    first, n = None, 0
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
        ch = c.get("choices") or []
        if ch and (ch[0].get("delta") or {}).get("content"):
            n += 1
            if first is None:
                first = time.perf_counter() - t0
    conn.close()
    return first if first is not None else time.perf_counter() - t0, n


one(QUESTIONS[0])  # warm-up
lock = threading.Lock()
ttfts, tokens, left = [], [0], [a.requests]


def client(k):
    i = k
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        t, n = one(QUESTIONS[i % len(QUESTIONS)])
        i += a.clients
        with lock:
            ttfts.append(t)
            tokens[0] += n


t0 = time.perf_counter()
threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - t0
q = statistics.quantiles(ttfts, n=20, method="inclusive")
print(
    json.dumps(
        {
            "clients": a.clients,
            "requests": len(ttfts),
            "tokens": tokens[0],
            "wall_s": round(wall, 3),
            "tokens_per_s": round(tokens[0] / wall, 2),
            "ttft_ms_p50": round(statistics.median(ttfts) * 1000, 1),
            "ttft_ms_p95": round(q[18] * 1000, 1),
        }
    )
)
