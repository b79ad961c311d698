//! Helpers shared by the end-to-end tests of the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mclrec-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 80 users over 30 items, item i mostly followed by i + 1.
pub fn tiny(dir: &Path) -> PathBuf {
    let mut text = String::new();
    let mut x: u64 = 12345;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    for u in 1..=80 {
        let len = 4 + next() % 8;
        let mut s = vec![1 + next() % 30];
        while s.len() < len {
            let last = *s.last().unwrap();
            s.push(if next() % 10 < 9 {
                last % 30 + 1
            } else {
                1 + next() % 30
            });
        }
        let items: Vec<String> = s.iter().map(|v| v.to_string()).collect();
        text += &format!("u{u} {}\n", items.join(" "));
    }
    // Make sure every item id up to 30 occurs.
    text += "u81 28 29 30\n";
    let p = dir.join("tiny.txt");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn cli() -> Command {
    Command::cargo_bin("mclrec-cli").unwrap()
}

/// Runs and checks exit code 2, a one-line `error:` naming `what`, and no panic.
pub fn fails_with(args: &[&str], what: &str) {
    let out = cli().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(what), "{args:?}: expected `{what}` in: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

/// Runs the binary, asserts success, and parses its stdout as JSON.
pub fn json_output(args: &[&str]) -> serde_json::Value {
    let out = cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A run's `metrics.jsonl` records without their timings (which differ between runs).
pub fn metrics_without_time(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "eval_seconds", "samples_per_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}
