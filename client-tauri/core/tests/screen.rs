//! Screen sharing in a real call: an Xvfb display of the test's own, run by openbox, with
//! an xclock that xdotool keeps moving; `confab-cli` shares that display (then the clock's
//! window alone) as a second video track, started, stopped and started again mid-call
//! from its standard input, and in-process participants decode both of its tracks.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer, room_owner};
use confab_core::api::ApiClient;
use confab_core::call::{Call, CallConfig, CallEvent, RemoteVideoFrame, VideoKind};
use confab_core::keystore::MemoryStore;
use confab_core::signaling::{SignalingClient, SignalingConfig};
use shared::api::Room;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, timeout};

/// Generous: two cores, other builds running.
const PATIENCE: Duration = Duration::from_secs(40);
const SCREEN: (u32, u32) = (1280, 720);

/// An X display of our own: Xvfb on a free display number from 140 on, openbox
/// (xcap lists windows from the window manager's client list), and an xclock that a shell
/// loop moves across it with xdotool. Everything dies with it.
struct Display {
    name: String,
    _xvfb: Child,
    _wm: Child,
    _clock: Child,
    _mover: Child,
}

/// The clock's size: even, as screen frames are.
const CLOCK: (u32, u32) = (240, 240);

impl Display {
    async fn start() -> Self {
        // The tests of this binary run in parallel: each takes its own number first.
        static NEXT: AtomicU32 = AtomicU32::new(140);
        let n = std::iter::repeat_with(|| NEXT.fetch_add(1, Ordering::Relaxed))
            .take(100)
            .find(|n| {
                !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                    && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .expect("a free X display number");
        let name = format!(":{n}");
        let xvfb = Command::new("Xvfb")
            .args([
                &name,
                "-screen",
                "0",
                &format!("{}x{}x24", SCREEN.0, SCREEN.1),
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Xvfb (scripts/lib.sh installs it)");
        let socket = format!("/tmp/.X11-unix/X{n}");
        let deadline = Instant::now() + PATIENCE;
        while !Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb {name} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let wm = Command::new("openbox")
            .env("DISPLAY", &name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("openbox (scripts/lib.sh installs it)");
        let clock = Command::new("xclock")
            .args(["-update", "1", "-geometry", "240x240+40+40"])
            .env("DISPLAY", &name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("xclock (x11-apps)");
        let mover = Command::new("sh")
            .arg("-c")
            .arg(
                "while :; do for x in 40 360 680 1000; do \
                 xdotool search --sync --class xclock windowmove %@ $x 200 >/dev/null 2>&1; \
                 sleep 0.3; done; done",
            )
            .env("DISPLAY", &name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sh");
        Self {
            name,
            _xvfb: xvfb,
            _wm: wm,
            _clock: clock,
            _mover: mover,
        }
    }
}

/// `confab-cli` with the display's environment (and no Wayland to prefer over it).
fn cli(display: &Display) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
    cmd.env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_SESSION_TYPE")
        .kill_on_drop(true);
    cmd
}

/// `name` (a member of `room`) joins its call in this process with the test pattern.
async fn join(
    server: &TestServer,
    name: &str,
    room: &Room,
) -> (Call, mpsc::UnboundedReceiver<CallEvent>) {
    let api = ApiClient::new(&server.base, Arc::new(MemoryStore::new())).unwrap();
    api.login(name, PASSWORD).await.unwrap();
    let (client, events) = SignalingClient::start(
        SignalingConfig::new(api.ws_url().to_string()),
        Arc::new(api),
    );
    let mut config = CallConfig::synthetic(room.id);
    config.udp_addrs = vec!["127.0.0.1:0".to_owned()];
    Call::start(client, events, config).unwrap()
}

async fn next_frame(
    rx: &mut broadcast::Receiver<Arc<RemoteVideoFrame>>,
    what: &str,
) -> Arc<RemoteVideoFrame> {
    loop {
        match timeout(PATIENCE, rx.recv()).await {
            Ok(Ok(frame)) => return frame,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("video sink closed waiting for {what}: {e}"),
            Err(_) => panic!("no {what} in time"),
        }
    }
}

/// Waits for `n` camera frames whose test-pattern counters go up; returns how many
/// screen frames arrived meanwhile.
async fn camera_frames(rx: &mut broadcast::Receiver<Arc<RemoteVideoFrame>>, n: usize) -> usize {
    let (mut seen, mut screen, mut last) = (0, 0, None);
    while seen < n {
        let frame = next_frame(rx, "camera frames").await;
        if frame.kind == VideoKind::Screen {
            screen += 1;
            continue;
        }
        let counter = frame.marker.expect("the test pattern's marker").counter;
        assert!(last.is_none_or(|l| counter > l), "{counter} after {last:?}");
        last = Some(counter);
        seen += 1;
    }
    screen
}

/// Waits for `n` screen frames of `size` (skipping any of another size, still on their
/// way from a share before); returns how many different pictures they were.
async fn screen_frames(
    rx: &mut broadcast::Receiver<Arc<RemoteVideoFrame>>,
    n: usize,
    size: (u32, u32),
) -> usize {
    let mut pictures = HashSet::new();
    let mut seen = 0;
    while seen < n {
        let frame = next_frame(rx, "screen frames").await;
        if frame.kind != VideoKind::Screen || (frame.frame.width(), frame.frame.height()) != size {
            continue;
        }
        let mut hash = DefaultHasher::new();
        frame.frame.y().hash(&mut hash);
        pictures.insert(hash.finish());
        seen += 1;
    }
    pictures.len()
}

async fn sharing(events: &mut mpsc::UnboundedReceiver<CallEvent>, on: bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout(deadline - Instant::now(), events.recv()).await {
            Ok(Some(CallEvent::RemoteScreen { sharing, .. })) if sharing == on => return,
            Ok(Some(_)) => {}
            Ok(None) => panic!("call events ended"),
            Err(_) => panic!("no RemoteScreen {{ sharing: {on} }} in time"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_arrives_as_its_own_track_and_the_camera_goes_on() {
    let display = Display::start().await;

    // The screens on offer: the display's one monitor at its size, and the clock.
    let deadline = Instant::now() + PATIENCE;
    let clock = loop {
        let listed = cli(&display).arg("screens").output().await.unwrap();
        assert!(listed.status.success(), "confab-cli screens failed");
        let listed = String::from_utf8(listed.stdout).unwrap();
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with("monitor:") && l.ends_with("1280x720")),
            "{listed}"
        );
        // openbox lists the clock once it manages it.
        if let Some(line) = listed.lines().find(|l| l.contains("XClock")) {
            assert!(line.ends_with("240x240"), "{line}");
            break line.split(':').take(2).collect::<Vec<_>>().join(":");
        }
        assert!(
            Instant::now() < deadline,
            "no clock window listed: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let server = TestServer::start(Db::Sqlite).await;
    let (owner, room) = room_owner(&server, "viewer", "screens").await;
    let (call, mut events) = join(&server, &owner, &room).await;
    let mut frames = call.video_frames();

    // Bob joins with his (synthetic) camera and takes commands on standard input.
    let mut bob = cli(&display)
        .args([
            "call",
            "--server",
            &server.base,
            "--room",
            &room.id.to_string(),
        ])
        .args([
            "--user",
            &common::unique("sharer"),
            "--register",
            "--synthetic",
        ])
        .args(["--udp-addr", "127.0.0.1:0", "--commands", "--json"])
        .env("CONFAB_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut commands = bob.stdin.take().unwrap();
    assert_eq!(
        camera_frames(&mut frames, 30).await,
        0,
        "no screen before sharing"
    );

    // He shares his screen mid-call: a renegotiation later, it arrives as a screen track
    // whose picture changes as the clock moves, while his camera keeps coming.
    commands.write_all(b"screen monitor\n").await.unwrap();
    sharing(&mut events, true).await;
    let pictures = screen_frames(&mut frames, 10, SCREEN).await;
    assert!(
        pictures >= 3,
        "the moving clock shows ({pictures} different pictures)"
    );
    camera_frames(&mut frames, 30).await;

    // He stops: the others are told, the screen frames end, the camera goes on.
    commands.write_all(b"screen stop\n").await.unwrap();
    sharing(&mut events, false).await;
    camera_frames(&mut frames, 30).await;
    assert_eq!(
        camera_frames(&mut frames, 30).await,
        0,
        "no screen frames a second after sharing stopped"
    );

    // And shares again: a new track, the same story.
    commands.write_all(b"screen monitor\n").await.unwrap();
    sharing(&mut events, true).await;
    assert!(screen_frames(&mut frames, 5, SCREEN).await >= 2);
    camera_frames(&mut frames, 10).await;

    // Carol joins while he shares. She joined last, so she offers first and her offer
    // has no place for his screen: he offers it once hers is answered.
    let (carol_api, carol) = common::register(&server, "late").await;
    carol_api.login(&carol, PASSWORD).await.unwrap();
    carol_api.join_room(room.id).await.unwrap();
    let (late, mut late_events) = join(&server, &carol, &room).await;
    let mut late_frames = late.video_frames();
    sharing(&mut late_events, true).await;
    assert!(screen_frames(&mut late_frames, 5, SCREEN).await >= 2);

    // He switches to the clock's window alone: its frames have the window's size and move
    // with its hands, for both of them.
    commands
        .write_all(format!("screen {clock}\n").as_bytes())
        .await
        .unwrap();
    assert!(screen_frames(&mut frames, 12, CLOCK).await >= 2);
    assert!(screen_frames(&mut late_frames, 3, CLOCK).await >= 1);

    drop(commands);
    bob.kill().await.unwrap();
    late.leave().await;
    call.leave().await;
}

/// The picker's side, in a child process of this test binary that has the display in
/// its environment (a test cannot set its own: the process's environment is shared).
#[test]
#[ignore = "a helper: the_picker_offers_the_screen_and_the_window_with_thumbnails runs it"]
fn picker_child() {
    use confab_core::call::ScreenTarget;
    use confab_core::call::screen::{list_sources, thumbnail_png};
    let sources = list_sources().unwrap();
    let monitor = sources
        .iter()
        .find(|s| matches!(s.target, ScreenTarget::Monitor(_)))
        .expect("the monitor");
    assert_eq!((monitor.width, monitor.height), SCREEN);
    let clock = sources
        .iter()
        .find(|s| s.name == "xclock" || s.name == "XClock")
        .expect("the clock's window");
    assert!(matches!(clock.target, ScreenTarget::Window(_)));
    // Thumbnails are PNGs fitted to 320x180, the aspect kept (IHDR: width, height).
    for (source, size) in [(monitor, (320, 180)), (clock, (180, 180))] {
        let png = thumbnail_png(source.target, 320, 180).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((dim(16), dim(20)), size, "{}", source.target);
    }
    println!("picker checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picker_offers_the_screen_and_the_window_with_thumbnails() {
    let display = Display::start().await;
    // openbox lists the clock once it manages it.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let listed = cli(&display).arg("screens").output().await.unwrap();
        if String::from_utf8_lossy(&listed.stdout).contains("XClock") {
            break;
        }
        assert!(Instant::now() < deadline, "no clock window listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["picker_child", "--exact", "--ignored", "--nocapture"])
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("XDG_SESSION_TYPE")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && out.contains("picker checked"),
        "{out}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
}
