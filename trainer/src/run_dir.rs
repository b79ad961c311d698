//! A run directory held by one process: never clobbered, never shared.
//!
//! A new run refuses a directory that already holds a run unless told to overwrite it, and
//! then removes the previous run's files first, so no stale file survives beside the new
//! ones. An advisory lock (`flock` on `DIR/.lock`, released by the OS when the process dies,
//! however it dies) makes a second run or resume into a busy directory fail at once.
//! Temporary files left by a crashed write are removed when the directory is taken.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The files a run writes (a directory holding any of them holds a run).
pub const RUN_FILES: [&str; 8] = [
    "config.toml",
    "metrics.jsonl",
    "last.safetensors",
    "best.safetensors",
    "results.json",
    "item_map.tsv",
    "losses.png",
    "validation.png",
];

const LOCK_FILE: &str = ".lock";

/// A run directory locked by this process until it is dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

/// Whether `dir` holds (part of) a run.
pub fn holds_run(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).exists())
}

/// `Ok` when `dir` holds no run, else the message that says what to do instead.
pub fn ensure_free(dir: &Path) -> Result<(), String> {
    if holds_run(dir) {
        return Err(format!(
            "{d} already holds a run: continue it with `mclrec-cli run --resume {d}`, choose another --out, \
             or replace it with --overwrite",
            d = dir.display()
        ));
    }
    Ok(())
}

/// `base` if it holds no run, else the first of `base-2`, `base-3`, ... that holds none.
pub fn fresh(base: &Path) -> PathBuf {
    if !holds_run(base) {
        return base.to_path_buf();
    }
    let name = base.as_os_str().to_string_lossy();
    (2..)
        .map(|i| PathBuf::from(format!("{name}-{i}")))
        .find(|p| !holds_run(p))
        .expect("an unbounded range")
}

impl RunDir {
    /// Takes `dir` for a new run. A directory holding a run is refused with a message that
    /// says what to do, unless `overwrite`, in which case its run files are removed.
    pub fn create(dir: &Path, overwrite: bool) -> Result<RunDir, String> {
        if !overwrite {
            ensure_free(dir)?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create ({e})", dir.display()))?;
        let held = Self::lock(dir)?;
        if overwrite {
            for f in RUN_FILES {
                let p = dir.join(f);
                if p.exists() {
                    std::fs::remove_file(&p)
                        .map_err(|e| format!("{}: cannot remove ({e})", p.display()))?;
                }
            }
        }
        held.remove_temporaries()?;
        Ok(held)
    }

    /// Takes `dir` to continue the run in it.
    pub fn resume(dir: &Path) -> Result<RunDir, String> {
        if !dir.join("config.toml").is_file() {
            return Err(format!(
                "{}: not a run directory (no config.toml)",
                dir.display()
            ));
        }
        let held = Self::lock(dir)?;
        held.remove_temporaries()?;
        Ok(held)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(dir: &Path) -> Result<RunDir, String> {
        let path = dir.join(LOCK_FILE);
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let by = if pid.is_empty() {
                    "another process".to_string()
                } else {
                    format!("pid {pid}")
                };
                return Err(format!(
                    "{} is in use by {by} (a run or resume is writing to it)",
                    dir.display()
                ));
            }
        }
        file.set_len(0).map_err(fail)?;
        file.rewind().map_err(fail)?;
        writeln!(file, "{}", std::process::id()).map_err(fail)?;
        Ok(RunDir {
            path: dir.to_path_buf(),
            _lock: file,
        })
    }

    /// Removes `.NAME.tmpPID` files of crashed atomic writes (no live process writes here:
    /// the lock is held).
    fn remove_temporaries(&self) -> Result<(), String> {
        let entries =
            std::fs::read_dir(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = RUN_FILES
                .iter()
                .any(|f| name.starts_with(&format!(".{f}.tmp")));
            if stale {
                std::fs::remove_file(entry.path())
                    .map_err(|e| format!("{}: cannot remove ({e})", entry.path().display()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mclrec-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_run_directory_is_refused_overwritten_whole_or_given_a_fresh_name() {
        let d = scratch("refuse");
        drop(RunDir::create(&d, false).unwrap());
        std::fs::write(d.join("results.json"), "{}").unwrap();
        std::fs::write(d.join("notes.txt"), "mine").unwrap();
        std::fs::write(d.join(".last.safetensors.tmp999"), "half").unwrap();
        let e = RunDir::create(&d, false).unwrap_err();
        assert!(
            e.contains("already holds a run") && e.contains("--resume"),
            "{e}"
        );
        assert_eq!(fresh(&d), PathBuf::from(format!("{}-2", d.display())));
        drop(RunDir::create(&d, true).unwrap());
        assert!(!d.join("results.json").exists());
        assert!(!d.join(".last.safetensors.tmp999").exists());
        assert_eq!(
            std::fs::read_to_string(d.join("notes.txt")).unwrap(),
            "mine"
        );
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_held_directory_is_busy_until_released() {
        let d = scratch("lock");
        let held = RunDir::create(&d, false).unwrap();
        std::fs::write(d.join("config.toml"), "").unwrap();
        // flock locks belong to the open file: a second open in this process conflicts too.
        let e = RunDir::resume(&d).unwrap_err();
        assert!(
            e.contains(&format!("in use by pid {}", std::process::id())),
            "{e}"
        );
        drop(held);
        RunDir::resume(&d).unwrap();
        std::fs::remove_dir_all(&d).ok();
    }
}
