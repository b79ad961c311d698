//! The one interface every tensor op goes through.
//!
//! [`Tensor`]'s methods validate shapes and then call the [`Backend`] of the tensor's
//! device. The CPU backend ([`crate::cpu::CpuBackend`]) implements every method; a CUDA
//! backend implements the same trait, so autograd and model code never branch on device.

use rand::RngCore;

use crate::attention::AttentionSpec;
use crate::dropout_mask::DropoutMask;
use crate::kernels::AdamParams;
use crate::{Device, DeviceError, Element, Tensor};

/// Elementwise functions of one tensor (with an optional scalar operand).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp<E> {
    /// `-x`
    Neg,
    /// `exp(x)`
    Exp,
    /// `ln(x)`
    Ln,
    /// `sqrt(x)`
    Sqrt,
    /// `tanh(x)`
    Tanh,
    /// `erf(x)`
    Erf,
    /// `x/2 (1 + erf(x/sqrt 2))`
    Gelu,
    /// `max(x, 0)`
    Relu,
    /// `1 / x`
    Recip,
    /// `x * x`
    Square,
    /// `|x|`
    Abs,
    /// `x + c`
    AddScalar(E),
    /// `x * c`
    MulScalar(E),
    /// `max(x, c)`
    ClampMin(E),
    /// `min(x, c)`
    ClampMax(E),
    /// `1` where `x > c`, else `0`
    GtScalar(E),
    /// `x^c`
    Powf(E),
}

/// Elementwise functions of two tensors, with NumPy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
}

/// Reductions along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

/// What a seeded random fill draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RandomFill {
    /// Uniform on `[lo, hi)`.
    Uniform(f64, f64),
    /// Normal with this mean and standard deviation.
    Normal(f64, f64),
    /// `1` with probability `p`, else `0`.
    Bernoulli(f64),
}

