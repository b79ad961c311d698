#!/usr/bin/env bash
# Everything that needs a GPU, in one go: the CPU-vs-CUDA parity tests of every op and of
# training (a three-step batch, a short run; each prints "skipped: no GPU (...)" where there
# is none), the cuda_vs_cpu benchmarks, the side-by-side epoch bench against
# torch_reference.py on the GPU, optionally a whole MCLRec training run on the GPU, and a
# summary.
#
#   scripts/gpu-check.sh                 # on a GPU machine with cargo: build, then run
#   scripts/gpu-check.sh --bundle DIR    # anywhere, no GPU needed: build, then put the
#                                        # binaries, torch_reference.py, the Beauty data and
#                                        # the scripts into DIR (about 22 MB)
#   bash DIR/gpu-check.sh                # on a GPU machine without cargo: run the bundle
#
# Environment: SKIP_TORCH=1 leaves out the torch side-by-side (it needs torch on the
# machine; see scripts/bench-vs-torch.sh); RUN_SECONDS=N also trains MCLRec on Beauty on the
# GPU for at most N seconds (into LOG_DIR/run); LOG_DIR (target/gpu-check, or DIR/logs).
#
# Needs a CUDA driver and the cuBLAS and NVRTC libraries, no CUDA toolkit; they are made
# findable under the names cudarc asks for by scripts/cuda-libs.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bundle=
if [ "${1:-}" = --bundle ]; then
  bundle=${2:?usage: scripts/gpu-check.sh --bundle DIR}
fi

if [ -x "$here/bin/cuda_parity" ]; then
  # Running a bundle: everything is beside this script.
  bin=$here/bin
  shared=$here/shared
  scripts=$here
  log=${LOG_DIR:-$here/logs}
else
  root=$(cd "$here/.." && pwd)
  cd "$root"
  bin=${bundle:-target/gpu-check}/bin
  shared=${MCLREC_SHARED:-$root/../shared}
  scripts=$root/scripts
  log=${LOG_DIR:-target/gpu-check}
  echo "== build (--features cuda)"
  mkdir -p "$bin"
  # The test and bench executables, found from cargo's JSON messages.
  executables() {
    cargo "$@" --features cuda --no-run --message-format=json |
      python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("kind") in (["test"], ["bench"]):
        print(m["target"]["name"], m["executable"])'
  }
  {
    executables test --release -p mclrec-tensor --test cuda_parity
    executables test --release -p mclrec --test cuda_training
    executables bench -p mclrec --bench cuda_vs_cpu
  } | while read -r name exe; do cp "$exe" "$bin/$name"; done
  cargo build --release --features cuda -p mclrec-cli
  cp target/release/mclrec-cli "$bin/"
  if [ -n "$bundle" ]; then
    mkdir -p "$bundle/shared/bench" "$bundle/shared/datasets"
    cp "$shared/bench/torch_reference.py" "$bundle/shared/bench/"
    cp "$shared/datasets/amazon-beauty.txt" "$bundle/shared/datasets/"
    cp scripts/gpu-check.sh scripts/bench-vs-torch.sh scripts/cuda-libs.sh "$bundle/"
    echo "bundle ready: $bundle ($(du -sh "$bundle" | cut -f1)); on the GPU machine: bash $bundle/gpu-check.sh"
    exit 0
  fi
fi
mkdir -p "$log"
log=$(cd "$log" && pwd) # absolute: it goes on LD_LIBRARY_PATH, and scripts below change folder

# Unversioned links to the CUDA libraries this machine has (see scripts/cuda-libs.sh).
LD_LIBRARY_PATH=$(bash "$scripts/cuda-libs.sh" "$log/cuda-libs")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

echo "== CUDA parity tests"
set +e
"$bin/cuda_parity" --nocapture --test-threads=1 2>&1 | tee "$log/tests.txt"
tests_rc=${PIPESTATUS[0]}
"$bin/cuda_training" --nocapture --test-threads=1 2>&1 | tee -a "$log/tests.txt"
training_rc=${PIPESTATUS[0]}

echo "== benchmarks (cuda_vs_cpu)"
"$bin/cuda_vs_cpu" --bench --warm-up-time 1 --measurement-time 3 2>&1 | tee "$log/bench.txt"
bench_rc=${PIPESTATUS[0]}
torch_rc=0
if [ -z "${SKIP_TORCH:-}" ]; then
  echo "== epoch bench on the GPU against torch_reference.py --device cuda"
  MCLREC_CLI=$bin/mclrec-cli MCLREC_SHARED=$shared DEVICE=cuda THREADS=$(nproc) \
    bash "$scripts/bench-vs-torch.sh" 2>&1 | tee "$log/vs-torch.txt"
  torch_rc=${PIPESTATUS[0]}
fi
if [ "${RUN_SECONDS:-0}" -gt 0 ]; then
  echo "== MCLRec on Beauty on the GPU (at most $RUN_SECONDS s)"
  timeout "$RUN_SECONDS" "$bin/mclrec-cli" run --device cuda --epochs 300 --out "$log/run" 2>&1 |
    tail -12 | tee "$log/run.txt"
fi
set -e

echo
echo "== summary"
printf '%-48s %s\n' "test" "result"
# With --nocapture a test's own lines come between "test NAME ... " and its "ok"/"FAILED".
awk '
  function reason(line) { sub(/.*skipped: /, "", line); sub(/ \(.*/, "", line); return line }
  function done(res) {
    printf "%-48s %s%s\n", name, res, (skipped && res == "ok" ? " (skipped: " why ")" : "")
    name = ""
  }
  /^test .* \.\.\. / {
    name = $2; rest = $0; sub(/^test [^ ]+ \.\.\. /, "", rest)
    skipped = (rest ~ /skipped: /); if (skipped) why = reason(rest)
    if (rest ~ /^(ok|FAILED)$/) done(rest)
    next
  }
  name != "" && /skipped: / { skipped = 1; why = reason($0) }
  name != "" && /^(ok|FAILED)$/ { done($0) }
' "$log/tests.txt"
grep -E '^test result' "$log/tests.txt" || true
echo
printf '%-52s %s\n' "benchmark" "time (criterion median estimate)"
# Criterion prints "<group>/<name>/<device>  time:   [lo mid hi]", the name on the line
# before when it is long; the middle value is the estimate. Change lines ("time: [-3% ...]")
# from an earlier run are skipped.
awk '
  /time:/ && !/%/ {
    split($0, parts, "time:")
    name = parts[1]; gsub(/^[ \t]+|[ \t]+$/, "", name)
    if (name == "") name = prev
    split(parts[2], t, /[][ \t]+/)
    printf "%-52s %s %s\n", name, t[4], t[5]
  }
  NF && !/(time|thrpt|change):/ { prev = $0; gsub(/^[ \t]+|[ \t]+$/, "", prev) }
' "$log/bench.txt"
[ -f "$log/vs-torch.txt" ] && grep -E '^(\||Beauty)' "$log/vs-torch.txt" || true

if [ "$tests_rc" -ne 0 ] || [ "$training_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ] || [ "$torch_rc" -ne 0 ]; then
  echo "gpu-check: FAILED (tests $tests_rc, training $training_rc, bench $bench_rc, vs torch $torch_rc; see $log/)" >&2
  exit 1
fi
echo "gpu-check: done (logs in $log/)"
