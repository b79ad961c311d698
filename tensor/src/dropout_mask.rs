//! Dropout masks as a function of `(seed, element index)`.
//!
//! A counter-based mask needs no storage (the backward pass recomputes it), no sequential
//! generator (each element's draw is independent, so threads and SIMD lanes split the work
//! freely and the result never depends on the thread count), and one `u64` from the
//! caller's generator per call.

/// A dropout mask: element `i` is kept when `draw(seed, i) >= threshold`, and kept
/// elements are scaled by `scale = 1 / (1 - p)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutMask {
    seed: u64,
    threshold: u32,
    /// The factor kept elements are multiplied by.
    pub scale: f64,
}

impl DropoutMask {
    /// The mask of drop probability `p` (in `[0, 1)`) for `seed`.
    ///
    /// ```
    /// use mclrec_tensor::dropout_mask::DropoutMask;
    ///
    /// let m = DropoutMask::new(0.5, 7);
    /// let kept = (0..100_000).filter(|&i| m.keep(i)).count();
    /// assert!((kept as f64 / 100_000.0 - 0.5).abs() < 0.01);
    /// assert_eq!(m.scale, 2.0);
    /// ```
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    pub fn new(p: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout probability {p} not in [0, 1)"
        );
        // p is quantised to 2^-32; the scale uses the quantised keep probability, so the
        // expectation is exactly preserved.
        let threshold = (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
        let keep = 1.0 - threshold as f64 / 4_294_967_296.0;
        DropoutMask {
            seed,
            threshold,
            scale: 1.0 / keep,
        }
    }

    /// The seed and the drop threshold, which the CUDA kernel's copy of [`draw`] needs to make
    /// the same keep/drop decisions.
    #[cfg(feature = "cuda")]
    pub(crate) fn seed_threshold(&self) -> (u64, u32) {
        (self.seed, self.threshold)
    }

    /// Whether element `i` (below 2^32) survives.
    #[inline(always)]
    pub fn keep(&self, i: usize) -> bool {
        draw(self.seed, i as u32) >= self.threshold
    }

    /// The multiplier of element `i`: `scale` or 0.
    #[inline(always)]
    pub fn factor<E: crate::Element>(&self, i: usize, scale: E) -> E {
        if self.keep(i) {
            scale
        } else {
            E::zero()
        }
    }
}

/// A uniform 32-bit draw for element `i`: two rounds of MurmurHash3's finaliser (a
/// bijection of `u32`) keyed by the two halves of the seed. 32-bit lanes, so the loops
/// that call it vectorise with AVX2.
#[inline(always)]
fn draw(seed: u64, i: u32) -> u32 {
    fmix32(fmix32(i ^ seed as u32) ^ (seed >> 32) as u32)
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rate_matches_p_and_seeds_differ() {
        for &p in &[0.1, 0.5, 0.9] {
            let m = DropoutMask::new(p, 12345);
            let n = 200_000;
            let kept = (0..n).filter(|&i| m.keep(i)).count() as f64 / n as f64;
            assert!((kept - (1.0 - p)).abs() < 0.005, "p {p}: kept {kept}");
        }
        let (a, b) = (DropoutMask::new(0.5, 1), DropoutMask::new(0.5, 2));
        let same = (0..10_000).filter(|&i| a.keep(i) == b.keep(i)).count();
        assert!(
            (4_700..5_300).contains(&same),
            "seeds 1 and 2 agree on {same}"
        );
        assert!((0..64).any(|i| a.keep(i)) && (0..64).any(|i| !a.keep(i)));
    }

    #[test]
    fn neighbouring_elements_are_independent() {
        // P(keep i and keep i+1) should be (1-p)^2 for a counter-based draw.
        let m = DropoutMask::new(0.5, 99);
        let n = 200_000;
        let both = (0..n).filter(|&i| m.keep(i) && m.keep(i + 1)).count() as f64 / n as f64;
        assert!((both - 0.25).abs() < 0.005, "pairs kept together {both}");
    }
}
