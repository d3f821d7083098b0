//! Figures for files (README, "Performance"):
//! - ten concurrent 25 MiB uploads to a real `confab-server` process (SQLite, the local
//!   store): the server's RSS growth (sampled from /proc every 10 ms, and its peak) and
//!   the throughput;
//! - a 12-megapixel JPEG through the image pipeline (decode with limits, EXIF
//!   orientation, re-encode, preview, thumbnail, placeholder): time and the peak memory
//!   it adds to this process.
//!
//! `cargo bench -p signal-server --bench files` (release build). Every loop is bounded;
//! the server listens on 127.0.0.1 and is killed at the end.

#![allow(clippy::unwrap_used)]

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};
use signal_server::files::images;
use signal_server::files::sniff::Raster;
use std::io::Cursor;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOADS: usize = 10;
const SIZE: usize = 25 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// A `/proc/PID/status` field, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one upload of SIZE bytes over a plain socket, written in CHUNK pieces as it is
/// made (the client holds one chunk, not the file); returns the status line.
async fn upload(addr: &str, token: &str, n: usize) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/uploads?name=bench-{n}.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut chunk = vec![0u8; CHUNK];
    let mut sent = 0;
    let mut x: u32 = n as u32 + 1;
    while sent < SIZE {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        tcp.write_all(&chunk).await.unwrap();
        sent += CHUNK;
    }
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn uploads_figure() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .args(["--bind", &addr, "--data-dir"])
        .arg(dir.path())
        .args([
            "--auth-rate-per-ip",
            "1000",
            "--auth-rate-per-account",
            "1000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Killed(child);
    let pid = server.0.id();
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let password = "Correct-Horse-Battery-9";
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "bench", "email": "bench@example.com", "password": password, "confirm_password": password}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "register: {}", r.status());
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"login": "bench", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    // One upload first, so the allocator and the connection pool are warm.
    assert!(upload(&addr, &token, 99).await.contains("201"));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = status_kib(pid, "VmRSS:");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            // Bounded: at most 10 minutes of samples.
            for _ in 0..60_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                peak.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..UPLOADS)
        .map(|n| {
            let (addr, token) = (addr.clone(), token.clone());
            tokio::spawn(async move { upload(&addr, &token, n).await })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status.contains("201"), "{status}");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let total_mib = (UPLOADS * SIZE) as f64 / (1024.0 * 1024.0);
    println!(
        "ten concurrent 25 MiB uploads (local store): {:.2} s, {:.0} MB/s ({:.0} MiB/s); \
         server RSS {:.1} MiB before, peak {:.1} MiB: growth {:.1} MiB",
        elapsed.as_secs_f64(),
        (UPLOADS * SIZE) as f64 / 1e6 / elapsed.as_secs_f64(),
        total_mib / elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(before)) as f64 / 1024.0,
    );
}

/// Peak RSS since the last reset, KiB; `reset` starts a new peak (Linux clear_refs).
fn self_peak(reset: bool) -> u64 {
    if reset {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    status_kib(std::process::id(), "VmHWM:")
}

fn thumbnail_figure() {
    // A 12 MP (4000x3000) photo-like JPEG: smooth gradients with some texture.
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        let t = ((x * 7 + y * 13) % 97) as u8;
        Rgb([
            (x / 16) as u8 ^ t,
            (y / 12) as u8,
            ((x + y) / 28) as u8 ^ (t / 2),
        ])
    });
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    // Everything above is the bench's own: measure from here.
    let base = status_kib(std::process::id(), "VmRSS:");
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..3 {
        self_peak(true);
        let started = Instant::now();
        let out = images::process(&path, Raster::Jpeg).unwrap();
        times.push(started.elapsed());
        peak = peak.max(self_peak(false));
        assert_eq!((out.width, out.height), (4000, 3000));
        std::hint::black_box(out);
    }
    times.sort();
    println!(
        "12 MP JPEG ({:.1} MB) -> clean JPEG + 1280 px preview + 320 px thumbnail (WebP) + \
         BlurHash: median {:.0} ms (of 3: {:?}); peak RSS {:.0} MiB, {:.0} MiB over the {:.0} MiB before",
        jpeg.len() as f64 / 1e6,
        times[1].as_secs_f64() * 1000.0,
        times.iter().map(|t| t.as_millis()).collect::<Vec<_>>(),
        peak as f64 / 1024.0,
        peak.saturating_sub(base) as f64 / 1024.0,
        base as f64 / 1024.0,
    );
}

fn main() {
    thumbnail_figure();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(uploads_figure());
}
