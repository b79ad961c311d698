//! The tiny golden model of `../shared/reference/golden/`: every loss term and every
//! gradient of MCLRec's steps 1 and 2, computed in f64, against the official PyTorch values.
//!
//! Tolerances: losses within 1e-9 relative; gradients within 1e-7 relative to the largest
//! entry of the same tensor (a per-element relative error means nothing for entries that
//! are zero up to rounding). The attention key biases have a gradient that is exactly zero
//! in exact arithmetic (a bias on every key of a row shifts the row's scores by a constant,
//! which softmax ignores): PyTorch's values there are rounding noise of order 1e-19, so the
//! scale has a floor of 1e-10.

mod common;

use std::collections::HashMap;

use mclrec::autograd::{GroupId, Tape, Tensor};
use mclrec::models::losses::{rec_loss, MclrecLosses};
use mclrec::models::weights::{decode, decode_indices};
use mclrec::models::{Bound, Mclrec, SasRecConfig, SeqBatch};
use mclrec_tensor::ChaCha8Rng;
use rand::SeedableRng;
use safetensors::SafeTensors;

struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }
    fn f64(&self, name: &str) -> Tensor<f64> {
        decode(
            &self
                .st()
                .tensor(name)
                .unwrap_or_else(|_| panic!("golden has no `{name}`")),
        )
        .unwrap()
    }
    fn idx(&self, name: &str) -> Vec<usize> {
        decode_indices(&self.st().tensor(name).unwrap())
            .unwrap()
            .into_iter()
            .map(|v| v as usize)
            .collect()
    }
    fn batch(&self, items: &str, lens: &str) -> SeqBatch {
        SeqBatch::from_padded(&self.idx(items), 10, &self.idx(lens))
    }
}

