//! Subnormal floats flushed to zero on the CPU's worker threads.
//!
//! An `f32` below `f32::MIN_POSITIVE` (1.18e-38) is subnormal. Intel cores handle an FMA
//! with a subnormal operand or result in microcode, about a hundred times slower than a
//! normal one, and training makes many of them: the gradients reaching the positions
//! before the last one pass through attention weights near zero, and in MCLRec's batches up
//! to 4 % of the entries of `dY` in the weight-gradient products `dY^T X` were subnormal
//! (instrumented). With flush-to-zero (results) and denormals-are-zero (inputs) set in
//! `MXCSR`, a Beauty MCLRec epoch on a 2-core AVX-512 Xeon went from 108-109 s to 62-67 s
//! (`mclrec-cli bench --batches 50`, three A/B pairs); the encoder products and the
//! layer-norm backward, where the subnormals met, ran 3-5x faster (perf samples). SASRec's
//! batches had none to speak of (11.1-11.4 s per epoch either way).
//!
//! Results differ only where a value below 1.18e-38 was kept before; runs stay
//! deterministic. TensorFlow sets the same flags on its CPU threads; PyTorch offers them as
//! `torch.set_flush_denormal(True)`. The GPU is unaffected (its FMA handles subnormals at
//! full speed).

/// `MXCSR` bits: flush-to-zero (15) and denormals-are-zero (6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Sets (or clears) flush-to-zero and denormals-are-zero on the calling thread and on
/// every worker of the current rayon pool. A no-op on processors other than x86-64.
///
/// Call it once, from the thread that drives the computation, before training or
/// evaluating; `mclrec-cli` does so for every command.
///
/// ```
/// use mclrec_tensor::flush_denormals;
/// let tiny = std::hint::black_box(f32::MIN_POSITIVE);
/// flush_denormals(true);
/// # #[cfg(target_arch = "x86_64")]
/// assert_eq!(std::hint::black_box(tiny) / 4.0, 0.0); // subnormal, so flushed
/// flush_denormals(false);
/// assert_eq!(std::hint::black_box(tiny) / 4.0, f32::MIN_POSITIVE / 4.0);
/// ```
pub fn flush_denormals(on: bool) {
    set_this_thread(on);
    rayon::broadcast(|_| set_this_thread(on));
}

/// Whether the calling thread flushes subnormals (both bits set).
pub fn denormals_flushed() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read_mxcsr() & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn set_this_thread(on: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let csr = read_mxcsr();
        let csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
        // SAFETY: only the FTZ and DAZ bits change; rounding and exception masks stay.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = on;
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stores the 32-bit control register into a local.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// Both states in one test, so the workers that other tests share are flushed only briefly.
    #[test]
    fn flushes_on_this_thread_and_every_worker_and_restores() {
        let tiny = black_box(f32::MIN_POSITIVE);
        flush_denormals(true);
        assert!(denormals_flushed());
        assert_eq!(black_box(tiny) / 2.0, 0.0);
        // DAZ: a subnormal input reads as zero.
        assert_eq!(black_box(f32::from_bits(1)) * 2.0, 0.0);
        let workers = rayon::broadcast(|_| (denormals_flushed(), black_box(tiny) / 2.0));
        assert!(workers.iter().all(|&(f, v)| f && v == 0.0), "{workers:?}");
        flush_denormals(false);
        assert!(!denormals_flushed());
        assert_eq!(black_box(tiny) / 2.0, f32::MIN_POSITIVE / 2.0);
        assert!(rayon::broadcast(|_| !denormals_flushed())
            .iter()
            .all(|&x| x));
    }
}
