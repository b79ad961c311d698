//! The CUDA backend (cargo feature `cuda`): device buffers and kernels through [`cudarc`] with
//! dynamic loading, so that `cargo build --features cuda` needs no CUDA toolkit and no GPU;
//! the driver, cuBLAS and NVRTC libraries are opened only when a CUDA device is first asked
//! for (`probe`).
//!
//! Every matrix product is one cuBLAS strided-batched GEMM (the `matmul` module); the rest are the
//! kernels of `kernels.cu`, compiled with NVRTC once per device for the device's compute
//! capability and looked up by name (`<kernel>_f32` / `<kernel>_f64`). All work goes on the
//! device's default stream, so kernels run in launch order and no op synchronises; only
//! [`Backend::to_vec`] and the ops whose trait signature returns host indices
//! (`arg_reduce`, `topk_rows`, `count_greater`, `conv_max_pool`) copy back.
//!
//! | `Backend` / `FusedBackend` method | CUDA implementation                               |
//! |---------------------------|-----------------------------------------------------------|
//! | `upload`, `to_vec`        | native (host-device copies)                               |
//! | `unary`, `unary_backward` | native (`unary_<op>`, `unary_backward_<op>`: one kernel per `UnaryOp`) |
//! | `binary`                  | native (`binary`, same-shape / bias-row / general broadcast) |
//! | `matmul`                  | native (cuBLAS `gemm_strided_batched`, f32 and f64)      |
//! | `reduce`, `arg_reduce`    | native (`reduce`, chunked `reduce_partial` for long axes; `arg_reduce`, indices copied back) |
//! | `softmax` (and log)       | native (`softmax_rows`, one block per row)                |
//! | `layer_norm`              | native (`layer_norm`, one block per row)                  |
//! | `cross_entropy`           | native, composed: `softmax_rows`, a gather of the `n` target probabilities (read back for the loss), a scale and an `index_add` at the targets |
//! | `layer_norm_backward`     | native (`layer_norm_bwd_dx`; `layer_norm_bwd_params` in row chunks, then `reduce`) |
//! | `dropout`                 | native (`dropout`, the CPU's hash bit for bit)            |
//! | `gather_rows`, `index_select`, `gather` | native (`index_select`)                     |
//! | `scatter_add_rows`, `scatter_add`, `add_rows` | native (`index_add`, atomics; `add_rows` into the tensor in place) |
//! | `broadcast_to`, `permute`, `narrow` | native (`strided_copy`)                         |
//! | `concat`                  | native (`concat_block`, one launch per input)             |
//! | `masked_fill`             | native (`masked_fill`)                                    |
//! | `topk_rows`               | native (`topk_rows`; indices copied back)                 |
//! | `count_greater`           | native (`count_greater`, one block per row; counts copied back) |
//! | `adam_step`               | native (`adam`, in place)                                 |
//! | `random`                  | host: draws from the caller's `rng` (the trait's contract is the CPU draw order), then uploads |
//! | `attention`, `attention_backward` | native (`attention_fwd`, `attention_bwd`, one block per sequence and head) |
//! | `contrastive_pair`        | native (`contrastive_rows`, `contrastive_total`)          |
//! | `gru_recurrence`, `gru_recurrence_backward` | native (`gru_fwd_step` per step; `gru_bwd_gates` and `gru_bwd_carry` per step) |
//! | `conv_max_pool`, `conv_max_pool_backward` | native (`conv_max_pool`, windows copied back; `conv_max_pool_dx`, `conv_max_pool_dw`) |
//!
//! No method falls back to the CPU backend. `random` is the one that computes on the host,
//! by design: it must consume the caller's generator in the CPU's order.
//!
//! Status: the kernels compile with NVRTC (`tests/cuda_parity.rs` compiles them wherever
//! libnvrtc loads, no GPU needed), but they were written without a GPU at hand; the parity
//! tests in that file, run on a GPU machine by `scripts/gpu-check.sh`, are what checks
//! their numbers against the CPU backend.

