//! CUDA against CPU: every backend method on random inputs, the CUDA result within 1e-5
//! relative (to the largest magnitude of the CPU result) in f32, gradients (the backward
//! methods) included.
//!
//! Each test first asks for `cuda:0`; where there is none (no `cuda` build, no driver, no
//! GPU) it prints `skipped: no GPU (<reason>)` and passes, so the file runs everywhere and
//! checks something only on a GPU machine (`scripts/gpu-check.sh`).
#![cfg(feature = "cuda")]

use mclrec_tensor::attention::{AttentionSpec, QueryRows, SeqLayout};
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::{AdamParams, ChaCha8Rng, Device, DeviceError, ReduceOp, Tensor, UnaryOp};
use rand::{Rng, SeedableRng};

/// The relative tolerance the issue asks for in f32.
const REL: f64 = 1e-5;

/// `cuda:0`, or `None` after printing why the test is skipped.
fn gpu(test: &str) -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("{test}: skipped: no GPU ({e})");
            None
        }
    }
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn randn(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::normal(shape, 0.0, 1.0, &mut rng(seed))
}

fn dev(x: &Tensor<f32>, d: Device) -> Tensor<f32> {
    x.to_device(d).expect("upload")
}

/// CUDA `got` equals CPU `want` within REL of the largest CPU magnitude.
fn close(what: &str, got: &Tensor<f32>, want: &Tensor<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    assert!(
        matches!(got.device(), Device::Cuda(_)),
        "{what}: result left the GPU"
    );
    let (g, w) = (got.to_f64s(), want.to_f64s());
    let scale = w.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let err = (a - b).abs() / scale;
        assert!(
            err <= REL || (a.is_nan() && b.is_nan()),
            "{what}: element {i}: cuda {a} vs cpu {b} (relative {err:.2e})"
        );
    }
}

#[test]
fn probe_is_an_error_not_a_panic() {
    // On a machine without a GPU this is the test that matters: it must return.
    match Device::cuda(0) {
        Ok(d) => assert_eq!(d, Device::Cuda(0)),
        Err(e) => {
            assert!(
                matches!(e, DeviceError::NoDriver(_) | DeviceError::NoGpu(0)),
                "{e:?}"
            );
            println!("probe: skipped: no GPU ({e})");
        }
    }
    let msg = Device::parse("cuda:7").err().unwrap_or_default();
    println!("probe: Device::parse(\"cuda:7\") -> {msg:?}");
}

#[test]
fn kernels_compile_with_nvrtc_when_it_is_installed() {
    // NVRTC needs no GPU: where libnvrtc can be loaded, the kernel source is compiled for
    // the oldest and the newest architecture the project targets (sm_75 is the oldest that
    // NVRTC 13 still accepts; it dropped sm_70).
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        println!("nvrtc: skipped: libnvrtc not found (set LD_LIBRARY_PATH to test the kernels)");
        return;
    }
    for arch in ["compute_75", "compute_90"] {
        let opts = cudarc::nvrtc::CompileOptions {
            options: vec![format!("--gpu-architecture={arch}")],
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(mclrec_tensor::cuda::KERNELS, opts);
        let ptx = ptx.unwrap_or_else(|e| panic!("kernels.cu does not compile for {arch}: {e:?}"));
        let src = ptx.to_src();
        let target = format!(".target {}", arch.replace("compute", "sm"));
        assert!(src.contains(&target), "PTX not built for {arch}");
        for k in [
            "unary_exp_f32",
            "adam_f64",
            "topk_rows_f32",
            "count_greater_f32",
            "index_add_f64",
            "attention_fwd_f32",
            "attention_bwd_f64",
            "contrastive_rows_f32",
            "conv_max_pool_dw_f64",
            "gru_bwd_gates_f32",
        ] {
            assert!(src.contains(k), "{arch}: {k} missing from the PTX");
        }
        println!(
            "nvrtc: kernels.cu compiles for {arch} ({} bytes of PTX)",
            src.len()
        );
    }
}

