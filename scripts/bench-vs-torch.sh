#!/usr/bin/env bash
# Side-by-side training speed: this project's `mclrec-cli bench` and the plain-PyTorch
# reference `../shared/bench/torch_reference.py` in `pad50` mode (what the official code
# does) and `bucket` mode (batches trimmed to their longest sequence), one after the
# other, on the same machine, with the same thread count, for MCLRec's three-step schedule
# and for SASRec on Beauty. Installs torch into target/torch-venv when it is missing.
#
#   scripts/bench-vs-torch.sh                 # 2 threads, 50 timed batches each
#   THREADS=1 BATCHES=20 scripts/bench-vs-torch.sh
#   ROUNDS=3 scripts/bench-vs-torch.sh        # three rounds, medians (a noisy machine)
#   DEVICE=cuda scripts/bench-vs-torch.sh     # both on the GPU (builds with --features cuda)
#
# Environment: THREADS (2), BATCHES (50), ROUNDS (1), DEVICE (cpu | cuda), DATA (the Beauty file of
# ../shared/datasets), MCLREC_SHARED (the shared folder, default ../shared beside the
# repository), PYTHON (a python with torch; default: python3 when it has torch, else the
# venv), MCLREC_CLI (a prebuilt mclrec-cli to time; default: build it with cargo).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${MCLREC_SHARED:-$root/../shared}
threads=${THREADS:-2}
batches=${BATCHES:-50}
rounds=${ROUNDS:-1}
case $rounds in '' | *[!0-9]* | 0) echo "error: ROUNDS must be a positive number, got '$rounds'" >&2; exit 2 ;; esac
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
# Each round measures the three figures of each model back to back; with several rounds the
# table gives medians (this machine's load moves figures by tens of percent within an hour,
# and a ratio is only fair between figures measured close together).
for round in $(seq "$rounds"); do
    for model in mclrec sasrec; do
        schedule=three-step
        [ "$model" = sasrec ] && schedule=sasrec
        echo "== round $round, $model: mclrec-cli bench" >&2
        ours=$("$cli" bench --dataset "$data" --model "$model" \
            --threads "$threads" --batches "$batches" --device "$device" --json)
        echo "$round $model ours $ours" >> "$results"
        for mode in pad50 bucket; do
            echo "== round $round, $model: torch_reference.py --mode $mode" >&2
            line=$(cd "$(dirname "$reference")" && "$python" "$reference" --data "$data" \
                --threads "$threads" --steps "$batches" --mode "$mode" --schedule "$schedule" \
                --device "${device%%:*}" \
                --log-every 0 | grep '^RESULT ')
            echo "$round $model $mode ${line#RESULT }" >> "$results"
        done
    done
done

python3 - "$results" "$threads" "$batches" "$device" "$rounds" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, model, kind, blob = line.split(" ", 3)
    rows.setdefault(model, {}).setdefault(int(rnd), {})[kind] = json.loads(blob)
rounds = int(sys.argv[5])
what = "seconds per epoch" + (f", medians over {rounds} rounds (ratios: the median of each round's ratio)" if rounds > 1 else "")
print(f"\nBeauty on {sys.argv[4]}, {sys.argv[2]} threads, {sys.argv[3]} timed batches per figure, {what}:\n")
print("| model | this project | torch pad50 | torch bucket | pad50 / ours | bucket / ours | our GFLOP/s | our peak RSS |")
print("|---|---|---|---|---|---|---|---|")
med = statistics.median
for model, by_round in rows.items():
    rs = list(by_round.values())
    ours = [r["ours"]["s_per_epoch"] for r in rs]
    pad = [r["pad50"]["epoch_s_projected"] for r in rs]
    buck = [r["bucket"]["epoch_s_projected"] for r in rs]
    print(f"| {model} | {med(ours):.1f} s | {med(pad):.1f} s | {med(buck):.1f} s "
          f"| {med(p / o for p, o in zip(pad, ours)):.1f}x | {med(b / o for b, o in zip(buck, ours)):.1f}x "
          f"| {med(r['ours']['gflops'] for r in rs):.1f} | {max(r['ours']['peak_rss_mb'] for r in rs):.0f} MiB |")
if rounds > 1:
    print("\nEach round:\n")
    for model, by_round in rows.items():
        for rnd, r in sorted(by_round.items()):
            o, p, b = r["ours"]["s_per_epoch"], r["pad50"]["epoch_s_projected"], r["bucket"]["epoch_s_projected"]
            print(f"- {model} round {rnd}: {o:.1f} / {p:.1f} / {b:.1f} s, {p / o:.1f}x / {b / o:.1f}x")
PY