mod attention;
mod contrastive;
mod conv_max_pool;
mod elementwise;
mod gru;
mod indexing;
mod matmul;
mod normalise;
mod reduce;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, LaunchConfig,
    ValidAsZeroBits,
};
use rand::RngCore;

use crate::attention::{AttentionSpec, SeqLayout};
use crate::backend::{Backend, BinaryOp, FusedBackend, RandomFill, ReduceOp, UnaryOp};
use crate::cpu::CpuBackend;
use crate::dropout_mask::DropoutMask;
use crate::kernels::AdamParams;
use crate::tensor::Storage;
use crate::{Device, DeviceError, Element, Tensor};

/// The CUDA C++ source of every kernel, compiled with NVRTC at backend creation.
pub const KERNELS: &str = include_str!("kernels.cu");

/// Threads per block of the elementwise and row kernels (`ROW_THREADS` in `kernels.cu`).
const THREADS: u32 = 256;

/// Whether CUDA device `ordinal` can be used: loads the driver library, initialises it and
/// counts the GPUs. Never panics: `cudarc`'s dynamic loading panics when a library is
/// missing, so the library is looked for first and the rest runs under `catch_unwind`.
pub(crate) fn probe(ordinal: usize) -> Result<(), DeviceError> {
    use cudarc::driver::{result, sys};
    // SAFETY: only tries to open the library; no driver function is called.
    if !unsafe { sys::is_culib_present() } {
        return Err(DeviceError::NoDriver(
            "the CUDA driver library (libcuda) was not found".into(),
        ));
    }
    let checked = std::panic::catch_unwind(|| -> Result<i32, DeviceError> {
        match result::init() {
            Ok(()) => {}
            // A driver with no GPU at all fails cuInit with this code.
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => {
                return Err(DeviceError::NoGpu(ordinal))
            }
            // Seen when a CUDA toolkit's forward-compatibility libcuda (.../cuda/compat) is
            // found before the driver's own.
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH => {
                return Err(DeviceError::NoDriver(format!(
                    "cuInit failed: {e} (is a forward-compatibility libcuda, such as \
                     /usr/local/cuda/compat, ahead of the driver's own on LD_LIBRARY_PATH?)"
                )))
            }
            Err(e) => return Err(DeviceError::NoDriver(format!("cuInit failed: {e}"))),
        }
        result::device::get_count()
            .map_err(|e| DeviceError::NoDriver(format!("cuDeviceGetCount failed: {e}")))
    });
    match checked {
        Ok(Ok(n)) if (ordinal as i64) < n as i64 => Ok(()),
        Ok(Ok(_)) => Err(DeviceError::NoGpu(ordinal)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DeviceError::NoDriver(
            "loading the CUDA driver library panicked".into(),
        )),
    }
}

/// Whether CUDA device `ordinal` can be used, all the way: the driver and the GPU
/// ([`probe`]), then the backend itself (cuBLAS, NVRTC, the kernels), so that a device this
/// returns `Ok` for computes. A missing driver or GPU is [`DeviceError::NoDriver`] or
/// [`DeviceError::NoGpu`]; a missing cuBLAS or NVRTC library, or kernels that do not build,
/// are reported as `NoDriver` with the reason, since the driver stack is incomplete.
pub(crate) fn available(ordinal: usize) -> Result<(), DeviceError> {
    probe(ordinal)?;
    CudaBackend::get(ordinal)
        .map(|_| ())
        .map_err(DeviceError::NoDriver)
}

/// A tensor's device memory: one buffer shared between clones (ops never write to shared
/// data; [`CudaBackend::adam_step`](Backend::adam_step) copies first if it is shared).
#[derive(Clone)]
pub(crate) struct CudaStorage<E> {
    /// At least `numel` elements (a zero-element tensor holds one unused element, since the
    /// driver does not allocate zero bytes).
    buf: Arc<CudaSlice<E>>,
    ordinal: usize,
}