#[test]
fn upload_and_download_round_trip() {
    let Some(d) = gpu("round_trip") else { return };
    let x = randn(&[7, 5], 1);
    let y = dev(&x, d);
    assert_eq!(y.device(), d);
    assert_eq!(y.to_vec(), x.to_vec());
    assert_eq!(y.to_device(Device::Cpu).unwrap().to_vec(), x.to_vec());
    let empty = dev(&Tensor::zeros(&[0, 3]), d);
    assert!(empty.to_vec().is_empty());
    let z = y.zeros_like();
    assert_eq!((z.device(), z.to_vec()), (d, vec![0.0; 35]));
    let f = y.full_like(&[3], -1.5);
    assert_eq!((f.device(), f.to_vec()), (d, vec![-1.5; 3]));
}

#[test]
fn as_slice_on_a_cuda_tensor_panics_clearly() {
    let Some(d) = gpu("as_slice") else { return };
    let x = dev(&randn(&[2, 2], 2), d);
    let err = std::panic::catch_unwind(|| x.as_slice().len()).expect_err("as_slice must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("host slices exist only for CPU tensors"),
        "{msg}"
    );
}

#[test]
fn unary_ops() {
    let Some(d) = gpu("unary") else { return };
    let x = randn(&[33, 129], 3);
    let pos = x.unary(UnaryOp::Abs).add_scalar(0.1);
    let ops: Vec<(UnaryOp<f32>, &Tensor<f32>)> = vec![
        (UnaryOp::Neg, &x),
        (UnaryOp::Exp, &x),
        (UnaryOp::Ln, &pos),
        (UnaryOp::Sqrt, &pos),
        (UnaryOp::Tanh, &x),
        (UnaryOp::Erf, &x),
        (UnaryOp::Sigmoid, &x),
        (UnaryOp::Gelu, &x),
        (UnaryOp::Relu, &x),
        (UnaryOp::Recip, &pos),
        (UnaryOp::Square, &x),
        (UnaryOp::Abs, &x),
        (UnaryOp::AddScalar(0.5), &x),
        (UnaryOp::MulScalar(-1.5), &x),
        (UnaryOp::ClampMin(0.2), &x),
        (UnaryOp::ClampMax(-0.2), &x),
        (UnaryOp::GtScalar(0.3), &x),
        (UnaryOp::Powf(1.7), &pos),
    ];
    let gy = randn(&[33, 129], 4);
    for (op, input) in ops {
        close(
            &format!("{op:?}"),
            &dev(input, d).unary(op),
            &input.unary(op),
        );
        let y = input.unary(op);
        close(
            &format!("{op:?} backward"),
            &dev(input, d).unary_backward(op, &dev(&y, d), &dev(&gy, d)),
            &input.unary_backward(op, &y, &gy),
        );
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let Some(dv) = gpu("binary") else { return };
    let cases: [(&[usize], &[usize]); 5] = [
        (&[17, 65], &[17, 65]),
        (&[17, 65], &[65]),
        (&[17, 65], &[]),
        (&[3, 1, 5], &[4, 1]),
        (&[1, 6], &[5, 1]),
    ];
    for (i, (sa, sb)) in cases.iter().enumerate() {
        let a = randn(sa, 10 + i as u64);
        let b = randn(sb, 20 + i as u64).unary(UnaryOp::Abs).add_scalar(0.5);
        let (ga, gb) = (dev(&a, dv), dev(&b, dv));
        close("add", &ga.add(&gb), &a.add(&b));
        close("sub", &gb.sub(&ga), &b.sub(&a));
        close("mul", &ga.mul(&gb), &a.mul(&b));
        close("div", &ga.div(&gb), &a.div(&b));
        close("max", &ga.maximum(&gb), &a.maximum(&b));
        close("min", &ga.minimum(&gb), &a.minimum(&b));
    }
}

#[test]
fn matmul_all_transposes_batches_and_model_shapes() {
    let Some(d) = gpu("matmul") else { return };
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (m, k, n) = (13, 29, 7);
        let a = randn(&if ta { [k, m] } else { [m, k] }, 30);
        let b = randn(&if tb { [n, k] } else { [k, n] }, 31);
        let what = format!("matmul ta={ta} tb={tb}");
        close(
            &what,
            &dev(&a, d).matmul_t(&dev(&b, d), ta, tb),
            &a.matmul_t(&b, ta, tb),
        );
        // Batched A against a shared 2-d B, and against a batch of B.
        let ab = randn(&if ta { [3, k, m] } else { [3, m, k] }, 32);
        let bb = randn(&if tb { [3, n, k] } else { [3, k, n] }, 33);
        close(
            &what,
            &dev(&ab, d).matmul_t(&dev(&b, d), ta, tb),
            &ab.matmul_t(&b, ta, tb),
        );
        close(
            &what,
            &dev(&ab, d).matmul_t(&dev(&bb, d), ta, tb),
            &ab.matmul_t(&bb, ta, tb),
        );
    }
    // The model's shapes: a linear layer over a packed batch, and the item scores.
    let (x, w) = (randn(&[12800, 64], 34), randn(&[64, 64], 35));
    close("linear", &dev(&x, d).matmul(&dev(&w, d)), &x.matmul(&w));
    let (h, items) = (randn(&[256, 64], 36), randn(&[12101, 64], 37));
    close(
        "scores",
        &dev(&h, d).matmul_t(&dev(&items, d), false, true),
        &h.matmul_t(&items, false, true),
    );
}