fn load() -> Option<(Golden, Mclrec<f64>)> {
    let dir = common::reference_dir("golden parity")?;
    let golden = Golden {
        bytes: std::fs::read(dir.join("golden/golden.safetensors")).unwrap(),
    };
    let config = SasRecConfig {
        item_rows: 41,
        n_classes: 40,
        max_len: 10,
        hidden_dropout: 0.0,
        attn_dropout: 0.0,
        ..SasRecConfig::for_items(39)
    };
    let mut model = Mclrec::<f64>::new(config, false, &mut ChaCha8Rng::seed_from_u64(0));
    let ids: Vec<_> = model
        .store
        .iter()
        .map(|(id, p)| (id, p.name.clone()))
        .collect();
    for (id, name) in ids {
        let t = golden.f64(&format!("param.{name}"));
        assert_eq!(t.shape(), model.store.value(id).shape(), "{name}");
        model.store.get_mut(id).value = t;
    }
    Some((golden, model))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn assert_close_tensor(name: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    let scale = want
        .to_vec()
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-10);
    let worst = got
        .to_vec()
        .iter()
        .zip(want.to_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
        / scale;
    assert!(
        worst <= tol,
        "{name}: max error {worst:.3e} (relative to max |value| {scale:.3e})"
    );
}

/// Losses by name, outputs by name, parameter gradients by name.
type StepResult = (
    HashMap<String, f64>,
    HashMap<String, Tensor<f64>>,
    HashMap<String, Tensor<f64>>,
);

/// Runs the three forwards of one step with `trainable` groups and returns the named losses
/// and the parameter gradients of `loss_of(losses)`.
fn step(golden: &Golden, model: &Mclrec<f64>, trainable: &[GroupId], which: &str) -> StepResult {
    let tape = Tape::new();
    let p = Bound::new(&tape, &model.store, trainable);
    let mut off = model.encoder.dropouts(None);
    let enc = &model.encoder;
    let h = enc.forward(
        &p,
        &golden.batch("input.item_seq", "input.item_seq_len"),
        &mut off,
    );
    let h1 = enc.forward(&p, &golden.batch("input.aug1", "input.aug_len1"), &mut off);
    let h2 = enc.forward(&p, &golden.batch("input.aug2", "input.aug_len2"), &mut off);
    let z1 = model.aug_1.forward(&p, h1);
    let z2 = model.second_augmenter().forward(&p, h2);
    let targets = golden.idx("input.pos_items");
    let classes = enc.class_embeddings(&p);
    let logits = h.matmul_t(classes, false, true);
    let l = MclrecLosses::new(Some(rec_loss(h, classes, &targets)), h1, h2, z1, z2);
    let (lambda, beta) = (0.1, 0.05);
    let mut vals = HashMap::new();
    let mut outs = HashMap::new();
    for (k, v) in [
        ("L_rec", l.rec.unwrap()),
        ("L_cl1", l.cl1),
        ("L_cl2", l.cl2()),
        ("L_cl2_term0", l.cl2_terms[0]),
        ("L_cl2_term1", l.cl2_terms[1]),
        ("L_cl2_term2", l.cl2_terms[2]),
        ("R", l.reg()),
        ("R_term0", l.reg_terms[0]),
        ("R_term1", l.reg_terms[1]),
        ("R_term2", l.reg_terms[2]),
        ("step1_loss", l.encoder_loss(lambda, beta)),
        ("step2_loss", l.augmenter_loss(lambda)),
    ] {
        vals.insert(k.to_string(), v.value().item());
    }
    for (k, v) in [
        ("seq_output", h),
        ("seq_output_aug1", h1),
        ("seq_output_aug2", h2),
        ("aug1_extractor_out", z1),
        ("aug2_extractor_out", z2),
        ("rec_logits", logits),
    ] {
        outs.insert(k.to_string(), v.value());
    }
    let loss = if which == "step1" {
        l.encoder_loss(lambda, beta)
    } else {
        l.augmenter_loss(lambda)
    };
    let grads = loss.backward();
    let mut g = HashMap::new();
    for (id, t) in grads.params() {
        g.insert(model.store.get(*id).name.clone(), t.clone());
    }
    (vals, outs, g)
}

#[test]
fn golden_losses_and_outputs_match_pytorch() {
    let Some((golden, model)) = load() else {
        return;
    };
    let (vals, outs, _) = step(&golden, &model, &[model.encoder_group], "step1");
    for (name, got) in &vals {
        let want = golden.f64(&format!("out.{name}")).item();
        assert!(
            rel(*got, want) <= 1e-9,
            "{name}: {got:.15e} vs PyTorch {want:.15e} (rel {:.2e})",
            rel(*got, want)
        );
    }
    let step3 = golden.f64("out.step3_loss").item();
    assert!(
        rel(vals["step1_loss"], step3) <= 1e-9,
        "step 3 uses the step-1 formula"
    );
    for (name, got) in &outs {
        assert_close_tensor(name, got, &golden.f64(&format!("out.{name}")), 1e-10);
    }
}

#[test]
fn golden_step1_encoder_gradients_match_pytorch() {
    let Some((golden, model)) = load() else {
        return;
    };
    let (_, _, grads) = step(&golden, &model, &[model.encoder_group], "step1");
    let encoder: Vec<String> = model
        .store
        .iter()
        .filter(|(_, p)| p.group == model.encoder_group)
        .map(|(_, p)| p.name.clone())
        .collect();
    assert_eq!(encoder.len(), 36);
    assert_eq!(
        grads.len(),
        36,
        "augmenters are frozen in step 1: no gradients for them"
    );
    for name in &encoder {
        assert_close_tensor(
            name,
            &grads[name],
            &golden.f64(&format!("grad_step1.{name}")),
            1e-7,
        );
    }
    // The extra item row is never looked up or scored; the padding row gets gradient only
    // through the softmax.
    let emb = grads["item_embedding.weight"].to_vec();
    assert!(emb[40 * 64..].iter().all(|&v| v == 0.0));
    assert!(emb[..64].iter().any(|&v| v != 0.0));
}

#[test]
fn golden_step2_augmenter_gradients_match_pytorch() {
    let Some((golden, model)) = load() else {
        return;
    };
    let (_, _, grads) = step(&golden, &model, &[model.augmenter_group], "step2");
    assert_eq!(grads.len(), 12, "only the augmenters are trained in step 2");
    for (name, g) in &grads {
        assert_close_tensor(name, g, &golden.f64(&format!("grad_step2.{name}")), 1e-7);
    }
    // The encoder gradients the official step 2 computes and discards.
    let (_, _, all) = step(
        &golden,
        &model,
        &[model.encoder_group, model.augmenter_group],
        "step2",
    );
    for (name, g) in all.iter().filter(|(n, _)| !n.starts_with("aug_")) {
        assert_close_tensor(
            name,
            g,
            &golden.f64(&format!("grad_step2_encoder_discarded.{name}")),
            1e-7,
        );
    }
}
