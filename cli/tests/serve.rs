//! `mclrec-cli serve` with a real HTTP client over loopback: the endpoints, every error
//! status, concurrent clients batched onto the model with the answers a lone client gets,
//! random request bodies that never take the server down, and a clean stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cli, json_output, tiny, tmp};

/// A running server and its address.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("mclrec-cli"))
            .arg("serve")
            .args(args)
            .args(["--bind", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in: {line}"))
            .to_string();
        // Keep reading what it says, so its last words never hit a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Server { child, addr }
    }

    /// One request on a fresh connection: (status, body).
    fn request(&self, method: &str, path: &str, body: &[u8], json: bool) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let ct = if json {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in: {text}"));
        let body = text
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn post(&self, body: &str) -> (u16, serde_json::Value) {
        let (status, b) = self.request("POST", "/recommend", body.as_bytes(), true);
        (
            status,
            serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}")),
        )
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, b) = self.request("GET", path, b"", false);
        (
            status,
            serde_json::from_str(&b).unwrap_or_else(|_| panic!("not JSON: {b}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trained(dir: &Path) -> (String, String) {
    let data = tiny(dir);
    let run = dir.join("run");
    cli()
        .args([
            "run",
            "--dataset",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--max-len",
            "10",
        ])
        .args(["--out", run.to_str().unwrap()])
        .assert()
        .success();
    (
        run.join("best.safetensors").to_str().unwrap().to_string(),
        data.to_str().unwrap().to_string(),
    )
}

fn items(v: &serde_json::Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_endpoints_answer_and_every_bad_request_gets_its_status() {
    let dir = tmp("serve");
    let (ckpt, data) = trained(&dir);
    let s = Server::start(&["--checkpoint", &ckpt, "--dataset", &data]);
    assert_eq!(s.get("/health"), (200, serde_json::json!({"status": "ok"})));
    let (status, meta) = s.get("/metadata");
    assert_eq!(
        (status, meta["items"].as_u64(), meta["users"].as_u64()),
        (200, Some(30), Some(81))
    );
    // The same list as `recommend --history`, tokens as strings or numbers.
    let (status, v) = s.post(r#"{"history": ["4", 5, "6"], "k": 3}"#);
    assert_eq!(status, 200);
    let cli_items = json_output(&[
        "recommend",
        "--checkpoint",
        &ckpt,
        "--dataset",
        &data,
        "--history",
        "4 5 6",
        "-k",
        "3",
        "--json",
    ]);
    let want: Vec<String> = cli_items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(items(&v), want);
    let (status, v) = s.get("/users/u3/recommend?k=4");
    assert_eq!((status, items(&v).len()), (200, 4));
    for (body, code) in [
        (r#"{"history": ["zz"]}"#, 422),
        (r#"{"history": ["4"], "k": 0}"#, 422),
        (r#"{"history": ["4"], "k": 31}"#, 422),
        (r#"{"history": []}"#, 422),
        (r#"{"history": "4 5"}"#, 400),
        (r#"{"history": ["4"], "colour": 1}"#, 400),
        (r#"{"history": ["4""#, 400),
        ("[]", 400),
    ] {
        let (status, v) = s.post(body);
        assert_eq!(status, code, "{body}: {v}");
        assert!(v["error"].is_string(), "{body}: {v}");
    }
    let big = format!(r#"{{"history": ["{}"]}}"#, "4".repeat(2 << 20));
    assert_eq!(s.request("POST", "/recommend", big.as_bytes(), true).0, 413);
    assert_eq!(
        s.request("POST", "/recommend", br#"{"history": ["4"]}"#, false)
            .0,
        415
    );
    assert_eq!(s.get("/users/nobody/recommend").0, 404);
    assert_eq!(s.get("/users/u3/recommend?k=x").0, 400);
    assert_eq!(s.get("/nowhere").0, 404);
    assert_eq!(s.request("GET", "/recommend", b"", false).0, 405);
    drop(s);
    // Without a dataset the checkpoint's own tokens are used; users are unknown.
    let s = Server::start(&["--checkpoint", &ckpt]);
    let (status, v) = s.post(r#"{"history": [4, 5, 6], "k": 3}"#);
    assert_eq!((status, items(&v)), (200, want));
    assert_eq!(s.get("/users/u3/recommend").0, 404);
    drop(s);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn concurrent_clients_share_forward_passes_and_get_what_a_lone_client_gets() {
    let dir = tmp("serve-batch");
    let (ckpt, data) = trained(&dir);
    let s = Server::start(&[
        "--checkpoint",
        &ckpt,
        "--dataset",
        &data,
        "--max-wait-ms",
        "20",
    ]);
    let users: Vec<String> = (1..=40).map(|u| format!("u{u}")).collect();
    let alone: Vec<serde_json::Value> = users
        .iter()
        .map(|u| s.get(&format!("/users/{u}/recommend?k=5")).1)
        .collect();
    let together: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .map(|u| {
                let s = &s;
                scope.spawn(move || s.get(&format!("/users/{u}/recommend?k=5")).1)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(together, alone);
    let served = &s.get("/metadata").1["served"];
    let (requests, passes) = (
        served["requests"].as_u64().unwrap(),
        served["forward_passes"].as_u64().unwrap(),
    );
    assert_eq!(requests, 80);
    assert!(
        passes < 60,
        "the concurrent 40 shared forward passes: {passes} for {requests}"
    );
    drop(s);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn random_bodies_never_take_it_down_and_sigterm_stops_it_cleanly() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let dir = tmp("serve-fuzz");
    let (ckpt, data) = trained(&dir);
    let s = Server::start(&["--checkpoint", &ckpt, "--dataset", &data]);
    let valid = br#"{"history": ["4", 5, "6"], "k": 3, "include_history": true}"#.to_vec();
    let mut runner = TestRunner::new(Config::with_cases(200));
    runner
        .run(
            &(
                proptest::collection::vec(any::<u8>(), 0..120),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            ),
            |(noise, edits)| {
                let mut edited = valid.clone();
                for (at, b) in &edits {
                    let at = at % edited.len();
                    edited[at] = *b;
                }
                for body in [&noise, &edited] {
                    let (status, text) = s.request("POST", "/recommend", body, true);
                    prop_assert!(
                        status == 200 || (400..500).contains(&status),
                        "{status}: {text}"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(s.get("/health").0, 200, "still up");
    let mut s = s;
    Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "SIGTERM ignored");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}
