//! In the steady state a training step takes no tensor buffer from the system allocator:
//! every activation, gradient and op output of 64 KiB or more comes from the CPU backend's
//! buffer pool, refilled by the previous step. Checked around one MCLRec three-step batch,
//! repeated after a warm-up, with the pool's own counts and a counting global allocator.
//!
//! What the counting allocator still sees is not tensor storage: matrixmultiply's packing
//! scratch for the item-score products (it allocates per call), and the batch's index lists
//! (the packed sequences, the embedding's lookups). They are counted, printed and bounded
//! (a tenth of the buffers the pool serves), not zero; small allocations (tape nodes,
//! per-op bookkeeping) are printed only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mclrec::tensor::host_buffer_stats;
use mclrec::trainer::run::{build_model, epoch_rng};
use mclrec::trainer::train_step::Learner;
use mclrec::trainer::{train_samples, Dataset, TrainConfig};

/// The size from which an allocation counts as a buffer (the pool's threshold).
const LARGE: usize = 64 << 10;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LARGE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static LARGE_LAST_SIZE: AtomicUsize = AtomicUsize::new(0);
static SMALL_ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn count(size: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        if size >= LARGE {
            LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
            LARGE_LAST_SIZE.store(size, Ordering::Relaxed);
        } else {
            SMALL_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_steady_state_training_step_allocates_no_buffer() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/amazon-beauty.txt");
    let text = std::fs::read_to_string(path).expect("data/amazon-beauty.txt");
    let head: String = text.lines().take(3000).map(|l| format!("{l}\n")).collect();
    let data = Dataset::from_text(&head, "beauty-head.txt").expect("valid dataset");
    let config = TrainConfig::paper_beauty("beauty-head.txt");
    let samples = train_samples(&data, config.max_len);
    let idx: Vec<usize> = (0..config.batch_size).collect();
    let mut learner = Learner::new(build_model(&config, &data), &config);
    // The same batch and views every time (the views' crops set the shapes).
    let step = |learner: &mut Learner| {
        let mut rng = epoch_rng(config.seed, 1);
        learner
            .train_batch(&samples, &idx, 1, &mut rng)
            .expect("finite losses")
    };
    // Warm-up: the first steps fill the pool (and Adam creates its moments).
    for _ in 0..3 {
        step(&mut learner);
    }
    let before = host_buffer_stats();
    COUNTING.store(true, Ordering::Relaxed);
    let steps = 3;
    for _ in 0..steps {
        step(&mut learner);
    }
    COUNTING.store(false, Ordering::Relaxed);
    let after = host_buffer_stats();
    let (large, small) = (
        LARGE_ALLOCS.load(Ordering::Relaxed),
        SMALL_ALLOCS.load(Ordering::Relaxed),
    );
    let served = after.reused - before.reused;
    println!(
        "per steady-state step: {} tensor buffers from the pool, {} fresh; the system \
         allocator: {} allocations >= 64 KiB (the last of {} bytes), {} smaller",
        served / steps,
        (after.fresh - before.fresh) / steps,
        large / steps,
        LARGE_LAST_SIZE.load(Ordering::Relaxed),
        small / steps
    );
    assert_eq!(
        after.fresh, before.fresh,
        "tensor buffers allocated fresh in the steady state"
    );
    assert!(
        served >= 100 * steps,
        "the pool served only {served} buffers"
    );
    assert!(
        large * 10 <= served,
        "{large} large system allocations against {served} pooled buffers"
    );
}
