//! Seeded random fills, drawn in row-major order so a seed fixes every value.

use rand::{Rng, RngCore};

use crate::backend::RandomFill;
use crate::shape::numel;
use crate::{Element, Tensor};

/// One standard normal draw (Box-Muller, one value per pair of uniforms, for simplicity and
/// so that the stream does not depend on how many values were asked for).
pub fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(super) fn random<E: Element>(
    fill: RandomFill,
    shape: &[usize],
    rng: &mut dyn RngCore,
) -> Tensor<E> {
    let n = numel(shape);
    let data = (0..n)
        .map(|_| {
            E::from_f64(match fill {
                RandomFill::Uniform(lo, hi) => lo + (hi - lo) * rng.gen::<f64>(),
                RandomFill::Normal(m, s) => m + s * standard_normal(rng),
                RandomFill::Bernoulli(p) => {
                    if rng.gen::<f64>() < p {
                        1.0
                    } else {
                        0.0
                    }
                }
            })
        })
        .collect();
    Tensor::from_vec(data, shape)
}