/// The operations a device provides. Inputs are already shape-checked by [`Tensor`].
pub trait Backend<E: Element>: Sync {
    /// The device this backend computes on.
    fn device(&self) -> Device;
    /// Moves host data into a tensor on this device.
    fn upload(&self, data: Vec<E>, shape: &[usize]) -> Tensor<E>;
    /// Copies a tensor's data back to the host.
    fn to_vec(&self, x: &Tensor<E>) -> Vec<E>;
    /// An elementwise function.
    fn unary(&self, op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E>;
    /// `gy * gelu'(x)`.
    fn gelu_backward(&self, x: &Tensor<E>, gy: &Tensor<E>) -> Tensor<E>;
    /// An elementwise function of two tensors, broadcast to `out_shape`.
    fn binary(&self, op: BinaryOp, a: &Tensor<E>, b: &Tensor<E>, out_shape: &[usize]) -> Tensor<E>;
    /// `op(a) @ op(b)` for 2-d operands or batches (`[.., m, k]`); `b` may be 2-d and shared.
    fn matmul(&self, a: &Tensor<E>, b: &Tensor<E>, trans_a: bool, trans_b: bool) -> Tensor<E>;
    /// `x w^T + bias` for `x`: `[m, k]`, `w`: `[n, k]`, `bias`: `[n]` (a linear layer).
    /// The default is the two ops; the CPU adds the bias as it stores the product.
    fn linear(&self, x: &Tensor<E>, w: &Tensor<E>, bias: &Tensor<E>) -> Tensor<E> {
        x.matmul_t(w, false, true).add(bias)
    }
    /// Reduces `axis` away.
    fn reduce(&self, op: ReduceOp, x: &Tensor<E>, axis: usize) -> Tensor<E>;
    /// Max (`max = true`) or min along `axis`, with the index of the chosen element (first on ties).
    fn arg_reduce(&self, max: bool, x: &Tensor<E>, axis: usize) -> (Tensor<E>, Vec<usize>);
    /// Softmax (or log-softmax) over the last axis.
    fn softmax(&self, x: &Tensor<E>, log: bool) -> Tensor<E>;
    /// Mean cross-entropy of logits `[n, c]` against `targets`, and its gradient
    /// `(softmax - onehot) / n`.
    fn cross_entropy(&self, x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>);
    /// Mean cross-entropy of the scores `h w^T` (`h`: `[n, d]`, `w`: `[c, d]`) against
    /// `targets`, and what [`linear_cross_entropy_backward`](Backend::linear_cross_entropy_backward)
    /// needs from the forward. The default is the unfused ops, keeping the gradient of the
    /// `[n, c]` scores; the CPU keeps the scores' exponentials per block of classes and the
    /// factors that normalise them.
    fn linear_cross_entropy(
        &self,
        h: &Tensor<E>,
        w: &Tensor<E>,
        targets: &[usize],
    ) -> (f64, Tensor<E>) {
        h.matmul_t(w, false, true).cross_entropy(targets)
    }
    /// `(dh, dw)` of `g` times [`linear_cross_entropy`](Backend::linear_cross_entropy)'s
    /// loss, given what the forward kept. The default: `G = g saved`, `dh = G w`, `dw = G^T h`.
    fn linear_cross_entropy_backward(
        &self,
        h: &Tensor<E>,
        w: &Tensor<E>,
        _targets: &[usize],
        saved: &Tensor<E>,
        g: E,
    ) -> (Tensor<E>, Tensor<E>) {
        let grad = saved.mul_scalar(g);
        (grad.matmul(w), grad.matmul_t(h, true, false))
    }
    /// Layer norm over the last axis: `(y, mean, rstd)`, the statistics one per row.
    fn layer_norm(
        &self,
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        beta: &Tensor<E>,
        eps: E,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>);
    /// The gradients `(dx, dgamma, dbeta)` of [`layer_norm`](Backend::layer_norm) given the
    /// output gradient `g` and the forward's statistics, in one pass over the rows.
    fn layer_norm_backward(
        &self,
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        mean: &Tensor<E>,
        rstd: &Tensor<E>,
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>);
    /// Fused causal attention over packed sequences: `(context, probabilities)`.
    fn attention(
        &self,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>);
    /// The gradients `(dq, dkv)` of [`attention`](Backend::attention).
    fn attention_backward(
        &self,
        g: &Tensor<E>,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        probs: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>);
    /// A pair's `[InfoNCE, regulariser term]` and their gradients, from its similarity
    /// matrix (see [`Tensor::contrastive_pair`]).
    fn contrastive_pair(&self, s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>);
    /// `x` times the dropout mask's factor of each element (row-major index).
    fn dropout(&self, x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E>;
    /// Rows `table[idx[i]]` of a 2-d table: `[idx.len(), cols]`.
    fn gather_rows(&self, table: &Tensor<E>, idx: &[usize]) -> Tensor<E>;
    /// The adjoint of `gather_rows`: `out[idx[i]] += src[i]`, `n_rows` rows.
    fn scatter_add_rows(&self, src: &Tensor<E>, idx: &[usize], n_rows: usize) -> Tensor<E>;
    /// `torch.gather`: `out[.., j, ..] = x[.., idx[.., j, ..], ..]` along `axis`; `idx` has `out_shape`.
    fn gather(&self, x: &Tensor<E>, axis: usize, idx: &[usize], out_shape: &[usize]) -> Tensor<E>;
    /// The adjoint of `gather`: a tensor of `shape` with `src` added at the gathered places.
    fn scatter_add(
        &self,
        src: &Tensor<E>,
        axis: usize,
        idx: &[usize],
        shape: &[usize],
    ) -> Tensor<E>;
    /// Repeats `x` along broadcast axes to `shape` (a copy).
    fn broadcast_to(&self, x: &Tensor<E>, shape: &[usize]) -> Tensor<E>;
    /// Reorders the axes (a copy).
    fn permute(&self, x: &Tensor<E>, perm: &[usize]) -> Tensor<E>;
    /// Joins tensors along `axis`.
    fn concat(&self, xs: &[&Tensor<E>], axis: usize) -> Tensor<E>;
    /// `len` entries of `axis` from `start` (a copy).
    fn narrow(&self, x: &Tensor<E>, axis: usize, start: usize, len: usize) -> Tensor<E>;
    /// Entries of `axis` in the order `idx`.
    fn index_select(&self, x: &Tensor<E>, axis: usize, idx: &[usize]) -> Tensor<E>;
    /// `x` with `value` wherever the broadcast `mask` is non-zero.
    fn masked_fill(&self, x: &Tensor<E>, mask: &Tensor<E>, value: E) -> Tensor<E>;
    /// The `k` largest entries of each row (last axis), in descending order, with indices.
    fn topk_rows(&self, x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>);
    /// For each row `r` (last axis) of `x`, how many entries exceed `x[r, cols[r]]`.
    fn count_greater(&self, x: &Tensor<E>, cols: &[usize]) -> Vec<usize>;
    /// A random tensor drawn from `rng` in row-major order.
    fn random(&self, fill: RandomFill, shape: &[usize], rng: &mut dyn RngCore) -> Tensor<E>;
    /// One Adam step on `p` with moments `m`, `v`, in place.
    fn adam_step(
        &self,
        p: &mut Tensor<E>,
        g: &Tensor<E>,
        m: &mut Tensor<E>,
        v: &mut Tensor<E>,
        h: &AdamParams,
    );
}

/// The backend that computes for `device`.
pub fn backend_for<E: Element>(device: Device) -> &'static dyn Backend<E> {
    match device {
        Device::Cpu => &crate::cpu::CpuBackend,
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::CudaBackend::get(i).unwrap_or_else(|e| {
            // Only reachable for a device that passed `Device::cuda` and then failed to set
            // up (out of memory, a broken driver): there is no CPU answer to give instead.
            panic!("cuda:{i} could not be initialised: {e}")
        }),
        // No CUDA tensor can exist in a build without the backend.
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => unreachable!("CUDA tensors cannot be created without a CUDA backend"),
    }
}

/// Whether CUDA device `ordinal` can be used by this build.
#[cfg(not(feature = "cuda"))]
pub(crate) fn cuda_available(_ordinal: usize) -> Result<(), DeviceError> {
    Err(DeviceError::NoCudaBuild)
}

/// Whether CUDA device `ordinal` can be used: the driver library loads, initialises, has a
/// GPU with this ordinal, and the backend sets up on it. Never panics (see
/// `crate::cuda::available`).
#[cfg(feature = "cuda")]
pub(crate) fn cuda_available(ordinal: usize) -> Result<(), DeviceError> {
    crate::cuda::available(ordinal)
}
