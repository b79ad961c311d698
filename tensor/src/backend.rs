//! The one interface every tensor op goes through.
//!
//! [`Tensor`]'s methods validate shapes and then call the backend of the tensor's device,
//! so autograd and model code never branch on device. A backend is two traits: [`Backend`],
//! the primitives (elementwise maps, broadcasting binary ops, matmul, reductions, gathers
//! and scatters, layout, random fills), which is all a new backend must write, and
//! [`FusedBackend`], the fused and specialised ops, whose default methods compose the
//! primitives ([`crate::composed`]). The CPU ([`crate::CpuBackend`]) and CUDA backends
//! override every fused op with a kernel of its own.
//!
//! A new backend: implement [`Backend`] (18 methods), write an empty
//! `impl FusedBackend<E> for MyBackend {}`, and [`register_backend`] it; tensors moved to
//! the device it returns are computed by it. `autograd/tests/core_only_backend.rs` does
//! exactly that and trains the MLP example on it.

use std::any::Any;
use std::sync::RwLock;

use rand::RngCore;

use crate::attention::{AttentionSpec, SeqLayout};
pub use crate::binary_op::BinaryOp;
use crate::composed;
use crate::dropout_mask::DropoutMask;
use crate::kernels::AdamParams;
pub use crate::unary_op::UnaryOp;
use crate::{Device, DeviceError, Element, Tensor};

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

/// The primitives a device provides: what a new backend must implement. Inputs are
/// already shape-checked by [`Tensor`]. Everything else (softmax, layer norm, attention,
/// Adam, ...) is in [`FusedBackend`], whose default methods compose these.
pub trait Backend<E: Element>: Sync {
    /// The device this backend computes on.
    fn device(&self) -> Device;
    /// Moves host data into a tensor on this device.
    fn upload(&self, data: Vec<E>, shape: &[usize]) -> Tensor<E>;
    /// Copies a tensor's data back to the host.
    fn to_vec(&self, x: &Tensor<E>) -> Vec<E>;
    /// An elementwise function.
    fn unary(&self, op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E>;
    /// `gy * op'(x)`, given the forward's output `y` ([`UnaryOp::derivative`]).
    fn unary_backward(
        &self,
        op: UnaryOp<E>,
        x: &Tensor<E>,
        y: &Tensor<E>,
        gy: &Tensor<E>,
    ) -> Tensor<E>;
    /// An elementwise function of two tensors, broadcast to `out_shape`.
    fn binary(&self, op: BinaryOp, a: &Tensor<E>, b: &Tensor<E>, out_shape: &[usize]) -> Tensor<E>;
    /// `op(a) @ op(b)` for 2-d operands or batches (`[.., m, k]`); `b` may be 2-d and shared.
    fn matmul(&self, a: &Tensor<E>, b: &Tensor<E>, trans_a: bool, trans_b: bool) -> Tensor<E>;
    /// Reduces `axis` away.
    fn reduce(&self, op: ReduceOp, x: &Tensor<E>, axis: usize) -> Tensor<E>;
    /// Max (`max = true`) or min along `axis`, with the index of the chosen element (first on ties).
    fn arg_reduce(&self, max: bool, x: &Tensor<E>, axis: usize) -> (Tensor<E>, Vec<usize>);
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
    /// A random tensor drawn from `rng` in row-major order.
    fn random(&self, fill: RandomFill, shape: &[usize], rng: &mut dyn RngCore) -> Tensor<E>;
}

/// Fused and specialised ops: each default method composes the [`Backend`] primitives
/// (in [`crate::composed`], where the maths is written out), so a backend that implements
/// only the core works with an empty `impl FusedBackend<E> for MyBackend {}`. The CPU and
/// CUDA backends override every one with a kernel, tested against the default.
pub trait FusedBackend<E: Element>: Backend<E> {
    /// `x w^T + bias` for `x`: `[m, k]`, `w`: `[n, k]`, `bias`: `[n]` (a linear layer).
    /// The default is the two ops; the CPU adds the bias as it stores the product.
    fn linear(&self, x: &Tensor<E>, w: &Tensor<E>, bias: &Tensor<E>) -> Tensor<E> {
        x.matmul_t(w, false, true).add(bias)
    }
    /// Softmax (or log-softmax) over the last axis.
    fn softmax(&self, x: &Tensor<E>, log: bool) -> Tensor<E> {
        composed::softmax(x, log)
    }
    /// Mean cross-entropy of logits `[n, c]` against `targets`, and its gradient
    /// `(softmax - onehot) / n`.
    fn cross_entropy(&self, x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
        composed::cross_entropy(x, targets)
    }
    /// Mean cross-entropy of the scores `h w^T` (`h`: `[n, d]`, `w`: `[c, d]`) against
    /// `targets`, and what [`linear_cross_entropy_backward`](FusedBackend::linear_cross_entropy_backward)
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
    /// `(dh, dw)` of `g` times [`linear_cross_entropy`](FusedBackend::linear_cross_entropy)'s
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
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        composed::layer_norm(x, gamma, beta, eps)
    }
    /// The gradients `(dx, dgamma, dbeta)` of [`layer_norm`](FusedBackend::layer_norm) given
    /// the output gradient `g` and the forward's statistics.
    fn layer_norm_backward(
        &self,
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        mean: &Tensor<E>,
        rstd: &Tensor<E>,
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        composed::layer_norm_backward(x, gamma, mean, rstd, g)
    }
    /// Fused causal attention over packed sequences: `(context, probabilities)`.
    fn attention(
        &self,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        composed::attention(q, kv, spec)
    }
    /// The gradients `(dq, dkv)` of [`attention`](FusedBackend::attention).
    fn attention_backward(
        &self,
        g: &Tensor<E>,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        probs: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        composed::attention_backward(g, q, kv, probs, spec)
    }
    /// A pair's `[InfoNCE, regulariser term]` and their gradients, from its similarity
    /// matrix (see [`Tensor::contrastive_pair`]).
    fn contrastive_pair(&self, s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        composed::contrastive_pair(s)
    }
    /// Caser's horizontal convolution max-pooled over time (see
    /// [`Tensor::conv_max_pool`]): `([b, n], the window of each maximum)`.
    fn conv_max_pool(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        bias: &Tensor<E>,
    ) -> (Tensor<E>, Vec<usize>) {
        composed::conv_max_pool(x, w, bias)
    }
    /// `(dx, dw, dbias)` of [`conv_max_pool`](FusedBackend::conv_max_pool).
    fn conv_max_pool_backward(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        at: &[usize],
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        composed::conv_max_pool_backward(x, w, at, g)
    }
    /// The GRU recurrence over packed sequences (see [`Tensor::gru_recurrence`]):
    /// `(states, saved)`.
    fn gru_recurrence(
        &self,
        gi: &Tensor<E>,
        w_hh: &Tensor<E>,
        b_hh: Option<&Tensor<E>>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        composed::gru_recurrence(gi, w_hh, b_hh, layout)
    }
    /// `(dgi, dgh)` of [`gru_recurrence`](FusedBackend::gru_recurrence).
    fn gru_recurrence_backward(
        &self,
        g: &Tensor<E>,
        w_hh: &Tensor<E>,
        states: &Tensor<E>,
        saved: &Tensor<E>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        composed::gru_recurrence_backward(g, w_hh, states, saved, layout)
    }
    /// `x` times the dropout mask's factor of each element (row-major index).
    fn dropout(&self, x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
        composed::dropout(x, mask)
    }
    /// Rows `table[idx[i]]` of a 2-d table: `[idx.len(), cols]`.
    fn gather_rows(&self, table: &Tensor<E>, idx: &[usize]) -> Tensor<E> {
        self.index_select(table, 0, idx)
    }
    /// The adjoint of `gather_rows`: `out[idx[i]] += src[i]`, `n_rows` rows.
    fn scatter_add_rows(&self, src: &Tensor<E>, idx: &[usize], n_rows: usize) -> Tensor<E> {
        composed::scatter_add_rows(src, idx, n_rows)
    }
    /// `dst[idx[i]] += src[i]` in place (see [`Tensor::add_rows`]).
    fn add_rows(&self, dst: &mut Tensor<E>, src: &Tensor<E>, idx: &[usize]) {
        *dst = dst.add(&composed::scatter_add_rows(src, idx, dst.shape()[0]));
    }
    /// The `k` largest entries of each row (last axis), in descending order, with indices.
    fn topk_rows(&self, x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>) {
        composed::topk_rows(x, k)
    }
    /// For each row `r` (last axis) of `x`, how many entries exceed `x[r, cols[r]]`.
    fn count_greater(&self, x: &Tensor<E>, cols: &[usize]) -> Vec<usize> {
        composed::count_greater(x, cols)
    }
    /// One Adam step on `p` with moments `m`, `v`, in place.
    fn adam_step(
        &self,
        p: &mut Tensor<E>,
        g: &Tensor<E>,
        m: &mut Tensor<E>,
        v: &mut Tensor<E>,
        h: &AdamParams,
    ) {
        composed::adam_step(p, g, m, v, h)
    }
}

