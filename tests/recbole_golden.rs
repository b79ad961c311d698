//! This project's building blocks against RecBole's PyTorch models, in float64: the golden
//! files of `tests/golden/` (made by `scripts/golden/recbole_golden.py`; see
//! `tests/golden/README.md`) hold a tiny model's parameters, a fixed batch, its loss, every
//! parameter's gradient and the full-sort scores. Losses must agree to 1e-9 relative,
//! gradients and scores to 1e-7 of their tensor's largest entry.

use mclrec::autograd::{ParamStore, Tape, Tensor};
use mclrec::models::weights::{decode, decode_indices};
use mclrec::models::{Bound, Caser, Gru, Init, Linear, SeqBatch};
use mclrec_tensor::ChaCha8Rng;
use rand::SeedableRng;
use safetensors::SafeTensors;

/// One golden file.
struct Golden {
    bytes: Vec<u8>,
    name: &'static str,
}

impl Golden {
    fn load(name: &'static str) -> Self {
        let path = format!(
            "{}/tests/golden/{name}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Golden { bytes, name }
    }
    fn f64(&self, key: &str) -> Tensor<f64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("{}: no `{key}`", self.name));
        decode(&view).unwrap()
    }
    fn idx(&self, key: &str) -> Vec<usize> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        decode_indices(&st.tensor(key).unwrap())
            .unwrap()
            .into_iter()
            .map(|v| usize::try_from(v).expect("a non-negative id"))
            .collect()
    }
    /// Every parameter of `store` set from the file, by name (shapes checked).
    fn load_params(&self, store: &mut ParamStore<f64>) {
        let ids: Vec<_> = store.iter().map(|(id, p)| (id, p.name.clone())).collect();
        for (id, name) in ids {
            let t = self.f64(&name);
            assert_eq!(t.shape(), store.value(id).shape(), "{}: {name}", self.name);
            store.get_mut(id).value = t;
        }
    }
    /// RecBole's right-padded batch as packed sequences.
    fn sequences(&self) -> SeqBatch {
        let lens = self.idx("input.item_seq_len");
        let items = self.idx("input.item_seq");
        SeqBatch::from_padded(&items, items.len() / lens.len(), &lens)
    }
}

/// `got` within `1e-7` of `want`'s largest entry (plus `1e-12`), element by element.
#[track_caller]
fn assert_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let want = want.to_f64s();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.to_f64s().iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-7 * scale + 1e-12,
            "{what}[{i}]: {a} vs RecBole {b} (scale {scale})"
        );
    }
}

/// GRU4Rec (RecBole, CE): item embedding, a GRU without biases, a dense layer, the state at
/// each sequence's last position scored against every item row (padding included), mean
/// cross-entropy. Packed sequences give the same numbers as RecBole's right-padded ones:
/// the GRU is causal and only the last real position is read.
#[test]
fn gru_layer_matches_recbole_gru4rec() {
    let golden = Golden::load("gru4rec");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::<f64>::new();
    let g = store.group("gru4rec");
    let emb = store.add("item_embedding.weight", Tensor::zeros(&[8, 8]), g);
    let gru = Gru::new(&mut store, g, "gru_layers", 8, 6, false, &mut rng);
    let dense = Linear::new(&mut store, g, "dense", 6, 8, Init::Normal(0.02), &mut rng);
    golden.load_params(&mut store);
    let batch = golden.sequences();
    let targets = golden.idx("input.pos_items");

    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let table = p.get(emb);
    let x = table.embedding(&batch.items, &[batch.rows()], Some(0));
    let states = gru.forward(&p, x, &batch.layout);
    let h = dense
        .forward(&p, states)
        .index_select(0, &batch.layout.last_rows());
    let scores = h.matmul_t(table, false, true);
    let loss = scores.cross_entropy(&targets);

    let (got, want) = (loss.value().item(), golden.f64("loss").item());
    assert!(
        (got - want).abs() <= 1e-9 * want.abs(),
        "loss {got} vs RecBole {want}"
    );
    assert_close("scores", &scores.value(), &golden.f64("scores"));
    let grads = loss.backward();
    for (id, param) in store.iter() {
        let got = grads
            .get(p.get(id))
            .expect("every parameter has a gradient");
        assert_close(
            &format!("grad {}", param.name),
            got,
            &golden.f64(&format!("grad.{}", param.name)),
        );
    }
}

/// Caser (RecBole, CE, `reg_weight` 1e-4): the right-padded window of 5 items and the user,
/// cross-entropy over every item row, plus the unsquared-norm regulariser.
#[test]
fn caser_matches_recbole() {
    let golden = Golden::load("caser");
    let mut store = ParamStore::<f64>::new();
    let g = store.group("caser");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let caser = Caser::new(&mut store, g, (8, 5), 5, 8, (4, 8), &mut rng);
    golden.load_params(&mut store);
    let (windows, users) = (golden.idx("input.item_seq"), golden.idx("input.user_id"));
    let targets = golden.idx("input.pos_items");

    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let s = caser.forward(&p, &windows, &users);
    let scores = s.matmul_t(p.get(caser.item_embedding), false, true);
    let ce = scores.cross_entropy(&targets);
    let reg = caser.regulariser(&p, 1e-4);
    let loss = ce.add(reg);

    for (what, got, key) in [
        ("cross-entropy", ce, "loss.ce"),
        ("regulariser", reg, "loss.reg"),
        ("loss", loss, "loss"),
    ] {
        let (got, want) = (got.value().item(), golden.f64(key).item());
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{what} {got} vs RecBole {want}"
        );
    }
    assert_close("scores", &scores.value(), &golden.f64("scores"));
    let grads = loss.backward();
    for (id, param) in store.iter() {
        let got = grads
            .get(p.get(id))
            .expect("every parameter has a gradient");
        assert_close(
            &format!("grad {}", param.name),
            got,
            &golden.f64(&format!("grad.{}", param.name)),
        );
    }
}
