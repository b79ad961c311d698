//! This project's building blocks against RecBole's PyTorch models, in float64: the golden
//! files of `tests/golden/` (made by `scripts/golden/recbole_golden.py`; see
//! `tests/golden/README.md`) hold a tiny model's parameters, a fixed batch, its loss, every
//! parameter's gradient and the full-sort scores. Losses must agree to 1e-9 relative,
//! gradients and scores to 1e-7 of their tensor's largest entry.

use mclrec::autograd::{ParamStore, Tape, Tensor, Var};
use mclrec::models::weights::{decode, decode_indices};
use mclrec::models::{
    Bert4Rec, Bound, Bpr, Caser, Dropouts, DuoRecModel, DuoRecSettings, Gru4Rec, LossKind,
    Recommender, S3RecMip, SasRecConfig, SeqBatch,
};
use mclrec_tensor::ChaCha8Rng;
use rand::SeedableRng;
use safetensors::SafeTensors;

/// One golden file, its header parsed once (the bytes live for the test process).
struct Golden {
    st: SafeTensors<'static>,
    name: &'static str,
}

impl Golden {
    fn load(name: &'static str) -> Self {
        let path = format!(
            "{}/tests/golden/{name}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let st = SafeTensors::deserialize(Vec::leak(bytes)).unwrap();
        Golden { st, name }
    }
    fn f64(&self, key: &str) -> Tensor<f64> {
        let view = self
            .st
            .tensor(key)
            .unwrap_or_else(|_| panic!("{}: no `{key}`", self.name));
        decode(&view).unwrap()
    }
    fn idx(&self, key: &str) -> Vec<usize> {
        decode_indices(&self.st.tensor(key).unwrap())
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
    /// `value` (a scalar) equals the file's `key` within 1e-9 relative.
    #[track_caller]
    fn assert_value(&self, key: &str, value: Var<'_, f64>) {
        let (got, want) = (value.value().item(), self.f64(key).item());
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{}: {key} {got} vs RecBole {want}",
            self.name
        );
    }

    /// The gradient of `loss` with respect to every parameter of `store` (bound as `p`)
    /// equals the file's `grad.<name>`.
    #[track_caller]
    fn assert_gradients(&self, store: &ParamStore<f64>, p: &Bound<'_, f64>, loss: Var<'_, f64>) {
        let grads = loss.backward();
        for (id, param) in store.iter() {
            let got = grads
                .get(p.get(id))
                .expect("every parameter has a gradient");
            let name = &param.name;
            assert_close(
                &format!("{}: grad {name}", self.name),
                got,
                &self.f64(&format!("grad.{name}")),
            );
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
fn gru4rec_matches_recbole() {
    let golden = Golden::load("gru4rec");
    let mut store = ParamStore::<f64>::new();
    let g = store.group("gru4rec");
    let model = Gru4Rec::new(&mut store, g, 8, (8, 6), &mut ChaCha8Rng::seed_from_u64(0));
    golden.load_params(&mut store);
    let batch = golden.sequences();
    let targets = golden.idx("input.pos_items");

    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let scores = model.scores(&p, model.forward(&p, &batch, &mut Dropouts::off()));
    let loss = scores.cross_entropy(&targets);

    golden.assert_value("loss", loss);
    assert_close("scores", &scores.value(), &golden.f64("scores"));
    golden.assert_gradients(&store, &p, loss);
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
    let s = caser.forward(&p, &windows, &users, &mut Dropouts::off());
    let scores = s.matmul_t(p.get(caser.item_embedding), false, true);
    let ce = scores.cross_entropy(&targets);
    let reg = caser.regulariser(&p, 1e-4);
    let loss = ce.add(reg);

    for (key, value) in [("loss.ce", ce), ("loss.reg", reg), ("loss", loss)] {
        golden.assert_value(key, value);
    }
    assert_close("scores", &scores.value(), &golden.f64("scores"));
    golden.assert_gradients(&store, &p, loss);
}

/// BERT4Rec (RecBole, CE): a hand-masked batch through the bidirectional stack, the head
/// read at the masked positions, cross-entropy over the padding and real items (not the
/// mask token) plus the output bias, averaged over the masked positions. The scores are
/// those of RecBole's `full_sort_predict`, whose input sequence it rebuilds (the stored
/// `derived.full_sort_item_seq`: the mask token appended, the first column dropped).
/// The tiny transformer of the BERT4Rec and S3-Rec golden files: 7 items and padding, a
/// mask-token row, width 8, 2 layers of 2 heads, inner 12, no dropout.
fn tiny_transformer() -> SasRecConfig {
    SasRecConfig {
        item_rows: 9,
        n_classes: 8,
        max_len: 5,
        hidden: 8,
        inner: 12,
        layers: 2,
        heads: 2,
        hidden_dropout: 0.0,
        attn_dropout: 0.0,
        layer_norm_eps: 1e-12,
        init_std: 0.02,
    }
}

#[test]
fn bert4rec_matches_recbole() {
    let golden = Golden::load("bert4rec");
    let mut store = ParamStore::<f64>::new();
    let g = store.group("bert4rec");
    let config = tiny_transformer();
    let model = Bert4Rec::new(&mut store, g, config, &mut ChaCha8Rng::seed_from_u64(0));
    golden.load_params(&mut store);
    assert_eq!(model.encoder.mask_token(), 8);
    let lens = golden.idx("input.item_seq_len");
    let masked = SeqBatch::from_padded(&golden.idx("input.masked_item_seq"), 5, &lens);
    // The masked positions RecBole counts (`masked_index > 0`), as packed rows.
    let (index, items) = (
        golden.idx("input.masked_index"),
        golden.idx("input.masked_pos_items"),
    );
    let width = index.len() / lens.len();
    let (mut rows, mut targets) = (Vec::new(), Vec::new());
    for (k, (&at, &item)) in index.iter().zip(&items).enumerate() {
        if at > 0 {
            rows.push(masked.layout.range(k / width).start + at);
            targets.push(item);
        }
    }
    assert_eq!(rows.len(), 5);

    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let o = model.forward(&p, &masked, &rows, &mut Dropouts::off());
    let loss = model.scores(&p, o).cross_entropy(&targets);
    golden.assert_value("loss", loss);
    golden.assert_gradients(&store, &p, loss);

    let rebuilt = SeqBatch::from_padded(&golden.idx("derived.full_sort_item_seq"), 5, &lens);
    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[]);
    let last = rebuilt.layout.last_rows();
    let scores = model.scores(&p, model.forward(&p, &rebuilt, &last, &mut Dropouts::off()));
    assert_close("scores", &scores.value(), &golden.f64("scores"));
}

/// S3-Rec's MIP pre-training loss (RecBole's `pretrain` with the other three tasks weighted
/// 0): the left-padded masked batch (packed here, each item at its padded position, as
/// RecBole's position ids count the padding), the bidirectional stack, `mip_norm`, and the
/// summed BCE of sigmoid differences. The scores are the fine-tuned model's: the same
/// weights, causal, on the right-padded sequences.
#[test]
fn s3rec_mip_matches_recbole() {
    let golden = Golden::load("s3rec-mip");
    let mut store = ParamStore::<f64>::new();
    let g = store.group("s3rec");
    let mut model = S3RecMip::new(
        &mut store,
        g,
        tiny_transformer(),
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    golden.load_params(&mut store);
    let width = 5;
    let (masked, pos, neg) = (
        golden.idx("input.masked_item_seq"),
        golden.idx("input.mip_pos_items"),
        golden.idx("input.mip_neg_items"),
    );
    let rows_of = |b: usize| &masked[b * width..(b + 1) * width];
    let starts: Vec<usize> = (0..masked.len() / width)
        .map(|b| rows_of(b).iter().position(|&i| i != 0).unwrap_or(width))
        .collect();
    let seqs: Vec<&[usize]> = starts
        .iter()
        .enumerate()
        .map(|(b, &s)| &rows_of(b)[s..])
        .collect();
    let mut batch = SeqBatch::new(&seqs);
    batch.positions = starts.iter().flat_map(|&s| s..width).collect();
    let (mut rows, mut pos_items, mut neg_items) = (Vec::new(), Vec::new(), Vec::new());
    for (b, &s) in starts.iter().enumerate() {
        for j in s..width {
            if masked[b * width + j] == model.encoder.mask_token() {
                rows.push(batch.layout.range(b).start + j - s);
                pos_items.push(pos[b * width + j]);
                neg_items.push(neg[b * width + j]);
            }
        }
    }
    assert_eq!(rows.len(), 5);

    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let loss = model.mip_loss(
        &p,
        &batch,
        &rows,
        (&pos_items, &neg_items),
        &mut Dropouts::off(),
    );
    golden.assert_value("loss", loss);
    golden.assert_gradients(&store, &p, loss);

    model.encoder.set_causal(true);
    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[]);
    let h = model
        .encoder
        .forward(&p, &golden.sequences(), &mut Dropouts::off());
    let scores = h.matmul_t(model.encoder.class_embeddings(&p), false, true);
    assert_close("scores", &scores.value(), &golden.f64("scores"));
}

/// BPR-MF (RecBole): the user's row against the positive's and the negative's, the BPR loss
/// with RecBole's `1e-10` inside the logarithm, and every item's score for each user.
#[test]
fn bpr_matches_recbole() {
    let golden = Golden::load("bpr");
    let mut store = ParamStore::<f64>::new();
    let g = store.group("bpr");
    let bpr = Bpr::new(&mut store, g, (5, 8), 8, &mut ChaCha8Rng::seed_from_u64(0));
    golden.load_params(&mut store);
    let users = golden.idx("input.user_id");
    let (pos, neg) = (golden.idx("input.pos_items"), golden.idx("input.neg_items"));
    let tape = Tape::new();
    let p = Bound::new(&tape, &store, &[g]);
    let loss = bpr.loss(&p, &users, (&pos, &neg));
    golden.assert_value("loss", loss);
    assert_close(
        "scores",
        &bpr.scores(&p, &users).value(),
        &golden.f64("scores"),
    );
    golden.assert_gradients(&store, &p, loss);
}

/// DuoRec against its official code (`scripts/golden/duorec_golden.py`, the authors'
/// `duorec.py` with contrast `us_x`): this project's [`DuoRecModel::losses`], the function
/// its training step calls, on the golden batch and each row's same-target partner, and the
/// step's `rec + lambda cl` with the file's `lmd_sem` 0.3. Without dropout the second pass
/// equals the first, as in the file.
#[test]
fn duorec_matches_the_official_code() {
    let golden = Golden::load("duorec");
    let config = SasRecConfig {
        item_rows: 8,
        n_classes: 8,
        ..tiny_transformer()
    };
    let settings = DuoRecSettings {
        lambda: 0.3,
        loss: LossKind::Ce,
    };
    let mut model = DuoRecModel::<f64>::new(config, &settings, &mut ChaCha8Rng::seed_from_u64(0));
    golden.load_params(&mut model.store);
    let seqs = golden.sequences();
    let lens = golden.idx("input.sem_aug_lengths");
    let partners = SeqBatch::from_padded(&golden.idx("input.sem_aug"), 5, &lens);
    let targets = golden.idx("input.pos_items");
    let g = model.groups()[0].id;
    let tape = Tape::new();
    let p = Bound::new(&tape, &model.store, &[g]);
    let (rec, cl) = DuoRecModel::losses(
        &model.encoder,
        LossKind::Ce,
        &p,
        (&seqs, &partners),
        (&targets, None),
        &mut Dropouts::off(),
    );
    golden.assert_value("loss.rec", rec);
    golden.assert_value("loss.cl", cl);
    let loss = settings.loss(rec, cl);
    golden.assert_value("loss", loss);
    golden.assert_gradients(&model.store, &p, loss);

    let tape = Tape::new();
    let p = Bound::new(&tape, &model.store, &[]);
    let h = model.encoder.forward(&p, &seqs, &mut Dropouts::off());
    let scores = h.matmul_t(model.encoder.class_embeddings(&p), false, true);
    assert_close("scores", &scores.value(), &golden.f64("scores"));
}
