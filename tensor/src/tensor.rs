//! The [`Tensor`] type: a dense, row-major, immutable array on a device.

use std::fmt;
use std::sync::Arc;

use rand::RngCore;

use crate::backend::{backend_for, BinaryOp, FusedBackend, RandomFill, ReduceOp, UnaryOp};
use crate::kernels::AdamParams;
use crate::shape::{broadcast_shapes, numel};
use crate::{Device, Element};

/// Where a tensor's elements are kept.
#[derive(Clone)]
pub(crate) enum Storage<E: Element> {
    /// Host memory shared between clones (ops never mutate shared data). The allocation may
    /// be longer than the tensor (a pooled buffer's size class): the tensor is its first
    /// `numel` elements.
    Cpu(Arc<HostVec<E>>),
    /// Host memory of a backend registered at run time (`Device::Registered`).
    Registered(Arc<HostVec<E>>, usize),
    /// Device memory on one GPU, shared between clones like the host `Vec`.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage<E>),
}

/// A host allocation that goes back to the CPU backend's buffer pool when the last tensor
/// using it is dropped.
pub(crate) struct HostVec<E: Element>(Vec<E>);

impl<E: Element> Clone for HostVec<E> {
    fn clone(&self) -> Self {
        HostVec(self.0.clone())
    }
}

impl<E: Element> Drop for HostVec<E> {
    fn drop(&mut self) {
        crate::cpu::give_back(std::mem::take(&mut self.0));
    }
}

/// A dense row-major tensor of `f32` (the default) or `f64` on a [`Device`].
///
/// Tensors are values: every op returns a new tensor and cloning is cheap (the storage is
/// reference-counted). Shape errors are programming errors and panic with both shapes in the
/// message, as `ndarray` does.
///
/// ```
/// use mclrec_tensor::Tensor;
/// let a = Tensor::<f32>::from_vec(vec![1., 2., 3., 4., 5., 6.], &[2, 3]);
/// let b = Tensor::from_vec(vec![1., 0., 0., 1., 1., 1.], &[3, 2]);
/// let c = a.matmul(&b);                       // [2, 2]
/// assert_eq!(c.to_vec(), vec![4., 5., 10., 11.]);
/// let s = c.softmax();                        // rows sum to 1
/// assert!((s.sum_axis(1).to_vec()[0] - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone)]
pub struct Tensor<E: Element = f32> {
    shape: Arc<[usize]>,
    pub(crate) storage: Storage<E>,
}

impl<E: Element> Tensor<E> {
    // ---------------------------------------------------------------- construction

