//! The elementwise functions of two tensors, each defined once: its name, its value and
//! the CUDA kernel that computes it (`binary_<name>`, from `kernels.cu`'s `BINARY_OPS`
//! list; `tests/kernel_names.rs` checks the two lists agree). Their gradients are composed
//! in autograd from tensor ops, so no derivative is declared here.
//!
//! ```
//! use mclrec_tensor::BinaryOp;
//!
//! assert_eq!(BinaryOp::Sub.apply(5.0f64, 3.0), 2.0);
//! assert_eq!(BinaryOp::Max.kernel(), "binary_max");
//! ```

use crate::Element;

/// A function of two elements, generic over the element type: what [`BinaryOp::visit`]
/// hands to a kernel, so that each op's loop is compiled on its own.
pub trait BinaryKernel<E: Element> {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with the op's function `f`.
    fn run<F: Fn(E, E) -> E + Copy + Send + Sync>(self, f: F) -> Self::Output;
}

/// Declares the ops: `Variant = "name", |a, b| value;`.
macro_rules! binary_ops {
    ($( $(#[doc = $doc:literal])* $op:ident = $name:literal, |$a:ident, $b:ident| $value:expr; )*) => {
        /// Elementwise functions of two tensors, with NumPy broadcasting: see
        /// [the module](crate::binary_op).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum BinaryOp {
            $( $(#[doc = $doc])* $op, )*
        }

        impl BinaryOp {
            /// Every op's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// Every op, in declaration order.
            pub const ALL: &'static [BinaryOp] = &[$(BinaryOp::$op),*];

            /// The op's name.
            pub fn name(self) -> &'static str {
                match self { $( BinaryOp::$op => $name, )* }
            }

            /// The CUDA kernel, `binary_<name>` (`_f32` / `_f64` appended).
            pub fn kernel(self) -> &'static str {
                match self { $( BinaryOp::$op => concat!("binary_", $name), )* }
            }

            /// The op at one pair of elements.
            #[inline(always)]
            pub fn apply<E: Element>(self, a: E, b: E) -> E {
                match self { $( BinaryOp::$op => { let ($a, $b) = (a, b); $value } )* }
            }

            /// Runs `kernel` with this op's function, a closure of its own type.
            #[inline(always)]
            pub fn visit<E: Element, K: BinaryKernel<E>>(self, kernel: K) -> K::Output {
                match self { $( BinaryOp::$op => kernel.run(|$a: E, $b: E| $value), )* }
            }
        }
    };
}

binary_ops! {
    /// `a + b`
    Add = "add", |a, b| a + b;
    /// `a - b`
    Sub = "sub", |a, b| a - b;
    /// `a * b`
    Mul = "mul", |a, b| a * b;
    /// `a / b`
    Div = "div", |a, b| a / b;
    /// `max(a, b)`
    Max = "max", |a, b| a.max(b);
    /// `min(a, b)`
    Min = "min", |a, b| a.min(b);
}
