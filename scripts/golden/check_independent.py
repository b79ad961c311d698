#!/usr/bin/env python3
"""Recompute every golden file from its stored parameters and inputs WITHOUT RecBole, following the computation
described in tests/golden/<name>.json ("calculate_loss_semantics"), with plain torch ops (manual GRU loop,
convolutions as explicit sums, a hand-written transformer). Gradients come from torch autograd on these plain ops;
F.embedding(..., padding_idx=0) stands for the padding-row rule described in the notes.

This checks that the written description is the computation RecBole did, i.e. what the Rust code must do.

    python scripts/golden/check_independent.py --dir tests/golden
"""

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

torch.set_default_dtype(torch.float64)


def params_of(t):
    return {k: v.clone().requires_grad_(True) for k, v in t.items()
            if not k.startswith(("input.", "grad", "loss", "scores", "derived."))}


def emb(idx, w, pad=True):
    return F.embedding(idx, w, padding_idx=0 if pad else None)


def ce_mean(logits, target):
    return (torch.logsumexp(logits, -1) - logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)).mean()


def bpr_loss(pos, neg):
    return -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def lin(P, name, x):
    return x @ P[f"{name}.weight"].t() + P[f"{name}.bias"]


def gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def transformer(P, x, seq, n_layers=2, n_heads=2, causal=False):
    B, L, H = x.shape
    d = H // n_heads
    keep = (seq != 0)[:, None, None, :].expand(B, 1, L, L)
    if causal:
        keep = torch.tril(keep)
    mask = torch.where(keep, 0.0, -10000.0)
    for i in range(n_layers):
        p = f"trm_encoder.layer.{i}."
        q = lin(P, p + "multi_head_attention.query", x).view(B, L, n_heads, d).permute(0, 2, 1, 3)
        k = lin(P, p + "multi_head_attention.key", x).view(B, L, n_heads, d).permute(0, 2, 1, 3)
        v = lin(P, p + "multi_head_attention.value", x).view(B, L, n_heads, d).permute(0, 2, 1, 3)
        s = q @ k.transpose(-1, -2) / math.sqrt(d) + mask
        ctx = (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3).reshape(B, L, H)
        a = layer_norm(lin(P, p + "multi_head_attention.dense", ctx) + x,
                       P[p + "multi_head_attention.LayerNorm.weight"], P[p + "multi_head_attention.LayerNorm.bias"])
        f = lin(P, p + "feed_forward.dense_2", gelu(lin(P, p + "feed_forward.dense_1", a)))
        x = layer_norm(f + a, P[p + "feed_forward.LayerNorm.weight"], P[p + "feed_forward.LayerNorm.bias"])
    return x


def embed_seq(P, seq):
    L = seq.shape[1]
    x = emb(seq, P["item_embedding.weight"]) + P["position_embedding.weight"][:L].unsqueeze(0)
    return layer_norm(x, P["LayerNorm.weight"], P["LayerNorm.bias"])


def last(out, lens):
    return out[torch.arange(out.shape[0]), lens - 1]


# ---------------------------------------------------------------------------------------------------------------
def m_bpr(P, I):
    u = emb(I["user_id"], P["user_embedding.weight"], pad=False)
    ps = (u * emb(I["pos_items"], P["item_embedding.weight"], pad=False)).sum(1)
    ns = (u * emb(I["neg_items"], P["item_embedding.weight"], pad=False)).sum(1)
    return {"loss": bpr_loss(ps, ns)}, u @ P["item_embedding.weight"].t()


