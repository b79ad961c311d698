//! Host buffers reused across training steps.
//!
//! Every op returns a fresh tensor, and a training step frees its activations and gradients
//! at the end, so each batch allocates the same few hundred large buffers again. From the
//! system allocator those are fresh pages: the kernel faults and clears them, and the op
//! then zero-fills them before writing its output (~10 % of a step together, perf). The
//! pool keeps freed buffers of 64 KiB and more, by size class (4 per octave), and hands
//! them out again, so after the first batches of an epoch a step takes no new memory.
//!
//! Soundness: a pooled `Vec` always has `len == capacity`, every element a value of `E`
//! (stale, from the previous user). A buffer asked for `n` elements is the whole class
//! allocation; [`Buffer`] exposes only its first `n`. Only `Vec`s with `len == capacity`
//! and a class capacity enter the pool, so no uninitialised memory is ever handed out.

use std::any::TypeId;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::Element;

/// Buffers below this size come from the system allocator (its free lists serve them well).
const MIN_BYTES: usize = 64 << 10;
/// The most memory the pool holds on to; a buffer freed beyond it goes back to the system.
const MAX_POOLED_BYTES: usize = 256 << 20;
/// Classes `4 log2(bytes)` up to 2^48 bytes.
const CLASSES: usize = 4 * 48;

/// The size class of a buffer of `bytes`: the smallest `k` with `class_bytes(k) >= bytes`.
fn class_of(bytes: usize) -> usize {
    let octave = (usize::BITS - 1 - bytes.leading_zeros()) as usize; // floor(log2)
    (4 * octave..4 * octave + 4)
        .find(|&k| class_bytes(k) >= bytes)
        .unwrap_or(4 * octave + 4)
}

/// The bytes of class `k`: `2^(k/4) * (1 + (k % 4) / 4)`.
fn class_bytes(k: usize) -> usize {
    (4 + k % 4) << (k / 4 - 2)
}

/// Free buffers of one element type: per class, the pointers of `Vec`s of the class's
/// capacity whose allocations are kept.
struct Shelf {
    ty: TypeId,
    free: Vec<Vec<usize>>,
}

struct Pool {
    shelves: Vec<Shelf>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    shelves: Vec::new(),
    bytes: 0,
});

fn with_shelf<E: Element, R>(f: impl FnOnce(&mut Vec<Vec<usize>>, &mut usize) -> R) -> R {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pool = &mut *pool;
    let ty = TypeId::of::<E>();
    let i = match pool.shelves.iter().position(|s| s.ty == ty) {
        Some(i) => i,
        None => {
            pool.shelves.push(Shelf {
                ty,
                free: vec![Vec::new(); CLASSES],
            });
            pool.shelves.len() - 1
        }
    };
    f(&mut pool.shelves[i].free, &mut pool.bytes)
}

static FRESH: AtomicUsize = AtomicUsize::new(0);
static REUSED: AtomicUsize = AtomicUsize::new(0);

/// How the CPU backend's pool of host buffers (outputs of 64 KiB and more) has served its
/// requests since the process started: a training loop in its steady state keeps `fresh`
/// constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostBufferStats {
    /// Buffers taken from the system allocator.
    pub fresh: usize,
    /// Buffers handed out again from the pool.
    pub reused: usize,
}

/// The counts of [`HostBufferStats`] so far.
///
/// ```
/// use mclrec_tensor::{host_buffer_stats, Tensor};
/// let before = host_buffer_stats();
/// let x = Tensor::<f32>::zeros(&[256, 1024]); // 1 MiB: a pooled size
/// drop(x);
/// let y = Tensor::<f32>::zeros(&[256, 1024]); // the same buffer again
/// let after = host_buffer_stats();
/// assert!(after.fresh + after.reused >= before.fresh + before.reused + 2);
/// # drop(y);
/// ```
pub fn host_buffer_stats() -> HostBufferStats {
    HostBufferStats {
        fresh: FRESH.load(Ordering::Relaxed),
        reused: REUSED.load(Ordering::Relaxed),
    }
}

/// A host buffer of `len` elements over an allocation that may be longer (its size class).
pub(crate) struct Buffer<E: Element> {
    vec: Vec<E>,
    len: usize,
}

impl<E: Element> Buffer<E> {
    /// The allocation and the length in use (for [`Tensor`](crate::Tensor)'s storage).
    pub(crate) fn into_parts(mut self) -> (Vec<E>, usize) {
        (std::mem::take(&mut self.vec), self.len)
    }
}

