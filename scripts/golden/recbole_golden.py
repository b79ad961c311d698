#!/usr/bin/env python3
"""Golden reference values from RecBole's PyTorch models, for the Rust re-implementation.

Run inside the venv described in scripts/golden/requirements.txt:

    python scripts/golden/recbole_golden.py --out tests/golden

For each model it builds a tiny RecBole model (float64, all dropout 0, fixed seeds), feeds one fixed,
hand-made batch, and writes

    <out>/<name>.safetensors   parameters (RecBole state_dict names), inputs (input.*), losses (loss, loss.*),
                               gradients of `loss` (grad.<param>), full-sort scores (scores), intermediates (derived.*)
    <out>/<name>.json          versions, config, parameter names/shapes in order, loss semantics, quirks (file:line)

and then reloads each file into a fresh model instance and asserts the loss, gradients and scores are reproduced.
`--check-only` skips the generation and only re-verifies existing files.
"""

import argparse
import json
import os
import platform
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# Compatibility shim: RecBole 1.2.1's Config.compatibility_settings() (recbole/config/configurator.py:625-634) does
# `np.float = np.float_` etc., and NumPy 2 removed np.float_, np.complex_ and np.unicode_. Restore those aliases.
# ---------------------------------------------------------------------------------------------------------------
for _old, _new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, _old):
        setattr(np, _old, _new)

import torch  # noqa: E402

# float64 everywhere. Setting the default dtype (and not only model.double()) matters: BERT4Rec.multi_hot_embed
# builds its index map with a bare torch.zeros(...) (bert4rec.py:159), which must match the float64 encoder output
# in torch.bmm, and get_attention_mask's torch.where(mask, 0.0, -10000.0) takes the default dtype.
torch.set_default_dtype(torch.float64)

import recbole  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402
from recbole.data.transform import MaskItemSequence  # noqa: E402
from recbole.model.general_recommender import BPR  # noqa: E402
from recbole.model.sequential_recommender import BERT4Rec, Caser, GRU4Rec, S3Rec  # noqa: E402
from recbole.utils import init_seed  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

RECBOLE_DIR = os.path.dirname(recbole.__file__)

# ---------------------------------------------------------------------------------------------------------------
# Sizes and the fixed batch shared by the sequential models
# ---------------------------------------------------------------------------------------------------------------
N_ITEMS = 8  # item ids 0..7; 0 is padding, 1..7 are real items (RecBole's dataset.num('item_id') counts padding)
N_USERS = 5  # user ids 0..4; 0 is padding
MAX_LEN = 5
SEED = 2020  # recbole.utils.init_seed(SEED, reproducibility=True) right before the model is constructed
NOISE_SEED = 12345
NOISE_STD = 0.25

# RecBole layout: right-padded with 0, item_length = number of real items
ITEM_SEQ = [[1, 2, 3, 4, 5], [3, 6, 2, 0, 0], [7, 0, 0, 0, 0], [2, 4, 6, 1, 0]]
ITEM_SEQ_LEN = [5, 3, 1, 4]
POS_ITEMS = [6, 1, 4, 7]  # the next item (target) of each sequence
NEG_ITEMS = [2, 5, 3, 3]  # one sampled negative per sequence (only read by loss_type BPR)
USER_ID = [1, 2, 3, 4]


def long(x):
    return torch.tensor(x, dtype=torch.long)


def src_ref(rel_path, snippet):
    """'recbole/<rel_path>:<line>: <line text>' for the first line of the installed RecBole source containing snippet."""
    path = os.path.join(RECBOLE_DIR, rel_path)
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if snippet in line:
                return f"recbole/{rel_path}:{i}: {line.strip()}"
    raise AssertionError(f"snippet {snippet!r} not found in {path}: RecBole source changed, re-check the notes")


class GoldenDataset:
    """The few Dataset members these models' constructors read (dataset.num, user_num, item_num,
    get_item_feature); a real recbole Dataset needs atomic files on disk and gives the same numbers."""

    def __init__(self, n_users, n_items, extra_num=None, item_feat=None):
        self._num = {"user_id": n_users, "item_id": n_items}
        self._num.update(extra_num or {})
        self._item_feat = item_feat

    def num(self, field):
        return self._num[field]

    @property
    def user_num(self):
        return self._num["user_id"]

    @property
    def item_num(self):
        return self._num["item_id"]

    def get_item_feature(self):
        return self._item_feat


def make_config(model_name, overrides):
    base = {"use_gpu": False, "seed": SEED, "reproducibility": True, "MAX_ITEM_LIST_LENGTH": MAX_LEN}
    base.update(overrides)
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses sys.argv (--key=value); keep ours out
    try:
        config = Config(model=model_name, dataset="golden", config_dict=base)
    finally:
        sys.argv = argv
    if config["transform"] == "mask_itemseq":
        MaskItemSequence(config)  # sets config MASK_ITEM_SEQ / POS_ITEMS / NEG_ITEMS / MASK_INDEX field names
    return config


