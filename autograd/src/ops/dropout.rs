//! Inverted dropout: in training, zero each element with probability `p` and scale the
//! survivors by `1/(1-p)`, so evaluation is the identity.
//!
//! `y = x * m`, `m_i in {0, 1/(1-p)}`; `dx = g * m`. PyTorch: `nn.Dropout(p)`.

use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::{Backward, GradSink, NodeId, Var};

struct DropoutBackward {
    x: NodeId,
    mask: DropoutMask,
}

impl<E: Element> Backward<E> for DropoutBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        // The mask is a function of (seed, index): recomputed, never stored.
        grads.add(self.x, g.dropout(&self.mask));
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Dropout with drop probability `p` when `train` is true (the mask's seed is one draw
    /// from `rng`); the identity otherwise.
    pub fn dropout(self, p: f64, train: bool, rng: &mut dyn RngCore) -> Var<'t, E> {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout probability {p} not in [0, 1)"
        );
        if !train || p == 0.0 {
            return self;
        }
        self.dropout_with_mask(DropoutMask::new(p, rng.next_u64()))
    }

    /// `self` times the factors of a given mask.
    pub fn dropout_with_mask(self, mask: DropoutMask) -> Var<'t, E> {
        let y = self.value().dropout(&mask);
        self.tape.record("dropout", y, &[self], || {
            Box::new(DropoutBackward {
                x: self.node(),
                mask,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{shape, tensor};
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_dropout(s in shape(3), seed in 0u64..1000, p in 0.0f64..0.9) {
            // The same seed gives the same mask in every evaluation of the function.
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                v[0].dropout(p, true, &mut rng)
            }).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn dropout_keeps_the_expectation_and_is_identity_in_eval() {
        let tape = crate::Tape::<f64>::new();
        let x = tape.constant(mclrec_tensor::Tensor::ones(&[20000]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let y = x.dropout(0.5, true, &mut rng).value().to_vec();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
        assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
        assert_eq!(
            x.dropout(0.5, false, &mut rng).value().to_vec(),
            vec![1.0; 20000]
        );
    }
}
