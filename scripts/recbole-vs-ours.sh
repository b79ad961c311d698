#!/usr/bin/env bash
# The speed table of docs/PERFORMANCE.md ("Every model against RecBole"): RecBole 1.2.1's own
# implementations timed by scripts/recbole_speed.py (its data loader outside the clock), then this
# project's `mclrec-cli bench` for the same models, one after the other on this machine with the
# same thread count, written to one JSON file with the ratios, and printed as a Markdown table.
#
#   scripts/recbole-vs-ours.sh results/recbole-speed/beauty-2threads-sessionN.json
#   THREADS=1 BATCHES=20 scripts/recbole-vs-ours.sh out.json
#
# Environment: THREADS (2), BATCHES (30), PYTHON (a python with RecBole and torch, as
# scripts/golden/requirements.txt; default /tmp/recbole-venv/bin/python), MCLREC_CLI (a built
# mclrec-cli; default: cargo build --release). Pause background training first: the two sides
# share the machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/recbole-vs-ours.sh OUT.json}
threads=${THREADS:-2}
batches=${BATCHES:-30}
python=${PYTHON:-/tmp/recbole-venv/bin/python}
if ! "$python" -c "import recbole, torch" 2>/dev/null; then
  echo "error: $python has no RecBole: python3 -m venv /tmp/recbole-venv && /tmp/recbole-venv/bin/pip install -r scripts/golden/requirements.txt" >&2
  exit 2
fi
if [ -z "${MCLREC_CLI:-}" ]; then
  cargo build --release -q -p mclrec-cli --manifest-path "$root/Cargo.toml"
  MCLREC_CLI=$root/target/release/mclrec-cli
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# key | RecBole's model key | this project's bench arguments
models="bpr|bpr|--model bpr
gru4rec|gru4rec|--model gru4rec
caser-l5|caser-l5|--model caser
caser-l50|caser|--model caser --max-len 50
sasrec|sasrec|--model sasrec
bert4rec|bert4rec|--model bert4rec
s3rec-mip|s3rec-mip|--model s3rec-mip
cl4srec||--model cl4srec
duorec||--model duorec
mclrec||--model mclrec"

recbole_keys=$(echo "$models" | cut -d'|' -f2 | grep -v '^$' | paste -sd, -)
echo "== RecBole ($recbole_keys), $threads threads, $batches batches each" >&2
"$python" "$root/scripts/recbole_speed.py" --threads "$threads" --batches "$batches" \
  --models "$recbole_keys" --out "$tmp/recbole.json" >&2
echo "$models" | while IFS='|' read -r key _ args; do
  echo "== this project: bench $args" >&2
  # shellcheck disable=SC2086
  "$MCLREC_CLI" bench $args --threads "$threads" --batches "$batches" --json > "$tmp/ours-$key.json"
done

"$python" - "$tmp" "$out" "$threads" "$batches" "$models" <<'PY'
import datetime, json, platform, subprocess, sys
tmp, out, threads, batches, models = sys.argv[1:]
recbole = json.load(open(f"{tmp}/recbole.json"))
by_key = {r["model"]: r for r in recbole["results"]}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
rows = []
for line in models.splitlines():
    key, rb_key, args = line.split("|")
    ours = json.load(open(f"{tmp}/ours-{key}.json"))
    rb = by_key.get(rb_key)
    rows.append({
        "model": key,
        "bench_args": args,
        "recbole": rb,
        "ours": ours,
        "ratio": rb["s_per_epoch"] / ours["s_per_epoch"] if rb else None,
    })
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
doc = {"date": datetime.date.today().isoformat(), "commit": commit, "cpu": cpu, "threads": int(threads),
       "batches": int(batches), "torch": recbole["torch"], "rows": rows}
json.dump(doc, open(out, "w"), indent=1)
print(f"| model | RecBole s / epoch | this project s / epoch | ratio | this project peak RSS |")
print("|---|---|---|---|---|")
for r in rows:
    rb = f"{r['recbole']['s_per_epoch']:.1f}" if r["recbole"] else "(none)"
    ratio = f"{r['ratio']:.1f}x" if r["ratio"] else ""
    print(f"| {r['model']} | {rb} | {r['ours']['s_per_epoch']:.1f} | {ratio} | {r['ours']['peak_rss_mb']:.0f} MiB |")
PY
