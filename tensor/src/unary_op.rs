//! The elementwise functions of one tensor, each defined once: its name, its value, its
//! derivative and the CUDA kernels that compute them (as candle's `UnaryOpT`).
//!
//! The table in `unary_ops!` below is the only place an op is written in Rust. From it come
//! the enum [`UnaryOp`], [`UnaryOp::name`], the scalar function [`UnaryOp::apply`], the
//! derivative [`UnaryOp::derivative`] and the names of the CUDA kernels
//! ([`UnaryOp::kernel`], [`UnaryOp::backward_kernel`]); the CUDA bodies live in
//! `cuda/kernels.cu`'s `UNARY_OPS` list under the same names (a test checks that every name
//! is there). The CPU backend runs [`UnaryOp::apply`] and [`UnaryOp::derivative`] in loops
//! compiled per op ([`UnaryOp::visit`]), except GELU and `exp`, whose SIMD kernels are
//! tested against these scalar definitions.
//!
//! ```
//! use mclrec_tensor::UnaryOp;
//!
//! let op = UnaryOp::<f64>::Tanh;
//! let (x, y) = (0.5, 0.5f64.tanh());
//! assert_eq!(op.apply(x), y);
//! assert_eq!(op.derivative(x, y), 1.0 - y * y);
//! assert_eq!((op.name(), op.kernel()), ("tanh", "unary_tanh"));
//! ```

use crate::Element;

/// A function of one element, generic over the element type: what [`UnaryOp::visit`] hands
/// to a kernel, so that each op's loop is compiled (and vectorised) on its own instead of
/// matching on the op per element.
pub trait UnaryKernel<E: Element> {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with the op's scalar function `f`.
    fn run<F: Fn(E) -> E + Copy + Send + Sync>(self, f: F) -> Self::Output;
}