impl<E> CudaStorage<E> {
    /// The GPU holding the buffer.
    pub(crate) fn ordinal(&self) -> usize {
        self.ordinal
    }
}

/// The CUDA implementation of [`Backend`] for one GPU: its stream, cuBLAS handle and the
/// NVRTC-compiled kernel module. One per device for the life of the process
/// ([`CudaBackend::get`]).
pub struct CudaBackend {
    ordinal: usize,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    module: Arc<CudaModule>,
    /// Kernels already looked up in `module`, by exported name.
    funcs: Mutex<HashMap<String, CudaFunction>>,
    /// One `u64`, passed where a kernel's metadata pointer is unused (the common
    /// same-shape binary op then costs no allocation or copy besides its output).
    unused_meta: CudaSlice<u64>,
}

/// How to make a CUDA library findable, for the "not found" errors.
const LIB_HINT: &str = "(looked for lib{cublas,nvrtc}.so and .so.12 on the loader path: add \
     its folder to LD_LIBRARY_PATH, and where only .so.13 exists, link it as .so there)";

impl CudaBackend {
    /// The backend of GPU `ordinal`, created (context, cuBLAS, kernel compilation) on first
    /// use and kept for the life of the process, since [`crate::backend::backend_for`] hands
    /// out `&'static` backends.
    pub fn get(ordinal: usize) -> Result<&'static CudaBackend, String> {
        static ALL: OnceLock<Mutex<HashMap<usize, &'static CudaBackend>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(b) = all.get(&ordinal) {
            return Ok(b);
        }
        probe(ordinal).map_err(|e| e.to_string())?;
        // cudarc panics when a library it loads lazily is missing: look for cuBLAS and NVRTC
        // first, and keep any other panic of the set-up an error too.
        // cudarc (built against CUDA 12) asks the loader for `libcublas.so` or
        // `libcublas.so.12`; CUDA 13 ships only `libcublas.so.13` in some installs (pip's
        // nvidia wheels), so the error says how to make it findable.
        // SAFETY: only try to open the libraries.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(format!("the cuBLAS library was not found {LIB_HINT}"));
        }
        // SAFETY: as above.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(format!("the NVRTC library was not found {LIB_HINT}"));
        }
        let made = std::panic::catch_unwind(|| Self::new(ordinal))
            .unwrap_or_else(|_| Err("setting up the device panicked".into()))?;
        let b: &'static CudaBackend = Box::leak(Box::new(made));
        all.insert(ordinal, b);
        Ok(b)
    }

    /// Waits until every op launched on this GPU has finished (for timing: ops return as
    /// soon as their kernels are queued).
    pub fn synchronize(&self) -> Result<(), String> {
        self.stream.synchronize().map_err(|e| e.to_string())
    }

    fn new(ordinal: usize) -> Result<Self, String> {
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("context: {e}"))?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e:?}"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| format!("compute capability: {e}"))?;
        // Compiled for this device's architecture: double atomicAdd needs sm_60 or later, and
        // recent NVRTC releases no longer accept the old default target.
        let opts = cudarc::nvrtc::CompileOptions {
            options: vec![format!("--gpu-architecture=compute_{major}{minor}")],
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(KERNELS, opts)
            .map_err(|e| format!("NVRTC could not compile the kernels: {e:?}"))?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| format!("loading the kernels: {e}"))?;
        let unused_meta = stream
            .alloc_zeros::<u64>(1)
            .map_err(|e| format!("allocating: {e}"))?;
        Ok(CudaBackend {
            ordinal,
            stream,
            blas,
            module,
            funcs: Mutex::new(HashMap::new()),
            unused_meta,
        })
    }

    /// The kernel `name` for element type `E` (`name_f32` / `name_f64`).
    fn func<E: Element>(&self, name: &str) -> CudaFunction {
        let full = format!("{name}_{}", E::NAME);
        let mut funcs = self.funcs.lock().unwrap_or_else(|e| e.into_inner());
        funcs
            .entry(full.clone())
            .or_insert_with(|| {
                self.module
                    .load_function(&full)
                    .unwrap_or_else(|e| panic!("CUDA kernel {full} missing: {e}"))
            })
            .clone()
    }

    /// `n` uninitialised elements (at least one: see [`CudaStorage::buf`]).
    fn alloc<T: DeviceRepr>(&self, n: usize) -> CudaSlice<T> {
        // SAFETY: every caller's kernel writes all `n` elements before they are read.
        unsafe { self.stream.alloc::<T>(n.max(1)) }
            .unwrap_or_else(|e| panic!("cuda:{}: allocating {n} elements: {e}", self.ordinal))
    }

    /// `n` zeros (at least one element).
    fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> CudaSlice<T> {
        self.stream
            .alloc_zeros::<T>(n.max(1))
            .unwrap_or_else(|e| panic!("cuda:{}: allocating {n} zeros: {e}", self.ordinal))
    }

    /// A small host array (indices, shape metadata) copied to the device.
    fn upload_u64(&self, v: &[u64]) -> CudaSlice<u64> {
        if v.is_empty() {
            return self.zeros(1);
        }
        self.stream
            .clone_htod(v)
            .unwrap_or_else(|e| panic!("cuda:{}: upload: {e}", self.ordinal))
    }

    /// Host indices as the `u64` device array the kernels read.
    fn upload_idx(&self, idx: &[usize]) -> CudaSlice<u64> {
        let v: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
        self.upload_u64(&v)
    }

    /// The first `n` entries of a device index array, as host `usize`s.
    fn download_idx(&self, d: &CudaSlice<u64>, n: usize) -> Vec<usize> {
        if n == 0 {
            return Vec::new();
        }
        self.stream
            .clone_dtoh(&d.slice(0..n))
            .unwrap_or_else(|e| panic!("cuda:{}: download: {e}", self.ordinal))
            .into_iter()
            .map(|i| i as usize)
            .collect()
    }

    /// Wraps a device buffer as a tensor of `shape` on this GPU.
    fn wrap<E: Element>(&self, buf: CudaSlice<E>, shape: &[usize]) -> Tensor<E> {
        Tensor::from_storage(
            Storage::Cuda(CudaStorage {
                buf: Arc::new(buf),
                ordinal: self.ordinal,
            }),
            shape,
        )
    }

    /// A grid-stride launch shape for `n` elements, or `None` when there is nothing to do
    /// (a zero-sized grid is a launch error).
    fn grid(n: usize) -> Option<LaunchConfig> {
        (n > 0).then(|| LaunchConfig {
            grid_dim: (
                (n as u64).div_ceil(THREADS as u64).min(1 << 20) as u32,
                1,
                1,
            ),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        })
    }

    /// One block per row (grid-stride over rows beyond the grid's cap).
    fn rows_grid(rows: usize) -> Option<LaunchConfig> {
        (rows > 0).then(|| LaunchConfig {
            grid_dim: (rows.min(1 << 16) as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        })
    }

    /// Panics with the kernel's name when a launch fails (an op has no error channel: a
    /// failing GPU mid-step is fatal, as an allocation failure is on the CPU).
    fn check<T>(&self, what: &str, r: Result<T, cudarc::driver::DriverError>) {
        if let Err(e) = r {
            panic!("cuda:{}: kernel {what} failed: {e}", self.ordinal);
        }
    }
}

