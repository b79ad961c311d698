//! `recommend --all --out FILE`: every user's top-k as TSV or Parquet, the same lists
//! `recommend --user` gives, and no existing file replaced.

mod common;

use std::path::Path;

use common::{cli, fails_with, json_output, tiny, tmp};

fn tsv_rows(path: &Path) -> Vec<(String, i32, String, f32)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user\trank\titem\tscore"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].into(),
                f[1].parse().unwrap(),
                f[2].into(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

fn parquet_rows(path: &Path) -> Vec<(String, i32, String, f32)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                r.get_string(0).unwrap().clone(),
                r.get_int(1).unwrap(),
                r.get_string(2).unwrap().clone(),
                r.get_float(3).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_users_top_k_is_exported_as_recommend_gives_it() {
    let dir = tmp("export");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let run = dir.join("run");
    cli()
        .args([
            "run",
            "--dataset",
            d,
            "--epochs",
            "2",
            "--max-len",
            "10",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    let best = run.join("best.safetensors");
    let b = best.to_str().unwrap();
    let tsv = dir.join("all.tsv");
    let pq = dir.join("all.parquet");
    for out in [&tsv, &pq] {
        cli()
            .args([
                "recommend",
                "--checkpoint",
                b,
                "--dataset",
                d,
                "--all",
                "-k",
                "7",
            ])
            .args(["--out", out.to_str().unwrap()])
            .assert()
            .success();
    }
    let rows = tsv_rows(&tsv);
    assert_eq!(rows.len(), 81 * 7, "81 users, 7 each");
    assert_eq!(parquet_rows(&pq), rows, "the same rows in both formats");
    // The lists of `recommend --user`, history excluded.
    let text = std::fs::read_to_string(&data).unwrap();
    for user in ["u1", "u40", "u81"] {
        let one = json_output(&[
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--user",
            user,
            "-k",
            "7",
            "--json",
        ]);
        let mine: Vec<&(String, i32, String, f32)> = rows.iter().filter(|r| r.0 == user).collect();
        assert_eq!(mine.len(), 7);
        let history: Vec<&str> = text
            .lines()
            .find(|l| l.split(' ').next() == Some(user))
            .unwrap()
            .split(' ')
            .skip(1)
            .collect();
        assert_eq!(
            mine.len(),
            one.as_array().unwrap().len(),
            "user {user}: rows"
        );
        for (r, (row, want)) in mine.iter().zip(one.as_array().unwrap()).enumerate() {
            assert_eq!(row.1, r as i32 + 1);
            assert_eq!(
                row.2,
                want["item"].as_str().unwrap(),
                "{user} rank {}",
                r + 1
            );
            assert!((row.3 as f64 - want["score"].as_f64().unwrap()).abs() < 1e-6);
            assert!(
                !history.contains(&row.2.as_str()),
                "{user}: history item {}",
                row.2
            );
        }
    }
    let before = std::fs::read(&tsv).unwrap();
    fails_with(
        &[
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--all",
            "--out",
            tsv.to_str().unwrap(),
        ],
        "all.tsv: exists",
    );
    assert_eq!(std::fs::read(&tsv).unwrap(), before);
    fails_with(
        &["recommend", "--checkpoint", b, "--dataset", d, "--all"],
        "--out",
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    std::fs::remove_dir_all(&dir).ok();
}
