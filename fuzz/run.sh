#!/usr/bin/env bash
# Runs layerfit's fuzz targets with libFuzzer and prints, per target, the executions done and
# the findings (crash, timeout or out-of-memory inputs, kept under fuzz/artifacts/TARGET/).
#
#   bash fuzz/run.sh                      # every target, 10 million executions each
#   RUNS=1000000 bash fuzz/run.sh gguf_header run_file
#   SECONDS_PER_TARGET=60 bash fuzz/run.sh   # a time budget instead of a count
#
# Builds with stable Rust: the sanitizer-coverage pass and libFuzzer (the libfuzzer-sys crate)
# are all it needs; no cargo-fuzz, no nightly. Seeds: fuzz/seeds/TARGET (committed, small) plus
# the first 256 KiB of the two real models when tests/fetch-models.sh has cached them.
# Each finding should become a regression test (tests/fuzz_regressions.rs) before it is fixed.
# Exit 0 when no target found anything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_header gguf_split hardware_yaml run_file emitted_config remote_answers)
runs="${RUNS:-10000000}"

export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not build scripts and
# proc macros (which would need libFuzzer's symbols), as cargo-fuzz does it.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet --bins --target "$host"
bin="target/$host/release"

models="${LAYERFIT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/models}"
found=0
printf '%-16s %14s %10s %s\n' target executions exec/s findings
for t in "${targets[@]}"; do
  corpus="corpus/$t"; seeds="seeds/$t"; artifacts="artifacts/$t"
  mkdir -p "$corpus" "$seeds" "$artifacts"
  if [ "$t" = gguf_header ] || [ "$t" = gguf_split ]; then
    for m in "$models"/*.gguf; do
      [ -f "$m" ] && head -c 262144 "$m" > "$corpus/seed-$(basename "$m").head"
    done
  fi
  limit=()
  if [ -n "${SECONDS_PER_TARGET:-}" ]; then limit=(-max_total_time="$SECONDS_PER_TARGET"); else limit=(-runs="$runs"); fi
  log="artifacts/$t.log"
  "$bin/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$seeds" > "$log" 2>&1 || true
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  n=$(find "$artifacts" -type f | wc -l)
  [ "$n" -eq 0 ] || found=1
  printf '%-16s %14s %10s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$n$( [ "$n" -gt 0 ] && echo " (see $artifacts, $log)")"
done
exit $found
