//! The desktop app's figures: idle memory of its whole process tree (the app, WebKit's
//! web and network processes; RSS, and PSS summed, since RSS counts WebKitGTK's and
//! Mesa's shared pages once per process), bare and with 20 rooms and 2,000 cached
//! messages; how long opening a room with 10,000 cached messages takes to answer and to
//! paint, and how smoothly 1,000 of them scroll; and what rendering video costs.
//!
//! `bench/desktop-bench.sh` runs it against the release build (and adds the `.deb`
//! size); by hand:
//!
//! ```sh
//! cargo build --release -p signal-server -p confab-core
//! cargo bench -p confab-app --features custom-protocol --bench desktop
//! ```
//!
//! Render cost: in a 1:1 call the app and a `confab-cli` peer do the same call work
//! (capture, VP8 encode and decode at 640x480 30 fps, Opus both ways); the app also
//! shows the remote video and its own self-view. So the app tree's CPU minus the peer's
//! CPU is what the render path costs for the two tiles. Both are decoded in the webview
//! (WebCodecs: the remote tile from the peer's frames, Rust then skipping its own VP8
//! decode, which the peer still does; the self-view from our own encoded frames)
//! unless the app runs with `CONFAB_WEBVIEW_DECODE=0`, when they are converted to RGBA
//! in Rust and drawn with putImageData. The bench says which path each tile took, and
//! whether the encoded frames came over the video socket or (`CONFAB_VIDEO_SOCKET=0`)
//! through a Tauri Channel; `bench/desktop-bench.sh` runs the call each way back to
//! back. Then it turns the app's camera off and measures again: what the app tree
//! still spends (the remote tile and receiving the call) bounds one remote tile's cost
//! from above.
//! `CONFAB_BENCH_PART=render` runs only the call. The RGBA conversion alone is timed too.

#[path = "../tests/support/mod.rs"]
mod support;

use confab_app::frames::{BoardFrame, Picture, encode};
use confab_core::api::ApiClient;
use confab_core::call::I420Frame;
use confab_core::keystore::MemoryStore;
use confab_media::video::pattern::SyntheticVideoSource;
use shared::RoomId;
use shared::api::{CreateRoomRequest, SendMessageRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Desktop, eventually};

/// Clock ticks per second for /proc/<pid>/stat times (Linux's USER_HZ).
const TICKS: f64 = 100.0;

/// Page size in KiB (x86-64 Linux).
const PAGE_KIB: u64 = 4;

/// The name and the fields after it of a `/proc/.../stat` file. The name is in
/// parentheses and may contain spaces.
fn parse_stat(path: &Path) -> Option<(String, Vec<u64>)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields = stat
        .get(close + 2..)?
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .collect();
    Some((stat[open + 1..close].to_owned(), fields))
}

/// After the name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21) pages.
fn field(fields: &[u64], i: usize) -> u64 {
    fields.get(i).copied().unwrap_or(0)
}

/// (pid, parent, name, rss KiB, cpu ticks) of every process.
fn processes() -> Vec<(u32, u32, String, u64, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some((name, f)) = parse_stat(&entry.path().join("stat")) else {
            continue;
        };
        out.push((
            pid,
            u32::try_from(field(&f, 1)).unwrap_or(0),
            name,
            field(&f, 21) * PAGE_KIB,
            field(&f, 11) + field(&f, 12),
        ));
    }
    out
}

/// The app's process and its descendants: (name, rss KiB, cpu ticks) per pid.
fn app_tree(app: &Path) -> HashMap<u32, (String, u64, u64)> {
    let all = processes();
    let app = std::fs::canonicalize(app).unwrap_or_else(|_| app.to_path_buf());
    let mut tree: Vec<u32> = all
        .iter()
        .filter(|(pid, ..)| {
            std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(app.clone())
        })
        .map(|(pid, ..)| *pid)
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    all.into_iter()
        .filter(|p| tree.contains(&p.0))
        .map(|(pid, _, name, rss, cpu)| (pid, (name, rss, cpu)))
        .collect()
}

