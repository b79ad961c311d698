//! `+ - * /` with NumPy broadcasting, and the scalar versions.
//!
//! For `y = a op b` broadcast to a common shape, the gradient of each operand is the
//! elementwise gradient summed back over the axes it was broadcast along
//! ([`Tensor::sum_to_shape`]):
//!
//! | op | `da` | `db` |
//! |---|---|---|
//! | `a + b` | `g` | `g` |
//! | `a - b` | `g` | `-g` |
//! | `a * b` | `g b` | `g a` |
//! | `a / b` | `g / b` | `-g a / b^2` |
//!
//! PyTorch: `a + b`, `a - b`, `a * b`, `a / b`.

use std::ops;

use mclrec_tensor::{BinaryOp, Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct BinaryBackward<E: Element> {
    op: BinaryOp,
    a: NodeId,
    b: NodeId,
    a_val: Tensor<E>,
    b_val: Tensor<E>,
}

impl<E: Element> Backward<E> for BinaryBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let (sa, sb) = (self.a_val.shape(), self.b_val.shape());
        if grads.wants(self.a) {
            let ga = match self.op {
                BinaryOp::Add | BinaryOp::Sub => g.clone(),
                BinaryOp::Mul => g.mul(&self.b_val),
                BinaryOp::Div => g.div(&self.b_val),
                _ => unreachable!("max/min are not differentiable binary ops here"),
            };
            grads.add(self.a, ga.sum_to_shape(sa));
        }
        if grads.wants(self.b) {
            let gb = match self.op {
                BinaryOp::Add => g.clone(),
                BinaryOp::Sub => g.neg(),
                BinaryOp::Mul => g.mul(&self.a_val),
                BinaryOp::Div => g.mul(&self.a_val).div(&self.b_val.square()).neg(),
                _ => unreachable!(),
            };
            grads.add(self.b, gb.sum_to_shape(sb));
        }
    }
}

/// The name of a binary op on the tape.
fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Max => "max",
        BinaryOp::Min => "min",
    }
}

// The named methods read well in chains (`x.matmul(w).add(b)`); the operators below call them.
#[allow(clippy::should_implement_trait)]
impl<'t, E: Element> Var<'t, E> {
    fn binary(self, op: BinaryOp, other: Var<'t, E>) -> Var<'t, E> {
        let (a_val, b_val) = (self.value(), other.value());
        let y = a_val.binary(op, &b_val);
        self.tape.record(binary_name(op), y, &[self, other], || {
            Box::new(BinaryBackward {
                op,
                a: self.node(),
                b: other.node(),
                a_val,
                b_val,
            })
        })
    }

    /// `self + other`, broadcasting.
    pub fn add(self, other: Var<'t, E>) -> Var<'t, E> {
        self.binary(BinaryOp::Add, other)
    }
    /// `self - other`, broadcasting.
    pub fn sub(self, other: Var<'t, E>) -> Var<'t, E> {
        self.binary(BinaryOp::Sub, other)
    }
    /// `self * other` (elementwise), broadcasting.
    pub fn mul(self, other: Var<'t, E>) -> Var<'t, E> {
        self.binary(BinaryOp::Mul, other)
    }
    /// `self / other` (elementwise), broadcasting.
    pub fn div(self, other: Var<'t, E>) -> Var<'t, E> {
        self.binary(BinaryOp::Div, other)
    }

    /// `self + c`: the gradient passes through unchanged.
    pub fn add_scalar(self, c: E) -> Var<'t, E> {
        let y = self.value().add_scalar(c);
        self.tape.record("add_scalar", y, &[self], || {
            Box::new(ScaleBackward {
                x: self.node(),
                c: E::one(),
            })
        })
    }
    /// `self * c`: the gradient is scaled by `c`.
    pub fn mul_scalar(self, c: E) -> Var<'t, E> {
        let y = self.value().mul_scalar(c);
        self.tape.record("mul_scalar", y, &[self], || {
            Box::new(ScaleBackward { x: self.node(), c })
        })
    }
    /// `-self`.
    pub fn neg(self) -> Var<'t, E> {
        self.mul_scalar(-E::one())
    }
}

/// The backward of `x * c + d`: `dx = c g`.
struct ScaleBackward<E: Element> {
    x: NodeId,
    c: E,
}

impl<E: Element> Backward<E> for ScaleBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let gx = if self.c == E::one() {
            g.clone()
        } else {
            g.mul_scalar(self.c)
        };
        grads.add(self.x, gx);
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident) => {
        impl<'t, E: Element> ops::$trait for Var<'t, E> {
            type Output = Var<'t, E>;
            fn $method(self, rhs: Var<'t, E>) -> Var<'t, E> {
                Var::$method(self, rhs)
            }
        }
    };
}
operator!(Add, add);
operator!(Sub, sub);
operator!(Mul, mul);
operator!(Div, div);

impl<'t, E: Element> ops::Neg for Var<'t, E> {
    type Output = Var<'t, E>;
    fn neg(self) -> Var<'t, E> {
        Var::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{broadcast_pair, tensor};
    use proptest::prelude::*;

    fn pair(a: &[usize], b: &[usize], swap: bool, seed: u64) -> Vec<mclrec_tensor::Tensor<f64>> {
        let (x, y) = (tensor(a, seed, -2.0, 2.0), tensor(b, seed + 1, -2.0, 2.0));
        if swap {
            vec![y, x]
        } else {
            vec![x, y]
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn grad_add((a, b, swap) in broadcast_pair(), seed in 0u64..1000) {
            check_gradients(&pair(&a, &b, swap, seed), |v| v[0] + v[1]).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_sub((a, b, swap) in broadcast_pair(), seed in 0u64..1000) {
            check_gradients(&pair(&a, &b, swap, seed), |v| v[0] - v[1]).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_mul((a, b, swap) in broadcast_pair(), seed in 0u64..1000) {
            check_gradients(&pair(&a, &b, swap, seed), |v| v[0] * v[1]).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_div((a, b, swap) in broadcast_pair(), seed in 0u64..1000) {
            let mut xs = pair(&a, &b, swap, seed);
            // Keep the denominator away from zero.
            xs[1] = xs[1].unary(mclrec_tensor::UnaryOp::Abs).add_scalar(0.5);
            check_gradients(&xs, |v| v[0] / v[1]).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_scalar_ops(shape in crate::gradcheck::strategies::shape(3), seed in 0u64..1000, c in -3.0f64..3.0) {
            let x = tensor(&shape, seed, -2.0, 2.0);
            check_gradients(&[x], |v| (-v[0]).mul_scalar(c).add_scalar(c)).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn a_value_used_twice_gets_both_gradients() {
        let tape = crate::Tape::<f64>::new();
        let x = tape.leaf(mclrec_tensor::Tensor::from_f64s(&[3.0], &[1]));
        let g = (x * x).sum_all().backward();
        assert_eq!(g.get(x).unwrap().to_vec(), vec![6.0]);
    }
}
