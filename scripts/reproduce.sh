#!/usr/bin/env bash
# Reruns the experiments of docs/RESULTS.md with this project's own tool: Table 3 (SASRec,
# CL4SRec, MCLRec and DuoRec x 3 seeds on Beauty and Sports; BPR, GRU4Rec, Caser, BERT4Rec and S3-Rec on
# both), Table 4 (ablations and joint training on
# Beauty), Figure 4 (batch sizes), Figure 7 (noise) and Figure 8 (user groups), then prints
# every table as markdown. Runs go to runs/repro/<name> (ignored by git); a finished run is
# archived into results/<name> (its metrics, test results and weights, committed) by
# scripts/archive_run.py. An archived run is not rerun (delete results/<name> to rerun it), an
# interrupted one is resumed, so the script can be stopped and started again.
#
#   scripts/reproduce.sh            # everything (days on a 2-core CPU)
#   ONLY=table3 scripts/reproduce.sh
#   JOBS=6 DEVICE=cuda ONLY=table3,table4 scripts/reproduce.sh   # six runs at once on a GPU
#
# Environment:
#   THREADS        worker threads per run (default: one per core, or the cores shared out
#                  when JOBS > 1)
#   JOBS           training runs at once (default 1; a launch-bound GPU run leaves the GPU
#                  mostly idle, so several fit side by side)
#   ONLY           a comma-separated list of table3 | classic | table4 | batch | noise |
#                  groups | curves (classic: the five classic baselines of Table 3 on both)
#   DEVICE         cpu | cuda (train on the GPU: ~5 s per Beauty MCLRec epoch on an H200)
#   MCLREC_CLI     a prebuilt mclrec-cli (e.g. from `scripts/gpu-check.sh --bundle`) for a
#                  machine without cargo
#   MCLREC_SHARED  the shared folder with the official checkpoint (default ../shared)
# The figures go to docs/figures/ (PNG, drawn by `mclrec-cli figure`).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
device=${DEVICE:-cpu}
cli=${MCLREC_CLI:-}
if [ -z "$cli" ]; then
    features=()
    [ "$device" = cpu ] || features=(--features cuda)
    cargo build --release --quiet -p mclrec-cli "${features[@]}"
    cli=$root/target/release/mclrec-cli
fi
out=runs/repro
results=results
only=${ONLY:-all}
jobs_max=${JOBS:-1}
case $jobs_max in '' | *[!0-9]* | 0) echo "JOBS must be a positive number, got '$jobs_max'" >&2; exit 2 ;; esac
threads=${THREADS:-$(( jobs_max > 1 ? ($(nproc) + jobs_max - 1) / jobs_max : 0 ))}
mkdir -p "$out" "$results"

# run NAME FLAGS...: one training run to early stopping (paper settings unless overridden).
run() {
    local name=$1
    shift
    local dir=$out/$name
    if [ -f "$results/$name/results.json" ]; then
        return
    fi
    if [ ! -f "$dir/results.json" ]; then
        local start=$SECONDS
        echo "training $name (log: $out/$name.log)"
        if [ -f "$dir/last.safetensors" ]; then
            "$cli" run --resume "$dir" --threads "$threads" >/dev/null 2>>"$out/$name.log"
        else
            "$cli" run "$@" --epochs 300 --threads "$threads" --device "$device" --out "$dir" >/dev/null 2>>"$out/$name.log"
        fi || { echo "$name failed: $(tail -n 1 "$out/$name.log")" >&2; return 1; }
        echo $((SECONDS - start)) >> "$dir/wall_seconds"
    fi
    python3 scripts/archive_run.py "$dir" "$results/$name"
}

