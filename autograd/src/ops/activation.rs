//! Elementwise functions: `exp`, `ln`, `sqrt`, `tanh`, `sigmoid`, GELU (erf form), ReLU,
//! `clamp_min`, `log_sigmoid`.
//!
//! | op | forward | backward `dx` |
//! |---|---|---|
//! | `exp` | `y = e^x` | `g y` |
//! | `ln` | `y = ln x` | `g / x` |
//! | `sqrt` | `y = sqrt x` | `g / (2 y)` |
//! | `tanh` | `y = tanh x` | `g (1 - y^2)` |
//! | `sigmoid` | `y = 1 / (1 + e^-x)` | `g y (1 - y)` |
//! | `gelu` | `x/2 (1 + erf(x/sqrt 2))` | `g (Phi(x) + x phi(x))` |
//! | `clamp_min(c)` | `max(x, c)` | `g [x > c]` |
//! | `relu` | `clamp_min(0)` | `g [x > 0]` |
//! | `log_sigmoid` | `ln σ(x) = min(x, 0) - ln(1 + e^-abs(x))` | `g (1 - e^y)` (= `g σ(-x)`) |
//!
//! PyTorch: `exp`, `log`, `sqrt`, `tanh`, `sigmoid`, `F.gelu` (default, erf),
//! `clamp(min=c)`, `relu`, `F.logsigmoid`.
//!
//! `tanh`, `sigmoid` and GELU take their value and derivative from the tensor crate's
//! op table ([`UnaryOp::apply`] and [`UnaryOp::derivative`]), where each is defined once
//! for the CPU and, by name, for the CUDA kernels; the others spell their backward out.

use mclrec_tensor::{Element, Tensor, UnaryOp};

use crate::{Backward, GradSink, NodeId, Var};

enum Kind<E> {
    Exp,
    Ln,
    Sqrt,
    /// A function of the op table: `y = op(x)`, `dx = g op'(x)`.
    Table(UnaryOp<E>),
    ClampMin(E),
    LogSigmoid,
}

struct UnaryBackward<E: Element> {
    x: NodeId,
    x_val: Tensor<E>,
    y_val: Tensor<E>,
    kind: Kind<E>,
}

impl<E: Element> Kind<E> {
    /// The op's name on the tape.
    fn name(&self) -> &'static str {
        match self {
            Kind::Exp => "exp",
            Kind::Ln => "ln",
            Kind::Sqrt => "sqrt",
            Kind::Table(op) => op.name(),
            Kind::ClampMin(_) => "clamp_min",
            Kind::LogSigmoid => "log_sigmoid",
        }
    }
}

impl<E: Element> Backward<E> for UnaryBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let gx = match self.kind {
            Kind::Exp => g.mul(&self.y_val),
            Kind::Ln => g.div(&self.x_val),
            Kind::Sqrt => g.div(&self.y_val.mul_scalar(E::from_f64(2.0))),
            Kind::Table(op) => self.x_val.unary_backward(op, &self.y_val, g),
            Kind::ClampMin(c) => g.mul(&self.x_val.gt_scalar(c)),
            // 1 - σ(x) = 1 - e^y, from the output: no overflow for any x.
            Kind::LogSigmoid => g.mul(&self.y_val.exp().neg().add_scalar(E::one())),
        };
        grads.add(self.x, gx);
    }
}

impl<'t, E: Element> Var<'t, E> {
    fn unary_op(self, kind: Kind<E>) -> Var<'t, E> {
        let x_val = self.value();
        let y_val = match kind {
            Kind::Exp => x_val.exp(),
            Kind::Ln => x_val.ln(),
            Kind::Sqrt => x_val.sqrt(),
            Kind::Table(op) => x_val.unary(op),
            Kind::ClampMin(c) => x_val.clamp_min(c),
            Kind::LogSigmoid => log_sigmoid(&x_val),
        };
        let y = y_val.clone();
        let name = kind.name();
        self.tape.record(name, y, &[self], || {
            Box::new(UnaryBackward {
                x: self.node(),
                x_val,
                y_val,
                kind,
            })
        })
    }

    /// `e^x`.
    pub fn exp(self) -> Var<'t, E> {
        self.unary_op(Kind::Exp)
    }
    /// Natural logarithm.
    pub fn ln(self) -> Var<'t, E> {
        self.unary_op(Kind::Ln)
    }
    /// Square root.
    pub fn sqrt(self) -> Var<'t, E> {
        self.unary_op(Kind::Sqrt)
    }
    /// Hyperbolic tangent.
    pub fn tanh(self) -> Var<'t, E> {
        self.unary_op(Kind::Table(UnaryOp::Tanh))
    }
    /// The logistic function `1 / (1 + e^-x)`, without overflow for any `x`.
    pub fn sigmoid(self) -> Var<'t, E> {
        self.unary_op(Kind::Table(UnaryOp::Sigmoid))
    }
    /// GELU, erf form (PyTorch's default `F.gelu`).
    pub fn gelu(self) -> Var<'t, E> {
        self.unary_op(Kind::Table(UnaryOp::Gelu))
    }
    /// `max(x, c)`; the gradient is zero where the clamp is active.
    pub fn clamp_min(self, c: E) -> Var<'t, E> {
        self.unary_op(Kind::ClampMin(c))
    }
    /// `max(x, 0)`.
    pub fn relu(self) -> Var<'t, E> {
        self.clamp_min(E::zero())
    }
    /// `ln σ(x)`, computed without overflow for large `|x|` (the BCE loss of sampled
    /// negatives: `-ln σ(s_pos) - ln σ(-s_neg)`).
    pub fn log_sigmoid(self) -> Var<'t, E> {
        self.unary_op(Kind::LogSigmoid)
    }
}

