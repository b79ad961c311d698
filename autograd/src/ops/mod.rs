//! The general differentiable ops. Each file holds one family: the forward (a method on
//! [`Var`]), its [`Backward`](crate::Backward) right below it, and its gradient tests at the
//! bottom. MCLRec's fused ops (attention over packed sequences, the contrastive pair terms,
//! the cross-entropy of `h W^T`) are not here but in [`fused`](crate::fused), each with a
//! reference in these ops.
//!
//! | op | method | gradient test |
//! |---|---|---|
//! | add, sub, mul, div (broadcasting) | [`Var::add`] [`Var::sub`] [`Var::mul`] [`Var::div`] | `arithmetic::tests::grad_{add,sub,mul,div}` |
//! | scalar add / mul, neg | [`Var::add_scalar`] [`Var::mul_scalar`] [`Var::neg`] | `arithmetic::tests::grad_scalar_ops` |
//! | matmul, batched, transposes | [`Var::matmul`] [`Var::matmul_t`] | `matmul::tests::grad_matmul_2d`, `grad_matmul_batched`, `grad_matmul_shared_rhs` |
//! | linear layer `x W^T + b` (fused on the CPU) | [`Var::linear`] | `linear::tests::grad_linear`, `gives_the_bits_of_matmul_then_add` |
//! | reshape / transpose / permute | [`Var::reshape`] [`Var::transpose`] [`Var::permute`] | `layout::tests::grad_{reshape,permute,transpose}` |
//! | concat / split / narrow | [`Var::concat`] [`Var::split`] [`Var::narrow`] | `layout::tests::grad_{concat,split}` |
//! | index-select along an axis | [`Var::index_select`] | `layout::tests::grad_index_select` |
//! | sum / mean, all and along an axis | [`Var::sum_all`] [`Var::mean_all`] [`Var::sum_axis`] [`Var::mean_axis`] | `reduce::tests::grad_{sum_all,mean_all,sum_axis,mean_axis}` |
//! | max / min along an axis | [`Var::max_axis`] [`Var::min_axis`] | `reduce::tests::grad_{max,min}_axis` |
//! | exp, log, sqrt, tanh, sigmoid, gelu, relu, clamp_min, log-sigmoid | [`Var::exp`] [`Var::ln`] [`Var::sqrt`] [`Var::tanh`] [`Var::sigmoid`] [`Var::gelu`] [`Var::relu`] [`Var::clamp_min`] [`Var::log_sigmoid`] | `activation::tests::grad_*`, `gelu_and_its_gradient_equal_the_definition` |
//! | softmax, log-softmax | [`Var::softmax`] [`Var::log_softmax`] | `softmax::tests::grad_{softmax,log_softmax}` |
//! | cross-entropy over integer targets | [`Var::cross_entropy`] | `cross_entropy::tests::grad_cross_entropy`, `equals_its_definition_in_general_ops` |
//! | layer norm with affine parameters | [`Var::layer_norm`] | `layer_norm::tests::grad_layer_norm`, `equals_its_definition_in_general_ops` |
//! | embedding lookup / row gather | [`Var::embedding`] | `embedding::tests::grad_embedding` |
//! | dropout | [`Var::dropout`] | `dropout::tests::grad_dropout` |
//! | masked fill | [`Var::masked_fill`] | `masked_fill::tests::grad_masked_fill` |
//! | row-wise L2 normalisation | [`Var::l2_normalize`] | `l2_normalize::tests::grad_l2_normalize` |
//! | gather by index along an axis | [`Var::gather`] | `gather::tests::grad_gather` |

#[allow(unused_imports)]
use crate::Var;

mod activation;
mod arithmetic;
mod cross_entropy;
mod dropout;
mod embedding;
mod gather;
mod l2_normalize;
mod layer_norm;
mod layout;
mod linear;
mod masked_fill;
mod matmul;
mod reduce;
mod softmax;

#[cfg(test)]
mod composite_tests;