#[test]
fn reductions_with_and_without_indices() {
    let Some(d) = gpu("reduce") else { return };
    let x = randn(&[6, 37, 11], 40);
    let g = dev(&x, d);
    for axis in 0..3 {
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            close(
                &format!("{op:?} axis {axis}"),
                &g.reduce(op, axis),
                &x.reduce(op, axis),
            );
        }
        let ((gv, gi), (cv, ci)) = (g.max_axis(axis), x.max_axis(axis));
        close("max_axis", &gv, &cv);
        assert_eq!(gi, ci, "max_axis {axis} indices");
        let ((gv, gi), (cv, ci)) = (g.min_axis(axis), x.min_axis(axis));
        close("min_axis", &gv, &cv);
        assert_eq!(gi, ci, "min_axis {axis} indices");
    }
}

#[test]
fn long_axis_reductions_take_the_two_pass_path() {
    // Few outputs over a long axis (a bias gradient) go through chunked partial sums.
    let Some(d) = gpu("reduce_long") else { return };
    for (shape, axis) in [(vec![12800, 64], 0), (vec![2, 3001, 3], 1), (vec![5000], 0)] {
        let x = randn(&shape, 41);
        let g = dev(&x, d);
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            close(
                &format!("{op:?} {shape:?}"),
                &g.reduce(op, axis),
                &x.reduce(op, axis),
            );
        }
    }
    // The layer-norm parameter gradients over the model's 12,800 rows.
    let (x, gy) = (randn(&[12800, 64], 42), randn(&[12800, 64], 43));
    let (gamma, beta) = (randn(&[64], 44), randn(&[64], 45));
    let (_, mu, rs) = x.layer_norm(&gamma, &beta, 1e-12);
    let (_, dgamma, dbeta) = x.layer_norm_backward(&gamma, &mu, &rs, &gy);
    let (_, dgd, dbd) =
        dev(&x, d).layer_norm_backward(&dev(&gamma, d), &dev(&mu, d), &dev(&rs, d), &dev(&gy, d));
    close("dgamma 12800 rows", &dgd, &dgamma);
    close("dbeta 12800 rows", &dbd, &dbeta);
}