fn cpu_ticks_of(pid: u32) -> u64 {
    processes()
        .into_iter()
        .find(|p| p.0 == pid)
        .map_or(0, |p| p.4)
}

/// CPU ticks per thread name of one process (threads of the same name added up).
fn threads(pid: u32) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some((name, f)) = parse_stat(&entry.path().join("stat")) {
            *out.entry(name).or_default() += field(&f, 11) + field(&f, 12);
        }
    }
    out
}

/// A process's proportional set size and private memory (clean + dirty), KiB.
fn pss_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let value = |key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        value("Pss:"),
        value("Private_Clean:") + value("Private_Dirty:"),
    )
}

/// RSS and PSS of the app tree, summed, KiB (PSS and private memory per process too).
fn memory(label: &str, app: &Path) -> (u64, u64) {
    let tree = app_tree(app);
    let rss = print_tree(label, &tree);
    let mut pss = 0;
    for (pid, (name, ..)) in &tree {
        let (p, private) = pss_kib(*pid);
        pss += p;
        println!(
            "  {name:<24} PSS {:>6.1} MiB, private {:>6.1} MiB",
            p as f64 / 1024.0,
            private as f64 / 1024.0
        );
    }
    println!(
        "  PSS summed               {:>8.1} MiB",
        pss as f64 / 1024.0
    );
    (rss, pss)
}

