#!/usr/bin/env bash
# Everything that needs a GPU, in one go: builds with the CUDA backend, runs the CPU-vs-CUDA
# parity tests of every op and of training (a three-step batch, a short run; each prints
# "skipped: no GPU (...)" where there is none), runs the cuda_vs_cpu benchmarks and the
# side-by-side epoch bench against torch_reference.py on the GPU, and prints a summary.
#
# Environment: SKIP_TORCH=1 leaves out the torch side-by-side (it needs torch on the
# machine; see scripts/bench-vs-torch.sh).
#
#   scripts/gpu-check.sh
#
# Needs a CUDA driver (libcuda), cuBLAS and NVRTC libraries on the loader path (for
# example LD_LIBRARY_PATH=/usr/local/cuda/lib64); no CUDA toolkit is needed to build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log=${LOG_DIR:-target/gpu-check}
mkdir -p "$log"

echo "== build (--features cuda)"
cargo build --release --workspace --features cuda --all-targets

echo "== CUDA parity tests"
set +e
cargo test --release -p mclrec-tensor --features cuda --test cuda_parity -- --nocapture --test-threads=1 \
  2>&1 | tee "$log/tests.txt"
tests_rc=${PIPESTATUS[0]}
cargo test --release -p mclrec --features cuda --test cuda_training -- --nocapture --test-threads=1 \
  2>&1 | tee -a "$log/tests.txt"
training_rc=${PIPESTATUS[0]}
cargo test --release -p mclrec-tensor --features cuda --test ops 2>&1 | tee "$log/ops.txt"
ops_rc=${PIPESTATUS[0]}
set -e

echo "== benchmarks (cuda_vs_cpu)"
set +e
cargo bench --features cuda --bench cuda_vs_cpu 2>&1 | tee "$log/bench.txt"
bench_rc=${PIPESTATUS[0]}
torch_rc=0
if [ -z "${SKIP_TORCH:-}" ]; then
  echo "== epoch bench on the GPU against torch_reference.py --device cuda"
  DEVICE=cuda THREADS=$(nproc) scripts/bench-vs-torch.sh 2>&1 | tee "$log/vs-torch.txt"
  torch_rc=${PIPESTATUS[0]}
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
grep -E '^test result' "$log/tests.txt" "$log/ops.txt" || true
echo
printf '%-52s %s\n' "benchmark" "time (criterion median estimate)"
# Criterion prints "<group>/<name>/<device>  time:   [lo mid hi]", the name on the line
# before when it is long; the middle value is the estimate.
awk '
  /time:/ {
    split($0, parts, "time:")
    name = parts[1]; gsub(/^[ \t]+|[ \t]+$/, "", name)
    if (name == "") name = prev
    split(parts[2], t, /[][ \t]+/)
    printf "%-52s %s %s\n", name, t[4], t[5]
  }
  NF { prev = $0; gsub(/^[ \t]+|[ \t]+$/, "", prev) }
' "$log/bench.txt"
[ -f "$log/vs-torch.txt" ] && grep -E '^(\||Beauty)' "$log/vs-torch.txt" || true

if [ "$tests_rc" -ne 0 ] || [ "$training_rc" -ne 0 ] || [ "$ops_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ] || [ "$torch_rc" -ne 0 ]; then
  echo "gpu-check: FAILED (tests $tests_rc, training $training_rc, ops $ops_rc, bench $bench_rc, vs torch $torch_rc; see $log/)" >&2
  exit 1
fi
echo "gpu-check: done (logs in $log/)"