#[test]
fn softmax_log_softmax_and_layer_norm_with_gradients() {
    let Some(d) = gpu("normalise") else { return };
    let x = randn(&[70, 300], 50).mul_scalar(3.0);
    let g = dev(&x, d);
    close("softmax", &g.softmax(), &x.softmax());
    close("log_softmax", &g.log_softmax(), &x.log_softmax());
    let x = randn(&[200, 64], 51);
    let gamma = randn(&[64], 52);
    let beta = randn(&[64], 53);
    let gy = randn(&[200, 64], 54);
    let (y, mu, rs) = x.layer_norm(&gamma, &beta, 1e-12);
    let (gx, gg, gb) = (dev(&x, d), dev(&gamma, d), dev(&beta, d));
    let (yd, mud, rsd) = gx.layer_norm(&gg, &gb, 1e-12);
    close("layer_norm y", &yd, &y);
    close("layer_norm mean", &mud, &mu);
    close("layer_norm rstd", &rsd, &rs);
    let (dx, dgamma, dbeta) = x.layer_norm_backward(&gamma, &mu, &rs, &gy);
    let (dxd, dgd, dbd) = gx.layer_norm_backward(&gg, &mud, &rsd, &dev(&gy, d));
    close("layer_norm dx", &dxd, &dx);
    close("layer_norm dgamma", &dgd, &dgamma);
    close("layer_norm dbeta", &dbd, &dbeta);
}

#[test]
fn cross_entropy_and_its_gradient() {
    let Some(d) = gpu("cross_entropy") else {
        return;
    };
    let x = randn(&[256, 12101], 55).mul_scalar(2.0);
    let targets: Vec<usize> = (0..256).map(|i| (i * 7919) % 12101).collect();
    let (loss, grad) = x.cross_entropy(&targets);
    let (loss_d, grad_d) = dev(&x, d).cross_entropy(&targets);
    assert!(
        (loss_d - loss).abs() <= 1e-5 * loss.abs(),
        "loss {loss_d} vs {loss}"
    );
    close("cross_entropy grad", &grad_d, &grad);
}

#[test]
fn dropout_keeps_exactly_the_cpu_elements() {
    let Some(d) = gpu("dropout") else { return };
    let x = randn(&[100, 333], 60).unary(UnaryOp::Abs).add_scalar(1.0);
    for (p, seed) in [(0.1, 1u64), (0.5, 0xdead_beef_0123_4567)] {
        let mask = DropoutMask::new(p, seed);
        let (got, want) = (
            dev(&x, d).dropout(&mask).to_vec(),
            x.dropout(&mask).to_vec(),
        );
        assert_eq!(got.len(), want.len(), "dropout: lengths");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                *a == 0.0,
                *b == 0.0,
                "p {p}: element {i} kept on one device only"
            );
        }
        close("dropout", &dev(&x, d).dropout(&mask), &x.dropout(&mask));
    }
}

