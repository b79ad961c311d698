//! The CPU backend: row-major `Vec` storage, ndarray for layout work, matrixmultiply for
//! GEMM, rayon across rows and batches, the SIMD kernels of [`crate::kernels`].

mod attention;
mod buffer_pool;
mod contrastive;
mod conv_max_pool;
mod denormals;
mod elementwise;
mod gru;
mod indexing;
mod layout;
mod linear_cross_entropy;
mod matmul;
mod normalise;
mod random;
mod reduce;
mod short_gemm;

use rand::RngCore;

pub(crate) use buffer_pool::{give_back, output, zeros, Buffer};
pub use buffer_pool::{host_buffer_stats, HostBufferStats};
pub use denormals::{denormals_flushed, flush_denormals};

use crate::attention::{AttentionSpec, SeqLayout};
use crate::backend::{Backend, BinaryOp, FusedBackend, RandomFill, ReduceOp, UnaryOp};
use crate::dropout_mask::DropoutMask;
use crate::kernels::AdamParams;
use crate::{Device, Element, Tensor};

/// Elementwise work below this many elements stays on one thread.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// The CPU implementation of [`Backend`] and every [`FusedBackend`] op.
pub struct CpuBackend;

impl<E: Element> Backend<E> for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn upload(&self, data: Vec<E>, shape: &[usize]) -> Tensor<E> {
        Tensor::from_vec(data, shape)
    }
    fn to_vec(&self, x: &Tensor<E>) -> Vec<E> {
        x.as_slice().to_vec()
    }
    fn unary(&self, op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E> {
        elementwise::unary(op, x)
    }
    fn unary_backward(
        &self,
        op: UnaryOp<E>,
        x: &Tensor<E>,
        y: &Tensor<E>,
        gy: &Tensor<E>,
    ) -> Tensor<E> {
        elementwise::unary_backward(op, x, y, gy)
    }
    fn binary(&self, op: BinaryOp, a: &Tensor<E>, b: &Tensor<E>, out_shape: &[usize]) -> Tensor<E> {
        elementwise::binary(op, a, b, out_shape)
    }
    fn matmul(&self, a: &Tensor<E>, b: &Tensor<E>, ta: bool, tb: bool) -> Tensor<E> {
        matmul::matmul(a, b, ta, tb)
    }
    fn reduce(&self, op: ReduceOp, x: &Tensor<E>, axis: usize) -> Tensor<E> {
        reduce::reduce(op, x, axis)
    }
    fn arg_reduce(&self, max: bool, x: &Tensor<E>, axis: usize) -> (Tensor<E>, Vec<usize>) {
        reduce::arg_reduce(max, x, axis)
    }
    fn gather(&self, x: &Tensor<E>, axis: usize, idx: &[usize], out_shape: &[usize]) -> Tensor<E> {
        indexing::gather(x, axis, idx, out_shape)
    }
    fn scatter_add(
        &self,
        src: &Tensor<E>,
        axis: usize,
        idx: &[usize],
        shape: &[usize],
    ) -> Tensor<E> {
        indexing::scatter_add(src, axis, idx, shape)
    }
    fn broadcast_to(&self, x: &Tensor<E>, shape: &[usize]) -> Tensor<E> {
        layout::broadcast_to(x, shape)
    }
    fn permute(&self, x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
        layout::permute(x, perm)
    }
    fn concat(&self, xs: &[&Tensor<E>], axis: usize) -> Tensor<E> {
        layout::concat(xs, axis)
    }
    fn narrow(&self, x: &Tensor<E>, axis: usize, start: usize, len: usize) -> Tensor<E> {
        layout::narrow(x, axis, start, len)
    }
    fn index_select(&self, x: &Tensor<E>, axis: usize, idx: &[usize]) -> Tensor<E> {
        layout::index_select(x, axis, idx)
    }
    fn masked_fill(&self, x: &Tensor<E>, mask: &Tensor<E>, value: E) -> Tensor<E> {
        elementwise::masked_fill(x, mask, value)
    }
    fn random(&self, fill: RandomFill, shape: &[usize], rng: &mut dyn RngCore) -> Tensor<E> {
        random::random(fill, shape, rng)
    }
}