/// The device buffer of a CUDA tensor.
///
/// # Panics
/// If the tensor is on the CPU: ops take operands on one device (move them with
/// [`Tensor::to_device`]).
fn buf<E: Element>(x: &Tensor<E>) -> &CudaSlice<E> {
    match &x.storage {
        Storage::Cuda(c) => &c.buf,
        Storage::Cpu(..) | Storage::Registered(..) => panic!(
            "a CPU tensor of shape {:?} was passed to a CUDA op: move it with to_device first",
            x.shape()
        ),
    }
}

/// The device buffer of a CUDA tensor for writing in place, copied first if shared.
fn buf_mut<E: Element>(x: &mut Tensor<E>) -> &mut CudaSlice<E> {
    let shape = x.shape().to_vec();
    match &mut x.storage {
        Storage::Cuda(c) => {
            if Arc::get_mut(&mut c.buf).is_none() {
                let copy = c
                    .buf
                    .stream()
                    .clone_dtod(&*c.buf)
                    .unwrap_or_else(|e| panic!("cuda:{}: copy: {e}", c.ordinal));
                c.buf = Arc::new(copy);
            }
            Arc::get_mut(&mut c.buf).expect("just made unique")
        }
        Storage::Cpu(..) | Storage::Registered(..) => panic!(
            "a CPU tensor of shape {shape:?} was passed to a CUDA op: move it with to_device first"
        ),
    }
}

