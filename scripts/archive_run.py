#!/usr/bin/env python3
"""Archives a finished training run into the repository (results/NAME), small enough to commit.

    scripts/archive_run.py runs/repro/beauty-sasrec results/beauty-sasrec

Copies the run's config.toml, metrics.jsonl (every epoch), results.json (the test metrics of
the best validation epoch) and wall_seconds, and writes model.safetensors: the run's
best.safetensors without the optimiser's moments (the `optim.*` tensors), about a third of
its size, which `mclrec-cli eval --weights` and `mclrec-cli figure` read as they read the
checkpoint. Runs live in runs/ (ignored by git and gone with the machine); the archive is
what later sessions and readers of docs/RESULTS.md build on.
"""

import json
import os
import shutil
import struct
import sys

SMALL_FILES = ("config.toml", "metrics.jsonl", "results.json", "wall_seconds")


def strip_optimiser(src: str, dst: str) -> None:
    """Writes the safetensors file `src` to `dst` without its `optim.*` tensors."""
    with open(src, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    kept = {}
    chunks = []
    offset = 0
    names = sorted(k for k in header if k != "__metadata__" and not k.startswith("optim."))
    for name in names:
        info = header[name]
        begin, end = info["data_offsets"]
        chunks.append(data[begin:end])
        kept[name] = dict(info, data_offsets=[offset, offset + end - begin])
        offset += end - begin
    if "__metadata__" in header:
        meta = {k: v for k, v in header["__metadata__"].items() if not k.startswith("optim.")}
        kept = {"__metadata__": meta, **kept}
    text = json.dumps(kept, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data to 8 bytes
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, dst)


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: archive_run.py RUN_DIR DEST_DIR", file=sys.stderr)
        return 2
    run, dest = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(run, "results.json")):
        print(f"{run}: no results.json (the run has not finished)", file=sys.stderr)
        return 1
    os.makedirs(dest, exist_ok=True)
    for name in SMALL_FILES:
        path = os.path.join(run, name)
        if os.path.exists(path):
            shutil.copyfile(path, os.path.join(dest, name))
    strip_optimiser(os.path.join(run, "best.safetensors"), os.path.join(dest, "model.safetensors"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