# Runs go JOBS at a time; a failed one is named at the end and fails the script.
rm -f "$out"/*.failed
launch() {
    if [ "$jobs_max" -gt 1 ]; then
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
            wait -n || true
        done
        { run "$@" || touch "$out/$1.failed"; } &
    else
        run "$@" || touch "$out/$1.failed"
    fi
}

want() { [ "$only" = all ] || [[ ",$only," == *",$1,"* ]]; }

if want table3; then
    for ds in beauty sports; do
        launch "$ds-sasrec" --dataset "$ds" --model sasrec
        launch "$ds-cl4srec" --dataset "$ds" --model cl4srec
        for seed in 2023 2024 2025; do
            launch "$ds-mclrec-s$seed" --dataset "$ds" --model mclrec --seed "$seed"
        done
        # DuoRec, the paper's strongest baseline: three seeds as MCLRec's.
        for seed in 2023 2024 2025; do
            launch "$ds-duorec-s$seed" --dataset "$ds" --model duorec --seed "$seed"
        done
    done
fi
if want classic; then
    # Table 3's classic baselines, each with its paper's defaults (mclrec-cli run --model),
    # the quick ones first.
    for ds in beauty sports; do
        for model in bpr caser gru4rec bert4rec s3rec-mip; do
            launch "$ds-$model" --dataset "$ds" --model "$model"
        done
    done
fi
if want table4; then
    # Beauty's lambda is 0 already, so "without L_cl1" is the full model there.
    launch beauty-no-cl2 --dataset beauty --no-cl2
    launch beauty-no-reg --dataset beauty --no-reg
    launch beauty-shared-aug --dataset beauty --shared-augmenter
    launch beauty-joint --dataset beauty --schedule joint
    # The paper's Algorithm 1 (one encoder step per batch, as joint training has): meta
    # against joint at an equal number of encoder updates.
    launch beauty-two-stage --dataset beauty --schedule two-stage
fi
if want batch; then
    for bs in 64 128; do
        for model in sasrec cl4srec mclrec; do
            launch "beauty-$model-b$bs" --dataset beauty --model "$model" --batch-size "$bs"
        done
    done
fi

wait
python3 - "$results" <<'PY'
import json, os, sys
out = sys.argv[1]
print("| run | best epoch | epochs | wall | HR@5 | HR@10 | HR@20 | NDCG@5 | NDCG@10 | NDCG@20 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name in sorted(os.listdir(out)):
    p = os.path.join(out, name, "results.json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    t = r["test"]
    epochs = sum(1 for _ in open(os.path.join(out, name, "metrics.jsonl")))
    wall = sum(int(x) for x in open(os.path.join(out, name, "wall_seconds"))) if os.path.exists(os.path.join(out, name, "wall_seconds")) else 0
    cells = [t[k] for k in ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20")]
    print(f"| {name} | {r['best_epoch']} | {epochs} | {wall / 60:.0f} min | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
PY

# The models of Figures 7 and 8 that have finished: NAME=WEIGHTS arguments for `figure`,
# with the official checkpoint first as the reference when ../shared has it.
official=${MCLREC_SHARED:-$root/../shared}/reference/beauty-official/model.safetensors
models=()
[ -f "$official" ] && models+=(--model "MCLRec (official checkpoint)=$official")
# table3_runs DS: Table 3's runs on DS as NAME=RUN lines (NAME: the figures' legend).
table3_runs() {
    local seed
    for seed in 2023 2024 2025; do echo "MCLRec seed $seed=$1-mclrec-s$seed"; done
    echo "CL4SRec=$1-cl4srec"
    echo "SASRec=$1-sasrec"
}
mapfile -t pairs < <(table3_runs beauty)
for pair in "${pairs[@]}"; do
    name=${pair%%=*} run=${pair#*=}
    if [ -f "$results/$run/results.json" ]; then
        models+=(--model "$name (this project)=$results/$run/model.safetensors")
    fi
done
mkdir -p docs/figures
if want noise && [ ${#models[@]} -gt 0 ]; then
    echo
    "$cli" figure noise --dataset beauty "${models[@]}" --out docs/figures/noise-beauty.png
fi
if want groups && [ ${#models[@]} -gt 0 ]; then
    echo
    "$cli" figure groups --dataset beauty "${models[@]}" --out docs/figures/groups-beauty.png
fi
# runs_figure KIND OUT NAME=RUN...: one `figure KIND` (curves | batch) over the finished
# runs among RUN...
runs_figure() {
    local kind=$1 out=$2 pair runs=()
    shift 2
    for pair in "$@"; do
        if [ -f "$results/${pair#*=}/results.json" ]; then
            runs+=(--run "${pair%%=*}=$results/${pair#*=}")
        fi
    done
    if [ ${#runs[@]} -gt 0 ]; then
        "$cli" figure "$kind" "${runs[@]}" --out "$out"
    fi
}
curves() { runs_figure curves "$@"; }
if want batch; then
    # Figure 4: batch sizes 64 and 128 (seed 2023) beside Table 3's batch-256 runs (MCLRec:
    # the mean of its three seeds).
    echo
    batch_runs=()
    for model in SASRec CL4SRec MCLRec; do
        lower=${model,,}
        batch_runs+=("$model=beauty-$lower-b64" "$model=beauty-$lower-b128")
    done
    batch_runs+=(SASRec=beauty-sasrec CL4SRec=beauty-cl4srec)
    for seed in 2023 2024 2025; do batch_runs+=("MCLRec=beauty-mclrec-s$seed"); done
    runs_figure batch docs/figures/batch-beauty.png "${batch_runs[@]}"
fi
if want curves; then
    curves docs/figures/curves-beauty.png "${pairs[@]}"
    mapfile -t sports < <(table3_runs sports)
    curves docs/figures/curves-sports.png "${sports[@]}"
    # Table 4 and Figure 3: the ablations and the joint schedule against the full model.
    curves docs/figures/curves-table4-beauty.png "(A) MCLRec seed 2023=beauty-mclrec-s2023" \
        "(C) without L_cl2=beauty-no-cl2" "(D) without R=beauty-no-reg" \
        "(E) shared augmenters=beauty-shared-aug" "MCLRec-J (joint)=beauty-joint" \
        "MCLRec two-stage=beauty-two-stage"
fi
failed=$(cd "$out" && ls -- *.failed 2>/dev/null | sed 's/\.failed$//' | tr '\n' ' ' || true)
if [ -n "$failed" ]; then
    echo "failed runs: $failed(logs in $out/NAME.log; rerun this script to resume them)" >&2
    exit 1
fi
