#!/usr/bin/env bash
# `layerfit serve` against llama-cpp-python's own OpenAI-compatible server (PyPI:
# llama-cpp-python[server], which builds its own llama.cpp) on the same model, threads and
# per-request context, both driven by benches/serve_load.py with the official openai client:
# single-stream decode tokens/s and aggregate tokens/s with CLIENTS concurrent clients.
#
#   bash benches/serve_vs_llama_cpp_python.sh        # SmolLM2, 2 threads, ctx 2048, 4 clients
#   MODEL=/path/x.gguf THREADS=4 CTX=4096 CLIENTS=8 bash benches/serve_vs_llama_cpp_python.sh
#
# The Python side lives in a venv under target/ (LCPP_VENV to reuse one); building
# llama-cpp-python takes about ten minutes on two cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-$(bash tests/fetch-models.sh | tail -n 1)/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${THREADS:-2}"
ctx="${CTX:-2048}"
clients="${CLIENTS:-4}"
venv="${LCPP_VENV:-target/bench-python}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import llama_cpp.server, openai" 2>/dev/null ||
  "$venv/bin/pip" install --quiet "llama-cpp-python[server]==0.3.16" "openai==3.57.0"
cargo build --release --quiet

wait_up() {
  for _ in $(seq 1 300); do
    curl -sf "$1" > /dev/null 2>&1 && return 0
    sleep 1
  done
  echo "error: $1 never answered" >&2
  return 1
}

target/release/layerfit serve --model "$model" --ctx "$ctx" --parallel "$clients" \
  --threads "$threads" --port 18181 --accept-degraded --dev none > /dev/null 2> target/bench-layerfit.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_up http://127.0.0.1:18181/health
ours=$("$venv/bin/python" benches/serve_load.py http://127.0.0.1:18181/v1 --clients "$clients")
kill "$pid"; wait "$pid" 2>/dev/null || true

"$venv/bin/python" -m llama_cpp.server --model "$model" --n_ctx "$ctx" --n_threads "$threads" \
  --n_threads_batch "$threads" --port 18182 > /dev/null 2> target/bench-llama-cpp-python.log &
pid=$!
wait_up http://127.0.0.1:18182/v1/models
theirs=$("$venv/bin/python" benches/serve_load.py http://127.0.0.1:18182/v1 --clients "$clients")
kill "$pid"; wait "$pid" 2>/dev/null || true

python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'':32} {'layerfit serve':>15} {'llama-cpp-python':>17} {'ratio':>7}")
for k, label in [("single_decode_tokens_per_s", "single-stream decode tokens/s"),
                 ("aggregate_tokens_per_s", f"aggregate tokens/s, {a['clients']} clients")]:
    print(f"{label:32} {a[k]:15.2f} {b[k]:17.2f} {a[k] / b[k]:7.2f}x")
print("layerfit rounds:", a["singles"], a["aggregates"], "tokens:", a["tokens_counted"])
print("llama-cpp-python rounds:", b["singles"], b["aggregates"], "tokens:", b["tokens_counted"])
PY
