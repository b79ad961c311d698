//! A bounded load test of `mclrec-cli serve` on loopback: 1, 8 and 64 concurrent clients,
//! each on one keep-alive connection, asking `GET /users/{user}/recommend?k=10` for users
//! of the Beauty data with the official checkpoint (`../shared/reference`). Prints p50 / p99
//! latency, requests per second and the server's forward passes per level as a markdown
//! table.
//!
//! `cargo bench -p mclrec-cli --bench serve_load` (SECONDS=N per level, default 5).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One keep-alive HTTP/1.1 connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// GET `path`: the status and the body.
    fn get(&mut self, path: &str) -> (u16, String) {
        write!(self.writer, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The server's count of forward passes so far.
fn forward_passes(addr: &str) -> usize {
    let (_, body) = Client::connect(addr).get("/metadata");
    body.split("\"forward_passes\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let shared = std::env::var("MCLREC_SHARED")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared").into());
    let ckpt = format!("{shared}/reference/beauty-official/model.safetensors");
    if !std::path::Path::new(&ckpt).exists() {
        eprintln!("skipped: {ckpt} is absent");
        return;
    }
    let seconds: f64 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let mut server = Command::new(env!("CARGO_BIN_EXE_mclrec-cli"))
        .args(["serve", "--checkpoint", &ckpt, "--dataset", "beauty"])
        .args(["--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut err = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|l| l.split_whitespace().next())
        .expect("the address")
        .to_string();
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    println!("| clients | requests | req/s | p50 ms | p99 ms | requests per forward pass |");
    println!("|---|---|---|---|---|---|");
    for clients in [1usize, 8, 64] {
        let passes_before = forward_passes(&addr);
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let t0 = Instant::now();
        let mut latencies: Vec<f64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let addr = addr.clone();
                    scope.spawn(move || {
                        let mut client = Client::connect(&addr);
                        let mut lat = Vec::new();
                        let mut user = 1 + c * 331;
                        while Instant::now() < deadline {
                            let t = Instant::now();
                            let (status, _) = client.get(&format!("/users/{user}/recommend?k=10"));
                            assert_eq!(status, 200);
                            lat.push(t.elapsed().as_secs_f64() * 1e3);
                            user = user % 22_363 + 1;
                        }
                        lat
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let wall = t0.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        let passes = forward_passes(&addr) - passes_before;
        println!(
            "| {clients} | {} | {:.0} | {:.2} | {:.2} | {:.1} |",
            latencies.len(),
            latencies.len() as f64 / wall,
            q(0.5),
            q(0.99),
            latencies.len() as f64 / passes.max(1) as f64
        );
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}