#[test]
fn gathers_scatters_and_layout_copies() {
    let Some(d) = gpu("indexing") else { return };
    let mut r = rng(70);
    let table = randn(&[50, 16], 71);
    let idx: Vec<usize> = (0..200).map(|_| r.gen_range(0..50)).collect();
    let gt = dev(&table, d);
    close(
        "gather_rows",
        &gt.gather_rows(&idx),
        &table.gather_rows(&idx),
    );
    let src = randn(&[200, 16], 72);
    close(
        "scatter_add_rows",
        &dev(&src, d).scatter_add_rows(&idx, 50),
        &src.scatter_add_rows(&idx, 50),
    );
    let x = randn(&[4, 9, 5], 73);
    let gidx: Vec<usize> = (0..4 * 3 * 5).map(|_| r.gen_range(0..9)).collect();
    close(
        "gather",
        &dev(&x, d).gather(1, &gidx, &[4, 3, 5]),
        &x.gather(1, &gidx, &[4, 3, 5]),
    );
    let s = randn(&[4, 3, 5], 74);
    close(
        "scatter_add",
        &dev(&s, d).scatter_add(1, &gidx, &[4, 9, 5]),
        &s.scatter_add(1, &gidx, &[4, 9, 5]),
    );
    let sel = [8, 0, 3, 3];
    close(
        "index_select",
        &dev(&x, d).index_select(1, &sel),
        &x.index_select(1, &sel),
    );
    let b = randn(&[3, 1, 5], 75);
    close(
        "broadcast_to",
        &dev(&b, d).broadcast_to(&[2, 3, 4, 5]),
        &b.broadcast_to(&[2, 3, 4, 5]),
    );
    close(
        "permute",
        &dev(&x, d).permute(&[2, 0, 1]),
        &x.permute(&[2, 0, 1]),
    );
    close("narrow", &dev(&x, d).narrow(1, 2, 4), &x.narrow(1, 2, 4));
    let y = randn(&[4, 2, 5], 76);
    close(
        "concat",
        &Tensor::concat(&[&dev(&x, d), &dev(&y, d)], 1),
        &Tensor::concat(&[&x, &y], 1),
    );
    let mask = Tensor::<f32>::bernoulli(&[4, 1, 5], 0.5, &mut r);
    close(
        "masked_fill",
        &dev(&x, d).masked_fill(&dev(&mask, d), -1e4),
        &x.masked_fill(&mask, -1e4),
    );
}

#[test]
fn top_k_per_row_matches_with_ties() {
    let Some(d) = gpu("topk") else { return };
    let mut x = randn(&[37, 1000], 80);
    // Ties: the lower index must come first, as on the CPU.
    x.as_mut_slice()[5] = 9.0;
    x.as_mut_slice()[17] = 9.0;
    let ((gv, gi), (cv, ci)) = (dev(&x, d).topk_rows(20), x.topk_rows(20));
    close("topk values", &gv, &cv);
    assert_eq!(gi, ci, "topk indices");
}

#[test]
fn count_greater_matches_with_ties() {
    let Some(d) = gpu("count_greater") else {
        return;
    };
    let mut x = randn(&[300, 12101], 81);
    // A tie with the target column must not count.
    x.as_mut_slice()[3] = x.as_slice()[7];
    let cols: Vec<usize> = (0..300).map(|r| (r * 977 + 7) % 12101).collect();
    assert_eq!(dev(&x, d).count_greater(&cols), x.count_greater(&cols));
}

#[test]
fn adam_step_in_place() {
    let Some(d) = gpu("adam") else { return };
    let h = AdamParams {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        step: 3,
    };
    let (mut p, g) = (randn(&[1000, 64], 90), randn(&[1000, 64], 91));
    let (mut m, mut v) = (
        randn(&[1000, 64], 92).mul_scalar(0.1),
        randn(&[1000, 64], 93).square(),
    );
    let (mut pd, mut md, mut vd) = (dev(&p, d), dev(&m, d), dev(&v, d));
    let shared = pd.clone(); // a shared buffer must be copied, not written through
    pd.adam_step(&dev(&g, d), &mut md, &mut vd, &h);
    p.adam_step(&g, &mut m, &mut v, &h);
    close("adam p", &pd, &p);
    close("adam m", &md, &m);
    close("adam v", &vd, &v);
    assert_ne!(
        shared.to_vec(),
        pd.to_vec(),
        "the clone kept its own values"
    );
}