/// `min(x, 0) - ln(1 + e^-|x|)`: the exponent is never positive.
fn log_sigmoid<E: Element>(x: &Tensor<E>) -> Tensor<E> {
    let pos = x.clamp_min(E::zero());
    let neg_part = x.sub(&pos); // min(x, 0)
    let abs = pos.sub(&neg_part);
    neg_part.sub(&abs.neg().exp().add_scalar(E::one()).ln())
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::Tape;
    use mclrec_tensor::Tensor;

    #[test]
    fn sigmoid_is_finite_far_out_and_matches_its_definition() {
        let tape = Tape::new();
        let xs = [-800.0f64, -3.0, 0.0, 2.0, 800.0];
        let y = tape.leaf(Tensor::from_vec(xs.to_vec(), &[5])).sigmoid();
        for (a, x) in y.value().to_vec().iter().zip(xs) {
            let want = 1.0 / (1.0 + (-x).exp());
            assert!((a - want).abs() < 1e-15, "sigmoid({x}) = {a}, want {want}");
        }
    }

    #[test]
    fn log_sigmoid_is_exact_and_finite_far_out() {
        let tape = Tape::new();
        let x = tape.leaf(Tensor::from_vec(
            vec![-800.0f64, -3.0, 0.0, 2.0, 800.0],
            &[5],
        ));
        let y = x.log_sigmoid().value().to_vec();
        let want = [
            -800.0,
            -(1.0 + 3f64.exp()).ln(),
            -(2f64.ln()),
            -(1.0 + (-2f64).exp()).ln(),
            0.0,
        ];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    use crate::gradcheck::strategies::{away_from_zero, shape, tensor};
    use mclrec_tensor::Element;
    use proptest::prelude::*;

    /// GELU and its derivative from the definition, in plain `f64` (erf is no op of the
    /// tape, so this reference is written out): `gelu(x) = x Phi(x)` with
    /// `Phi(x) = (1 + erf(x / sqrt 2)) / 2`, and `gelu'(x) = Phi(x) + x phi(x)` with
    /// `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
    fn gelu_by_hand(x: f64) -> (f64, f64) {
        let phi_big = 0.5 * (1.0 + Element::erf(x / std::f64::consts::SQRT_2));
        let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        (x * phi_big, phi_big + x * phi)
    }

    #[test]
    fn gelu_and_its_gradient_equal_the_definition() {
        let xs: Vec<f64> = (0..161).map(|i| -8.0 + 0.1 * i as f64).collect();
        let tape = Tape::<f64>::new();
        let x = tape.leaf(Tensor::from_vec(xs.clone(), &[xs.len()]));
        let w: Vec<f64> = (0..xs.len())
            .map(|i| (0.7 * i as f64).sin() + 0.2)
            .collect();
        let y = x.gelu();
        let grads = y
            .mul(tape.constant(Tensor::from_vec(w.clone(), &[xs.len()])))
            .sum_all()
            .backward();
        let (got_y, got_g) = (y.value().to_vec(), grads.get(x).unwrap().to_vec());
        for (i, &xi) in xs.iter().enumerate() {
            let (want_y, want_d) = gelu_by_hand(xi);
            let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1.0);
            assert!(
                rel(got_y[i], want_y) < 1e-12,
                "gelu({xi}) = {} vs {want_y}",
                got_y[i]
            );
            assert!(
                rel(got_g[i], w[i] * want_d) < 1e-12,
                "gelu'({xi}): {} vs {}",
                got_g[i],
                w[i] * want_d
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_exp(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].exp()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_ln(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, 0.2, 3.0)], |v| v[0].ln()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_sqrt(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, 0.2, 3.0)], |v| v[0].sqrt()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_tanh(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -3.0, 3.0)], |v| v[0].tanh()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_sigmoid(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -6.0, 6.0)], |v| v[0].sigmoid()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_gelu(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -4.0, 4.0)], |v| v[0].gelu()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_relu(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[away_from_zero(&s, seed, 1e-3)], |v| v[0].relu()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_log_sigmoid(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -6.0, 6.0)], |v| v[0].log_sigmoid()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_clamp_min(s in shape(3), seed in 0u64..1000) {
            // The kink is at 0.5: shift values that are away from 0 by 0.5.
            let x = away_from_zero(&s, seed, 1e-3).add_scalar(0.5);
            check_gradients(&[x], |v| v[0].clamp_min(0.5)).map_err(TestCaseError::fail)?;
        }
    }
}
