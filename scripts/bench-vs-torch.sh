#!/usr/bin/env bash
# Side-by-side training speed: this project's `mclrec-cli bench` and the plain-PyTorch
# reference `../shared/bench/torch_reference.py` in `pad50` mode (what the official code
# does) and `bucket` mode (batches trimmed to their longest sequence), one after the
# other, on the same machine, with the same thread count, for MCLRec's three-step schedule
# and for SASRec on Beauty. Installs torch into target/torch-venv when it is missing.
#
#   scripts/bench-vs-torch.sh                 # 2 threads, 50 timed batches each
#   THREADS=1 BATCHES=20 scripts/bench-vs-torch.sh
#   DEVICE=cuda scripts/bench-vs-torch.sh     # both on the GPU (builds with --features cuda)
#
# Environment: THREADS (2), BATCHES (50), DEVICE (cpu | cuda), DATA (the Beauty file of
# ../shared/datasets), MCLREC_SHARED (the shared folder, default ../shared beside the
# repository), PYTHON (a python with torch; default: python3 when it has torch, else the
# venv), MCLREC_CLI (a prebuilt mclrec-cli to time; default: build it with cargo).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${MCLREC_SHARED:-$root/../shared}
threads=${THREADS:-2}
batches=${BATCHES:-50}
data=${DATA:-$shared/datasets/amazon-beauty.txt}
device=${DEVICE:-cpu}
venv=$root/target/torch-venv
reference=$shared/bench/torch_reference.py
features=()
[ "$device" = cpu ] || features=(--features cuda)

[ -f "$reference" ] || { echo "error: $reference not found (set MCLREC_SHARED)" >&2; exit 2; }
[ -f "$data" ] || { echo "error: $data not found (set DATA)" >&2; exit 2; }
python=${PYTHON:-}
if [ -z "$python" ] && python3 -c "import torch, numpy" 2>/dev/null; then
    python=python3
fi
if [ -z "$python" ]; then
    python=$venv/bin/python
    if ! "$python" -c "import torch, numpy" 2>/dev/null; then
        echo "installing torch and numpy into $venv ..." >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet torch numpy
    fi
fi
cli=${MCLREC_CLI:-}
if [ -z "$cli" ]; then
    (cd "$root" && cargo build --release --quiet -p mclrec-cli "${features[@]}")
    cli=$root/target/release/mclrec-cli
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for model in mclrec sasrec; do
    schedule=three-step
    [ "$model" = sasrec ] && schedule=sasrec
    echo "== $model: mclrec-cli bench" >&2
    ours=$("$cli" bench --dataset "$data" --model "$model" \
        --threads "$threads" --batches "$batches" --device "$device" --json)
    echo "$model ours $ours" >> "$results"
    for mode in pad50 bucket; do
        echo "== $model: torch_reference.py --mode $mode" >&2
        line=$(cd "$(dirname "$reference")" && "$python" "$reference" --data "$data" \
            --threads "$threads" --steps "$batches" --mode "$mode" --schedule "$schedule" \
            --device "${device%%:*}" \
            --log-every 0 | grep '^RESULT ')
        echo "$model $mode ${line#RESULT }" >> "$results"
    done
done

python3 - "$results" "$threads" "$batches" "$device" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    model, kind, blob = line.split(" ", 2)
    rows.setdefault(model, {})[kind] = json.loads(blob)
print(f"\nBeauty on {sys.argv[4]}, {sys.argv[2]} threads, {sys.argv[3]} timed batches per figure, seconds per epoch:\n")
print("| model | this project | torch pad50 | torch bucket | pad50 / ours | bucket / ours | our GFLOP/s | our peak RSS |")
print("|---|---|---|---|---|---|---|---|")
for model, r in rows.items():
    ours = r["ours"]["s_per_epoch"]
    pad, buck = r["pad50"]["epoch_s_projected"], r["bucket"]["epoch_s_projected"]
    print(f"| {model} | {ours:.1f} s | {pad:.1f} s | {buck:.1f} s | {pad / ours:.1f}x | {buck / ours:.1f}x "
          f"| {r['ours']['gflops']:.1f} | {r['ours']['peak_rss_mb']:.0f} MiB |")
PY
