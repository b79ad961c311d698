//! A damaged checkpoint is an error, never a panic: random edits of a real checkpoint
//! (header and data) fed to `checkpoint::load`, as `--resume` does.

use mclrec_trainer::run::{build_model, Silent};
use mclrec_trainer::train_step::Learner;
use mclrec_trainer::{checkpoint, run, Dataset, RunMode, TrainConfig};
use proptest::prelude::*;

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 8,
        max_len: 6,
        threads: 1,
        ..TrainConfig::paper_beauty("t.txt")
    }
}

fn data() -> Dataset {
    let text: String = (0..24)
        .map(|u| {
            format!(
                "u{u} {} {} {} {}\n",
                u % 9 + 1,
                (u + 1) % 9 + 1,
                (u + 2) % 9 + 1,
                u % 4 + 1
            )
        })
        .collect();
    Dataset::from_text(&text, "t.txt").unwrap()
}

/// The bytes of a real one-epoch checkpoint (with optimiser state and progress).
fn checkpoint_bytes() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("mclrec-ckpt-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(&config(), &data(), &dir, RunMode::New, &mut Silent).unwrap();
    let bytes = std::fs::read(dir.join("last.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn loading_a_damaged_checkpoint_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<bool>(),
    ) {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let mut bytes = BYTES.get_or_init(checkpoint_bytes).clone();
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for &(at, b) in &edits {
            // Mostly the header (names, shapes, offsets, progress), sometimes the data.
            let at = if b % 4 == 0 { at % bytes.len() } else { at % header };
            bytes[at] = b;
        }
        if cut {
            bytes.truncate(edits[0].0 % bytes.len());
        }
        let path = std::env::temp_dir().join(format!("mclrec-ckpt-fuzz-{}.safetensors", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let mut learner = Learner::new(build_model(&config(), &data()), &config());
        let Learner { model, opt, .. } = &mut learner;
        let _ = checkpoint::load(&path, model.store_mut(), opt.named_mut());
        let _ = checkpoint::stored_config(&path);
        let _ = checkpoint::stored_progress(&path);
        std::fs::remove_file(&path).ok();
    }
}