/// `x/2 (1 + erf(x/sqrt 2))`, with `1 + erf(u)` computed as `erfc(-u)` so that the negative
/// tail keeps its relative accuracy.
#[inline(always)]
pub(crate) fn gelu<E: Element>(x: E) -> E {
    let half = E::from_f64(0.5);
    half * x * (-x * E::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erfc()
}

/// `gelu'(x) = Phi(x) + x phi(x)`.
#[inline(always)]
pub(crate) fn gelu_derivative<E: Element>(x: E) -> E {
    let half = E::from_f64(0.5);
    let cdf = half * (-x * E::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erfc();
    let pdf = (-half * x * x).exp() * E::from_f64(0.398_942_280_401_432_7);
    cdf + x * pdf
}

/// `1 / (1 + e^-x)` for `x >= 0`, `e^x / (1 + e^x)` below: no overflow for any `x`.
#[inline(always)]
pub(crate) fn sigmoid<E: Element>(x: E) -> E {
    if x >= E::zero() {
        (E::one() + (-x).exp()).recip()
    } else {
        let e = x.exp();
        e / (E::one() + e)
    }
}

#[inline(always)]
fn step<E: Element>(on: bool) -> E {
    if on {
        E::one()
    } else {
        E::zero()
    }
}

/// Declares the ops: `Variant(c: E)? = "name", |x| value, |x, y| derivative;` where `c`
/// is the scalar operand, if any, and `y` the op's output at `x`.
macro_rules! unary_ops {
    ($(
        $(#[doc = $doc:literal])*
        $op:ident $(($c:ident: $operand:ty))? = $name:literal, |$x:ident| $value:expr, |$dx:ident, $y:ident| $deriv:expr;
    )*) => {
        /// Elementwise functions of one tensor (some with a scalar operand `c`), each with
        /// its derivative: see [the module](crate::unary_op).
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum UnaryOp<E> {
            $( $(#[doc = $doc])* $op $(($operand))?, )*
        }

        impl<E: Element> UnaryOp<E> {
            /// Every op's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// Every op, in declaration order, those with an operand taking `c`.
            pub fn all(c: E) -> Vec<Self> {
                vec![$( UnaryOp::$op $(({ let $c = c; $c }))? ),*]
            }

            /// The op's name (the tape's label, the CUDA kernels' stem).
            pub fn name(self) -> &'static str {
                match self { $( UnaryOp::$op { .. } => $name, )* }
            }

            /// The CUDA kernel of the value, `unary_<name>` (`_f32` / `_f64` appended).
            pub fn kernel(self) -> &'static str {
                match self { $( UnaryOp::$op { .. } => concat!("unary_", $name), )* }
            }

            /// The CUDA kernel of the gradient, `unary_backward_<name>`.
            pub fn backward_kernel(self) -> &'static str {
                match self { $( UnaryOp::$op { .. } => concat!("unary_backward_", $name), )* }
            }

            /// The scalar operand `c` (zero for the ops without one).
            pub fn operand(self) -> E {
                match self { $( UnaryOp::$op $(($c))? => unary_ops!(@or_zero $($c)?), )* }
            }

            /// The op at one element.
            #[inline(always)]
            pub fn apply(self, x: E) -> E {
                self.visit(Apply(x))
            }

            /// `dy/dx` at `x`, given the output `y` there (whichever of the two is cheaper).
            #[inline(always)]
            #[allow(unused_variables)]
            pub fn derivative(self, x: E, y: E) -> E {
                match self { $( UnaryOp::$op $(($c))? => { let ($dx, $y) = (x, y); $deriv } )* }
            }

            /// Runs `kernel` with this op's scalar function, a closure of its own type.
            #[inline(always)]
            pub fn visit<K: UnaryKernel<E>>(self, kernel: K) -> K::Output {
                match self { $( UnaryOp::$op $(($c))? => kernel.run(move |$x: E| $value), )* }
            }
        }
    };
    (@or_zero $c:ident) => { $c };
    (@or_zero) => { E::zero() };
}

/// [`UnaryOp::apply`] as a kernel of one element.
struct Apply<E>(E);

impl<E: Element> UnaryKernel<E> for Apply<E> {
    type Output = E;
    #[inline(always)]
    fn run<F: Fn(E) -> E>(self, f: F) -> E {
        f(self.0)
    }
}

unary_ops! {
    /// `-x`
    Neg = "neg", |x| -x, |x, y| -E::one();
    /// `exp(x)`
    Exp = "exp", |x| x.exp(), |x, y| y;
    /// `ln(x)`
    Ln = "ln", |x| x.ln(), |x, y| x.recip();
    /// `sqrt(x)`
    Sqrt = "sqrt", |x| x.sqrt(), |x, y| E::from_f64(0.5) / y;
    /// `tanh(x)`
    Tanh = "tanh", |x| x.tanh(), |x, y| E::one() - y * y;
    /// `erf(x)`
    Erf = "erf", |x| x.erf(), |x, y| E::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-x * x).exp();
    /// `1 / (1 + e^-x)`, from whichever side keeps the exponent non-positive
    Sigmoid = "sigmoid", |x| sigmoid(x), |x, y| y * (E::one() - y);
    /// `x/2 (1 + erf(x/sqrt 2))` (PyTorch's default `F.gelu`)
    Gelu = "gelu", |x| gelu(x), |x, y| gelu_derivative(x);
    /// `max(x, 0)`; the derivative is 0 at 0
    Relu = "relu", |x| x.max(E::zero()), |x, y| step(x > E::zero());
    /// `1 / x`
    Recip = "recip", |x| x.recip(), |x, y| -(y * y);
    /// `x * x`
    Square = "square", |x| x * x, |x, y| x + x;
    /// `|x|`; the derivative is 0 at 0
    Abs = "abs", |x| x.abs(), |x, y| step::<E>(x > E::zero()) - step::<E>(x < E::zero());
    /// `x + c`
    AddScalar(c: E) = "add_scalar", |x| x + c, |x, y| E::one();
    /// `x * c`
    MulScalar(c: E) = "mul_scalar", |x| x * c, |x, y| c;
    /// `max(x, c)`; the derivative is 0 at `c`
    ClampMin(c: E) = "clamp_min", |x| x.max(c), |x, y| step(x > c);
    /// `min(x, c)`; the derivative is 0 at `c`
    ClampMax(c: E) = "clamp_max", |x| x.min(c), |x, y| step(x < c);
    /// `1` where `x > c`, else `0` (derivative 0)
    GtScalar(c: E) = "gt_scalar", |x| step(x > c), |x, y| E::zero();
    /// `x^c`
    Powf(c: E) = "powf", |x| x.powf(c), |x, y| c * x.powf(c - E::one());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_derivative_matches_central_differences() {
        for op in UnaryOp::<f64>::all(0.7) {
            for x in [0.3, 0.9, 1.7, 2.5] {
                let h = 1e-6;
                let numeric = (op.apply(x + h) - op.apply(x - h)) / (2.0 * h);
                let analytic = op.derivative(x, op.apply(x));
                assert!(
                    (numeric - analytic).abs() <= 1e-6 * analytic.abs().max(1.0),
                    "{}'({x}) = {analytic}, finite differences {numeric}",
                    op.name()
                );
            }
        }
    }

    #[test]
    fn names_are_unique_and_listed_in_order() {
        let ops = UnaryOp::<f64>::all(1.0);
        assert_eq!(ops.len(), UnaryOp::<f64>::NAMES.len());
        for (op, name) in ops.iter().zip(UnaryOp::<f64>::NAMES) {
            assert_eq!(op.name(), *name);
        }
        let mut names = UnaryOp::<f64>::NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ops.len());
    }

    #[test]
    fn operand_is_the_scalar_or_zero() {
        assert_eq!(UnaryOp::MulScalar(3.0f64).operand(), 3.0);
        assert_eq!(UnaryOp::<f64>::Exp.operand(), 0.0);
    }
}
