"""Golden reference values for DuoRec from its official PyTorch code (RuihongQiu/DuoRec), for the Rust model.

The official `DuoRec` class is RecBole-based but lives in its authors' fork, not in RecBole: give its file,

    git clone https://github.com/RuihongQiu/DuoRec /tmp/DuoRec
    python scripts/golden/duorec_golden.py --duorec-src /tmp/DuoRec/recbole/model/sequential_recommender/duorec.py

(inside the venv of scripts/golden/requirements.txt; the file is imported against RecBole 1.2.1, whose
`SequentialRecommender` and `TransformerEncoder` it uses unchanged). Writes tests/golden/duorec.{safetensors,json} in
the layout of scripts/golden/recbole_golden.py (whose helpers it uses) and re-verifies them.

The batch is recbole_golden.py's four sequences with a hand-made same-target partner for each (`sem_aug`, what the
official data loader's `duorec_aug` draws), all dropout 0 (so the official second pass `aug_seq_output` equals
`seq_output`), `contrast = 'us_x'`, `sim = 'dot'`, `tau = 1`, `lmd_sem = 0.3` (not the default 0.1, so that a
wrong weight shows), `train_batch_size` = 4 (the official `mask_default`).
"""

import argparse
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recbole_golden as rg  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402

# A partner with the same target for each row of rg.ITEM_SEQ (targets 6, 1, 4, 7), right-padded.
SEM_AUG = [[3, 5, 0, 0, 0], [2, 7, 4, 6, 5], [1, 2, 0, 0, 0], [6, 0, 0, 0, 0]]
SEM_AUG_LEN = [2, 5, 2, 1]


def load_duorec(path):
    spec = importlib.util.spec_from_file_location("official_duorec", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DuoRec


def duorec_spec(cls):
    cfg = rg.transformer_cfg()
    cfg.update({
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "lmd": 0.1,
        "lmd_sem": 0.3,
        "contrast": "us_x",
        "tau": 1,
        "sim": "dot",
        "train_batch_size": 4,
    })

    def inputs():
        d = rg.common_seq_inputs()
        d["sem_aug"] = rg.long(SEM_AUG)
        d["sem_aug_lengths"] = rg.long(SEM_AUG_LEN)
        return d

    def inter(i):
        return Interaction({
            "item_id_list": i["item_seq"],
            "item_length": i["item_seq_len"],
            "item_id": i["pos_items"],
            "user_id": i["user_id"],
            "sem_aug": i["sem_aug"],
            "sem_aug_lengths": i["sem_aug_lengths"],
        })

    def loss_fn(model, i):
        total = model.calculate_loss(inter(i))
        # The two terms, recomputed the way calculate_loss does (for the Rust test's per-term checks).
        h = model.forward(i["item_seq"], i["item_seq_len"])
        logits = h @ model.item_embedding.weight.T
        ce = model.loss_fct(logits, i["pos_items"])
        h_sem = model.forward(i["sem_aug"], i["sem_aug_lengths"])
        nce_logits, nce_labels = model.info_nce(h, h_sem, temp=1, batch_size=4, sim="dot")
        return {"loss": total, "loss.rec": ce, "loss.cl": model.aug_nce_fct(nce_logits, nce_labels)}

    def derived_fn(model, i):
        return {
            "derived.seq_output": model.forward(i["item_seq"], i["item_seq_len"]),
            "derived.sem_aug_output": model.forward(i["sem_aug"], i["sem_aug_lengths"]),
        }

    return {
        "name": "duorec",
        "recbole_model": cls,
        "cls": cls,
        "config": cfg,
        "dataset": lambda: rg.GoldenDataset(rg.N_USERS, rg.N_ITEMS),
        "inputs": inputs,
        "loss_fn": loss_fn,
        "scores_fn": lambda m, i: m.full_sort_predict(inter(i)),
        "derived_fn": derived_fn,
        "semantics": (
            "DuoRec.calculate_loss with contrast 'us_x': seq_output = forward(item_seq) (SASRec: item + position "
            "embedding, LayerNorm, dropout, 2 causal transformer layers, the output at item_seq_len - 1); "
            "CE of seq_output @ item_embedding.weight^T (all 8 rows, padding included) against pos_items; "
            "aug_seq_output = forward(item_seq) again (equal to seq_output here: dropout 0); sem_aug_seq_output = "
            "forward(sem_aug); loss = CE + lmd_sem * CE over [positive, negatives] of the 2n x 2n dot similarity of "
            "[aug; sem] (temperature 1; each row's negatives are the 2n - 2 rows other than itself and its partner). "
            "loss.rec and loss.cl are the two terms. " + rg.TRM_SEM
        ),
        "layout": rg.SEQ_LAYOUT + " sem_aug [4, 5] / sem_aug_lengths [4]: each row's same-target partner, right-padded.",
        "notes": rg.COMMON_NOTES + [rg.KEY_BIAS_NOTE, "lmd (the 'us'/'un' weight) is not read by 'us_x'."],
        "loss_function": "official DuoRec.calculate_loss(Interaction) (RuihongQiu/DuoRec, "
        "recbole/model/sequential_recommender/duorec.py)",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duorec-src", required=True, help="the official duorec.py")
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    rg.torch.set_num_threads(1)
    spec = duorec_spec(load_duorec(args.duorec_src))
    if not args.check_only:
        rg.generate(spec, args.out)
    rep = rg.verify(spec, args.out)
    print(f"duorec       ok  loss={rep['loss']:.17g}  params={rep['params']}  bytes={rep['bytes']}")


if __name__ == "__main__":
    main()