#[test]
fn attention_and_contrastive_pair_with_gradients() {
    let Some(d) = gpu("attention") else { return };
    let layout = SeqLayout::new(vec![0, 3, 8, 12], {
        let mut b = vec![false; 12];
        b[4] = true;
        b
    });
    for (queries, causal) in [
        (QueryRows::All, true),
        (QueryRows::Last, true),
        (QueryRows::All, false),
        (QueryRows::Last, false),
    ] {
        let spec = AttentionSpec {
            layout: &layout,
            queries,
            heads: 2,
            dropout: Some(DropoutMask::new(0.1, 5)),
            causal,
        };
        let q = randn(&[layout.query_rows(queries), 8], 100);
        let kv = randn(&[12, 16], 101);
        let (ctx, probs) = q.attention(&kv, &spec);
        let (ctxd, probsd) = dev(&q, d).attention(&dev(&kv, d), &spec);
        close("attention ctx", &ctxd, &ctx);
        close("attention probs", &probsd, &probs);
        let gy = randn(ctx.shape(), 102);
        let (dq, dkv) = gy.attention_backward(&q, &kv, &probs, &spec);
        let (dqd, dkvd) = dev(&gy, d).attention_backward(&dev(&q, d), &dev(&kv, d), &probsd, &spec);
        close("attention dq", &dqd, &dq);
        close("attention dkv", &dkvd, &dkv);
    }
    let s = randn(&[8, 8], 103);
    let (l, g1, g2) = s.contrastive_pair();
    let (ld, g1d, g2d) = dev(&s, d).contrastive_pair();
    close("contrastive losses", &ld, &l);
    close("contrastive d_nce", &g1d, &g1);
    close("contrastive d_reg", &g2d, &g2);
}

#[test]
fn conv_max_pool_with_gradients() {
    let Some(d) = gpu("conv_max_pool") else {
        return;
    };
    for (b, l, dim, n, h) in [(4, 5, 8, 3, 1), (6, 9, 16, 4, 4), (3, 5, 8, 2, 5)] {
        let x = randn(&[b, l, dim], 110 + h as u64);
        let w = randn(&[n, h, dim], 111);
        let bias = randn(&[n], 112);
        let (out, at) = x.conv_max_pool(&w, &bias);
        let (outd, atd) = dev(&x, d).conv_max_pool(&dev(&w, d), &dev(&bias, d));
        close("conv_max_pool", &outd, &out);
        assert_eq!(atd, at, "conv_max_pool windows");
        let g = randn(&[b, n], 113);
        let (dx, dw, db) = x.conv_max_pool_backward(&w, &at, &g);
        let (dxd, dwd, dbd) = dev(&x, d).conv_max_pool_backward(&dev(&w, d), &at, &dev(&g, d));
        close("conv_max_pool dx", &dxd, &dx);
        close("conv_max_pool dw", &dwd, &dw);
        close("conv_max_pool dbias", &dbd, &db);
    }
}

#[test]
fn gru_recurrence_with_gradients() {
    let Some(d) = gpu("gru_recurrence") else {
        return;
    };
    let lens = [5usize, 1, 3, 3, 7, 2];
    let mut offsets = vec![0];
    for l in lens {
        offsets.push(offsets.last().unwrap() + l);
    }
    let rows = *offsets.last().unwrap();
    let layout = SeqLayout::new(offsets, vec![false; rows]);
    let h = 8;
    let gi = randn(&[rows, 3 * h], 120);
    let w = randn(&[3 * h, h], 121).mul_scalar(0.3);
    for b in [None, Some(randn(&[3 * h], 122))] {
        let (st, sv) = gi.gru_recurrence(&w, b.as_ref(), &layout);
        let bd = b.as_ref().map(|b| dev(b, d));
        let (std, svd) = dev(&gi, d).gru_recurrence(&dev(&w, d), bd.as_ref(), &layout);
        close("gru states", &std, &st);
        close("gru saved", &svd, &sv);
        let g = randn(&[rows, h], 123);
        let (dgi, dgh) = g.gru_recurrence_backward(&w, &st, &sv, &layout);
        let (dgid, dghd) = dev(&g, d).gru_recurrence_backward(&dev(&w, d), &std, &svd, &layout);
        close("gru dgi", &dgid, &dgi);
        close("gru dgh", &dghd, &dgh);
    }
}