/// Rooms with messages, posted by `api` over REST; the last message of each says `end`.
async fn seed(api: &ApiClient, title: &str, messages: usize, writers: usize) -> RoomId {
    let room = api
        .create_room(&CreateRoomRequest {
            title: title.to_owned(),
            max_participants: None,
        })
        .await
        .expect("a room")
        .id;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let api = api.clone();
        tasks.spawn(async move {
            for i in (w..messages.saturating_sub(1)).step_by(writers) {
                let body = format!("message {i}: the quick brown fox jumps over the lazy dog");
                let key = uuid::Uuid::new_v4().to_string();
                let request = SendMessageRequest {
                    body,
                    reply_to: None,
                    attachments: Vec::new(),
                };
                api.send_message(room, &key, &request)
                    .await
                    .expect("a message");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer");
    }
    let request = SendMessageRequest {
        body: format!("end of {title}"),
        reply_to: None,
        attachments: Vec::new(),
    };
    api.send_message(room, &uuid::Uuid::new_v4().to_string(), &request)
        .await
        .expect("the last message");
    room
}

/// Waits until the rail's preview of `room` shows its last seeded message (the app's
/// model has had every message of it by then).
async fn seeded(client: &fantoccini::Client, room: RoomId, title: &str) {
    let css = format!(
        "{} [data-testid='rail-room-preview']",
        support::rail_room(&room.to_string())
    );
    let end = format!("end of {title}");
    let last = std::sync::Mutex::new(String::new());
    let found = support::within(300, || async {
        let el = client.find(fantoccini::Locator::Css(&css)).await.ok()?;
        // textContent: rows scrolled out of the rail's view have no rendered text.
        let text = el.prop("textContent").await.ok()??;
        *last.lock().unwrap_or_else(|e| e.into_inner()) = text.clone();
        text.contains(&end).then_some(())
    })
    .await;
    if found.is_none() {
        panic!(
            "the app never showed {end:?} for {title}; its preview says {:?}",
            last.lock().unwrap_or_else(|e| e.into_inner())
        );
    }
}

fn print_tree(label: &str, tree: &HashMap<u32, (String, u64, u64)>) -> u64 {
    let total: u64 = tree.values().map(|t| t.1).sum();
    println!(
        "{label}: {:.1} MiB RSS in {} processes",
        total as f64 / 1024.0,
        tree.len()
    );
    let mut rows: Vec<_> = tree.values().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (name, rss, _) in rows {
        println!("  {name:<24} {:>8.1} MiB", *rss as f64 / 1024.0);
    }
    total
}

/// Average time to encode a 640x480 frame for a tile of at most `max` (0: full size).
fn encode_time(frames: &[Arc<I420Frame>], max: (u32, u32)) -> Duration {
    let runs = 300;
    let started = Instant::now();
    for i in 0..runs {
        let frame = BoardFrame {
            seq: i as u64,
            picture: Picture::Local(Arc::clone(&frames[i % frames.len()])),
        };
        std::hint::black_box(encode(&frame, max.0, max.1));
    }
    started.elapsed() / runs as u32
}

fn conversion_cost() {
    let mut source = SyntheticVideoSource::new(640, 480, 30).expect("pattern");
    let frames: Vec<_> = (0..30).map(|_| Arc::new(source.next_frame())).collect();
    let full = encode_time(&frames, (0, 0));
    println!(
        "I420 -> RGBA + header, 640x480: {:.0} us per frame = {:.1} % of a core at 30 fps",
        full.as_secs_f64() * 1e6,
        full.as_secs_f64() * 30.0 * 100.0
    );
    let tile = encode_time(&frames, (396, 297));
    println!(
        "same, scaled to fit 396x297 (a tile in a 1024x720 window): {:.0} us per frame",
        tile.as_secs_f64() * 1e6,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("desktop: bench");
        return;
    }
    conversion_cost();
    let app = std::env::var_os("CONFAB_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_confab")));
    println!("app: {}", app.display());
    let desktop = Desktop::start_with(&app, &["--message-rate", "1000000"]).await;
    let username = Desktop::unique("bench");
    desktop.sign_up(&username).await;
    if std::env::var("CONFAB_BENCH_PART").is_ok_and(|p| p == "render") {
        render_cost(&desktop, &app).await;
        return;
    }
    // Idle in the shell, no rooms.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (idle, idle_pss) = memory("idle (empty shell)", &app);

    // 20 rooms of 100 messages, written by the same user's second device: the app's
    // model receives all 2,000 live.
    let api = ApiClient::new(&desktop.server_url, Arc::new(MemoryStore::new())).expect("client");
    api.login(&username, support::PASSWORD)
        .await
        .expect("second device");
    let started = Instant::now();
    let mut rooms = Vec::new();
    for i in 0..20 {
        let title = format!("room {i:02}");
        rooms.push((seed(&api, &title, 100, 4).await, title));
    }
    for (room, title) in &rooms {
        seeded(&desktop.client, *room, title).await;
    }
    println!(
        "seeded 20 rooms x 100 messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Each room opened once (its page drawn, its timeline kept by the UI's store), as
    // someone going through their rooms would, then back to idling in the last one.
    for (room, _) in &rooms {
        desktop.open_room(&room.to_string()).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (loaded, loaded_pss) = memory("idle with 20 rooms and 2,000 cached messages", &app);
    // `CONFAB_BENCH_IDLE_ONLY=1`: stop here (for comparing memory settings quickly).
    if std::env::var_os("CONFAB_BENCH_IDLE_ONLY").is_some() {
        println!(
            "idle app tree: empty {:.1} MiB RSS / {:.1} MiB PSS; 20 rooms and 2,000 cached messages {:.1} MiB RSS / {:.1} MiB PSS",
            idle as f64 / 1024.0,
            idle_pss as f64 / 1024.0,
            loaded as f64 / 1024.0,
            loaded_pss as f64 / 1024.0
        );
        return;
    }

    // One room of 10,000 messages, then open it: the UI's own timings
    // (openConversation -> its answer, and -> the first frame with the rows drawn).
    let started = Instant::now();
    let big = seed(&api, "big", 10_000, 8).await;
    seeded(&desktop.client, big, "big").await;
    println!(
        "seeded 10,000 messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    desktop.open_room(&big.to_string()).await;
    let big_id = big.to_string();
    let timings = eventually(30, "the open timings", || async {
        let v = desktop
            .client
            .execute("return window.__confabOpenTimings || null;", vec![])
            .await
            .ok()?;
        (v.get("roomId")?.as_str()? == big_id).then_some(v)
    })
    .await;
    println!(
        "open a room with 10,000 cached messages: answered in {:.1} ms, painted in {:.1} ms ({} messages loaded, {} rows in the DOM)",
        timings["answeredMs"].as_f64().unwrap_or(f64::NAN),
        timings["paintedMs"].as_f64().unwrap_or(f64::NAN),
        timings["messages"],
        timings["rowsInDom"],
    );
    // Scrolling 1,000 messages up at 60 px a frame, older pages loading on the way: the
    // gaps between animation frames, as the UI's probe measures them.
    let mut timeouts = desktop.client.get_timeouts().await.expect("the timeouts");
    timeouts.set_script(Some(Duration::from_secs(180)));
    desktop
        .client
        .update_timeouts(timeouts)
        .await
        .expect("a longer script timeout");
    let scroll = desktop
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__confabMeasureScroll(1000, 60).then(done, (e) => done({error: String(e)}));",
            vec![],
        )
        .await
        .expect("the scroll probe");
    if let Some(e) = scroll.get("error") {
        println!("the scroll probe failed: {e}");
    }
    println!(
        "scroll 1,000 messages up ({} rows scrolled): {} frames, mean {:.1} ms, p95 {:.1} ms, slowest {:.1} ms ({} over 50 ms; older pages applied in {} ms of script; {} rows in the DOM)",
        scroll["rowsScrolled"],
        scroll["frames"],
        scroll["meanFrameMs"].as_f64().unwrap_or(f64::NAN),
        scroll["p95FrameMs"].as_f64().unwrap_or(f64::NAN),
        scroll["maxFrameMs"].as_f64().unwrap_or(f64::NAN),
        scroll["slow"].as_array().map_or(0, Vec::len),
        scroll["prependMs"],
        scroll["rowsInDom"],
    );
    let idle_loaded = (loaded, loaded_pss);

    render_cost(&desktop, &app).await;
    println!(
        "idle app tree, empty shell: {:.1} MiB RSS, {:.1} MiB PSS",
        idle as f64 / 1024.0,
        idle_pss as f64 / 1024.0
    );
    println!(
        "idle app tree, 20 rooms and 2,000 cached messages: {:.1} MiB RSS, {:.1} MiB PSS",
        idle_loaded.0 as f64 / 1024.0,
        idle_loaded.1 as f64 / 1024.0
    );
}

/// An element's attribute, or `default` when it has none.
async fn attr_or(element: &fantoccini::elements::Element, name: &str, default: &str) -> String {
    element
        .attr(name)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| default.to_owned())
}

/// A 1:1 call with a `confab-cli` peer: the CPU of the app tree and of the peer over
/// 20 s, and what the difference (the render path) comes to.
async fn render_cost(desktop: &Desktop, app: &Path) {
    let room = desktop.create_room("bench").await;
    let cli = desktop.cli_participant(&room, &Desktop::unique("peer"), 150);
    desktop.join_call_with_test_pattern(&room).await;
    let client = &desktop.client;
    eventually(60, "remote frames", || async {
        support::attr_u64(
            client,
            ".tile[data-local='false'][data-frames]",
            "data-frames",
        )
        .await
        .filter(|n| *n > 30)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tile = client
        .find(fantoccini::Locator::Css(".tile[data-local='false']"))
        .await
        .expect("the remote tile");
    let path = attr_or(&tile, "data-decoder", "rgba").await;
    println!(
        "remote tile drawn by: {path} ({})",
        if path == "webcodecs" {
            "VP8 decoded in the webview, Rust not decoding"
        } else {
            "decoded in Rust, RGBA through IPC"
        }
    );

    let self_view = client
        .find(fantoccini::Locator::Css(".tile[data-local='true']"))
        .await
        .expect("the self-view");
    let self_view = attr_or(&self_view, "data-decoder", "rgba").await;
    println!("self-view drawn by: {self_view}");
    let via = attr_or(&tile, "data-video-via", "-").await;
    println!(
        "remote tile's frames came by: {via} (socket: the video socket; channel: a Tauri Channel)"
    );
    let cli_pid = cli.0.id();
    let both = call_cpu(client, app, cli_pid).await;
    println!(
        "  render path (app tree - peer): {:.1} % of a core",
        both.app - both.peer
    );
    println!(
        "  frames drawn by the webview: {:.1} per second (remote + self-view)",
        both.drawn_per_s
    );

    // Our camera off: the app no longer captures, encodes or draws a self-view, and
    // what it still spends is the remote tile plus receiving the call (audio both
    // ways, the peer's RTP): an upper bound of one remote tile's cost.
    support::click(client, "#toggle-camera").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let remote_only = call_cpu(client, app, cli_pid).await;
    println!(
        "  our camera off, only the remote tile drawn: app tree {:.1} % of a core ({:.1} frames drawn per second)",
        remote_only.app, remote_only.drawn_per_s
    );
    support::click(client, "#toggle-camera").await;
    println!(
        "  machine load (1, 5, 15 min): {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// CPU of the app tree and of the peer, in % of one core, over one measuring window.
struct CallCpu {
    app: f64,
    peer: f64,
    drawn_per_s: f64,
}

/// Measures the call for 20 s and prints each process and its busy threads.
async fn call_cpu(client: &fantoccini::Client, app: &Path, cli_pid: u32) -> CallCpu {
    let window = Duration::from_secs(20);
    let before = app_tree(app);
    let threads_before: HashMap<u32, _> = before.keys().map(|pid| (*pid, threads(*pid))).collect();
    let cli_before = cpu_ticks_of(cli_pid);
    let drawn_before = drawn(client).await;
    tokio::time::sleep(window).await;
    let after = app_tree(app);
    let threads_after: HashMap<u32, _> = after.keys().map(|pid| (*pid, threads(*pid))).collect();
    let cli_after = cpu_ticks_of(cli_pid);
    let drawn_after = drawn(client).await;

    let pct = |ticks: u64| ticks as f64 / TICKS / window.as_secs_f64() * 100.0;
    println!(
        "in a 1:1 call, 640x480 30 fps from the peer, over {} s:",
        window.as_secs()
    );
    let mut app_total = 0;
    for (pid, (name, _, cpu)) in &after {
        let used = cpu.saturating_sub(before.get(pid).map_or(0, |b| b.2));
        app_total += used;
        println!("  {name:<24} {:>6.1} % of a core", pct(used));
    }
    for (pid, (name, ..)) in &after {
        let (Some(b), Some(a)) = (threads_before.get(pid), threads_after.get(pid)) else {
            continue;
        };
        let mut busy: Vec<(u64, &String)> = a
            .iter()
            .map(|(t, ticks)| (ticks.saturating_sub(b.get(t).copied().unwrap_or(0)), t))
            .filter(|(used, _)| pct(*used) >= 2.0)
            .collect();
        busy.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        for (used, thread) in busy {
            println!("    {name} / {thread:<20} {:>6.1} %", pct(used));
        }
    }
    let cli_used = cli_after.saturating_sub(cli_before);
    println!("  app tree total           {:>6.1} %", pct(app_total));
    println!("  confab-cli peer (no UI)  {:>6.1} %", pct(cli_used));
    print_tree("in the call", &after);
    CallCpu {
        app: pct(app_total),
        peer: pct(cli_used),
        drawn_per_s: (drawn_after - drawn_before) / window.as_secs_f64(),
    }
}

/// Frames the UI has drawn so far (its `window.__confabRenderStats`).
async fn drawn(client: &fantoccini::Client) -> f64 {
    client
        .execute(
            "return (window.__confabRenderStats || {frames: 0}).frames;",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}
