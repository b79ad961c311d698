//! The fused CPU kernels equal their plain definitions in [`mclrec_tensor::composed`] (the
//! `FusedBackend` defaults a core-only backend runs), in f64, on random inputs and the
//! edge cases each kernel special-cases.

use mclrec_tensor::attention::{AttentionSpec, QueryRows, SeqLayout};
use mclrec_tensor::composed;
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::{AdamParams, ChaCha8Rng, Tensor};
use rand::{Rng, SeedableRng};

fn rand_t(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor::uniform(shape, -2.0, 2.0, &mut rng)
}

/// `a` and `b` have the same shape and agree to `tol`, relative to `max(1, |b|)`.
#[track_caller]
fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let (a, b) = (a.to_f64s(), b.to_f64s());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}[{i}]: kernel {x}, composed {y}"
        );
    }
}

#[test]
fn softmax_and_log_softmax() {
    for (shape, seed) in [(vec![3, 7], 1), (vec![2, 3, 40], 2), (vec![5, 1], 3)] {
        let x = rand_t(&shape, seed).mul_scalar(8.0);
        assert_close(
            &x.softmax(),
            &composed::softmax(&x, false),
            1e-14,
            "softmax",
        );
        assert_close(
            &x.log_softmax(),
            &composed::softmax(&x, true),
            1e-13,
            "log_softmax",
        );
    }
}

#[test]
fn cross_entropy_and_its_gradient() {
    let x = rand_t(&[6, 11], 4).mul_scalar(5.0);
    let targets = [0, 10, 3, 3, 7, 1];
    let (loss, grad) = x.cross_entropy(&targets);
    let (want, want_grad) = composed::cross_entropy(&x, &targets);
    assert!((loss - want).abs() < 1e-13, "{loss} vs {want}");
    assert_close(&grad, &want_grad, 1e-14, "cross-entropy gradient");
}

#[test]
fn layer_norm_forward_and_backward() {
    // 300 rows: more than one of the CPU's fixed row chunks for dgamma / dbeta.
    let x = rand_t(&[3, 100, 24], 5);
    let (gamma, beta) = (rand_t(&[24], 6), rand_t(&[24], 7));
    let (y, mean, rstd) = x.layer_norm(&gamma, &beta, 1e-12);
    let (wy, wmean, wrstd) = composed::layer_norm(&x, &gamma, &beta, 1e-12);
    assert_close(&y, &wy, 1e-13, "y");
    assert_close(&mean, &wmean, 1e-14, "mean");
    assert_close(&rstd, &wrstd, 1e-13, "rstd");
    let g = rand_t(&[3, 100, 24], 8);
    let (dx, dg, db) = x.layer_norm_backward(&gamma, &mean, &rstd, &g);
    let (wdx, wdg, wdb) = composed::layer_norm_backward(&x, &gamma, &mean, &rstd, &g);
    assert_close(&dx, &wdx, 1e-12, "dx");
    assert_close(&dg, &wdg, 1e-12, "dgamma");
    assert_close(&db, &wdb, 1e-12, "dbeta");
}

/// Sequences of lengths 1, 4 and 6; row 2 (sequence 1's first key) and all of sequence 2's
/// first two keys are padding, so sequence 2's first two queries see only blocked keys.
fn layout() -> SeqLayout {
    let mut blocked = vec![false; 11];
    blocked[1] = true;
    blocked[5] = true;
    blocked[6] = true;
    SeqLayout::new(vec![0, 1, 5, 11], blocked)
}

#[test]
fn attention_forward_and_backward() {
    let layout = layout();
    let d = 8;
    for (queries, causal) in [
        (QueryRows::All, true),
        (QueryRows::Last, true),
        (QueryRows::All, false),
        (QueryRows::Last, false),
    ] {
        for heads in [1, 2] {
            for dropout in [None, Some(DropoutMask::new(0.3, 99))] {
                let spec = AttentionSpec {
                    layout: &layout,
                    queries,
                    heads,
                    dropout,
                    causal,
                };
                let what = format!(
                    "{queries:?}, causal {causal}, {heads} heads, dropout {}",
                    dropout.is_some()
                );
                let q = rand_t(&[layout.query_rows(queries), d], 10);
                let kv = rand_t(&[layout.rows(), 2 * d], 11);
                let (ctx, probs) = q.attention(&kv, &spec);
                let (wctx, wprobs) = composed::attention(&q, &kv, &spec);
                assert_close(&ctx, &wctx, 1e-13, &format!("context ({what})"));
                assert_close(&probs, &wprobs, 1e-13, &format!("probabilities ({what})"));
                let g = rand_t(ctx.shape(), 12);
                let (dq, dkv) = g.attention_backward(&q, &kv, &probs, &spec);
                let (wdq, wdkv) = composed::attention_backward(&g, &q, &kv, &probs, &spec);
                assert_close(&dq, &wdq, 1e-12, &format!("dq ({what})"));
                assert_close(&dkv, &wdkv, 1e-12, &format!("dkv ({what})"));
            }
        }
    }
}