impl<E: Element> FusedBackend<E> for CpuBackend {
    fn linear(&self, x: &Tensor<E>, w: &Tensor<E>, bias: &Tensor<E>) -> Tensor<E> {
        matmul::linear(x, w, bias)
    }
    fn softmax(&self, x: &Tensor<E>, log: bool) -> Tensor<E> {
        normalise::softmax(x, log)
    }
    fn layer_norm(
        &self,
        x: &Tensor<E>,
        g: &Tensor<E>,
        b: &Tensor<E>,
        eps: E,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        normalise::layer_norm(x, g, b, eps)
    }
    fn cross_entropy(&self, x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
        normalise::cross_entropy(x, targets)
    }
    fn linear_cross_entropy(
        &self,
        h: &Tensor<E>,
        w: &Tensor<E>,
        targets: &[usize],
    ) -> (f64, Tensor<E>) {
        linear_cross_entropy::linear_cross_entropy(h, w, targets)
    }
    fn linear_cross_entropy_backward(
        &self,
        h: &Tensor<E>,
        w: &Tensor<E>,
        targets: &[usize],
        saved: &Tensor<E>,
        g: E,
    ) -> (Tensor<E>, Tensor<E>) {
        linear_cross_entropy::linear_cross_entropy_backward(h, w, targets, saved, g)
    }
    fn layer_norm_backward(
        &self,
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        mean: &Tensor<E>,
        rstd: &Tensor<E>,
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        normalise::layer_norm_backward(x, gamma, mean, rstd, g)
    }
    fn attention(
        &self,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        attention::forward(q, kv, spec)
    }
    fn attention_backward(
        &self,
        g: &Tensor<E>,
        q: &Tensor<E>,
        kv: &Tensor<E>,
        probs: &Tensor<E>,
        spec: &AttentionSpec<'_>,
    ) -> (Tensor<E>, Tensor<E>) {
        attention::backward(g, q, kv, probs, spec)
    }
    fn contrastive_pair(&self, s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        contrastive::contrastive_pair(s)
    }
    fn conv_max_pool(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        bias: &Tensor<E>,
    ) -> (Tensor<E>, Vec<usize>) {
        conv_max_pool::conv_max_pool(x, w, bias)
    }
    fn conv_max_pool_backward(
        &self,
        x: &Tensor<E>,
        w: &Tensor<E>,
        at: &[usize],
        g: &Tensor<E>,
    ) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
        conv_max_pool::conv_max_pool_backward(x, w, at, g)
    }
    fn gru_recurrence(
        &self,
        gi: &Tensor<E>,
        w_hh: &Tensor<E>,
        b_hh: Option<&Tensor<E>>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        gru::gru_recurrence(gi, w_hh, b_hh, layout)
    }
    fn gru_recurrence_backward(
        &self,
        g: &Tensor<E>,
        w_hh: &Tensor<E>,
        states: &Tensor<E>,
        saved: &Tensor<E>,
        layout: &SeqLayout,
    ) -> (Tensor<E>, Tensor<E>) {
        gru::gru_recurrence_backward(g, w_hh, states, saved, layout)
    }
    fn dropout(&self, x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
        elementwise::dropout(x, mask)
    }
    fn gather_rows(&self, table: &Tensor<E>, idx: &[usize]) -> Tensor<E> {
        indexing::gather_rows(table, idx)
    }
    fn scatter_add_rows(&self, src: &Tensor<E>, idx: &[usize], n_rows: usize) -> Tensor<E> {
        indexing::scatter_add_rows(src, idx, n_rows)
    }
    fn add_rows(&self, dst: &mut Tensor<E>, src: &Tensor<E>, idx: &[usize]) {
        indexing::add_rows(dst, src, idx)
    }
    fn topk_rows(&self, x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>) {
        indexing::topk_rows(x, k)
    }
    fn count_greater(&self, x: &Tensor<E>, cols: &[usize]) -> Vec<usize> {
        indexing::count_greater(x, cols)
    }
    fn adam_step(
        &self,
        p: &mut Tensor<E>,
        g: &Tensor<E>,
        m: &mut Tensor<E>,
        v: &mut Tensor<E>,
        h: &AdamParams,
    ) {
        use rayon::prelude::*;
        // Elementwise, so chunks in parallel give the same numbers as one pass.
        const ADAM_CHUNK: usize = 1 << 14;
        let (p, g, m, v) = (
            p.as_mut_slice(),
            g.as_slice(),
            m.as_mut_slice(),
            v.as_mut_slice(),
        );
        if p.len() < PAR_MIN {
            return E::adam_update(p, g, m, v, h);
        }
        p.par_chunks_mut(ADAM_CHUNK)
            .zip(g.par_chunks(ADAM_CHUNK))
            .zip(m.par_chunks_mut(ADAM_CHUNK))
            .zip(v.par_chunks_mut(ADAM_CHUNK))
            .for_each(|(((p, g), m), v)| E::adam_update(p, g, m, v, h));
    }
}
