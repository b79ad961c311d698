//! Forward results of the tensor ops against naive reference implementations.

use mclrec_tensor::{ChaCha8Rng, Tensor};
use proptest::prelude::*;
use rand::SeedableRng;

fn rand_t(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor::uniform(shape, -1.0, 1.0, &mut rng)
}

fn naive_matmul(
    a: &[f64],
    b: &[f64],
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                c[i * n + j] += av * bv;
            }
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn matmul_matches_naive(bt in 1usize..4, m in 1usize..40, k in 1usize..20, n in 1usize..40, ta: bool, tb: bool, seed in 0u64..100) {
        let a = rand_t(&if ta { [bt, k, m] } else { [bt, m, k] }, seed);
        let b = rand_t(&if tb { [bt, n, k] } else { [bt, k, n] }, seed + 1);
        let c = a.matmul_t(&b, ta, tb);
        prop_assert_eq!(c.shape(), &[bt, m, n]);
        let (av, bv, cv) = (a.to_vec(), b.to_vec(), c.to_vec());
        for i in 0..bt {
            let want = naive_matmul(&av[i * m * k..], &bv[i * k * n..], m, k, n, ta, tb);
            for (x, y) in cv[i * m * n..(i + 1) * m * n].iter().zip(&want) {
                prop_assert!((x - y).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn big_matmul_row_split_matches_naive(m in 64usize..200, ta: bool, tb: bool, seed in 0u64..10) {
        let (k, n) = (33, 70);
        let a = rand_t(&if ta { [k, m] } else { [m, k] }, seed);
        let b = rand_t(&if tb { [n, k] } else { [k, n] }, seed + 1);
        let want = naive_matmul(&a.to_vec(), &b.to_vec(), m, k, n, ta, tb);
        let got = a.matmul_t(&b, ta, tb);
        prop_assert_eq!(got.shape(), &[m, n]);
        for (x, y) in got.to_vec().iter().zip(&want) {
            prop_assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn topk_equals_a_full_sort(rows in 1usize..5, n in 1usize..60, k in 0usize..60, seed in 0u64..100) {
        let k = k.min(n);
        let x = rand_t(&[rows, n], seed);
        let (vals, idx) = x.topk_rows(k);
        let xv = x.to_vec();
        for r in 0..rows {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&i, &j| xv[r * n + j].partial_cmp(&xv[r * n + i]).unwrap().then(i.cmp(&j)));
            prop_assert_eq!(&idx[r * k..(r + 1) * k], &order[..k]);
            for p in 0..k {
                prop_assert_eq!(vals.to_vec()[r * k + p], xv[r * n + order[p]]);
            }
        }
    }

    #[test]
    fn count_greater_is_the_position_in_a_full_sort(rows in 1usize..5, n in 1usize..60, seed in 0u64..100) {
        // Rounded to one decimal so that rows hold ties, which must not count.
        let x = Tensor::<f64>::from_f64s(
            &rand_t(&[rows, n], seed).to_vec().iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
            &[rows, n],
        );
        let cols: Vec<usize> = (0..rows).map(|r| (r * 7 + seed as usize) % n).collect();
        let xv = x.to_vec();
        let got = x.count_greater(&cols);
        for r in 0..rows {
            let mut row = xv[r * n..(r + 1) * n].to_vec();
            row.sort_by(|a, b| b.partial_cmp(a).unwrap());
            let first_equal = row.iter().position(|&v| v == xv[r * n + cols[r]]).unwrap();
            prop_assert_eq!(got[r], first_equal);
        }
    }

    #[test]
    fn gather_and_scatter_add_are_adjoint(s in proptest::collection::vec(1usize..5, 1..4), a in 0usize..3, kk in 1usize..4, seed in 0u64..100) {
        // <gather(x), y> = <x, scatter_add(y)> for any x, y: the backward is the true adjoint.
        let axis = a % s.len();
        let mut is = s.clone();
        is[axis] = kk;
        let n: usize = is.iter().product();
        let idx: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % s[axis]).collect();
        let x = rand_t(&s, seed);
        let y = rand_t(&is, seed + 1);
        let lhs: f64 = x.gather(axis, &idx, &is).mul(&y).sum_all().item();
        let rhs: f64 = x.mul(&y.scatter_add(axis, &idx, &s)).sum_all().item();
        prop_assert!((lhs - rhs).abs() < 1e-12);
    }

    #[test]
    fn split_undoes_concat(s in proptest::collection::vec(1usize..5, 1..4), a in 0usize..3, seed in 0u64..100) {
        let axis = a % s.len();
        let (x, y) = (rand_t(&s, seed), rand_t(&s, seed + 1));
        let parts = Tensor::concat(&[&x, &y], axis).split(axis, &[s[axis], s[axis]]);
        prop_assert_eq!(parts[0].to_vec(), x.to_vec());
        prop_assert_eq!(parts[1].to_vec(), y.to_vec());
    }
}

#[test]
fn broadcasting_follows_numpy() {
    let a = Tensor::<f64>::from_f64s(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
    let row = Tensor::from_f64s(&[10., 20., 30.], &[3]);
    let col = Tensor::from_f64s(&[100., 200.], &[2, 1]);
    assert_eq!(a.add(&row).to_vec(), vec![11., 22., 33., 14., 25., 36.]);
    assert_eq!(
        a.add(&col).to_vec(),
        vec![101., 102., 103., 204., 205., 206.]
    );
    assert_eq!(col.sub(&row).shape(), &[2, 3]);
    assert_eq!(
        col.sub(&row).to_vec(),
        vec![90., 80., 70., 190., 180., 170.]
    );
    assert_eq!(a.add(&col).sum_to_shape(&[2, 1]).to_vec(), vec![306., 615.]);
}

#[test]
fn reductions_and_their_indices() {
    let a = Tensor::<f64>::from_f64s(&[3., 1., 2., -1., 5., 5.], &[2, 3]);
    assert_eq!(a.sum_axis(1).to_vec(), vec![6., 9.]);
    assert_eq!(a.mean_axis(0).to_vec(), vec![1., 3., 3.5]);
    let (mx, ix) = a.max_axis(1);
    assert_eq!((mx.to_vec(), ix), (vec![3., 5.], vec![0, 1])); // first on ties
    let (mn, ixn) = a.min_axis(0);
    assert_eq!((mn.to_vec(), ixn), (vec![-1., 1., 2.], vec![1, 0, 0]));
}

#[test]
fn softmax_is_stable_and_normalised() {
    let x = Tensor::<f32>::from_f64s(&[1000., 1001., 1002., -1000., 0., 1000.], &[2, 3]);
    let p = x.softmax().to_vec();
    assert!(p.iter().all(|v| v.is_finite()));
    assert!((p[0] + p[1] + p[2] - 1.0).abs() < 1e-6);
    let lp = x.log_softmax().to_vec();
    assert!((lp[2] - (-0.407_606)).abs() < 1e-6, "{lp:?}");
    assert!((lp[3] - (-2000.0)).abs() < 1e-3);
}

#[test]
fn layer_norm_matches_the_definition() {
    let x = Tensor::<f64>::from_f64s(&[1., 2., 3., 4., -2., 0., 2., 4.], &[2, 4]);
    let (y, mean, rstd) = x.layer_norm(&Tensor::full(&[4], 2.0), &Tensor::full(&[4], 0.5), 0.0);
    assert_eq!(mean.to_vec(), vec![2.5, 1.0]);
    assert!((rstd.to_vec()[0] - 1.0 / 1.25f64.sqrt()).abs() < 1e-12);
    let y = y.to_vec();
    assert!((y[0] - (0.5 + 2.0 * (-1.5) / 1.25f64.sqrt())).abs() < 1e-12);
}

#[test]
fn seeded_random_fills_repeat() {
    let mut r1 = ChaCha8Rng::seed_from_u64(5);
    let mut r2 = ChaCha8Rng::seed_from_u64(5);
    let a = Tensor::<f32>::normal(&[1000], 0.0, 0.02, &mut r1);
    let b = Tensor::<f32>::normal(&[1000], 0.0, 0.02, &mut r2);
    assert_eq!(a.to_vec(), b.to_vec());
    let v = a.to_f64s();
    let mean = v.iter().sum::<f64>() / 1000.0;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 1000.0).sqrt();
    assert!(
        mean.abs() < 0.003 && (std - 0.02).abs() < 0.002,
        "mean {mean} std {std}"
    );
    let m = Tensor::<f32>::bernoulli(&[10000], 0.3, &mut r1).to_f64s();
    let frac = m.iter().sum::<f64>() / 10000.0;
    assert!((frac - 0.3).abs() < 0.02 && m.iter().all(|&x| x == 0.0 || x == 1.0));
}

#[test]
fn masked_fill_and_gather_rows() {
    let x = Tensor::<f64>::from_f64s(&[1., 2., 3., 4.], &[2, 2]);
    let causal = Tensor::from_f64s(&[0., 1., 0., 0.], &[2, 2]);
    assert_eq!(
        x.masked_fill(&causal, -1e4).to_vec(),
        vec![1., -1e4, 3., 4.]
    );
    let t = Tensor::<f64>::from_f64s(&[0., 0., 1., 1., 2., 2.], &[3, 2]);
    assert_eq!(
        t.gather_rows(&[2, 0, 2]).to_vec(),
        vec![2., 2., 0., 0., 2., 2.]
    );
    assert_eq!(
        t.gather_rows(&[2, 0, 2])
            .scatter_add_rows(&[2, 0, 2], 3)
            .to_vec(),
        vec![0., 0., 0., 0., 4., 4.]
    );
}

#[test]
#[should_panic(expected = "do not broadcast")]
fn mismatched_shapes_name_both() {
    Tensor::<f32>::zeros(&[2, 3]).add(&Tensor::zeros(&[4]));
}

#[test]
#[cfg(not(feature = "cuda"))]
fn cuda_without_a_cuda_build_is_an_error() {
    let e = mclrec_tensor::Device::parse("cuda").unwrap_err();
    assert!(e.contains("without CUDA support"), "{e}");
    assert!(mclrec_tensor::Device::parse("tpu").is_err());
    let moved = Tensor::<f32>::zeros(&[2]).to_device(mclrec_tensor::Device::Cuda(0));
    assert_eq!(
        moved.err(),
        Some(mclrec_tensor::DeviceError::NoCudaBuild),
        "to_device reports the missing build"
    );
}

#[test]
#[cfg(feature = "cuda")]
fn cuda_without_a_driver_or_gpu_is_an_error_naming_which() {
    use mclrec_tensor::{Device, DeviceError};
    // With the backend built, a machine without a driver or a GPU answers with an error that
    // says which; a GPU machine answers Ok.
    match Device::cuda(0) {
        Ok(d) => assert_eq!(d, Device::Cuda(0)),
        Err(e) => assert!(
            matches!(e, DeviceError::NoDriver(_) | DeviceError::NoGpu(0)),
            "{e:?}"
        ),
    }
    if let Err(e) = Device::parse("cuda") {
        assert!(
            e.contains("no CUDA driver") || e.contains("no GPU with ordinal 0"),
            "{e}"
        );
    }
}

#[test]
fn full_like_and_zeros_like_stay_on_the_device() {
    let x = Tensor::<f32>::ones(&[2, 3]);
    let z = x.zeros_like();
    assert_eq!((z.shape(), z.device()), (&[2usize, 3][..], x.device()));
    assert_eq!(z.to_vec(), vec![0.0; 6]);
    let f = x.full_like(&[4], 2.5);
    assert_eq!((f.shape(), f.to_vec()), (&[4usize][..], vec![2.5; 4]));
}

#[test]
fn large_parallel_kernels_do_not_depend_on_the_thread_count() {
    // Sizes above the parallel threshold: column sums (bias gradients), the fused layer-norm
    // forward and backward, and dropout. Each must give bit-identical results on 1 and 2
    // threads and agree with a plain serial computation.
    let (rows, cols) = (3000, 64);
    let x = rand_t(&[rows, cols], 11);
    let g = rand_t(&[rows, cols], 12);
    let gamma = rand_t(&[cols], 13);
    let beta = rand_t(&[cols], 14);
    let col_sums = |t: &Tensor<f64>| t.sum_axis(0).to_vec();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mask = mclrec_tensor::dropout_mask::DropoutMask::new(0.5, 3);
                let (y, mean, rstd) = x.layer_norm(&gamma, &beta, 1e-12);
                let (dx, dgamma, dbeta) = x.layer_norm_backward(&gamma, &mean, &rstd, &g);
                let ln = [y, mean, rstd, dx, dgamma, dbeta].map(|t| t.to_vec());
                (col_sums(&x), x.dropout(&mask).to_vec(), ln)
            })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two, "bit-identical on 1 and 2 threads");
    let v = x.to_vec();
    for (c, &s) in one.0.iter().enumerate() {
        let naive: f64 = (0..rows).map(|r| v[r * cols + c]).sum();
        assert!((s - naive).abs() < 1e-10, "column {c}: {s} vs {naive}");
    }
    // Layer norm against its definition, row by row: y = (x - mean) rstd gamma + beta,
    // dbeta = sum of g over rows, dgamma = sum of g (x - mean) rstd.
    let [y, _, _, _, dgamma, dbeta] = &one.2;
    let (gv, gam, bet) = (g.to_vec(), gamma.to_vec(), beta.to_vec());
    assert_eq!(
        (y.len(), dgamma.len(), dbeta.len()),
        (rows * cols, cols, cols)
    );
    let (mut want_dgamma, mut want_dbeta) = (vec![0.0; cols], vec![0.0; cols]);
    for r in 0..rows {
        let row = &v[r * cols..(r + 1) * cols];
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / cols as f64;
        let rstd = 1.0 / (var + 1e-12).sqrt();
        for c in 0..cols {
            let xhat = (row[c] - mean) * rstd;
            let want = xhat * gam[c] + bet[c];
            assert!((y[r * cols + c] - want).abs() < 1e-9, "y[{r}, {c}]");
            want_dgamma[c] += gv[r * cols + c] * xhat;
            want_dbeta[c] += gv[r * cols + c];
        }
    }
    for c in 0..cols {
        assert!((dgamma[c] - want_dgamma[c]).abs() < 1e-8, "dgamma[{c}]");
        assert!((dbeta[c] - want_dbeta[c]).abs() < 1e-8, "dbeta[{c}]");
    }
}

#[test]
fn a_one_element_operand_broadcasts_as_a_scalar() {
    // Rank 0 and an all-ones shape, below and above the parallel threshold.
    for shape in [vec![3, 5], vec![300, 257]] {
        let a = rand_t(&shape, 7);
        for b in [
            Tensor::from_f64s(&[-1.5], &[]),
            Tensor::from_f64s(&[-1.5], &[1, 1]),
        ] {
            let want: Vec<f64> = a.to_f64s().iter().map(|x| x * -1.5).collect();
            assert_eq!(a.mul(&b).to_f64s(), want, "{shape:?} times {:?}", b.shape());
            let want: Vec<f64> = a.to_f64s().iter().map(|x| x - -1.5).collect();
            assert_eq!(a.sub(&b).to_f64s(), want, "{shape:?} minus {:?}", b.shape());
        }
    }
}