impl<E: Element> Backend<E> for CudaBackend {
    fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }
    fn upload(&self, data: Vec<E>, shape: &[usize]) -> Tensor<E> {
        if data.is_empty() {
            return self.wrap(self.zeros::<E>(0), shape);
        }
        let buf = self
            .stream
            .clone_htod(&data)
            .unwrap_or_else(|e| panic!("cuda:{}: upload: {e}", self.ordinal));
        self.wrap(buf, shape)
    }
    fn to_vec(&self, x: &Tensor<E>) -> Vec<E> {
        let n = x.numel();
        if n == 0 {
            return Vec::new();
        }
        // Waits for the stream: the one place (with the index-returning ops) that syncs.
        self.stream
            .clone_dtoh(&buf(x).slice(0..n))
            .unwrap_or_else(|e| panic!("cuda:{}: download: {e}", self.ordinal))
    }
    fn unary(&self, op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E> {
        elementwise::unary(self, op, x)
    }
    fn unary_backward(
        &self,
        op: UnaryOp<E>,
        x: &Tensor<E>,
        y: &Tensor<E>,
        gy: &Tensor<E>,
    ) -> Tensor<E> {
        elementwise::unary_backward(self, op, x, y, gy)
    }
    fn binary(&self, op: BinaryOp, a: &Tensor<E>, b: &Tensor<E>, out_shape: &[usize]) -> Tensor<E> {
        elementwise::binary(self, op, a, b, out_shape)
    }
    fn matmul(&self, a: &Tensor<E>, b: &Tensor<E>, ta: bool, tb: bool) -> Tensor<E> {
        matmul::matmul(self, a, b, ta, tb)
    }
    fn reduce(&self, op: ReduceOp, x: &Tensor<E>, axis: usize) -> Tensor<E> {
        reduce::reduce(self, op, x, axis)
    }
    fn arg_reduce(&self, max: bool, x: &Tensor<E>, axis: usize) -> (Tensor<E>, Vec<usize>) {
        reduce::arg_reduce(self, max, x, axis)
    }
    fn gather(&self, x: &Tensor<E>, axis: usize, idx: &[usize], out_shape: &[usize]) -> Tensor<E> {
        indexing::gather(self, x, axis, idx, out_shape)
    }
    fn scatter_add(
        &self,
        src: &Tensor<E>,
        axis: usize,
        idx: &[usize],
        shape: &[usize],
    ) -> Tensor<E> {
        indexing::index_add(self, src, idx, shape, axis, true)
    }
    fn broadcast_to(&self, x: &Tensor<E>, shape: &[usize]) -> Tensor<E> {
        indexing::broadcast_to(self, x, shape)
    }
    fn permute(&self, x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
        indexing::permute(self, x, perm)
    }
    fn concat(&self, xs: &[&Tensor<E>], axis: usize) -> Tensor<E> {
        indexing::concat(self, xs, axis)
    }
    fn narrow(&self, x: &Tensor<E>, axis: usize, start: usize, len: usize) -> Tensor<E> {
        indexing::narrow(self, x, axis, start, len)
    }
    fn index_select(&self, x: &Tensor<E>, axis: usize, idx: &[usize]) -> Tensor<E> {
        indexing::index_select(self, x, axis, idx)
    }
    fn masked_fill(&self, x: &Tensor<E>, mask: &Tensor<E>, value: E) -> Tensor<E> {
        elementwise::masked_fill(self, x, mask, value)
    }
    fn random(&self, fill: RandomFill, shape: &[usize], rng: &mut dyn RngCore) -> Tensor<E> {
        // Drawn on the host in the CPU's order, so a seeded rng gives the same tensor on
        // every device; initialisation only, never in the training step.
        let t: Tensor<E> = CpuBackend.random(fill, shape, rng);
        self.upload(t.to_vec(), shape)
    }
}

