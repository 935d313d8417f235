#!/usr/bin/env bash
# Local vs split over loopback RPC: decode and prompt tokens/s of `layerfit run` on this
# machine alone and across two `layerfit rpc-server` processes on 127.0.0.1 (every block
# offloaded, half on each), with the network share of a decode step the plan predicted
# next to the one measured, (split step - local step) / split step.
#
#   bash benches/rpc_split.sh                 # both real models, ctx 4096, 96 tokens
#   CTX=32768 TOKENS=64 bash benches/rpc_split.sh
#
# The servers run on this machine's cores: the "measured" share also holds the servers'
# and the client's threads competing for the same cores, which separate hosts would not.
set -euo pipefail
cd "$(dirname "$0")/.."
models="$(bash tests/fetch-models.sh | tail -n 1)"
ctx="${CTX:-4096}"
tokens="${TOKENS:-96}"
threads="${THREADS:-1}"
cargo build --release --quiet
bin=target/release/layerfit
ports=(18461 18462)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for p in "${ports[@]}"; do
  "$bin" rpc-server --port "$p" --threads "$threads" --memory 4G > /dev/null 2>&1 &
  pids+=($!)
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2> /dev/null && break; sleep 0.1; done
done
rpc="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}"
prompt="$(python3 -c 'print("The history of the printing press, told in many words: " * 12)')"

echo "| model | where | decode tok/s | prompt tok/s | network share predicted | measured |"
echo "|---|---|---|---|---|---|"
for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  common=(--model "$models/$m" --ctx "$ctx" --kv f16 --threads "$threads" --raw
    --prompt "$prompt" --max-tokens "$tokens" --temp 0 --accept-degraded --json)
  local_json="$("$bin" run "${common[@]}" --ngl 0)"
  split_json="$("$bin" run "${common[@]}" --rpc "$rpc")"
  predicted="$("$bin" plan --model "$models/$m" --ctx "$ctx" --kv f16 --threads "$threads" \
    --rpc "$rpc" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["plan"]["speed"].get("network_share", 0))')"
  python3 - "$m" "$predicted" "$local_json" "$split_json" <<'PY'
import json, sys
m, predicted, local, split = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
ld, sd = local["decode_tokens_per_s"], split["decode_tokens_per_s"]
measured = (1 / sd - 1 / ld) / (1 / sd)
print(f"| {m} | local CPU | {ld:.1f} | {local['prompt_tokens_per_s']:.1f} | | |")
print(f"| {m} | 2 RPC servers | {sd:.1f} | {split['prompt_tokens_per_s']:.1f} | {predicted*100:.1f}% | {measured*100:.1f}% |")
PY
done
