#!/usr/bin/env bash
# `layerfit serve` side by side with llama.cpp's own `llama-server` (the test fixture,
# tests/build-llama-server.sh) on the same file and the same plan: for each client count,
# layerfit plans the model (`--parallel N`), emits the llama-server command for that plan
# (`plan --emit llama-server`: same -c per sequence, cache type, flash attention, -np), and
# both servers are started in turn with the same threads and driven alike by
# benches/serve_ttft.py. Prints tokens/s and time to first token (p50, p95) for both and the
# ratios (layerfit / llama-server), with the load average before each pair, for every round.
#
#   bash benches/serve_vs_llama_server.sh                 # SmolLM2, ctx 4096, 2 threads, 1 4 16
#   MODEL=/path/x.gguf CTX=8192 THREADS=2 CLIENTS="1 4" ROUNDS=2 REQUESTS=24 TOKENS=64 \
#     LAYERFIT_BIN=/path/to/layerfit bash benches/serve_vs_llama_server.sh
#
# Not part of the test suite (it takes minutes and its figures depend on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-${LAYERFIT_MODELS:-$HOME/.cache/layerfit/models}/SmolLM2-135M-Instruct.Q4_1.gguf}"
ctx="${CTX:-4096}"
threads="${THREADS:-2}"
clients="${CLIENTS:-1 4 16}"
rounds="${ROUNDS:-2}"
requests="${REQUESTS:-24}"
tokens="${TOKENS:-64}"
server="${LAYERFIT_LLAMA_SERVER:-$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/layerfit/llama-server/*/llama-server 2>/dev/null | sort -V | tail -n 1)}"
if [ ! -x "$server" ]; then
  echo "error: no llama-server: run 'bash tests/build-llama-server.sh' or set LAYERFIT_LLAMA_SERVER" >&2
  exit 1
fi
[ -f "$model" ] || { echo "error: no model at $model" >&2; exit 1; }
# LAYERFIT_BIN: a layerfit binary to compare instead of building this tree's.
lf="${LAYERFIT_BIN:-target/release/layerfit}"
[ -n "${LAYERFIT_BIN:-}" ] || cargo build --release --quiet
port=18281

wait_up() {
  for _ in $(seq 1 600); do
    curl -sf "$1" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "error: $1 never answered" >&2
  return 1
}

pid=
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap stop EXIT

# One server, one driver run: prints the driver's JSON line.
measure() {
  local n=$1 kind=$2
  if [ "$kind" = layerfit ]; then
    "$lf" serve --model "$model" --ctx "$ctx" --parallel "$n" --threads "$threads" --no-gpu \
      --accept-degraded --port "$port" > /dev/null 2> target/bench-serve-layerfit.log &
  else
    # The plan's own llama-server command, with the same threads and port.
    local cmd
    cmd=$("$lf" plan --model "$model" --ctx "$ctx" --parallel "$n" --threads "$threads" \
      --no-gpu --emit llama-server 2>/dev/null | grep -v '^#' | tail -n 1 || true)
    # (plan exits 10 on a degraded verdict, as a CPU-only plan is; the command is printed.)
    [ -n "$cmd" ] || { echo "error: plan --emit llama-server printed no command" >&2; exit 1; }
    # shellcheck disable=SC2086
    set -- ${cmd#llama-server }
    "$server" "$@" -t "$threads" -tb "$threads" --host 127.0.0.1 --port "$port" \
      > /dev/null 2> target/bench-serve-llama-server.log &
  fi
  pid=$!
  wait_up "http://127.0.0.1:$port/health"
  python3 benches/serve_ttft.py "http://127.0.0.1:$port/v1" --clients "$n" \
    --requests "$(( requests > 2 * n ? requests : 2 * n ))" --tokens "$tokens"
  stop
}

echo "model $model, ctx $ctx per sequence, $threads threads, $tokens tokens an answer"
echo "llama-server: $server"
printf '%-5s %-6s %-6s | %-24s | %-24s | %s\n' round load clients \
  "layerfit tok/s p50 p95" "llama-server tok/s p50 p95" "ratio tok/s, ttft p50, p95"
for r in $(seq 1 "$rounds"); do
  for n in $clients; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    # Alternate which server goes first, so neither always meets a warmer machine.
    if [ $(( r % 2 )) = 1 ]; then
      a=$(measure "$n" layerfit); b=$(measure "$n" llama-server)
    else
      b=$(measure "$n" llama-server); a=$(measure "$n" layerfit)
    fi
    python3 - "$r" "$load" "$n" "$a" "$b" <<'PY'
import json, sys
r, load, n = sys.argv[1:4]
a, b = json.loads(sys.argv[4]), json.loads(sys.argv[5])
f = lambda d: f"{d['tokens_per_s']:7.1f} {d['ttft_ms_p50']:7.1f} {d['ttft_ms_p95']:7.1f}"
print(f"{r:<5} {load:<6} {n:<7} | {f(a):<24} | {f(b):<26} | "
      f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x, {a['ttft_ms_p50'] / b['ttft_ms_p50']:.2f}x, "
      f"{a['ttft_ms_p95'] / b['ttft_ms_p95']:.2f}x")
PY
  done
done
