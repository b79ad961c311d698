#!/usr/bin/env python3
"""RecBole's training speed on this project's data: the other side of the speed table of issue 22.

Trains each model for `--batches` batches of RecBole's own pipeline on a dataset of this project
("user item item ..." lines, converted to RecBole's atomic format with the order of each line as its
time stamps, so RecBole's leave-one-out split equals this project's), with the same thread count as
`mclrec-cli bench --threads N`, and reports the median seconds per batch and the projected seconds
per epoch. Only the training steps are timed (`calculate_loss`, `backward`, the optimiser step):
RecBole's data loader (negative sampling, BERT4Rec's masking, batching) runs outside the clock.

    python scripts/recbole_speed.py --threads 2 --batches 50 --out results/recbole-speed.json

Run inside the venv of scripts/golden/requirements.txt (RecBole 1.2.1, torch). Settings are each
model's RecBole defaults with the paper's shared ones (hidden 64, 2 layers, 2 heads, max length 50,
batch 256, CE loss for the sequential models, dropout as RecBole's default).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

# RecBole 1.2.1 on a current pandas warns at every column it loads; the timings are what matter.
warnings.simplefilter("ignore")

# RecBole 1.2.1 uses aliases NumPy 2 removed (see scripts/golden/recbole_golden.py).
for _old, _new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, _old):
        setattr(np, _old, _new)

import torch  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, init_seed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "datasets", "amazon-beauty.txt")
MODELS = {
    "sasrec": "SASRec",
    "gru4rec": "GRU4Rec",
    "caser": "Caser",
    "caser-l5": "Caser",
    "bert4rec": "BERT4Rec",
    "bpr": "BPR",
    "s3rec-mip": "S3Rec",
}
# Keys whose setting differs from the shared ones: Caser with its paper's window L = 5 (this
# project's default; RecBole reads MAX_ITEM_LIST_LENGTH, 50 for the others).
MAX_LEN = {"caser-l5": 5}


def write_atomic(src, folder, name):
    """`src`'s sequences as RecBole's `<name>.inter`: one row per interaction, time = position;
    and `<name>.item` with a made-up attribute (`class`, a single token: RecBole 1.2.1's remapping of
    token sequences fails under pandas 3), which RecBole's S3Rec requires to be built although its
    fine-tuning step, the one timed, never reads it."""
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    path = os.path.join(folder, name, f"{name}.inter")
    items = set()
    with open(src) as f, open(path, "w") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in f:
            ids = line.split()
            if len(ids) < 2:
                continue
            for t, item in enumerate(ids[1:]):
                out.write(f"{ids[0]}\t{item}\t{t}\n")
                items.add(item)
    with open(os.path.join(folder, name, f"{name}.item"), "w") as out:
        out.write("item_id:token\tclass:token\n")
        for k, item in enumerate(sorted(items)):
            out.write(f"{item}\t{k % 2}\n")
    return path


def settings(key, model, data_path, name, seed):
    config = {
        "data_path": data_path,
        "dataset": name,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": MAX_LEN.get(key, 50),
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "train_batch_size": 256,
        "epochs": 1,
        "seed": seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "state": "WARNING",
        "hidden_size": 64,
        "embedding_size": 64,
        "n_layers": 2,
        "n_heads": 2,
        "inner_size": 256,
        "learning_rate": 0.001,
    }
    if model == "BPR":
        config["train_neg_sample_args"] = {"distribution": "uniform", "sample_num": 1}
    else:
        config["loss_type"] = "CE"
        config["train_neg_sample_args"] = None
    if model == "BERT4Rec":
        config["transform"] = "mask_itemseq"
    if model == "S3Rec":
        # Built in its pre-training stage (which initialises the weights; fine-tuning would
        # load a pre-trained file), then switched to fine-tuning, the step timed.
        config["load_col"]["item"] = ["item_id", "class"]
        config["item_attribute"] = "class"
        config["train_stage"] = "pretrain"
    return config


def time_model(key, data_path, name, threads, batches, seed):
    model_name = MODELS[key]
    config = Config(model=model_name, config_dict=settings(key, model_name, data_path, name, seed))
    init_seed(seed, True)
    torch.set_num_threads(threads)
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = get_model(model_name)(config, train_data._dataset).to("cpu")
    if model_name == "S3Rec":
        # What S3Rec.__init__ sets for a fine-tuning stage with CE.
        model.train_stage = "finetune"
        model.loss_fct = torch.nn.CrossEntropyLoss()
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    times, samples = [], 0
    for i, interaction in enumerate(train_data):
        if i >= batches + 3:
            break
        start = time.perf_counter()
        optimiser.zero_grad()
        loss = model.calculate_loss(interaction)
        loss.backward()
        optimiser.step()
        elapsed = time.perf_counter() - start
        if i >= 3:  # three warm-up batches, as `mclrec-cli bench`
            times.append(elapsed)
            samples += len(interaction)
    median = statistics.median(times)
    return {
        "model": key,
        "recbole_model": model_name,
        "threads": threads,
        "batches": len(times),
        "s_per_batch_median": median,
        "s_per_batch_mean": statistics.fmean(times),
        "batches_per_epoch": len(train_data),
        "s_per_epoch": median * len(train_data),
        "samples_per_s": samples / sum(times),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default=DEFAULT_DATA)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    name = os.path.splitext(os.path.basename(args.dataset))[0].replace("-", "_")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        write_atomic(args.dataset, folder, name)
        for key in args.models.split(","):
            if key not in MODELS:
                sys.exit(f"recbole_speed.py: unknown model `{key}` (known: {', '.join(MODELS)})")
            r = time_model(key, folder, name, args.threads, args.batches, args.seed)
            print(json.dumps(r), flush=True)
            results.append(r)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"dataset": os.path.basename(args.dataset), "torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