def gru_forward(P, I):
    E = P["item_embedding.weight"]
    x = emb(I["item_seq"], E)
    Wih, Whh = P["gru_layers.weight_ih_l0"], P["gru_layers.weight_hh_l0"]
    Hs = Whh.shape[1]
    h = torch.zeros(x.shape[0], Hs)
    outs = []
    for t in range(x.shape[1]):
        ir, iz, inn = (x[:, t] @ Wih.t()).split(Hs, 1)
        hr, hz, hn = (h @ Whh.t()).split(Hs, 1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        h = (1 - z) * n + z * h
        outs.append(h)
    out = lin(P, "dense", torch.stack(outs, 1))
    return last(out, I["item_seq_len"])


def m_gru4rec(P, I):
    so = gru_forward(P, I)
    E = P["item_embedding.weight"]
    return {"loss": ce_mean(so @ E.t(), I["pos_items"])}, so @ E.t()


def m_gru4rec_bpr(P, I):
    so = gru_forward(P, I)
    E = P["item_embedding.weight"]
    ps = (so * emb(I["pos_items"], E)).sum(-1)
    ns = (so * emb(I["neg_items"], E)).sum(-1)
    return {"loss": bpr_loss(ps, ns)}, so @ E.t()


def m_caser(P, I, reg_weight=1e-4):
    E, U = P["item_embedding.weight"], P["user_embedding.weight"]
    X = emb(I["item_seq"], E)  # [B, L, D]
    u = emb(I["user_id"], U)
    B, L, D = X.shape
    Wv, bv = P["conv_v.weight"][:, 0, :, 0], P["conv_v.bias"]  # [nv, L]
    out_v = (torch.einsum("cl,bld->bcd", Wv, X) + bv[None, :, None]).reshape(B, -1)
    hs = []
    for i in range(L):
        W, b = P[f"conv_h.{i}.weight"][:, 0], P[f"conv_h.{i}.bias"]  # [nh, i+1, D]
        conv = torch.stack([torch.einsum("csd,bsd->bc", W, X[:, t:t + i + 1]) for t in range(L - i)], 2) + b[None, :, None]
        hs.append(torch.relu(conv).max(2).values)
    out = torch.cat([out_v] + hs, 1)
    z = torch.relu(lin(P, "fc1", out))
    so = torch.relu(lin(P, "fc2", torch.cat([z, u], 1)))
    ce = ce_mean(so @ E.t(), I["pos_items"])
    fro = lambda w: torch.sqrt((w ** 2).sum())  # noqa: E731
    l2 = reg_weight * sum(fro(P[k]) for k in ["user_embedding.weight", "item_embedding.weight", "conv_v.weight",
                                               "fc1.weight", "fc2.weight"])
    ch = reg_weight * sum(fro(P[f"conv_h.{i}.weight"]) for i in range(L))
    return {"loss": ce + l2 + ch, "loss.ce": ce, "loss.reg_l2": l2, "loss.reg_conv_h": ch}, so @ E.t()


def bert_out(P, seq):
    h = transformer(P, embed_seq(P, seq), seq)
    return layer_norm(gelu(lin(P, "output_ffn", h)), P["output_ln.weight"], P["output_ln.bias"])


def m_bert4rec(P, I):
    n = P["output_bias"].shape[0]
    E = P["item_embedding.weight"][:n]
    out = bert_out(P, I["masked_item_seq"])
    idx = I["masked_index"]
    h = out[torch.arange(out.shape[0])[:, None], idx]  # [B, K, H]
    logits = h @ E.t() + P["output_bias"]
    ce = torch.logsumexp(logits, -1) - logits.gather(-1, I["masked_pos_items"].unsqueeze(-1)).squeeze(-1)
    t = (idx > 0).double()
    loss = (ce * t).sum() / t.sum()
    # full sort: append a column, mask token at item_seq_len, drop the first column, read at item_seq_len - 1
    seq, lens = I["item_seq"], I["item_seq_len"]
    s2 = torch.cat([seq, torch.zeros(seq.shape[0], 1, dtype=torch.long)], 1)
    s2[torch.arange(seq.shape[0]), lens] = n
    s2 = s2[:, 1:]
    so = last(bert_out(P, s2), lens)
    return {"loss": loss}, so @ E.t() + P["output_bias"]


def m_s3rec(P, I):
    mask_token = P["item_embedding.weight"].shape[0] - 1
    E = P["item_embedding.weight"]
    h = transformer(P, embed_seq(P, I["masked_item_seq"]), I["masked_item_seq"])
    g = lin(P, "mip_norm", h)
    ps = torch.sigmoid((g * emb(I["mip_pos_items"], E)).sum(-1))
    ns = torch.sigmoid((g * emb(I["mip_neg_items"], E)).sum(-1))
    m = (I["masked_item_seq"] == mask_token).double()
    loss = (F.softplus(-(ps - ns)) * m).sum()
    seq, lens = I["item_seq"], I["item_seq_len"]
    so = last(transformer(P, embed_seq(P, seq), seq, causal=True), lens)
    return {"loss": loss}, so @ E[:mask_token].t()


MODELS = {"bpr": m_bpr, "gru4rec": m_gru4rec, "gru4rec-bpr": m_gru4rec_bpr, "caser": m_caser,
          "bert4rec": m_bert4rec, "s3rec-mip": m_s3rec}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="tests/golden")
    args = ap.parse_args()
    ok = True
    for name, fn in MODELS.items():
        t = load_file(os.path.join(args.dir, f"{name}.safetensors"))
        P = params_of(t)
        I = {k[6:]: v for k, v in t.items() if k.startswith("input.")}
        losses, scores = fn(P, I)
        losses["loss"].backward()
        worst_loss = max(abs(float(v.detach()) - float(t[k])) / max(abs(float(t[k])), 1e-300) for k, v in losses.items())
        worst_grad = 0.0
        for k, p in P.items():
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            ref = t[f"grad.{k}"]
            # relative to the tensor's scale, with an absolute floor of 1e-15: the attention key biases have an
            # analytically zero gradient (softmax ignores a per-query constant), stored as rounding noise ~1e-17
            worst_grad = max(worst_grad, float((g - ref).abs().max() / (ref.abs().max() + 1e-5)))
        worst_score = float((scores.detach() - t["scores"]).abs().max() / t["scores"].abs().max())
        good = worst_loss < 1e-12 and worst_grad < 1e-10 and worst_score < 1e-10
        ok &= good
        print(f"{name:12s} {'ok ' if good else 'BAD'} loss rel err {worst_loss:.1e}  grad err/(max|grad|+1e-5) "
              f"{worst_grad:.1e}  scores err/max|score| {worst_score:.1e}")
    print("independent recomputation:", "all agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