#[test]
fn add_rows_in_place() {
    let Some(d) = gpu("add_rows") else { return };
    let dst = randn(&[9, 5], 130);
    let src = randn(&[6, 5], 131);
    let idx = [3, 0, 3, 8, 3, 1];
    let mut want = dst.clone();
    want.add_rows(&src, &idx);
    let mut got = dev(&dst, d);
    got.add_rows(&dev(&src, d), &idx);
    close("add_rows", &got, &want);
}

#[test]
fn to_device_without_a_gpu_is_an_error() {
    // Runs everywhere: where cuda:0 is missing, moving a tensor there is the same error as
    // Device::cuda, not a panic.
    let x = randn(&[3, 4], 110);
    match (Device::cuda(0), x.to_device(Device::Cuda(0))) {
        (Ok(_), Ok(y)) => assert_eq!(y.to_vec(), x.to_vec()),
        (Err(e), Err(e2)) => {
            assert_eq!(e, e2);
            println!("to_device: skipped: no GPU ({e})");
        }
        (a, b) => panic!("Device::cuda {a:?} but to_device {:?}", b.map(|_| ())),
    }
    assert_eq!(x.to_device(Device::Cpu).unwrap().to_vec(), x.to_vec());
}

#[test]
fn random_fills_draw_the_cpu_numbers() {
    let Some(d) = gpu("random") else { return };
    use mclrec_tensor::backend::backend_for;
    use mclrec_tensor::RandomFill;
    for fill in [
        RandomFill::Uniform(-1.0, 2.0),
        RandomFill::Normal(0.5, 2.0),
        RandomFill::Bernoulli(0.3),
    ] {
        let got = backend_for::<f32>(d).random(fill, &[17, 9], &mut rng(120));
        let want = backend_for::<f32>(Device::Cpu).random(fill, &[17, 9], &mut rng(120));
        assert_eq!(got.device(), d);
        assert_eq!(got.to_vec(), want.to_vec(), "{fill:?}");
    }
}

/// f64 (the gradient checks' type): the `_f64` kernels and DGEMM, to 1e-12.
#[test]
fn f64_kernels_and_dgemm() {
    let Some(d) = gpu("f64") else { return };
    let t = |s: &[usize], seed| Tensor::<f64>::normal(s, 0.0, 1.0, &mut rng(seed));
    let up = |x: &Tensor<f64>| x.to_device(d).unwrap();
    let check = |what: &str, got: &Tensor<f64>, want: &Tensor<f64>| {
        assert_eq!(got.shape(), want.shape(), "{what}: shapes");
        let (g, w) = (got.to_vec(), want.to_vec());
        let scale = w.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() / scale <= 1e-12,
                "{what}: element {i}: {a} vs {b}"
            );
        }
    };
    let (a, b) = (t(&[3, 20, 30], 130), t(&[40, 30], 131));
    check(
        "dgemm",
        &up(&a).matmul_t(&up(&b), false, true),
        &a.matmul_t(&b, false, true),
    );
    let x = t(&[50, 70], 132);
    check("softmax", &up(&x).softmax(), &x.softmax());
    check("gelu", &up(&x).gelu(), &x.gelu());
    check("sum", &up(&x).sum_axis(0), &x.sum_axis(0));
    let (g, be) = (t(&[70], 133), t(&[70], 134));
    check(
        "layer_norm",
        &up(&x).layer_norm(&up(&g), &up(&be), 1e-12).0,
        &x.layer_norm(&g, &be, 1e-12).0,
    );
    let idx = [3usize, 3, 0, 49];
    check(
        "scatter_add_rows",
        &up(&x.gather_rows(&idx)).scatter_add_rows(&idx, 50),
        &x.gather_rows(&idx).scatter_add_rows(&idx, 50),
    );
}
