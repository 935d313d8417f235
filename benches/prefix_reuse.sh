#!/usr/bin/env bash
# Prefix reuse, `layerfit serve` side by side with llama.cpp's own `llama-server` (the test
# fixture, tests/build-llama-server.sh) on the same file and plan (issue 31's benchmark): the
# time to first token of a request whose ~2,000-token system prompt was just read by the
# request before it, against that first request's (target: second <= 0.2x first). Both
# servers get one sequence, the same context, threads and cache type: layerfit serve with
# --parallel 1, llama-server with the command `plan --emit llama-server` prints for that plan.
# Prints each server's JSON line from benches/prefix_ttft.py and the ratios.
#
#   bash benches/prefix_reuse.sh          # SmolLM2, ctx 4096, 2 threads, 5 rounds
#   MODEL=/path/x.gguf CTX=8192 THREADS=2 WORDS=1500 ROUNDS=5 bash benches/prefix_reuse.sh
#
# Not part of the test suite (it takes a minute or two and its figures depend on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-${LAYERFIT_MODELS:-$HOME/.cache/layerfit/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
ctx="${CTX:-4096}"
threads="${THREADS:-2}"
words="${WORDS:-1500}"
rounds="${ROUNDS:-5}"
server="${LAYERFIT_LLAMA_SERVER:-$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/layerfit/llama-server/*/llama-server 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$server" ] || { echo "error: no llama-server: run 'bash tests/build-llama-server.sh' or set LAYERFIT_LLAMA_SERVER" >&2; exit 1; }
[ -f "$model" ] || { echo "error: no model at $model" >&2; exit 1; }
lf="${LAYERFIT_BIN:-target/release/layerfit}"
[ -n "${LAYERFIT_BIN:-}" ] || cargo build --release --quiet
port=18282

pid=
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap stop EXIT

wait_up() {
  for _ in $(seq 1 600); do
    curl -sf "$1" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "error: $1 never answered" >&2
  return 1
}

measure() {
  if [ "$1" = layerfit ]; then
    "$lf" serve --model "$model" --ctx "$ctx" --parallel 1 --threads "$threads" --no-gpu \
      --accept-degraded --port "$port" > /dev/null 2> target/bench-prefix-layerfit.log &
  else
    local cmd
    cmd=$("$lf" plan --model "$model" --ctx "$ctx" --parallel 1 --threads "$threads" \
      --no-gpu --emit llama-server 2>/dev/null | grep -v '^#' | tail -n 1 || true)
    [ -n "$cmd" ] || { echo "error: plan --emit llama-server printed no command" >&2; exit 1; }
    # shellcheck disable=SC2086
    set -- ${cmd#llama-server }
    "$server" "$@" -t "$threads" -tb "$threads" --host 127.0.0.1 --port "$port" \
      > /dev/null 2> target/bench-prefix-llama-server.log &
  fi
  pid=$!
  wait_up "http://127.0.0.1:$port/health"
  python3 benches/prefix_ttft.py "http://127.0.0.1:$port/v1" --words "$words" --rounds "$rounds"
  stop
}

echo "model $model, ctx $ctx, $threads threads, system prompt ~$words words, $rounds rounds"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
a=$(measure layerfit)
b=$(measure llama-server)
echo "layerfit:     $a"
echo "llama-server: $b"
python3 - "$a" "$b" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"second/first TTFT: layerfit {a['ratio_p50']:.3f}, llama-server {b['ratio_p50']:.3f} (target <= 0.2)")
print(f"layerfit/llama-server TTFT: first {a['first_ms_p50'] / b['first_ms_p50']:.2f}x, "
      f"second {a['second_ms_p50'] / b['second_ms_p50']:.2f}x")
PY