    /// A CPU tensor holding `data` in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<E>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            numel(shape),
            "Tensor::from_vec: {} values do not fill shape {:?}",
            data.len(),
            shape
        );
        Tensor {
            shape: shape.into(),
            storage: Storage::Cpu(Arc::new(HostVec(data))),
        }
    }

    /// A CPU tensor over a backend buffer (its first `numel(shape)` elements).
    pub(crate) fn from_buffer(buffer: crate::cpu::Buffer<E>, shape: &[usize]) -> Self {
        let (data, len) = buffer.into_parts();
        assert_eq!(
            len,
            numel(shape),
            "{len} values do not fill shape {shape:?}"
        );
        Tensor {
            shape: shape.into(),
            storage: Storage::Cpu(Arc::new(HostVec(data))),
        }
    }

    /// A CPU tensor from `f64` values (handy in tests and examples).
    pub fn from_f64s(data: &[f64], shape: &[usize]) -> Self {
        Self::from_vec(data.iter().map(|&v| E::from_f64(v)).collect(), shape)
    }

    /// `self`'s elements (shared, not copied) as a tensor of the host-memory device
    /// `device`: [`Device::Cpu`] or a [`Device::Registered`] backend. How a registered
    /// backend builds its outputs from host data, and hands its tensors to CPU code.
    ///
    /// ```
    /// use mclrec_tensor::{Device, Tensor};
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
    /// assert_eq!(x.on_host_device(Device::Registered(7)).device(), Device::Registered(7));
    /// ```
    ///
    /// # Panics
    /// If `self` or `device` is a GPU.
    pub fn on_host_device(&self, device: Device) -> Self {
        let data = match &self.storage {
            Storage::Cpu(d) | Storage::Registered(d, _) => d.clone(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => panic!("on_host_device: {} is not host memory", self.device()),
        };
        let storage = match device {
            Device::Cpu => Storage::Cpu(data),
            Device::Registered(i) => Storage::Registered(data, i),
            Device::Cuda(_) => panic!("on_host_device: {device} is not host memory"),
        };
        Tensor {
            shape: self.shape.clone(),
            storage,
        }
    }

    /// A tensor of `shape` with every element `value`.
    pub fn full(shape: &[usize], value: E) -> Self {
        let mut b = crate::cpu::output(numel(shape));
        b.fill(value);
        Self::from_buffer(b, shape)
    }

    /// Zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, E::zero())
    }

    /// Ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, E::one())
    }

    /// A rank-0 tensor.
    pub fn scalar(value: E) -> Self {
        Self::from_vec(vec![value], &[])
    }

    /// A tensor of `shape` filled with `value` on the same device as `self` (the
    /// constructors above make CPU tensors; code that must work on any device, such as a
    /// gradient seed or optimizer state, starts from an existing tensor instead).
    pub fn full_like(&self, shape: &[usize], value: E) -> Self {
        match self.device() {
            Device::Cpu => Self::full(shape, value),
            d => backend_for::<E>(d).upload(vec![value; numel(shape)], shape),
        }
    }

    /// A tensor of `shape` holding `data` (row-major) on the same device as `self`.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    pub fn from_vec_like(&self, data: Vec<E>, shape: &[usize]) -> Self {
        match self.device() {
            Device::Cpu => Self::from_vec(data, shape),
            d => {
                assert_eq!(
                    data.len(),
                    numel(shape),
                    "{} values for shape {shape:?}",
                    data.len()
                );
                backend_for::<E>(d).upload(data, shape)
            }
        }
    }

    /// Zeros of `self`'s shape on `self`'s device.
    pub fn zeros_like(&self) -> Self {
        self.full_like(self.shape(), E::zero())
    }

    /// Uniform values on `[lo, hi)` drawn from `rng` (reproducible for a seeded rng).
    pub fn uniform(shape: &[usize], lo: f64, hi: f64, rng: &mut dyn RngCore) -> Self {
        backend_for::<E>(Device::Cpu).random(RandomFill::Uniform(lo, hi), shape, rng)
    }

    /// Normal values with `mean` and `std` drawn from `rng`.
    pub fn normal(shape: &[usize], mean: f64, std: f64, rng: &mut dyn RngCore) -> Self {
        backend_for::<E>(Device::Cpu).random(RandomFill::Normal(mean, std), shape, rng)
    }

    /// A 0/1 mask with `P(1) = p` drawn from `rng`.
    pub fn bernoulli(shape: &[usize], p: f64, rng: &mut dyn RngCore) -> Self {
        backend_for::<E>(Device::Cpu).random(RandomFill::Bernoulli(p), shape, rng)
    }

    /// Wraps an `ndarray` array (copied into row-major order).
    pub fn from_ndarray(a: ndarray::ArrayD<E>) -> Self {
        let shape = a.shape().to_vec();
        let data = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            a.iter().copied().collect()
        };
        Self::from_vec(data, &shape)
    }

    // ---------------------------------------------------------------- inspection

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Registered(_, i) => Device::Registered(*i),
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => Device::Cuda(c.ordinal()),
        }
    }

    /// A copy of this tensor on `device` (the same tensor, cheaply cloned, when it is already
    /// there). Moving to CUDA checks the device first, so a missing driver, a missing GPU or a
    /// build without `cuda` is an error, never a panic.
    pub fn to_device(&self, device: Device) -> Result<Self, crate::DeviceError> {
        if device == self.device() {
            return Ok(self.clone());
        }
        if let Device::Cuda(i) = device {
            crate::backend::cuda_available(i)?;
        }
        // Through the host: a CUDA-to-CUDA move between two GPUs is rare enough here.
        let data = self.to_vec();
        Ok(backend_for::<E>(device).upload(data, self.shape()))
    }

    /// A tensor of `shape` around existing storage (the backends' constructor).
    #[allow(dead_code)] // only the CUDA backend builds tensors this way
    pub(crate) fn from_storage(storage: Storage<E>, shape: &[usize]) -> Self {
        Tensor {
            shape: shape.into(),
            storage,
        }
    }

    pub(crate) fn backend(&self) -> &'static dyn FusedBackend<E> {
        backend_for(self.device())
    }

    /// The elements in row-major order, copied to the host.
    pub fn to_vec(&self) -> Vec<E> {
        self.backend().to_vec(self)
    }

    /// The elements as `f64` (handy in tests).
    pub fn to_f64s(&self) -> Vec<f64> {
        self.to_vec().into_iter().map(E::as_f64).collect()
    }

    /// The host slice of a CPU tensor.
    ///
    /// # Panics
    /// If the tensor is not on the CPU (CPU code paths only; use [`to_vec`](Self::to_vec) to
    /// read a device tensor).
    pub fn as_slice(&self) -> &[E] {
        match &self.storage {
            Storage::Cpu(d) | Storage::Registered(d, _) => &d.0[..numel(&self.shape)],
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => panic!(
                "Tensor::as_slice on a tensor of shape {:?} on cuda:{}: host slices exist only \
                 for CPU tensors (use to_vec() or to_device(Device::Cpu))",
                self.shape(),
                c.ordinal()
            ),
        }
    }

    /// The mutable host slice of a CPU tensor, copying the data first if it is shared.
    ///
    /// # Panics
    /// If the tensor is not on the CPU.
    pub fn as_mut_slice(&mut self) -> &mut [E] {
        match &mut self.storage {
            Storage::Cpu(d) | Storage::Registered(d, _) => {
                &mut Arc::make_mut(d).0[..numel(&self.shape)]
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => panic!(
                "Tensor::as_mut_slice on a tensor of shape {:?} on cuda:{}: host slices exist \
                 only for CPU tensors",
                self.shape,
                c.ordinal()
            ),
        }
    }

    /// The single value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor has more than one element.
    pub fn item(&self) -> E {
        assert_eq!(self.numel(), 1, "Tensor::item on shape {:?}", self.shape());
        self.to_vec()[0]
    }

    /// A copy as an `ndarray` array.
    pub fn to_ndarray(&self) -> ndarray::ArrayD<E> {
        ndarray::ArrayD::from_shape_vec(self.shape().to_vec(), self.to_vec())
            .expect("shape matches data")
    }

    /// The same data seen with another shape of the same size (no copy).
    ///
    /// # Panics
    /// If the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Self {
        assert_eq!(
            numel(shape),
            self.numel(),
            "reshape {:?} -> {:?}: sizes differ",
            self.shape(),
            shape
        );
        Tensor {
            shape: shape.into(),
            storage: self.storage.clone(),
        }
    }

    fn axis(&self, axis: usize, what: &str) {
        assert!(
            axis < self.rank(),
            "{what}: axis {axis} out of range for shape {:?}",
            self.shape()
        );
    }

    // ---------------------------------------------------------------- elementwise

    /// Applies an elementwise function.
    pub fn unary(&self, op: UnaryOp<E>) -> Self {
        self.backend().unary(op, self)
    }

    /// Applies an elementwise function of two broadcast tensors.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    pub fn binary(&self, op: BinaryOp, other: &Self) -> Self {
        let out = broadcast_shapes(self.shape(), other.shape()).unwrap_or_else(|| {
            panic!(
                "{op:?}: shapes {:?} and {:?} do not broadcast",
                self.shape(),
                other.shape()
            )
        });
        self.backend().binary(op, self, other, &out)
    }

    /// `self + other` (broadcasting).
    pub fn add(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Add, other)
    }
    /// `self - other` (broadcasting).
    pub fn sub(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Sub, other)
    }
    /// `self * other` (broadcasting).
    pub fn mul(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Mul, other)
    }
    /// `self / other` (broadcasting).
    pub fn div(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Div, other)
    }
    /// Elementwise maximum (broadcasting).
    pub fn maximum(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Max, other)
    }
    /// Elementwise minimum (broadcasting).
    pub fn minimum(&self, other: &Self) -> Self {
        self.binary(BinaryOp::Min, other)
    }
    /// `self + c`.
    pub fn add_scalar(&self, c: E) -> Self {
        self.unary(UnaryOp::AddScalar(c))
    }
    /// `self * c`.
    pub fn mul_scalar(&self, c: E) -> Self {
        self.unary(UnaryOp::MulScalar(c))
    }
    /// `-self`.
    pub fn neg(&self) -> Self {
        self.unary(UnaryOp::Neg)
    }
    /// `exp`.
    pub fn exp(&self) -> Self {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm.
    pub fn ln(&self) -> Self {
        self.unary(UnaryOp::Ln)
    }
    /// Square root.
    pub fn sqrt(&self) -> Self {
        self.unary(UnaryOp::Sqrt)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Self {
        self.unary(UnaryOp::Tanh)
    }
    /// The error function.
    pub fn erf(&self) -> Self {
        self.unary(UnaryOp::Erf)
    }
    /// `1 / (1 + e^-x)`, without overflow for any `x`.
    pub fn sigmoid(&self) -> Self {
        self.unary(UnaryOp::Sigmoid)
    }
    /// GELU, erf form: `x/2 (1 + erf(x / sqrt 2))`.
    pub fn gelu(&self) -> Self {
        self.unary(UnaryOp::Gelu)
    }
    /// `grad * op'(self)`, the backward product of `y = self.unary(op)` (the derivative is
    /// [`UnaryOp::derivative`], which may read `y` instead of `self`).
    ///
    /// ```
    /// use mclrec_tensor::{Tensor, UnaryOp};
    /// let x = Tensor::<f64>::from_f64s(&[0.0, 1.0], &[2]);
    /// let y = x.exp();
    /// let g = x.unary_backward(UnaryOp::Exp, &y, &Tensor::ones(&[2]));
    /// assert_eq!(g.to_f64s(), y.to_f64s());
    /// ```
    pub fn unary_backward(&self, op: UnaryOp<E>, y: &Self, grad: &Self) -> Self {
        assert!(
            self.shape() == y.shape() && self.shape() == grad.shape(),
            "unary_backward: shapes {:?}, {:?}, {:?} differ",
            self.shape(),
            y.shape(),
            grad.shape()
        );
        self.backend().unary_backward(op, self, y, grad)
    }
    /// `max(x, 0)`.
    pub fn relu(&self) -> Self {
        self.unary(UnaryOp::Relu)
    }
    /// `max(x, c)`.
    pub fn clamp_min(&self, c: E) -> Self {
        self.unary(UnaryOp::ClampMin(c))
    }
    /// `min(x, c)`.
    pub fn clamp_max(&self, c: E) -> Self {
        self.unary(UnaryOp::ClampMax(c))
    }
    /// `1` where `x > c`, else `0`.
    pub fn gt_scalar(&self, c: E) -> Self {
        self.unary(UnaryOp::GtScalar(c))
    }
    /// `x * x`.
    pub fn square(&self) -> Self {
        self.unary(UnaryOp::Square)
    }
    /// `1 / x`.
    pub fn recip(&self) -> Self {
        self.unary(UnaryOp::Recip)
    }
    /// `x^c`.
    pub fn powf(&self, c: E) -> Self {
        self.unary(UnaryOp::Powf(c))
    }

    // ---------------------------------------------------------------- matmul

    /// Matrix product `self @ other` of `[m, k]` and `[k, n]`, or batched (`[.., m, k]` with
    /// `[.., k, n]` or a shared `[k, n]`).
    pub fn matmul(&self, other: &Self) -> Self {
        self.matmul_t(other, false, false)
    }

    /// `op(self) @ op(other)` where `op` transposes the last two axes when asked. The
    /// transpose is a change of strides given to the GEMM, never a copy.
    pub fn matmul_t(&self, other: &Self, trans_a: bool, trans_b: bool) -> Self {
        let (ra, rb) = (self.rank(), other.rank());
        assert!(
            ra >= 2 && rb >= 2,
            "matmul needs rank >= 2, got {:?} and {:?}",
            self.shape(),
            other.shape()
        );
        let ka = if trans_a {
            self.shape()[ra - 2]
        } else {
            self.shape()[ra - 1]
        };
        let kb = if trans_b {
            other.shape()[rb - 1]
        } else {
            other.shape()[rb - 2]
        };
        assert_eq!(
            ka,
            kb,
            "matmul: inner dimensions differ: {:?}{} @ {:?}{}",
            self.shape(),
            if trans_a { "^T" } else { "" },
            other.shape(),
            if trans_b { "^T" } else { "" }
        );
        assert!(
            rb == 2 || self.shape()[..ra - 2] == other.shape()[..rb - 2],
            "matmul: batch dimensions differ: {:?} @ {:?}",
            self.shape(),
            other.shape()
        );
        self.backend().matmul(self, other, trans_a, trans_b)
    }

    /// A linear layer, `self w^T + bias` (`self`: `[m, k]` rows, `w`: `[n, k]` as PyTorch's
    /// `nn.Linear` stores it, `bias`: `[n]`): the same numbers as
    /// `self.matmul_t(w, false, true).add(bias)`, in one pass over the output on the CPU.
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    /// let x = Tensor::<f32>::from_f64s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let w = Tensor::from_f64s(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]);
    /// let b = Tensor::from_f64s(&[0.5, -0.5, 0.0], &[3]);
    /// assert_eq!(x.linear(&w, &b).to_vec(), vec![1.5, 1.5, 3.0, 3.5, 3.5, 7.0]);
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree.
    pub fn linear(&self, w: &Self, bias: &Self) -> Self {
        assert!(
            self.rank() == 2
                && w.rank() == 2
                && bias.shape() == [w.shape()[0]]
                && self.shape()[1] == w.shape()[1],
            "linear: expected [m, k] x [n, k]^T + [n], got {:?}, {:?}, {:?}",
            self.shape(),
            w.shape(),
            bias.shape()
        );
        self.backend().linear(self, w, bias)
    }

    // ---------------------------------------------------------------- reductions

    /// Reduces `axis` away with `op`.
    pub fn reduce(&self, op: ReduceOp, axis: usize) -> Self {
        self.axis(axis, "reduce");
        self.backend().reduce(op, self, axis)
    }
    /// Sum along `axis` (the axis is removed).
    pub fn sum_axis(&self, axis: usize) -> Self {
        self.reduce(ReduceOp::Sum, axis)
    }
    /// Mean along `axis` (the axis is removed).
    pub fn mean_axis(&self, axis: usize) -> Self {
        self.reduce(ReduceOp::Mean, axis)
    }
    /// Sum along `axis`, keeping it with size 1.
    pub fn sum_keepdim(&self, axis: usize) -> Self {
        let mut shape = self.shape().to_vec();
        shape[axis] = 1;
        self.sum_axis(axis).reshape(&shape)
    }
    /// The sum of all elements, as a rank-0 tensor.
    pub fn sum_all(&self) -> Self {
        self.reshape(&[self.numel()]).sum_axis(0)
    }
    /// The mean of all elements, as a rank-0 tensor.
    pub fn mean_all(&self) -> Self {
        self.reshape(&[self.numel()]).mean_axis(0)
    }
    /// The maximum along `axis` and the index of each maximum (first one on ties).
    pub fn max_axis(&self, axis: usize) -> (Self, Vec<usize>) {
        self.axis(axis, "max_axis");
        self.backend().arg_reduce(true, self, axis)
    }
    /// The minimum along `axis` and the index of each minimum (first one on ties).
    pub fn min_axis(&self, axis: usize) -> (Self, Vec<usize>) {
        self.axis(axis, "min_axis");
        self.backend().arg_reduce(false, self, axis)
    }
    /// Sums a broadcast result back to `shape` (the adjoint of broadcasting).
    pub fn sum_to_shape(&self, shape: &[usize]) -> Self {
        if self.shape() == shape {
            return self.clone();
        }
        let lead = self.rank() - shape.len();
        let mut t = self.clone();
        for _ in 0..lead {
            t = t.sum_axis(0);
        }
        for (ax, &d) in shape.iter().enumerate() {
            if d == 1 && t.shape()[ax] != 1 {
                t = t.sum_keepdim(ax);
            }
        }
        t.reshape(shape)
    }

    // ---------------------------------------------------------------- normalisation

    /// Softmax over the last axis (max-subtracted, so it never overflows).
    pub fn softmax(&self) -> Self {
        assert!(self.rank() >= 1, "softmax of a scalar");
        self.backend().softmax(self, false)
    }
    /// Log-softmax over the last axis.
    pub fn log_softmax(&self) -> Self {
        assert!(self.rank() >= 1, "log_softmax of a scalar");
        self.backend().softmax(self, true)
    }
    /// Layer norm over the last axis with affine `gamma`, `beta` (both `[n]`); returns the
    /// output and the per-row `mean` and `rstd = 1/sqrt(var + eps)` (shape without the last
    /// axis) that the backward pass needs.
    pub fn layer_norm(&self, gamma: &Self, beta: &Self, eps: E) -> (Self, Self, Self) {
        let n = *self.shape().last().expect("layer_norm of a scalar");
        assert!(
            gamma.shape() == [n] && beta.shape() == [n],
            "layer_norm: gamma/beta must be [{n}]"
        );
        self.backend().layer_norm(self, gamma, beta, eps)
    }

    /// Mean cross-entropy of logits `self` (`[n, classes]`) against `targets`, with its
    /// gradient `(softmax(self) - onehot(targets)) / n` (what the backward pass needs, made
    /// while each row is in cache).
    ///
    /// # Panics
    /// If `self` is not 2-d, or the targets do not match its rows and classes.
    pub fn cross_entropy(&self, targets: &[usize]) -> (f64, Self) {
        assert_eq!(
            self.rank(),
            2,
            "cross_entropy needs [n, classes] logits, got {:?}",
            self.shape()
        );
        let (n, c) = (self.shape()[0], self.shape()[1]);
        assert_eq!(
            targets.len(),
            n,
            "cross_entropy: {} targets for {n} rows",
            targets.len()
        );
        assert!(
            targets.iter().all(|&t| t < c),
            "cross_entropy: target out of range for {c} classes"
        );
        self.backend().cross_entropy(self, targets)
    }

    /// Mean cross-entropy of the scores `self w^T` against `targets` (`self`: `[n, d]`
    /// rows, `w`: `[c, d]` class embeddings), and what
    /// [`linear_cross_entropy_backward`](Self::linear_cross_entropy_backward) needs. Equal to
    /// `self.matmul_t(w, false, true).cross_entropy(targets).0`, but the CPU takes the
    /// classes in blocks that stay in cache and keeps, instead of the scores' gradient, each
    /// block's exponentials and one factor per row and block (`n (c + c / 512)` elements,
    /// read only by the backward); other devices keep the scores' gradient (`[n, c]`).
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    /// let h = Tensor::<f64>::from_f64s(&[1.0, 0.0, 0.0, 2.0], &[2, 2]);
    /// let w = Tensor::from_f64s(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[3, 2]);
    /// let (loss, saved) = h.linear_cross_entropy(&w, &[0, 1]);
    /// let (unfused, grad) = h.matmul_t(&w, false, true).cross_entropy(&[0, 1]);
    /// assert!((loss - unfused).abs() < 1e-12);
    /// let (dh, dw) = h.linear_cross_entropy_backward(&w, &[0, 1], &saved, 1.0);
    /// let close = |a: &Tensor<f64>, b: &Tensor<f64>| {
    ///     a.to_vec().iter().zip(b.to_vec()).all(|(x, y)| (x - y).abs() < 1e-12)
    /// };
    /// assert!(close(&dh, &grad.matmul(&w)) && close(&dw, &grad.matmul_t(&h, true, false)));
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree or a target is not below `c`.
    pub fn linear_cross_entropy(&self, w: &Self, targets: &[usize]) -> (f64, Self) {
        self.check_linear_cross_entropy(w, targets);
        self.backend().linear_cross_entropy(self, w, targets)
    }

    /// `(dh, dw)`: the gradients of `g` times the loss of
    /// [`linear_cross_entropy`](Self::linear_cross_entropy) at `self` (= `h`) and `w`, given
    /// the `saved` it returned. With `G = g (softmax(h w^T) - onehot) / n`: `dh = G w`,
    /// `dw = G^T h`; the CPU makes `G` a block of classes at a time from what the forward
    /// kept, without the `[n, c]` matrix.
    ///
    /// # Panics
    /// As [`linear_cross_entropy`](Self::linear_cross_entropy).
    pub fn linear_cross_entropy_backward(
        &self,
        w: &Self,
        targets: &[usize],
        saved: &Self,
        g: E,
    ) -> (Self, Self) {
        self.check_linear_cross_entropy(w, targets);
        self.backend()
            .linear_cross_entropy_backward(self, w, targets, saved, g)
    }

    fn check_linear_cross_entropy(&self, w: &Self, targets: &[usize]) {
        assert!(
            self.rank() == 2 && w.rank() == 2 && self.shape()[1] == w.shape()[1],
            "linear_cross_entropy needs [n, d] rows and [classes, d] weights, got {:?} and {:?}",
            self.shape(),
            w.shape()
        );
        let (n, c) = (self.shape()[0], w.shape()[0]);
        assert_eq!(
            targets.len(),
            n,
            "linear_cross_entropy: {} targets for {n} rows",
            targets.len()
        );
        assert!(
            targets.iter().all(|&t| t < c),
            "linear_cross_entropy: target out of range for {c} classes"
        );
    }

    /// The gradients `(dx, dgamma, dbeta)` of [`layer_norm`](Self::layer_norm) at `self`
    /// (the forward's input), given the output gradient `g` and the forward's `mean` and
    /// `rstd`: one fused pass, `dx = rstd (h - mean(h) - x_hat mean(h x_hat))` with
    /// `h = g gamma`.
    pub fn layer_norm_backward(
        &self,
        gamma: &Self,
        mean: &Self,
        rstd: &Self,
        g: &Self,
    ) -> (Self, Self, Self) {
        let n = *self
            .shape()
            .last()
            .expect("layer_norm_backward of a scalar");
        let rows = self.numel() / n.max(1);
        assert!(
            gamma.shape() == [n] && g.shape() == self.shape(),
            "layer_norm_backward: shapes"
        );
        assert!(
            mean.numel() == rows && rstd.numel() == rows,
            "layer_norm_backward: one mean and rstd per row"
        );
        self.backend()
            .layer_norm_backward(self, gamma, mean, rstd, g)
    }

    /// Each element times its dropout factor (`mask.scale` or 0, by row-major index). The
    /// backward of dropout is the same call on the gradient.
    pub fn dropout(&self, mask: &crate::dropout_mask::DropoutMask) -> Self {
        assert!(
            self.numel() <= u32::MAX as usize,
            "dropout: more than 2^32 elements"
        );
        self.backend().dropout(self, mask)
    }

    // ---------------------------------------------------------------- indexing

    /// Rows of a 2-d table: `[idx.len(), cols]` (an embedding lookup).
    pub fn gather_rows(&self, idx: &[usize]) -> Self {
        assert_eq!(
            self.rank(),
            2,
            "gather_rows needs a 2-d table, got {:?}",
            self.shape()
        );
        let rows = self.shape()[0];
        if let Some(&bad) = idx.iter().find(|&&i| i >= rows) {
            panic!("gather_rows: index {bad} out of range for {rows} rows");
        }
        self.backend().gather_rows(self, idx)
    }
    /// `out[idx[i]] += self[i]` into a `[n_rows, cols]` zero tensor (the embedding gradient).
    pub fn scatter_add_rows(&self, idx: &[usize], n_rows: usize) -> Self {
        assert_eq!(self.rank(), 2, "scatter_add_rows needs 2-d rows");
        assert_eq!(
            self.shape()[0],
            idx.len(),
            "scatter_add_rows: one index per row"
        );
        assert!(
            idx.iter().all(|&i| i < n_rows),
            "scatter_add_rows: index out of range"
        );
        self.backend().scatter_add_rows(self, idx, n_rows)
    }
    /// `self[idx[i]] += src[i]` in place (`self`: `[n_rows, cols]`, `src`: `[idx.len(),
    /// cols]`): what `*self = self.add(&src.scatter_add_rows(idx, n_rows))` computes, to the
    /// bit on the CPU (the rows of a repeated index are summed in order first, as the scatter
    /// does), without the `[n_rows, cols]` scatter or a new tensor. An embedding's gradient
    /// arriving where a dense one (the item scores', a regulariser's) already is.
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    /// let mut g = Tensor::<f64>::from_f64s(&[1.0, 1.0, 2.0, 2.0, 3.0, 3.0], &[3, 2]);
    /// let rows = Tensor::from_f64s(&[0.5, 0.5, 10.0, 20.0, 0.25, 0.25], &[3, 2]);
    /// g.add_rows(&rows, &[2, 0, 2]);
    /// assert_eq!(g.to_f64s(), [11.0, 21.0, 2.0, 2.0, 3.75, 3.75]);
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree or an index is out of range.
    pub fn add_rows(&mut self, src: &Self, idx: &[usize]) {
        assert!(
            self.rank() == 2 && src.rank() == 2 && src.shape()[1] == self.shape()[1],
            "add_rows: [n, cols] rows into [rows, cols], got {:?} into {:?}",
            src.shape(),
            self.shape()
        );
        assert_eq!(src.shape()[0], idx.len(), "add_rows: one index per row");
        let n_rows = self.shape()[0];
        assert!(
            idx.iter().all(|&i| i < n_rows),
            "add_rows: index out of range"
        );
        self.backend().add_rows(self, src, idx)
    }
    /// `torch.gather(self, axis, idx)`: `idx` (given with its shape `idx_shape`, equal to
    /// `self`'s except along `axis`) picks an entry of `axis` for every output element.
    pub fn gather(&self, axis: usize, idx: &[usize], idx_shape: &[usize]) -> Self {
        self.axis(axis, "gather");
        assert_eq!(
            idx.len(),
            numel(idx_shape),
            "gather: index data does not fill its shape"
        );
        assert_eq!(idx_shape.len(), self.rank(), "gather: index rank differs");
        for (ax, (&a, &b)) in self.shape().iter().zip(idx_shape).enumerate() {
            assert!(
                ax == axis || a == b,
                "gather: shapes {:?} and {:?} differ off axis",
                self.shape(),
                idx_shape
            );
        }
        let n = self.shape()[axis];
        assert!(
            idx.iter().all(|&i| i < n),
            "gather: index out of range for axis of {n}"
        );
        self.backend().gather(self, axis, idx, idx_shape)
    }
    /// The adjoint of [`Tensor::gather`]: a `shape` tensor of zeros with `self` added at the
    /// gathered places.
    pub fn scatter_add(&self, axis: usize, idx: &[usize], shape: &[usize]) -> Self {
        assert_eq!(
            idx.len(),
            self.numel(),
            "scatter_add: one index per element"
        );
        self.backend().scatter_add(self, axis, idx, shape)
    }
    /// Entries of `axis` in the order `idx` (may repeat).
    pub fn index_select(&self, axis: usize, idx: &[usize]) -> Self {
        self.axis(axis, "index_select");
        let n = self.shape()[axis];
        assert!(
            idx.iter().all(|&i| i < n),
            "index_select: index out of range for axis of {n}"
        );
        self.backend().index_select(self, axis, idx)
    }
    /// `value` wherever the broadcast `mask` is non-zero.
    pub fn masked_fill(&self, mask: &Self, value: E) -> Self {
        let out = broadcast_shapes(self.shape(), mask.shape());
        assert!(
            out.as_deref() == Some(self.shape()),
            "masked_fill: mask {:?} does not broadcast to {:?}",
            mask.shape(),
            self.shape()
        );
        self.backend().masked_fill(self, mask, value)
    }
    /// The `k` largest entries of each row (last axis), descending, with their column indices
    /// (ties: the lower index first). Does not sort whole rows.
    pub fn topk_rows(&self, k: usize) -> (Self, Vec<usize>) {
        let n = *self.shape().last().expect("topk of a scalar");
        assert!(k <= n, "topk_rows: k = {k} > row length {n}");
        self.backend().topk_rows(self, k)
    }

    /// For each row `r` (last axis), how many of its entries are strictly greater than its
    /// entry at column `cols[r]`: the rank of that column minus one, found without sorting.
    /// Full-ranking evaluation calls this on a `users x items` score block, so only one
    /// count per user leaves the device.
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    /// let scores = Tensor::<f32>::from_f64s(&[0.1, 0.9, 0.5, 0.7, 0.2, 0.3], &[2, 3]);
    /// assert_eq!(scores.count_greater(&[2, 0]), vec![1, 0]);
    /// ```
    ///
    /// # Panics
    /// If `cols` does not hold one index per row, or an index is out of range.
    pub fn count_greater(&self, cols: &[usize]) -> Vec<usize> {
        let n = *self.shape().last().expect("count_greater of a scalar");
        let rows = self.numel().checked_div(n).unwrap_or(0);
        assert_eq!(
            cols.len(),
            rows,
            "count_greater: {} columns for {rows} rows",
            cols.len()
        );
        if let Some(c) = cols.iter().find(|&&c| c >= n) {
            panic!("count_greater: column {c} out of range for rows of {n}");
        }
        self.backend().count_greater(self, cols)
    }

    // ---------------------------------------------------------------- layout

    /// Repeats `self` along broadcast axes to `shape` (NumPy rules; a copy).
    pub fn broadcast_to(&self, shape: &[usize]) -> Self {
        assert!(
            broadcast_shapes(self.shape(), shape).as_deref() == Some(shape),
            "broadcast_to: {:?} does not broadcast to {:?}",
            self.shape(),
            shape
        );
        if self.shape() == shape {
            return self.clone();
        }
        self.backend().broadcast_to(self, shape)
    }
    /// Swaps two axes (a copy).
    pub fn transpose(&self, a: usize, b: usize) -> Self {
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    /// Reorders the axes: output axis `i` is input axis `perm[i]` (a copy).
    pub fn permute(&self, perm: &[usize]) -> Self {
        let mut seen = vec![false; self.rank()];
        assert_eq!(
            perm.len(),
            self.rank(),
            "permute: {perm:?} for rank {}",
            self.rank()
        );
        for &p in perm {
            assert!(
                p < self.rank() && !seen[p],
                "permute: {perm:?} is not a permutation"
            );
            seen[p] = true;
        }
        self.backend().permute(self, perm)
    }
    /// Joins tensors along `axis`; the other axes must agree.
    pub fn concat(xs: &[&Self], axis: usize) -> Self {
        assert!(!xs.is_empty(), "concat of nothing");
        xs[0].axis(axis, "concat");
        for x in xs {
            assert_eq!(x.rank(), xs[0].rank(), "concat: ranks differ");
            for ax in (0..x.rank()).filter(|&a| a != axis) {
                assert_eq!(
                    x.shape()[ax],
                    xs[0].shape()[ax],
                    "concat: shapes {:?} and {:?}",
                    x.shape(),
                    xs[0].shape()
                );
            }
        }
        xs[0].backend().concat(xs, axis)
    }
    /// `len` entries of `axis` starting at `start` (a copy).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Self {
        self.axis(axis, "narrow");
        assert!(
            start + len <= self.shape()[axis],
            "narrow: {start}+{len} > {:?}[{axis}]",
            self.shape()
        );
        self.backend().narrow(self, axis, start, len)
    }
    /// Splits `axis` into pieces of the given sizes (which must add up to the axis length).
    pub fn split(&self, axis: usize, sizes: &[usize]) -> Vec<Self> {
        assert_eq!(
            sizes.iter().sum::<usize>(),
            self.shape()[axis],
            "split: sizes {sizes:?} for {:?}",
            self.shape()
        );
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let t = self.narrow(axis, start, s);
                start += s;
                t
            })
            .collect()
    }

    // ---------------------------------------------------------------- optimiser support

    /// One Adam step on `self` (the parameter), in place, with moments `m` and `v`.
    pub fn adam_step(&mut self, grad: &Self, m: &mut Self, v: &mut Self, h: &AdamParams) {
        assert!(
            grad.shape() == self.shape() && m.shape() == self.shape() && v.shape() == self.shape()
        );
        self.backend().adam_step(self, grad, m, v, h)
    }
}

impl<E: Element> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor<{}>{:?} on {} ",
            E::NAME,
            self.shape(),
            self.device()
        )?;
        let v = self.to_vec();
        if v.len() <= 16 {
            write!(f, "{v:?}")
        } else {
            write!(
                f,
                "[{:?}, {:?}, {:?}, ..., {:?}]",
                v[0],
                v[1],
                v[2],
                v[v.len() - 1]
            )
        }
    }
}