impl<E: Element> Drop for Buffer<E> {
    /// A buffer dropped before it became a tensor (scratch space) goes back to the pool.
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.vec));
    }
}

impl<E: Element> Deref for Buffer<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.vec[..self.len]
    }
}

impl<E: Element> DerefMut for Buffer<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.vec[..self.len]
    }
}

/// `n` elements whose values are unspecified (a pooled buffer's previous contents, or
/// zeros): for outputs the caller overwrites entirely.
pub(crate) fn output<E: Element>(n: usize) -> Buffer<E> {
    let bytes = n * std::mem::size_of::<E>();
    if bytes < MIN_BYTES {
        return Buffer {
            vec: vec![E::zero(); n],
            len: n,
        };
    }
    let k = class_of(bytes);
    // Best fit: the buffer's own class, else one up to 3 classes (at most 1.7x) larger, so
    // that a batch shorter than the last one reuses its buffers instead of allocating.
    let reused = with_shelf::<E, _>(|free, pooled| {
        (k..(k + 4).min(CLASSES)).find_map(|c| {
            let ptr = free[c].pop()?;
            *pooled -= class_bytes(c);
            Some((ptr, c))
        })
    });
    let counter = if reused.is_some() { &REUSED } else { &FRESH };
    counter.fetch_add(1, Ordering::Relaxed);
    let vec = match reused {
        // SAFETY: the pointer is the allocation of a `Vec<E>` (same TypeId) of class `c`'s
        // capacity, whose elements were all initialised (see `give_back`).
        Some((ptr, c)) => {
            let cap = class_bytes(c) / std::mem::size_of::<E>();
            unsafe { Vec::from_raw_parts(ptr as *mut E, cap, cap) }
        }
        None => vec![E::zero(); class_bytes(k) / std::mem::size_of::<E>()],
    };
    Buffer { vec, len: n }
}

/// `n` zeros.
pub(crate) fn zeros<E: Element>(n: usize) -> Buffer<E> {
    use rayon::prelude::*;
    let mut b = output(n);
    // Large fills in parallel (a serial fill of a big output was a visible serial section).
    if n >= super::PAR_MIN {
        b.par_chunks_mut(1 << 14).for_each(|c| c.fill(E::zero()));
    } else {
        b.fill(E::zero());
    }
    b
}

/// Keeps `v`'s allocation for a later [`output`] when it is a whole, fully initialised
/// class allocation and the pool has room; frees it otherwise.
pub(crate) fn give_back<E: Element>(v: Vec<E>) {
    let bytes = v.capacity() * std::mem::size_of::<E>();
    if v.len() != v.capacity() || bytes < MIN_BYTES {
        return;
    }
    let k = class_of(bytes);
    if class_bytes(k) != bytes || k >= CLASSES {
        return;
    }
    let mut v = ManuallyDrop::new(v);
    let ptr = v.as_mut_ptr() as usize;
    let kept = with_shelf::<E, _>(|free, pooled| {
        if *pooled + bytes > MAX_POOLED_BYTES {
            return false;
        }
        *pooled += bytes;
        free[k].push(ptr);
        true
    });
    if !kept {
        // SAFETY: the parts of `v`, which was not dropped.
        drop(unsafe { Vec::from_raw_parts(ptr as *mut E, v.len(), v.capacity()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_tightly() {
        for bytes in [MIN_BYTES, MIN_BYTES + 1, 100_000, 12_390_000, 1 << 30] {
            let k = class_of(bytes);
            assert!(class_bytes(k) >= bytes, "{bytes}");
            assert!(
                class_bytes(k - 1) < bytes,
                "{bytes}: class {k} is not the smallest"
            );
            assert!(
                class_bytes(k) as f64 <= bytes as f64 * 1.25,
                "{bytes}: loose class"
            );
        }
    }

    #[test]
    fn a_freed_buffer_is_handed_out_again() {
        // A size no other test of this binary uses, so the shelf is ours.
        let n = 123_457;
        let mut a = output::<f64>(n);
        a[0] = 7.0;
        let (vec, len) = a.into_parts();
        assert_eq!(len, n);
        let ptr = vec.as_ptr();
        give_back(vec);
        let b = output::<f64>(n - 5);
        assert_eq!(b.as_ptr(), ptr, "the pooled allocation was not reused");
        assert_eq!(b.len(), n - 5);
        let z = zeros::<f64>(n);
        assert!(z.iter().all(|&v| v == 0.0));
    }
}