impl<E: Element> FusedBackend<E> for CudaBackend {
    fn softmax(&self, x: &Tensor<E>, log: bool) -> Tensor<E> {
        normalise::softmax(self, x, log)
    }
    fn layer_norm(
        &self,
        x: &Tensor<E>,
        g: &Tensor<E>,
        b: &Tensor<E>,
        eps: E,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        normalise::layer_norm(self, x, g, b, eps)
    }
    fn layer_norm_backward(
        &self,
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        mean: &Tensor<E>,
        rstd: &Tensor<E>,
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        normalise::layer_norm_backward(self, x, gamma, mean, rstd, g)
    }
    fn cross_entropy(&self, x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
        normalise::cross_entropy(x, targets)
    }
    fn attention(
        &self,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        attention::forward(self, q, kv, spec)
    }
    fn attention_backward(
        &self,
        g: &Tensor<E>,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        probs: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        attention::backward(self, g, q, kv, probs, spec)
    }
    fn contrastive_pair(&self, s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        contrastive::contrastive_pair(self, s)
    }
    fn conv_max_pool(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        bias: &Tensor<E>,
    ) -> (Tensor<E>, Vec<usize>) {
        conv_max_pool::conv_max_pool(self, x, w, bias)
    }
    fn conv_max_pool_backward(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        at: &[usize],
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        conv_max_pool::conv_max_pool_backward(self, x, w, at, g)
    }
    fn gru_recurrence(
        &self,
        gi: &Tensor<E>,
        w_hh: &Tensor<E>,
        b_hh: Option<&Tensor<E>>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        gru::gru_recurrence(self, gi, w_hh, b_hh, layout)
    }
    fn gru_recurrence_backward(
        &self,
        g: &Tensor<E>,
        w_hh: &Tensor<E>,
        states: &Tensor<E>,
        saved: &Tensor<E>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        gru::gru_recurrence_backward(self, g, w_hh, states, saved, layout)
    }
    fn dropout(&self, x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
        elementwise::dropout(self, x, mask)
    }
    fn gather_rows(&self, table: &Tensor<E>, idx: &[usize]) -> Tensor<E> {
        indexing::index_select(self, table, 0, idx)
    }
    fn scatter_add_rows(&self, src: &Tensor<E>, idx: &[usize], n_rows: usize) -> Tensor<E> {
        let cols = src.shape()[1];
        indexing::index_add(self, src, idx, &[n_rows, cols], 0, false)
    }
    fn add_rows(&self, dst: &mut Tensor<E>, src: &Tensor<E>, idx: &[usize]) {
        indexing::add_rows(self, dst, src, idx)
    }
    fn topk_rows(&self, x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>) {
        indexing::topk_rows(self, x, k)
    }
    fn count_greater(&self, x: &Tensor<E>, cols: &[usize]) -> Vec<usize> {
        indexing::count_greater(self, x, cols)
    }
    fn adam_step(
        &self,
        p: &mut Tensor<E>,
        g: &Tensor<E>,
        m: &mut Tensor<E>,
        v: &mut Tensor<E>,
        h: &AdamParams,
    ) {
        elementwise::adam_step(self, p, g, m, v, h)
    }
}