#[test]
fn contrastive_pair_terms_and_gradients() {
    for (n, seed) in [(2, 20), (5, 21), (16, 22)] {
        let s = rand_t(&[2 * n, 2 * n], seed).mul_scalar(3.0);
        check_pair(&s, &format!("n = {n}"));
    }
    // Ties: a row whose negatives are equal (the first is the hardest), and a positive
    // equal to its hardest negative (no gap, relu'(0) = 0).
    let mut v = rand_t(&[6, 6], 23).to_f64s();
    for c in [1, 2, 4, 5] {
        v[c] = 0.5;
    }
    v[6 + 4] = 1.25;
    v[6 + 2] = 1.25;
    check_pair(&Tensor::from_vec(v, &[6, 6]), "ties");
}

fn check_pair(s: &Tensor<f64>, what: &str) {
    let (v, dn, dr) = s.contrastive_pair();
    let (wv, wdn, wdr) = composed::contrastive_pair(s);
    assert_close(&v, &wv, 1e-13, &format!("terms ({what})"));
    assert_close(&dn, &wdn, 1e-14, &format!("d InfoNCE ({what})"));
    assert_close(&dr, &wdr, 1e-14, &format!("d regulariser ({what})"));
}

#[test]
fn dropout_rows_topk_and_counts() {
    let x = rand_t(&[37, 50], 30);
    let mask = DropoutMask::new(0.25, 7);
    assert_close(
        &x.dropout(&mask),
        &composed::dropout(&x, &mask),
        0.0,
        "dropout",
    );

    let idx = [4, 0, 4, 2, 9];
    let src = rand_t(&[5, 50], 31);
    assert_close(
        &src.scatter_add_rows(&idx, 10),
        &composed::scatter_add_rows(&src, &idx, 10),
        1e-15,
        "scatter_add_rows",
    );

    // Values on a coarse grid, so rows have ties.
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    let v: Vec<f64> = (0..7 * 30).map(|_| rng.gen_range(0..8) as f64).collect();
    let x = Tensor::from_vec(v, &[7, 30]);
    for k in [1, 5, 30] {
        let (vals, cols) = x.topk_rows(k);
        let (wvals, wcols) = composed::topk_rows(&x, k);
        assert_close(&vals, &wvals, 0.0, "top-k values");
        assert_eq!(cols, wcols, "top-k columns, k = {k}");
    }
    let cols = [0, 29, 3, 3, 10, 11, 12];
    assert_eq!(x.count_greater(&cols), composed::count_greater(&x, &cols));
}

#[test]
fn adam_step() {
    let h = AdamParams {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        step: 3,
    };
    let (mut p, g) = (rand_t(&[1000], 40), rand_t(&[1000], 41));
    let (mut m, mut v) = (rand_t(&[1000], 42), rand_t(&[1000], 43).square());
    let (mut wp, mut wm, mut wv) = (p.clone(), m.clone(), v.clone());
    p.adam_step(&g, &mut m, &mut v, &h);
    composed::adam_step(&mut wp, &g, &mut wm, &mut wv, &h);
    assert_close(&p, &wp, 1e-15, "p");
    assert_close(&m, &wm, 1e-15, "m");
    assert_close(&v, &wv, 1e-15, "v");
}