/// The backend that computes for `device`.
pub fn backend_for<E: Element>(device: Device) -> &'static dyn FusedBackend<E> {
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
        Device::Registered(i) => registered(i),
    }
}

/// The backends registered at run time, each a `&'static dyn FusedBackend<E>` for one `E`.
static REGISTERED: RwLock<Vec<Box<dyn Any + Send + Sync>>> = RwLock::new(Vec::new());

/// Registers a backend for elements `E` and returns its device: tensors moved there with
/// [`Tensor::to_device`] are computed by it. `make` gets the device it will answer for (its
/// [`Backend::device`]). The data of a registered backend's tensors is host memory (see
/// [`Tensor::on_host_device`]); its ops are its own. The way to try a backend that
/// implements only the [`Backend`] core: every [`FusedBackend`] op then runs its default.
pub fn register_backend<E: Element>(
    make: impl FnOnce(Device) -> &'static dyn FusedBackend<E>,
) -> Device {
    let mut all = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
    let device = Device::Registered(all.len());
    all.push(Box::new(make(device)));
    device
}

fn registered<E: Element>(i: usize) -> &'static dyn FusedBackend<E> {
    let all = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
    all.get(i)
        .and_then(|b| b.downcast_ref::<&'static dyn FusedBackend<E>>())
        .copied()
        .unwrap_or_else(|| panic!("registered:{i} has no backend for {} tensors", E::NAME))
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