def build_model(spec, noise=True):
    config = make_config(spec["recbole_model"], spec["config"])
    init_seed(SEED, True)
    model = spec["cls"](config, spec["dataset"]())
    model.double()
    if noise:
        # RecBole's own init leaves biases at 0, LayerNorm at (1, 0), BERT4Rec's output_bias at 0 and the
        # transformer weights at std 0.02: a zero bias would hide a missing bias in the Rust code. So every
        # parameter, in named_parameters() order, gets += NOISE_STD * N(0,1) from its own generator.
        g = torch.Generator().manual_seed(NOISE_SEED)
        with torch.no_grad():
            for _, p in model.named_parameters():
                p.add_(NOISE_STD * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return config, model


def loss_and_grads(model, spec, inputs):
    model.train()  # all dropout probabilities are 0, so train() and eval() compute the same thing
    model.zero_grad(set_to_none=True)
    losses = spec["loss_fn"](model, inputs)
    losses["loss"].backward()
    grads = {}
    for name, p in model.named_parameters():
        grads[name] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    model.zero_grad(set_to_none=True)
    return {k: v.detach().clone() for k, v in losses.items()}, grads


def scores_of(model, spec, inputs):
    model.eval()
    with torch.no_grad():
        return spec["scores_fn"](model, inputs).detach().clone()


# ---------------------------------------------------------------------------------------------------------------
# Per-model specs
# ---------------------------------------------------------------------------------------------------------------
def seq_interaction(inputs, with_user=True, with_neg=True):
    d = {"item_id_list": inputs["item_seq"], "item_length": inputs["item_seq_len"], "item_id": inputs["pos_items"]}
    if with_neg and "neg_items" in inputs:
        d["neg_item_id"] = inputs["neg_items"]
    if with_user and "user_id" in inputs:
        d["user_id"] = inputs["user_id"]
    return Interaction(d)


def common_seq_inputs():
    return {
        "item_seq": long(ITEM_SEQ),
        "item_seq_len": long(ITEM_SEQ_LEN),
        "pos_items": long(POS_ITEMS),
        "neg_items": long(NEG_ITEMS),
        "user_id": long(USER_ID),
    }


SEQ_LAYOUT = (
    "item_seq [B=4, L=5] int64, right-padded with 0 (RecBole's layout: real items first, then padding); "
    "item_seq_len [4] = number of real items per row; pos_items [4] = the target (next) item per row; "
    "neg_items [4] = one negative per row (read only when loss_type is BPR); user_id [4]."
)

COMMON_NOTES = [
    "Parameters are RecBole's own init (recbole.utils.init_seed(2020, True) then the model constructor, then "
    "model.double()) plus N(0, 0.25^2) noise added to every parameter in named_parameters() order from "
    "torch.Generator().manual_seed(12345); the Rust tests load the parameters from the file, so this only "
    "matters for regeneration. The noise makes zero-initialised biases / LayerNorm (1,0) / 0.02-std weights "
    "non-degenerate.",
    "nn.Embedding(padding_idx=0) (used by GRU4Rec, Caser, BERT4Rec, S3Rec item embeddings): the RecBole init "
    "(xavier_normal_/normal_) overwrites row 0, so the padding row is NOT zero and does take part in the forward "
    "pass (padded positions look it up, and the CE logits / full-sort scores include a column for item 0). "
    "padding_idx only affects the backward of the *lookup*: lookups of id 0 send no gradient to row 0. Uses of "
    "`item_embedding.weight` directly (the CE logits matmul, full_sort_predict) DO send gradient to row 0, so "
    "grad.item_embedding.weight[0] is generally non-zero for CE models.",
    "Losses and grads are computed in model.train() mode, scores in model.eval() mode under no_grad; with every "
    "dropout probability 0 they are the same computation.",
]


def gru4rec_spec(loss_type):
    ce = loss_type == "CE"
    name = "gru4rec" if ce else "gru4rec-bpr"
    cfg = {
        "embedding_size": 8,
        "hidden_size": 6,
        "num_layers": 1,
        "dropout_prob": 0.0,
        "loss_type": loss_type,
    }
    if ce:
        cfg["train_neg_sample_args"] = None  # RecBole refuses negative sampling with CE

    def loss_fn(model, inputs):
        inter = seq_interaction(inputs)
        out = {"loss": model.calculate_loss(inter)}
        return out

    def derived_fn(model, inputs):
        with torch.no_grad():
            so = model.forward(inputs["item_seq"], inputs["item_seq_len"])
            d = {"derived.seq_output": so}
            if not ce:
                d["derived.pos_score"] = (so * model.item_embedding(inputs["pos_items"])).sum(-1)
                d["derived.neg_score"] = (so * model.item_embedding(inputs["neg_items"])).sum(-1)
            else:
                d["derived.logits"] = so @ model.item_embedding.weight.t()
        return d

    f = "model/sequential_recommender/gru4rec.py"
    if ce:
        loss_sem = (
            "GRU4Rec.calculate_loss with loss_type 'CE': logits = seq_output @ item_embedding.weight^T over ALL "
            "n_items=8 rows including padding id 0 ([B, 8]); loss = torch.nn.CrossEntropyLoss()(logits, pos_items), "
            "i.e. mean over the B=4 rows of (logsumexp(logits[b]) - logits[b, pos_items[b]])."
        )
    else:
        loss_sem = (
            "GRU4Rec.calculate_loss with loss_type 'BPR' (RecBole has no BCE loss for GRU4Rec; its only other "
            "loss_type is this pairwise BPR): pos_score[b] = <seq_output[b], item_embedding(pos_items[b])>, "
            "neg_score[b] = <seq_output[b], item_embedding(neg_items[b])>, loss = mean_b -log(1e-10 + "
            "sigmoid(pos_score[b] - neg_score[b])) (recbole.model.loss.BPRLoss, gamma=1e-10 inside the log). "
            "derived.pos_score / derived.neg_score are stored so a BCE variant (-log s(pos) - log(1-s(neg))) can "
            "be checked by formula, but that value is not RecBole's."
        )
    sem = (
        "forward(item_seq, item_seq_len): E = item_embedding(item_seq) [B, L, 8] (padded positions look up row 0); "
        "emb_dropout (p=0); H = nn.GRU(input 8, hidden 6, 1 layer, bias=False, batch_first, h0 = 0) over all L=5 "
        "positions, padding included (it is causal, so positions after item_seq_len-1 do not matter); "
        "out = dense(H) (nn.Linear 6->8 WITH bias, applied at every position); seq_output = "
        "gather_indexes(out, item_seq_len - 1), i.e. out[b, item_seq_len[b]-1] [B, 8]. PyTorch GRU equations with "
        "bias=False: r = s(W_ir x + W_hr h), z = s(W_iz x + W_hz h), n = tanh(W_in x + r * (W_hn h)), "
        "h' = (1 - z) * n + z * h, where gru_layers.weight_ih_l0 = [W_ir; W_iz; W_in] (3*6 x 8) and "
        "gru_layers.weight_hh_l0 = [W_hr; W_hz; W_hn] (3*6 x 6), gate order r, z, n. " + loss_sem +
        " scores = full_sort_predict = seq_output @ item_embedding.weight^T, [B, 8] (column 0 = padding item)."
    )
    notes = COMMON_NOTES + [
        "embedding_size=8 but hidden_size=6 on purpose (different sizes catch transposes); RecBole's defaults are "
        "64/128. The dense layer maps the GRU hidden state back to the embedding size: " +
        src_ref(f, "self.dense = nn.Linear(self.hidden_size, self.embedding_size)"),
        "GRU has no biases: " + src_ref(f, "bias=False"),
        "Init: " + src_ref(f, "xavier_normal_(module.weight)") + "; " + src_ref(f, "xavier_uniform_(module.weight_hh_l0)")
        + "; the dense layer keeps PyTorch's default Linear init.",
        "Sequence representation: " + src_ref(f, "seq_output = self.gather_indexes(gru_output, item_seq_len - 1)"),
        "Loss: " + (src_ref(f, "loss = self.loss_fct(logits, pos_items)") if ce else
                    src_ref(f, "loss = self.loss_fct(pos_score, neg_score)")),
        "BPRLoss: " + src_ref("model/loss.py", "loss = -torch.log(self.gamma + torch.sigmoid(pos_score - neg_score)).mean()")
        + " with " + src_ref("model/loss.py", "def __init__(self, gamma=1e-10):"),
        "user_id is in the batch but GRU4Rec does not read it.",
    ]
    return {
        "name": name,
        "recbole_model": "GRU4Rec",
        "cls": GRU4Rec,
        "config": cfg,
        "dataset": lambda: GoldenDataset(N_USERS, N_ITEMS),
        "inputs": common_seq_inputs,
        "loss_fn": loss_fn,
        "scores_fn": lambda m, i: m.full_sort_predict(seq_interaction(i)),
        "derived_fn": derived_fn,
        "semantics": sem,
        "layout": SEQ_LAYOUT,
        "notes": notes,
        "loss_function": "recbole.model.sequential_recommender.gru4rec.GRU4Rec.calculate_loss(Interaction)",
    }


def bpr_spec():
    f = "model/general_recommender/bpr.py"

    def inputs():
        return {
            "user_id": long([1, 2, 4, 1]),  # user 1 twice: its embedding gradient accumulates two rows
            "pos_items": long([3, 6, 2, 5]),
            "neg_items": long([4, 1, 7, 3]),
        }

    def inter(i):
        return Interaction({"user_id": i["user_id"], "item_id": i["pos_items"], "neg_item_id": i["neg_items"]})

    def derived_fn(model, i):
        with torch.no_grad():
            u = model.user_embedding(i["user_id"])
            return {
                "derived.pos_score": (u * model.item_embedding(i["pos_items"])).sum(1),
                "derived.neg_score": (u * model.item_embedding(i["neg_items"])).sum(1),
            }

    sem = (
        "BPR.calculate_loss: u = user_embedding(user_id) [B, 8], p = item_embedding(pos_items), "
        "n = item_embedding(neg_items); pos_score = sum(u*p, 1), neg_score = sum(u*n, 1); "
        "loss = BPRLoss = mean over the B=4 rows of -log(1e-10 + sigmoid(pos_score - neg_score)) (gamma=1e-10 "
        "is inside the log). No regularisation term. scores = full_sort_predict = (u @ item_embedding.weight^T); "
        "RecBole returns it flattened with .view(-1) ([B*n_items]); stored reshaped to [B, n_items] (row-major, "
        "same memory order). Column 0 is the padding item (a real embedding row; BPR's embeddings have no "
        "padding_idx at all)."
    )
    notes = COMMON_NOTES[:1] + COMMON_NOTES[2:] + [
        "BPR's embeddings have no padding_idx: " + src_ref(f, "self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)"),
        "Init: " + src_ref(f, "self.apply(xavier_normal_initialization)"),
        "Loss: " + src_ref(f, "loss = self.loss(pos_item_score, neg_item_score)") + "; " +
        src_ref("model/loss.py", "loss = -torch.log(self.gamma + torch.sigmoid(pos_score - neg_score)).mean()"),
        "Flattened full-sort scores: " + src_ref(f, "return score.view(-1)"),
        "One negative per positive: the batch carries neg_item_id explicitly (RecBole's train_neg_sample_args "
        "uniform, sample_num 1 would sample it; here it is given).",
    ]
    return {
        "name": "bpr",
        "recbole_model": "BPR",
        "cls": BPR,
        "config": {"embedding_size": 8},
        "dataset": lambda: GoldenDataset(N_USERS, N_ITEMS),
        "inputs": inputs,
        "loss_fn": lambda m, i: {"loss": m.calculate_loss(inter(i))},
        "scores_fn": lambda m, i: m.full_sort_predict(inter(i)).view(len(i["user_id"]), -1),
        "derived_fn": derived_fn,
        "semantics": sem,
        "layout": "user_id [4] int64 (user 1 appears twice), pos_items [4], neg_items [4]: one given negative per positive.",
        "notes": notes,
        "loss_function": "recbole.model.general_recommender.bpr.BPR.calculate_loss(Interaction)",
    }


def caser_spec():
    f = "model/sequential_recommender/caser.py"
    cfg = {
        "embedding_size": 8,
        "dropout_prob": 0.0,
        "reg_weight": 1e-4,
        "nv": 4,
        "nh": 8,
        "loss_type": "CE",
        "train_neg_sample_args": None,
    }

    def reg_terms(model):
        l2 = model.reg_weight * model.reg_loss(
            [
                model.user_embedding.weight,
                model.item_embedding.weight,
                model.conv_v.weight,
                model.fc1.weight,
                model.fc2.weight,
            ]
        )
        return l2, model.reg_loss_conv_h()

    def loss_fn(model, inputs):
        inter = seq_interaction(inputs)
        total = model.calculate_loss(inter)
        with torch.no_grad():
            saved = model.reg_weight
            model.reg_weight = 0.0
            ce = model.calculate_loss(inter)  # ce + 0*reg + 0*conv_h == ce exactly
            model.reg_weight = saved
            l2, conv_h = reg_terms(model)
        return {"loss": total, "loss.ce": ce, "loss.reg_l2": l2, "loss.reg_conv_h": conv_h, "loss.reg": l2 + conv_h}

    def grad_ce_fn(model, inputs):
        model.zero_grad(set_to_none=True)
        saved = model.reg_weight
        model.reg_weight = 0.0
        model.calculate_loss(seq_interaction(inputs)).backward()
        model.reg_weight = saved
        g = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        return g

    def derived_fn(model, inputs):
        with torch.no_grad():
            so = model.forward(inputs["user_id"], inputs["item_seq"])
            return {"derived.seq_output": so, "derived.logits": so @ model.item_embedding.weight.t()}

    sem = (
        "Caser.forward(user_id, item_seq) (item_seq_len is NOT read: all L=5 positions, padding included, "
        "enter the convolutions, and padded positions look up the non-zero item_embedding row 0): "
        "X = item_embedding(item_seq) as [B, 1, L=5, d=8]; u = user_embedding(user_id) [B, 8]. "
        "Vertical conv conv_v: Conv2d(1 -> nv=4, kernel (L=5, 1), with bias) -> [B, 4, 1, 8] -> view [B, 32] "
        "(channel-major: index c*8 + j); no activation on it. Horizontal convs conv_h.{i} for i = 0..4: Conv2d(1 -> nh=8, "
        "kernel (i+1, 8), with bias) -> [B, 8, 5-i] -> ReLU -> max over the 5-i positions -> [B, 8]; concatenated "
        "in order i = 0..4 -> [B, 40]. out = cat(out_v, out_h) [B, 72]; dropout (p=0); z = ReLU(fc1(out)) "
        "(Linear 72 -> 8); seq_output = ReLU(fc2(cat(z, u))) (Linear 16 -> 8; z first, then the user embedding). "
        "CE: logits = seq_output @ item_embedding.weight^T over all 8 items incl. padding 0, "
        "loss.ce = CrossEntropyLoss (mean over the B=4 rows) with target pos_items. "
        "loss = (loss.ce + loss.reg_l2) + loss.reg_conv_h, where loss.reg_l2 = reg_weight * (||user_embedding.weight||_2 + "
        "||item_embedding.weight||_2 + ||conv_v.weight||_2 + ||fc1.weight||_2 + ||fc2.weight||_2) and loss.reg_conv_h = "
        "reg_weight * sum_i ||conv_h.i.weight||_2, reg_weight = 1e-4. Each ||W||_2 is the Frobenius norm, NOT squared "
        "(RegLoss uses W.norm(2)); biases and the conv_v bias are not regularised; the whole embedding tables are "
        "regularised, not just the rows in the batch. loss.reg = loss.reg_l2 + loss.reg_conv_h (summed in that order; "
        "loss itself is summed as written above). grad.* is the gradient of loss (with regularisation); grad_ce.* is "
        "the gradient of loss.ce alone. scores = full_sort_predict = seq_output @ item_embedding.weight^T [B, 8]."
    )
    notes = COMMON_NOTES + [
        "Caser has a user embedding (users are an input, unlike the other sequential models): " +
        src_ref(f, "self.n_users = dataset.user_num") + "; " + src_ref(f, "x = torch.cat([z, user_emb], 1)"),
        "RecBole defaults nv=4, nh=8 (recbole/properties/model/Caser.yaml), used here; dropout default 0.4 set to 0.",
        "One horizontal conv per height 1..MAX_ITEM_LIST_LENGTH: " + src_ref(f, "lengths = [i + 1 for i in range(self.max_seq_length)]"),
        "Vertical conv kernel spans the whole sequence: " + src_ref(f, "in_channels=1, out_channels=self.n_v, kernel_size=(self.max_seq_length, 1)"),
        "Max pooling over all conv positions: " + src_ref(f, "pool_out = F.max_pool1d(conv_out, conv_out.size(2)).squeeze(2)"),
        "Regularisation: " + src_ref(f, "loss = loss + self.reg_weight * reg_loss + self.reg_loss_conv_h()") + "; " +
        src_ref("model/loss.py", "reg_loss = W.norm(2)") + "; " + src_ref(f, "loss_conv_h = loss_conv_h + parm.norm(2)"),
        "Init: embeddings normal_(0, 1/embedding_dim) (std 0.125 here): " +
        src_ref(f, "normal_(module.weight.data, 0, 1.0 / module.embedding_dim)") +
        "; Linear xavier_normal_ with zero bias; the Conv2d layers keep PyTorch's default init.",
        "user_embedding and item_embedding both have padding_idx=0; user ids here are 1..4.",
    ]
    return {
        "name": "caser",
        "recbole_model": "Caser",
        "cls": Caser,
        "config": cfg,
        "dataset": lambda: GoldenDataset(N_USERS, N_ITEMS),
        "inputs": common_seq_inputs,
        "loss_fn": loss_fn,
        "grad_extra_fn": ("grad_ce", grad_ce_fn),
        "scores_fn": lambda m, i: m.full_sort_predict(seq_interaction(i)),
        "derived_fn": derived_fn,
        "semantics": sem,
        "layout": SEQ_LAYOUT,
        "notes": notes,
        "loss_function": "recbole.model.sequential_recommender.caser.Caser.calculate_loss(Interaction)",
    }


def transformer_cfg():
    return {
        "n_layers": 2,
        "n_heads": 2,
        "hidden_size": 8,
        "inner_size": 12,
        "hidden_dropout_prob": 0.0,
        "attn_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
    }


TRM_SEM = (
    "Transformer block (recbole.model.layers.TransformerEncoder, post-LN BERT style), for each of the 2 layers: "
    "q/k/v = Linear 8->8 (with bias), split into 2 heads of size 4 (head h uses features 4h..4h+3); "
    "scores = q k^T / sqrt(4) + mask, where mask[b, j] = 0 if key token j != 0 else -10000 (an additive "
    "-10000, not -inf; for BERT4Rec and S3Rec pre-training it is bidirectional: [B, 1, 1, L] broadcast over query "
    "positions and heads; padded *query* rows are computed normally); softmax over keys; ctx = probs v, heads "
    "concatenated; a = LayerNorm(dense(ctx) + x) (multi_head_attention.dense Linear 8->8, LayerNorm eps 1e-12); "
    "f = LayerNorm(dense_2(gelu(dense_1(a))) + a) with feed_forward.dense_1 Linear 8->12, dense_2 Linear 12->8, "
    "gelu(x) = x * 0.5 * (1 + erf(x / sqrt(2))) (exact erf GELU, recbole/model/layers.py FeedForward.gelu). "
    "LayerNorm uses the biased variance over the last dim: (x - mean) / sqrt(var + eps) * weight + bias."
)

KEY_BIAS_NOTE = (
    "grad.trm_encoder.layer.{0,1}.multi_head_attention.key.bias is analytically ZERO (q.(k_j + b) shifts every "
    "key's score for a query by the same q.b, which softmax ignores); the stored values are float64 rounding noise "
    "(~1e-17). Compare gradients with an absolute floor (e.g. |got - ref| <= 1e-7 * max|ref tensor| + 1e-12), "
    "not elementwise-relative, or these tensors (and exact zeros) cannot pass."
)


def bert4rec_spec():
    f = "model/sequential_recommender/bert4rec.py"
    cfg = transformer_cfg()
    cfg.update({"mask_ratio": 0.4, "loss_type": "CE", "train_neg_sample_args": None, "transform": "mask_itemseq"})
    MASK = N_ITEMS  # BERT4Rec's mask token id is n_items (bert4rec.py: self.mask_token = self.n_items)

    def inputs():
        d = common_seq_inputs()
        # Hand-made masked batch in the layout of recbole.data.transform.MaskItemSequence: the masked positions of
        # each row, left-padded with 0 to mask_item_length = int(mask_ratio * MAX_LEN) = 2; pos/neg items aligned.
        d["masked_item_seq"] = long([
            [1, MASK, 3, MASK, 5],   # positions 1 and 3 masked (targets 2 and 4)
            [3, 6, MASK, 0, 0],      # position 2 masked (target 2); one pad slot in the mask lists
            [7, 0, 0, 0, 0],         # nothing masked: contributes nothing to the loss, still encoded
            [2, 4, MASK, MASK, 0],   # positions 2 and 3 masked (targets 6 and 1)
        ])
        d["masked_index"] = long([[1, 3], [0, 2], [0, 0], [2, 3]])
        d["masked_pos_items"] = long([[2, 4], [0, 2], [0, 0], [6, 1]])
        d["masked_neg_items"] = long([[6, 7], [0, 5], [0, 0], [3, 5]])  # read but unused by CE
        return d

    def inter(i):
        d = {
            "item_id_list": i["item_seq"],
            "item_length": i["item_seq_len"],
            "item_id": i["pos_items"],
            "user_id": i["user_id"],
            "Mask_item_id_list": i["masked_item_seq"],
            "MASK_INDEX": i["masked_index"],
            "Pos_item_id": i["masked_pos_items"],
            "Neg_item_id": i["masked_neg_items"],
        }
        return Interaction(d)

    def derived_fn(model, i):
        with torch.no_grad():
            full_seq = model.reconstruct_test_data(i["item_seq"].clone(), i["item_seq_len"])
            return {
                "derived.seq_output": model.forward(i["masked_item_seq"]),
                "derived.full_sort_item_seq": full_seq,
                "derived.full_sort_seq_output": model.gather_indexes(model.forward(full_seq), i["item_seq_len"] - 1),
            }

    sem = (
        "BERT4Rec.calculate_loss(Interaction) fed directly with the hand-made masked batch (in RecBole 1.2.1 the "
        "random masking lives in the data transform recbole.data.transform.MaskItemSequence, not in the model, so "
        "no model internals are needed). forward(masked_item_seq): x = LayerNorm(item_embedding(seq) + "
        "position_embedding(arange(L))) (the model's top-level LayerNorm, eps 1e-12), dropout p=0, then 2 transformer "
        "layers with the BIDIRECTIONAL padding mask (keys with id 0 get -10000; the mask token id 8 is attended), "
        "then output = output_ln(gelu(output_ffn(h))) with output_ffn Linear 8->8 and nn.GELU() (exact erf) [B, L, 8]. "
        "For each (b, k): h_bk = output[b, masked_index[b, k]] (via a one-hot bmm, multi_hot_embed); "
        "logits_bk = h_bk @ item_embedding.weight[:8]^T + output_bias (the mask-token row 8 is excluded from the "
        "logits; output_bias [8] is added); ce_bk = logsumexp(logits_bk) - logits_bk[masked_pos_items[b, k]]; "
        "loss = sum_bk ce_bk * t_bk / sum_bk t_bk with t_bk = (masked_index[b, k] > 0), i.e. the mean over the "
        "real masked positions (5 here). scores = full_sort_predict(item_seq, item_seq_len): the sequence is "
        "rebuilt by reconstruct_test_data (append a padding column, put the mask token at index item_seq_len[b], "
        "then DROP THE FIRST COLUMN; stored as derived.full_sort_item_seq), encoded with the same forward, read "
        "at gather_indexes(output, item_seq_len - 1) (= the mask token's position after the shift), and scored "
        "against item_embedding.weight[:8] plus output_bias: [B, 8]. " + TRM_SEM
    )
    notes = COMMON_NOTES + [
        "Extra mask-token row in the item embedding: " + src_ref(f, "self.n_items + 1, self.hidden_size, padding_idx=0") +
        "; mask token id = n_items = 8: " + src_ref(f, "self.mask_token = self.n_items"),
        "Output bias over the real items (no row for the mask token): " + src_ref(f, "self.output_bias = nn.Parameter(torch.zeros(self.n_items))"),
        "Output head applied to the last layer: " + src_ref(f, "ffn_output = self.output_ffn(trm_output[-1])") + "; " +
        src_ref(f, "output = self.output_ln(ffn_output)"),
        "Bidirectional mask: " + src_ref(f, "extended_attention_mask = self.get_attention_mask(item_seq, bidirectional=True)") +
        "; " + src_ref("model/abstract_recommender.py", "extended_attention_mask = torch.where(extended_attention_mask, 0.0, -10000.0)"),
        "Loss weighting: " + src_ref(f, "targets = (masked_index > 0).float().view(-1)") +
        ". QUIRK: masked_index is left-padded with 0, and 0 is also a real position, so a mask placed at position 0 "
        "is silently ignored by RecBole (length-1 sequences can never contribute). This batch never masks position "
        "0, so the quirk does not affect these numbers.",
        "Logits exclude the mask token: " + src_ref(f, "test_item_emb = self.item_embedding.weight[: self.n_items]"),
        "QUIRK in full_sort_predict: " + src_ref(f, "item_seq = item_seq[:, 1:]") +
        " drops the first item of every row, also of rows shorter than MAX_ITEM_LIST_LENGTH.",
        "mask_ratio=0.4 only sets mask_item_length = int(0.4*5) = 2 (the width of masked_index / masked_pos_items); "
        "the positions are chosen by hand here. ft_ratio (the transform's 'mask the last item' mode) is not used.",
        "Init: " + src_ref(f, "module.weight.data.normal_(mean=0.0, std=self.initializer_range)") +
        " (then the +N(0, 0.25^2) noise described above). initializer_range 0.02.",
        "inner_size=12 (not 4*hidden) so the two FFN matrices are not square.",
        KEY_BIAS_NOTE,
    ]
    return {
        "name": "bert4rec",
        "recbole_model": "BERT4Rec",
        "cls": BERT4Rec,
        "config": cfg,
        "dataset": lambda: GoldenDataset(N_USERS, N_ITEMS),
        "inputs": inputs,
        "loss_fn": lambda m, i: {"loss": m.calculate_loss(inter(i))},
        "scores_fn": lambda m, i: m.full_sort_predict(inter(i)),
        "derived_fn": derived_fn,
        "semantics": sem,
        "layout": SEQ_LAYOUT + " Masked batch: masked_item_seq [4, 5] (item_seq with the mask token 8 at the "
        "masked positions, still right-padded with 0), masked_index [4, 2] (masked positions, left-padded with 0), "
        "masked_pos_items [4, 2] (original items at those positions, left-padded with 0), masked_neg_items [4, 2] "
        "(unused by CE). Interaction field names: Mask_item_id_list, MASK_INDEX, Pos_item_id, Neg_item_id.",
        "notes": notes,
        "loss_function": "recbole.model.sequential_recommender.bert4rec.BERT4Rec.calculate_loss(Interaction), "
        "with the masked fields given in the Interaction",
    }


class _BCEWithLogitsF64(torch.nn.Module):
    """BCEWithLogitsLoss(reduction='none') whose target takes the input's dtype (see the s3rec-mip notes)."""

    def __init__(self):
        super().__init__()
        self.inner = torch.nn.BCEWithLogitsLoss(reduction="none")

    def forward(self, input, target):
        return self.inner(input, target.to(input.dtype))


def s3rec_spec():
    f = "model/sequential_recommender/s3rec.py"
    cfg = transformer_cfg()
    cfg.update({
        "item_attribute": "class",
        "mask_ratio": 0.2,
        "aap_weight": 0.0,
        "mip_weight": 1.0,
        "map_weight": 0.0,
        "sp_weight": 0.0,
        "train_stage": "pretrain",
        "loss_type": "CE",
        "train_neg_sample_args": None,
    })
    n_class_tokens = 4  # dataset.num('class'): padding token 0 + 3 classes -> S3Rec.n_features = 3
    MASK = N_ITEMS  # S3Rec: n_items = dataset.item_num + 1 = 9, mask_token = n_items - 1 = 8
    # class token of item i (1..7) = (i % 3) + 1 ; S3Rec's feature index = token - 1
    item_class = long([0] + [(i % 3) + 1 for i in range(1, N_ITEMS)])

    def dataset():
        feat = Interaction({"item_id": torch.arange(N_ITEMS), "class": item_class})
        return GoldenDataset(N_USERS, N_ITEMS, {"class": n_class_tokens}, feat)

    # S3Rec's pre-training batch is LEFT-padded (S3Rec._padding_zero_at_left), unlike item_seq
    left = [[1, 2, 3, 4, 5], [0, 0, 3, 6, 2], [0, 0, 0, 0, 7], [0, 2, 4, 6, 1]]

    def inputs():
        d = common_seq_inputs()
        d["masked_item_seq"] = long([[1, MASK, 3, MASK, 5], [0, 0, 3, 6, MASK], [0, 0, 0, 0, MASK], [0, MASK, 4, 6, 1]])
        d["mip_pos_items"] = long(left)
        d["mip_neg_items"] = long([[1, 6, 3, 7, 5], [0, 0, 3, 6, 5], [0, 0, 0, 0, 1], [0, 3, 4, 6, 1]])
        feats = torch.zeros(4, MAX_LEN, n_class_tokens - 1, dtype=torch.long)
        for b, row in enumerate(left):
            for j, it in enumerate(row):
                if it:
                    feats[b, j, item_class[it] - 1] = 1
        d["features"] = feats
        # segment-prediction inputs: sp_weight = 0, so they only have to be valid ids (they are still encoded)
        d["masked_segment_seq"] = long([[1, 2, MASK, MASK, 5], [0, 0, 3, MASK, 2], [0, 0, 0, 0, 7], [0, 2, MASK, 6, 1]])
        d["pos_segment"] = long([[MASK, MASK, 3, 4, MASK], [0, 0, MASK, 6, MASK], [0, 0, 0, 0, 7], [0, MASK, 4, MASK, MASK]])
        d["neg_segment"] = long([[MASK, MASK, 6, 2, MASK], [0, 0, MASK, 1, MASK], [0, 0, 0, 0, 7], [0, MASK, 3, MASK, MASK]])
        return d

    def pretrain_call(model, i):
        return model.pretrain(
            i["features"], i["masked_item_seq"], i["mip_pos_items"], i["mip_neg_items"],
            i["masked_segment_seq"], i["pos_segment"], i["neg_segment"],
        )

    def loss_fn(model, i):
        # RecBole's own value: its BCE targets are hard-coded float32, so the loss comes back rounded to float32
        saved = model.loss_fct
        with torch.no_grad():
            recbole_f32 = pretrain_call(model, i)
        model.loss_fct = _BCEWithLogitsF64()
        try:
            loss = pretrain_call(model, i)
        finally:
            model.loss_fct = saved
        return {"loss": loss, "loss.recbole_float32": recbole_f32.to(torch.float64)}

    def derived_fn(model, i):
        with torch.no_grad():
            h = model.forward(i["masked_item_seq"])
            hp = model.mip_norm(h.reshape(-1, h.size(-1)))
            pos = torch.sigmoid((hp * model.item_embedding(i["mip_pos_items"]).reshape(-1, h.size(-1))).sum(-1))
            neg = torch.sigmoid((hp * model.item_embedding(i["mip_neg_items"]).reshape(-1, h.size(-1))).sum(-1))
            return {"derived.seq_output": h, "derived.mip_pos_score": pos.view(4, -1),
                    "derived.mip_neg_score": neg.view(4, -1)}

    sem = (
        "S3Rec pre-training loss with aap_weight = map_weight = sp_weight = 0 and mip_weight = 1, computed by calling "
        "S3Rec.pretrain(features, masked_item_seq, mip_pos_items, mip_neg_items, masked_segment_seq, pos_segment, "
        "neg_segment) directly with a hand-made batch (calculate_loss would draw the masks with python's random "
        "inside reconstruct_pretrain_data). The other three terms are still computed but multiplied by 0.0, so they "
        "add exactly 0 to the loss and to every gradient (grad of aap_norm/map_norm/sp_norm/feature_embedding is "
        "exactly 0). MIP: h = forward(masked_item_seq, bidirectional=True) [B, L, 8] (x = LayerNorm(item_embedding + "
        "position_embedding), dropout p=0, 2 transformer layers, NO output head, h = last layer); for every position "
        "(b, j): g = mip_norm(h[b, j]) (Linear 8->8 with bias); p = sigmoid(<g, item_embedding(mip_pos_items[b, j])>), "
        "n = sigmoid(<g, item_embedding(mip_neg_items[b, j])>); loss = sum over positions with masked_item_seq[b, j] == "
        "8 (the mask token) of BCEWithLogits(p - n, 1) = softplus(-(p - n)) = -log(sigmoid(sigmoid(a) - sigmoid(b))) "
        "(a sigmoid of a difference of sigmoids, as RecBole writes it). It is a SUM over the 5 masked positions, not a "
        "mean. loss.recbole_float32 is the same value as RecBole returns it unpatched (rounded to float32, see notes); "
        "loss is the float64 value with the target cast shim; gradients are of loss (identical to the unpatched "
        "backward, which is float64 anyway). scores = full_sort_predict(item_seq, item_seq_len) on the RIGHT-padded "
        "item_seq with the CAUSAL (unidirectional: tril) mask, read at item_seq_len - 1, scored against "
        "item_embedding.weight[:8] (the mask-token row 8 excluded), no bias: [B, 8]. " + TRM_SEM
    )
    notes = COMMON_NOTES + [
        "Feasible without a dataset: only the item-attribute count matters for MIP. S3Rec needs an item attribute "
        "field (item_attribute 'class'): n_features = dataset.num('class') - 1 = 3 here: " +
        src_ref(f, "self.n_features = dataset.num(self.FEATURE_FIELD) - 1") +
        "; the feature_embedding (3 x 8, padding_idx=0) exists but gets zero gradient with aap/map weights 0.",
        "Mask token and the extra item-embedding row: " + src_ref(f, "self.n_items = dataset.item_num + 1") + "; " +
        src_ref(f, "self.mask_token = self.n_items - 1"),
        "MIP score: " + src_ref(f, "return torch.sigmoid(torch.sum(score, -1))  # [B*L]") + "; " +
        src_ref(f, "mip_distance = pos_score - neg_score"),
        "float32 in RecBole: " + src_ref(f, "mip_distance, torch.ones_like(mip_distance, dtype=torch.float32)") +
        ": BCEWithLogitsLoss with a float64 input and a float32 target returns float32 (the float64 result rounded), "
        "so model.double() does not make RecBole's pre-training loss float64. For a 1e-9 golden the model's loss_fct "
        "was replaced by BCEWithLogitsLoss(reduction='none') with the target cast to the input's dtype (same formula).",
        "MIP sum over masked positions: " + src_ref(f, "mip_loss = torch.sum(mip_loss * mip_mask.flatten())"),
        "Pre-training sequences are LEFT-padded with 0: " + src_ref(f, "sequence = [0] * pad_len + sequence") +
        " (mip_pos_items is the unmasked left-padded sequence; mip_neg_items equals it except at masked positions).",
        "Weighted sum: " + src_ref(f, "self.aap_weight * aap_loss"),
        "features [4, 5, 3] int64 multi-hot of each item's class (class token of item i = i % 3 + 1, index = token-1), "
        "zeros at padding; it only enters the zero-weighted AAP/MAP terms. The segment inputs only enter the zero-weighted SP term.",
        "Fine-tuning (train_stage 'finetune') would load a checkpoint from pre_model_path; only pre-training is covered.",
        KEY_BIAS_NOTE,
    ]
    return {
        "name": "s3rec-mip",
        "recbole_model": "S3Rec",
        "cls": S3Rec,
        "config": cfg,
        "dataset": dataset,
        "inputs": inputs,
        "loss_fn": loss_fn,
        "scores_fn": lambda m, i: m.full_sort_predict(seq_interaction(i)),
        "derived_fn": derived_fn,
        "semantics": sem,
        "layout": SEQ_LAYOUT + " Pre-training batch (LEFT-padded with 0, as S3Rec.reconstruct_pretrain_data makes it): "
        "masked_item_seq [4, 5] (mask token 8 at 5 positions), mip_pos_items [4, 5], mip_neg_items [4, 5], "
        "features [4, 5, 3], masked_segment_seq / pos_segment / neg_segment [4, 5].",
        "notes": notes,
        "loss_function": "recbole.model.sequential_recommender.s3rec.S3Rec.pretrain(...) called directly, with "
        "model.loss_fct = BCEWithLogitsLoss(reduction='none') on target.to(input.dtype)",
    }


SPECS = [bpr_spec, lambda: gru4rec_spec("CE"), lambda: gru4rec_spec("BPR"), caser_spec, bert4rec_spec, s3rec_spec]


# ---------------------------------------------------------------------------------------------------------------
def jsonable_config(config):
    out = {}
    for k, v in config.final_config_dict.items():
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = str(v)
    return out


def generate(spec, out_dir):
    config, model = build_model(spec)
    inputs = spec["inputs"]()
    losses, grads = loss_and_grads(model, spec, inputs)
    scores = scores_of(model, spec, inputs)

    tensors = {}
    for name, t in model.state_dict().items():
        tensors[name] = t.detach().clone().contiguous()
    for name, t in inputs.items():
        assert t.dtype == torch.long
        tensors[f"input.{name}"] = t.contiguous()
    for name, t in losses.items():
        tensors[name] = t.reshape(()).to(torch.float64).contiguous()
    for name, g in grads.items():
        tensors[f"grad.{name}"] = g.contiguous()
    if "grad_extra_fn" in spec:
        prefix, fn = spec["grad_extra_fn"]
        for name, g in fn(model, inputs).items():
            tensors[f"{prefix}.{name}"] = g.contiguous()
    tensors["scores"] = scores.contiguous()
    for name, t in spec["derived_fn"](model, inputs).items():
        tensors[name] = t.detach().clone().contiguous()
    for k, t in tensors.items():
        assert t.dtype in (torch.float64, torch.long), (k, t.dtype)
        assert torch.isfinite(t.double()).all(), k

    path = os.path.join(out_dir, f"{spec['name']}.safetensors")
    save_file(tensors, path, metadata={"generator": f"scripts/golden/recbole_golden.py ({spec['recbole_model']}, RecBole {recbole.__version__})"})

    meta = {
        "name": spec["name"],
        "recbole_model": f"{spec['cls'].__module__}.{spec['cls'].__name__}",
        "versions": {
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "loss_function": spec["loss_function"],
        "calculate_loss_semantics": spec["semantics"],
        "batch_layout": spec["layout"],
        "notes": spec["notes"],
        "dtype": "all float tensors float64 (torch.set_default_dtype(torch.float64) and model.double()); ids int64",
        "seeds": {"recbole_init_seed": SEED, "noise_seed": NOISE_SEED, "noise_std": NOISE_STD},
        "config_overrides": spec["config"],
        "config": jsonable_config(config),
        "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()],
        "tensors": {k: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)} for k, t in tensors.items()},
        "inputs": {k: v.tolist() for k, v in inputs.items()},
        "losses": {k: float(v) for k, v in losses.items()},
        "tolerance": {
            "loss": "1e-9 (relative)",
            "grad": "1e-7 relative to the tensor's scale: |got - ref| <= 1e-7 * max|ref tensor| + 1e-12 elementwise",
            "scores": "1e-9 relative to max|scores|",
        },
    }
    with open(os.path.join(out_dir, f"{spec['name']}.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    return path


def verify(spec, out_dir):
    """Reload the file, load its parameters into a fresh model built without the noise and with a different seed,
    recompute loss / grads / scores from the stored inputs and compare."""
    path = os.path.join(out_dir, f"{spec['name']}.safetensors")
    t = load_file(path)
    global SEED
    saved_seed = SEED
    SEED = saved_seed + 1  # a different init, overwritten by load_state_dict
    try:
        _, model = build_model(spec, noise=False)
    finally:
        SEED = saved_seed
    sd_keys = list(model.state_dict().keys())
    model.load_state_dict({k: t[k] for k in sd_keys}, strict=True)
    inputs = {k[len("input."):]: v for k, v in t.items() if k.startswith("input.")}
    losses, grads = loss_and_grads(model, spec, inputs)
    scores = scores_of(model, spec, inputs)
    report = {}
    for k, v in losses.items():
        assert torch.equal(v.reshape(()).to(torch.float64), t[k]), (spec["name"], k, v, t[k])
    maxrel = 0.0
    for n, g in grads.items():
        ref = t[f"grad.{n}"]
        assert torch.allclose(g, ref, rtol=1e-12, atol=1e-15), (spec["name"], n)
        maxrel = max(maxrel, float(((g - ref).abs() / ref.abs().clamp_min(1e-300)).max()))
    assert torch.allclose(scores, t["scores"], rtol=1e-12, atol=1e-15), spec["name"]
    report["loss"] = float(t["loss"])
    report["grads_bitwise_equal"] = all(torch.equal(g, t[f"grad.{n}"]) for n, g in grads.items())
    report["scores_bitwise_equal"] = torch.equal(scores, t["scores"])
    report["params"] = len(sd_keys)
    report["bytes"] = os.path.getsize(path)
    # every stored float parameter is float64, every input int64
    for k in sd_keys:
        assert t[k].dtype == torch.float64
    for k, v in inputs.items():
        assert v.dtype == torch.long
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden")
    ap.add_argument("--only", nargs="*", help="names to (re)generate, e.g. bpr caser")
    ap.add_argument("--check-only", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for make in SPECS:
        spec = make()
        if args.only and spec["name"] not in args.only:
            continue
        if not args.check_only:
            generate(spec, args.out)
        rep = verify(spec, args.out)
        print(f"{spec['name']:12s} ok  loss={rep['loss']:.17g}  params={rep['params']}  bytes={rep['bytes']}  "
              f"grads_bitwise={rep['grads_bitwise_equal']}  scores_bitwise={rep['scores_bitwise_equal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