#[test]
fn conv_max_pool_forward_and_backward() {
    // Heights 1, the whole window, and between; more sequences than one parallel block;
    // integer inputs too, so that windows tie and the first must win in both.
    for (b, l, d, n, h, seed) in [
        (3, 5, 4, 2, 1, 30),
        (2, 5, 4, 3, 5, 31),
        (40, 7, 8, 5, 3, 32),
        (300, 6, 16, 4, 2, 33),
    ] {
        for ties in [false, true] {
            let round = |t: Tensor<f64>| {
                if ties {
                    Tensor::from_vec(t.to_f64s().iter().map(|v| v.round()).collect(), t.shape())
                } else {
                    t
                }
            };
            let x = round(rand_t(&[b, l, d], seed));
            let w = round(rand_t(&[n, h, d], seed + 100));
            let bias = rand_t(&[n], seed + 200);
            let (out, at) = x.conv_max_pool(&w, &bias);
            let (want, want_at) = composed::conv_max_pool(&x, &w, &bias);
            assert_close(&out, &want, 1e-13, "conv_max_pool");
            assert_eq!(at, want_at, "conv_max_pool windows");
            let g = rand_t(&[b, n], seed + 300);
            let (dx, dw, db) = x.conv_max_pool_backward(&w, &at, &g);
            let (wdx, wdw, wdb) = composed::conv_max_pool_backward(&x, &w, &at, &g);
            assert_close(&dx, &wdx, 1e-13, "conv_max_pool dx");
            assert_close(&dw, &wdw, 1e-13, "conv_max_pool dw");
            assert_close(&db, &wdb, 1e-13, "conv_max_pool dbias");
        }
    }
}

#[test]
fn gru_recurrence_forward_and_backward() {
    use mclrec_tensor::attention::SeqLayout;
    // Lengths in every order (ties included), and enough rows for the CPU to cut the
    // sequences into several parallel blocks.
    let many: Vec<usize> = (0..120).map(|i| 1 + (i * 7) % 9).collect();
    for (lens, h, bias, seed) in [
        (vec![3, 1, 2], 2, true, 40),
        (vec![1], 3, false, 41),
        (vec![2, 2, 4, 1, 4], 4, true, 42),
        (many, 16, false, 43),
    ] {
        let mut offsets = vec![0];
        for l in &lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let rows = *offsets.last().unwrap();
        let layout = SeqLayout::new(offsets, vec![false; rows]);
        let gi = rand_t(&[rows, 3 * h], seed);
        let w = rand_t(&[3 * h, h], seed + 100).mul_scalar(0.5);
        let b = bias.then(|| rand_t(&[3 * h], seed + 200));
        let (states, saved) = gi.gru_recurrence(&w, b.as_ref(), &layout);
        let (want_states, want_saved) = composed::gru_recurrence(&gi, &w, b.as_ref(), &layout);
        assert_close(&states, &want_states, 1e-13, "gru states");
        assert_close(&saved, &want_saved, 1e-13, "gru saved");
        let g = rand_t(&[rows, h], seed + 300);
        let (dgi, dgh) = g.gru_recurrence_backward(&w, &states, &saved, &layout);
        let (want_dgi, want_dgh) =
            composed::gru_recurrence_backward(&g, &w, &states, &saved, &layout);
        assert_close(&dgi, &want_dgi, 1e-12, "gru dgi");
        assert_close(&dgh, &want_dgh, 1e-12, "gru dgh");
    }
}

#[test]
fn add_rows_in_place_is_the_bits_of_adding_a_scatter() {
    // f32, where the order of additions shows: repeated rows, rows looked up once, and rows
    // not looked up (which must keep their value, not become value + 0).
    let mut rng = ChaCha8Rng::seed_from_u64(50);
    let dst = Tensor::<f32>::uniform(&[9, 5], -3.0, 3.0, &mut rng);
    let src = Tensor::<f32>::uniform(&[12, 5], -1.0, 1.0, &mut rng);
    let idx = [3, 0, 3, 8, 3, 1, 0, 7, 7, 3, 2, 8];
    let want = dst.add(&composed::scatter_add_rows(&src, &idx, 9));
    let mut got = dst.clone();
    got.add_rows(&src, &idx);
    assert_eq!(got.to_vec(), want.to_vec());
    // The tensor it was cloned from is unchanged (copy on write).
    assert_eq!(
        dst.to_vec(),
        Tensor::<f32>::uniform(&[9, 5], -3.0, 3.0, &mut ChaCha8Rng::seed_from_u64(50)).to_vec()
    );
}
