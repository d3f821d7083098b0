//! End to end, in the real desktop window: a real `confab-server`, the real app under
//! Xvfb driven through tauri-driver and WebKitWebDriver, and a `confab-cli` participant.
//! A user picks the server, signs up, creates a room and joins its call with the test
//! pattern while `confab-cli` joins the same room; the remote tile and the self-view must
//! show frames whose painted frame counter advances, both decoded in the window, and the
//! participant list must show both. That server speaks only https and wss, with a
//! certificate from a CA the test creates and the app and `confab-cli` are told to trust
//! (`CONFAB_CA_FILE`).
//!
//! The messenger story: A signs up in the app; B (`confab-cli`) sends a contact request
//! and A accepts it in the contacts view; B writes, A's rail shows the unread badge, the
//! window title and the tray icon's label count it, and a notification is asked of the
//! session bus (dunst shows it); A clicks it and the window opens the room with the
//! message, and the counts go; the tray menu's "Mute notifications" checks the account
//! menu's box, and unchecking that clears the tray's check; B's second device (a
//! confab-core Connection in this process) sees A's read receipt, B types and A sees the
//! typing line; A replies and B's `chat tail` prints it; B's device reads it and A's reply
//! shows the read tick; B rings,
//! the incoming-call overlay shows B's name, A accepts, remote frames arrive; A opens
//! another conversation and the call keeps running (the call bar's tile keeps counting
//! frames); A hangs up and B's `ring` ends as answered; A minimizes the window (openbox
//! runs from here) and the tray menu's "Open Confab" shows it again; its "Quit" ends the
//! app.
//!
//! Needs Xvfb, WebKitWebDriver (webkit2gtk-driver) and tauri-driver, which
//! `scripts/test.sh` installs, and the UI built into `client-tauri/ui/dist` before the
//! app is compiled. The call-view screenshot goes to `$CARGO_TARGET_TMPDIR/call-view.png`
//! and, when `CONFAB_SCREENSHOT` names a file, there too (the README's picture); the
//! messenger story's conversation and call bar to `conversation.png` and
//! `shell-call-bar.png` beside it.

mod support;

use confab_core::api::ApiClient;
use confab_core::connection::{Connection, ConnectionConfig, ConnectionEvent};
use confab_core::keystore::MemoryStore;
use fantoccini::Locator;
use shared::RoomId;
use signal_server::testing::SmtpCapture;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use support::{
    Desktop, PASSWORD, Reaped, SHELL, attr_u64, click, eventually, eventually_in, find,
    page_source, rail_room, type_into, within,
};
use tokio::sync::broadcast;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_create_a_room_and_see_a_cli_participant_in_the_call() {
    let desktop = Desktop::start_over_tls(Path::new(env!("CARGO_BIN_EXE_confab"))).await;
    let client = &desktop.client;
    assert!(
        desktop.server_url.starts_with("https://"),
        "{}",
        desktop.server_url
    );

    // First run: pick the server, then sign up. Client-side validation first: a
    // too-short username is flagged on its field, not sent.
    type_into(client, "#server-url", &desktop.server_url).await;
    click(client, "#server-continue").await;
    find(client, "#signup-form").await;
    let username = Desktop::unique("e2e");
    type_into(client, "#signup-username", "ab").await;
    type_into(client, "#signup-email", &format!("{username}@example.com")).await;
    type_into(client, "#signup-password", PASSWORD).await;
    type_into(client, "#signup-confirm", PASSWORD).await;
    click(client, "#signup-submit").await;
    let error = find(client, "#signup-username-error").await;
    let text = eventually(10, "the username error", || async {
        error.text().await.ok().filter(|t| !t.trim().is_empty())
    })
    .await;
    assert!(text.contains('3'), "the error names the rule: {text}");
    type_into(client, "#signup-username", &username).await;
    click(client, "#signup-submit").await;
    find(client, SHELL).await;
    // An https server gets no plain-http warning.
    assert!(
        client
            .find(Locator::Css("[data-testid='insecure-banner']"))
            .await
            .is_err(),
        "the plain-http banner shows for an https server"
    );

    let room = desktop.create_room("E2E standup").await;
    let mut cli = desktop.cli_participant(&room, &Desktop::unique("cli"), 120);
    desktop.join_call_with_test_pattern(&room).await;

    // The remote tile shows frames, and the painted frame counter advances.
    let remote = ".tile[data-local='false'][data-frame-counter]";
    let first = within(60, || async {
        attr_u64(client, remote, "data-frame-counter")
            .await
            .filter(|n| *n > 0)
    })
    .await;
    let Some(first) = first else {
        panic!(
            "no remote frames; the window shows:\n{}",
            page_source(client).await
        );
    };
    counter_advances(client, remote, first, "the remote frame counter").await;
    // The window decoded them itself (WebCodecs' VideoDecoder: VP8 through GStreamer),
    // not from RGBA pictures; else the tile says why it fell back.
    let tile = client.find(Locator::Css(remote)).await.expect("the tile");
    let decoder = tile.attr("data-decoder").await.ok().flatten();
    let fallback = tile.attr("data-decoder-fallback").await.ok().flatten();
    assert_eq!(
        decoder.as_deref(),
        Some("webcodecs"),
        "the remote tile was not decoded in the window: {fallback:?}"
    );
    // Its frames came over the app's video socket (a WebSocket on loopback), not through
    // a Channel: the window's CSP and WebKit let the page reach it.
    assert_eq!(
        tile.attr("data-video-via").await.ok().flatten().as_deref(),
        Some("socket"),
        "the remote tile's frames did not come over the video socket"
    );
    // So is the self-view, from our own encoded frames: its counter advances too.
    let own = ".tile[data-local='true'][data-frame-counter]";
    let first_own = eventually(30, "the self-view's frame counter", || async {
        attr_u64(client, own, "data-frame-counter").await
    })
    .await;
    counter_advances(client, own, first_own, "the self-view's frame counter").await;
    let tile = client.find(Locator::Css(own)).await.expect("the self-view");
    let fallback = tile.attr("data-decoder-fallback").await.ok().flatten();
    assert_eq!(
        tile.attr("data-decoder").await.ok().flatten().as_deref(),
        Some("webcodecs"),
        "the self-view was not decoded in the window: {fallback:?}"
    );

    // The participant list shows both.
    let names = eventually(30, "both participants in the list", || async {
        let items = client
            .find_all(Locator::Css("#participants li"))
            .await
            .ok()?;
        let mut names = Vec::new();
        for item in items {
            names.push(item.text().await.ok()?);
        }
        (names.len() == 2).then_some(names)
    })
    .await;
    assert!(names.iter().any(|n| n.contains("cli_")), "{names:?}");

    // The picture for the README.
    let png = save_screenshot(client, "call-view.png").await;
    if let Some(path) = std::env::var_os("CONFAB_SCREENSHOT") {
        std::fs::write(path, &png).expect("saving the screenshot");
    }

    click(client, "#leave-call").await;
    find(
        client,
        &format!("[data-testid='conversation'][data-room-id='{room}']"),
    )
    .await;
    assert!(
        cli.0.try_wait().expect("cli status").is_none(),
        "confab-cli stayed in the call"
    );
    desktop
        .client
        .clone()
        .close()
        .await
        .expect("closing the session");
}

/// Saves the window as `$CARGO_TARGET_TMPDIR/name`; returns the PNG.
/// Waits until the test-pattern counter `tile` shows is 10 frames past `first`.
async fn counter_advances(client: &fantoccini::Client, tile: &str, first: u64, what: &str) {
    eventually(30, &format!("{what} to advance"), || async {
        attr_u64(client, tile, "data-frame-counter")
            .await
            .filter(|n| *n >= first + 10)
    })
    .await;
}

async fn save_screenshot(client: &fantoccini::Client, name: &str) -> Vec<u8> {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name), &png)
        .expect("saving the screenshot");
    png
}

/// The first connection event `pick` accepts, within 30 s.
async fn next_event<T>(
    rx: &mut broadcast::Receiver<ConnectionEvent>,
    what: &str,
    pick: impl Fn(&ConnectionEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the connection closed"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The titles of the display's windows, as `xwininfo -tree` lists them (package x11-utils).
/// dunst, the notification service, on `display` and this test's session bus; it answers
/// on the bus before this returns.
async fn notification_service(display: &str, dir: &Path) -> Reaped {
    // Notifications stay until acted on (dunst's default lets them expire after 10 s).
    let config = dir.join("dunstrc");
    std::fs::write(
        &config,
        "[urgency_low]\ntimeout = 0\n[urgency_normal]\ntimeout = 0\n[urgency_critical]\ntimeout = 0\n",
    )
    .expect("writing dunstrc");
    let dunst = Reaped(
        Command::new("dunst")
            .arg("-config")
            .arg(&config)
            .env("DISPLAY", display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dunst (package dunst)"),
    );
    eventually(20, "dunst on the session bus", || async {
        Command::new("dunstctl")
            .arg("is-paused")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| ())
    })
    .await;
    // Nothing shown before (say, the contact request's notice): the next is the message's.
    let _ = Command::new("dunstctl").arg("close-all").status();
    dunst
}

/// The app's tray icon: libayatana-appindicator exports it on the session bus as a
/// StatusNotifierItem with its menu (com.canonical.dbusmenu), whether or not a tray shows
/// it; the test reads and clicks it there with gdbus, as a tray would.
const TRAY_PATH: &str = "/org/ayatana/NotificationItem/tray_icon_tray_app_confab";

fn gdbus(args: &[&str]) -> Option<String> {
    let out = Command::new("gdbus")
        // A name that never answers (dbus-monitor's) must not hold the test for gdbus's
        // default 25 s.
        .args(["call", "--session", "--timeout", "3"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The bus name serving the tray icon: the newest, should an app of an earlier test still
/// be on its way out (unique names only grow).
fn tray_name() -> Option<String> {
    let names = gdbus(&[
        "--dest",
        "org.freedesktop.DBus",
        "--object-path",
        "/org/freedesktop/DBus",
        "--method",
        "org.freedesktop.DBus.ListNames",
    ])?;
    names
        .split('\'')
        .filter(|n| n.starts_with(":1.") && tray_get(n, "Id").is_some())
        .max_by_key(|n| n[3..].parse::<u64>().unwrap_or(0))
        .map(str::to_owned)
}

/// A property of the tray icon, as gdbus prints it.
fn tray_get(tray: &str, property: &str) -> Option<String> {
    gdbus(&[
        "--dest",
        tray,
        "--object-path",
        TRAY_PATH,
        "--method",
        "org.freedesktop.DBus.Properties.Get",
        "org.kde.StatusNotifierItem",
        property,
    ])
}

/// The tray menu's item labelled `label`: its id and whether it is checked.
fn tray_item(tray: &str, label: &str) -> Option<(u32, bool)> {
    let menu = format!("{TRAY_PATH}/Menu");
    let layout = gdbus(&[
        "--dest",
        tray,
        "--object-path",
        &menu,
        "--method",
        "com.canonical.dbusmenu.GetLayout",
        "0",
        "int32 -1",
        "[]",
    ])?;
    // Items print as `<(ID, {'label': <'...'>, 'toggle-state': <0 or 1>, ...}, @av [])>`.
    layout.split("<(").find_map(|item| {
        if !item.contains(&format!("'label': <'{label}'>")) {
            return None;
        }
        let id = item.split(',').next()?.trim().parse().ok()?;
        Some((id, item.contains("'toggle-state': <1>")))
    })
}

/// Clicks a tray menu item, as a tray does (dbusmenu's `Event`).
fn tray_click(tray: &str, id: u32) {
    let menu = format!("{TRAY_PATH}/Menu");
    let id = id.to_string();
    let done = gdbus(&[
        "--dest",
        tray,
        "--object-path",
        &menu,
        "--method",
        "com.canonical.dbusmenu.Event",
        &id,
        "clicked",
        "<int32 0>",
        "0",
    ]);
    assert!(done.is_some(), "clicking tray item {id}");
}

fn window_titles(display: &str) -> String {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree", "-display", display])
        .output()
        .expect("running xwininfo (apt-get install x11-utils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// xdotool on `display`: its output, or None when it failed (a search that found nothing).
fn xdotool(display: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("running xdotool (scripts/lib.sh installs it)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The mapped windows whose title matches `title` (a regex), by id.
fn visible_windows(display: &str, title: &str) -> Vec<String> {
    xdotool(display, &["search", "--onlyvisible", "--name", title])
        .map(|out| out.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Lines of a child's stdout, read on a thread.
fn lines(child: &mut Reaped) -> mpsc::Receiver<String> {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `secs` for a line containing `needle`.
async fn line_with(rx: &mpsc::Receiver<String>, needle: &str, secs: u64, what: &str) -> String {
    eventually(secs, what, || async {
        while let Ok(line) = rx.try_recv() {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_chat_and_a_ringing_call_that_outlives_the_conversation() {
    let desktop = Desktop::start(Path::new(env!("CARGO_BIN_EXE_confab"))).await;
    let c = &desktop.client;
    let a = Desktop::unique("ana");
    let b = Desktop::unique("bo");
    desktop.sign_up(&a).await;
    // A second conversation to move to during the call.
    let group = desktop.create_room("E2E team").await;

    // B asks A to be a contact; it shows in A's contacts live, and A accepts.
    desktop.cli_output(&b, &["contacts", "add", &a]);
    click(c, "[data-testid='contacts-entry']").await;
    find(c, "[data-testid='contacts-view']").await;
    let request = format!("[data-testid='incoming-request'][data-username='{b}']");
    click(c, &format!("{request} [data-testid='accept-request']")).await;
    find(c, &format!("[data-testid='contact'][data-username='{b}']")).await;

    // B writes in the direct room: A's rail shows it unread.
    let room = desktop.cli_output(&b, &["dm", &a]).trim().to_owned();
    assert!(
        room.parse::<uuid::Uuid>().is_ok(),
        "dm printed a room id: {room}"
    );
    // The OS notification goes to the session bus's notification service: watch for it.
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run this under scripts/with-keyring.sh (a session bus for the keyring and notifications)"
    );
    let mut monitor = Reaped(
        Command::new("dbus-monitor")
            .args([
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dbus-monitor (package dbus)"),
    );
    let notifications = lines(&mut monitor);
    // And a real notification service on the window's display, to click it.
    let _dunst = notification_service(&desktop.display.name, desktop.work.path()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    desktop.cli_output(&b, &["chat", "send", &room, "hello from the cli"]);
    let unread = eventually(30, "the unread badge", || async {
        attr_u64(c, &rail_room(&room), "data-unread")
            .await
            .filter(|n| *n >= 1)
    })
    .await;
    assert_eq!(unread, 1);
    find(
        c,
        &format!("{} [data-testid='unread-badge']", rail_room(&room)),
    )
    .await;
    // The window's title counts it, and so does the tray icon's label.
    eventually(30, "the unread count in the window title", || async {
        window_titles(&desktop.display.name)
            .contains("\"Confab (1)\"")
            .then_some(())
    })
    .await;
    let tray = eventually(30, "the tray icon on the session bus", || async {
        tray_name()
    })
    .await;
    eventually(30, "the unread count on the tray icon", || async {
        tray_get(&tray, "XAyatanaLabel")
            .filter(|l| l.contains("<'1'>"))
            .map(|_| ())
    })
    .await;
    // A is in the contacts view, no room open: the message asks for a notification.
    line_with(
        &notifications,
        "hello from the cli",
        30,
        "a notification request with the message",
    )
    .await;
    drop(monitor);

    // B's second device, in this process: it sees A's read receipts and types.
    let b_api = ApiClient::new(&desktop.server_url, Arc::new(MemoryStore::new())).expect("client");
    let b_me = b_api.login(&b, PASSWORD).await.expect("B signs in");
    let (b2, mut b2_events) = Connection::open(
        b_api,
        ConnectionConfig::new(desktop.work.path().join("b2-outbox.sqlite")),
    )
    .await
    .expect("B's second device");
    b2.wait_synced().await;
    let room_id: RoomId = room.parse().expect("room id");

    // A clicks the notification (its default action): the window opens the room and
    // shows the message; the badge goes.
    eventually(30, "a notification shown by the service", || async {
        let count = Command::new("dunstctl")
            .args(["count", "displayed"])
            .output()
            .ok()?;
        (String::from_utf8_lossy(&count.stdout).trim() != "0").then_some(())
    })
    .await;
    let clicked = Command::new("dunstctl")
        .args(["action", "0"])
        .status()
        .expect("dunstctl");
    assert!(clicked.success(), "dunstctl action: {clicked}");
    find(
        c,
        &format!("[data-testid='conversation'][data-room-id='{room}']"),
    )
    .await;
    let body = find(
        c,
        "[data-testid='message'][data-mine='false'] [data-testid='message-body']",
    )
    .await;
    assert_eq!(body.text().await.expect("text"), "hello from the cli");
    eventually_in(c, 60, "the badge to clear", || async {
        attr_u64(c, &rail_room(&room), "data-unread")
            .await
            .filter(|n| *n == 0)
    })
    .await;
    eventually(30, "the title without a count", || async {
        let titles = window_titles(&desktop.display.name);
        (titles.contains("\"Confab\"") && !titles.contains("\"Confab (")).then_some(())
    })
    .await;
    eventually(30, "the tray icon without a count", || async {
        tray_get(&tray, "XAyatanaLabel")
            .filter(|l| l.contains("<''>"))
            .map(|_| ())
    })
    .await;

    // The tray menu's "Mute notifications" mutes them in the window's account menu too,
    // and unmuting there clears the tray's check.
    let (mute, checked) = tray_item(&tray, "Mute notifications").expect("the tray's mute item");
    assert!(!checked, "notifications start unmuted");
    tray_click(&tray, mute);
    click(c, ".account-toggle").await;
    let boxed = "[data-testid='mute-notifications']";
    eventually(30, "the account menu's mute box checked", || async {
        find(c, boxed)
            .await
            .prop("checked")
            .await
            .ok()
            .flatten()
            .filter(|v| v == "true")
    })
    .await;
    click(c, boxed).await;
    eventually(30, "the tray's mute item unchecked", || async {
        tray_item(&tray, "Mute notifications").filter(|(_, checked)| !checked)
    })
    .await;
    click(c, ".account-toggle").await;
    // B sees that A read it.
    next_event(&mut b2_events, "A's read receipt at B", |e| match e {
        ConnectionEvent::Read {
            room_id: r,
            user_id,
            seq,
        } if *r == room_id && *user_id != b_me.id => (*seq >= 1).then_some(()),
        _ => None,
    })
    .await;
    // B types: A sees the typing line.
    b2.typing(room_id).expect("typing");
    let typing = eventually(30, "the typing line", || async {
        let line = c
            .find(Locator::Css("[data-testid='typing-line']"))
            .await
            .ok()?;
        line.text().await.ok().filter(|t| t.contains(&b))
    })
    .await;
    assert!(typing.contains("typing"), "{typing}");

    // A replies; B's `chat tail` prints it.
    let mut tail = Reaped(
        desktop
            .cli(&b, &["chat", "tail", &room])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chat tail"),
    );
    let tail_lines = lines(&mut tail);
    // Let the tail connect and sync before the reply (what it catches up on is history).
    tokio::time::sleep(Duration::from_secs(3)).await;
    type_into(c, "[data-testid='composer-input']", "hi from the app").await;
    click(c, "[data-testid='composer-send']").await;
    eventually_in(c, 30, "the reply sent", || async {
        let mine = c
            .find(Locator::Css("[data-testid='message'][data-mine='true']"))
            .await
            .ok()?;
        (mine.attr("data-state").await.ok()?? == "sent").then_some(())
    })
    .await;
    line_with(
        &tail_lines,
        "hi from the app",
        60,
        "B's tail to print the reply",
    )
    .await;
    drop(tail);
    // B's device reads the reply: A's message shows two blue ticks (read).
    let reply_seq = next_event(&mut b2_events, "the reply at B's device", |e| match e {
        ConnectionEvent::MessageCreated(m) if m.body == "hi from the app" => Some(m.seq),
        _ => None,
    })
    .await;
    b2.mark_read(room_id, reply_seq).await.expect("B reads");
    eventually_in(c, 30, "the read tick on A's reply", || async {
        let mine = c
            .find(Locator::Css("[data-testid='message'][data-mine='true']"))
            .await
            .ok()?;
        (mine.attr("data-tick").await.ok()?? == "read").then_some(())
    })
    .await;
    b2.close().await;
    // The conversation as it looks now, for the README (docs/conversation.png).
    save_screenshot(c, "conversation.png").await;

    // B rings: the overlay names B; A accepts with video.
    let mut ring = Reaped(
        desktop
            .cli(
                &b,
                &["ring", &a, "--udp-addr", "127.0.0.1:0", "--timeout", "90"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting confab-cli ring"),
    );
    let ring_lines = lines(&mut ring);
    let overlay = find(
        c,
        &format!("[data-testid='incoming-call'][data-room-id='{room}']"),
    )
    .await;
    let caller = overlay
        .find(Locator::Css("[data-testid='caller-name']"))
        .await
        .expect("the caller's name");
    assert!(caller.text().await.expect("text").contains(&b));
    click(c, "[data-testid='accept-video']").await;
    find(c, "#call-view").await;
    let remote = ".tile[data-local='false'][data-frame-counter]";
    let Some(first) = within(60, || async {
        attr_u64(c, remote, "data-frame-counter")
            .await
            .filter(|n| *n > 0)
    })
    .await
    else {
        panic!(
            "no remote frames; the window shows:\n{}",
            page_source(c).await
        );
    };
    line_with(&ring_lines, "answered", 30, "B's ring to be answered").await;

    // A opens another conversation: the call keeps running in the call bar, and its
    // tile keeps counting B's frames.
    desktop.open_room(&group).await;
    find(
        c,
        &format!("[data-testid='call-bar'][data-room-id='{room}']"),
    )
    .await;
    let bar_tile = ".floating-tile .tile[data-local='false'][data-frame-counter]";
    eventually(60, "frames while in another conversation", || async {
        attr_u64(c, bar_tile, "data-frame-counter")
            .await
            .filter(|n| *n >= first + 30)
    })
    .await;
    assert!(
        ring.0.try_wait().expect("ring status").is_none(),
        "B is still in the call"
    );
    save_screenshot(c, "shell-call-bar.png").await;

    // A hangs up from the bar; B's ring ends because A left.
    click(c, "[data-testid='hang-up']").await;
    eventually(30, "the call bar to go", || async {
        c.find(Locator::Css("[data-testid='call-bar']"))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let mut status = None;
    for _ in 0..240 {
        status = ring.0.try_wait().expect("ring status");
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = status.expect("B's ring ends once A hangs up");
    assert!(status.success(), "confab-cli ring ended with {status}");

    // The tray menu's "Open Confab" brings a minimized window back. Minimizing needs a
    // window manager: openbox takes over the display's windows from here on.
    let _wm = Reaped(
        Command::new("openbox")
            .env("DISPLAY", &desktop.display.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openbox (scripts/lib.sh installs it)"),
    );
    let display = desktop.display.name.clone();
    let shown = eventually(30, "the window managed by openbox", || async {
        let ids = visible_windows(&display, "^Confab");
        let managed = Command::new("xprop")
            .args(["-display", &display, "-root", "_NET_SUPPORTING_WM_CHECK"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("window id"));
        (managed && !ids.is_empty()).then_some(ids)
    })
    .await;
    for id in &shown {
        xdotool(&display, &["windowminimize", id]);
    }
    eventually(30, "the window minimized", || async {
        visible_windows(&display, "^Confab")
            .is_empty()
            .then_some(())
    })
    .await;
    let (open, _) = tray_item(&tray, "Open Confab").expect("the tray's open item");
    tray_click(&tray, open);
    eventually(30, "the window shown again from the tray", || async {
        (!visible_windows(&display, "^Confab").is_empty()).then_some(())
    })
    .await;

    // The tray menu's "Quit" ends the app: its tray icon leaves the bus and its window
    // the display. (The WebDriver session goes with it.)
    let (quit, _) = tray_item(&tray, "Quit").expect("the tray's quit item");
    tray_click(&tray, quit);
    eventually(30, "the app to quit from the tray", || async {
        let window = window_titles(&desktop.display.name).contains("\"Confab");
        (tray_get(&tray, "Id").is_none() && !window).then_some(())
    })
    .await;
}

/// "Forgot password?" in the window: the server mails a real aiosmtpd (the server
/// suite's capture script); the user pastes the mailed link, sets a new password, is sent
/// back to log in with a note, and logs in with the new password; the old one fails.
/// Before that login, a `confab://` invite link is opened (a second start of the app hands
/// it over); once signed in, the window has joined that group and shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_with_the_mailed_link() {
    let smtp = SmtpCapture::start();
    let smtp_url = smtp.url();
    let desktop = Desktop::start_with(
        Path::new(env!("CARGO_BIN_EXE_confab")),
        &[
            "--smtp-url",
            &smtp_url,
            "--smtp-from",
            "Confab <confab@example.org>",
            "--public-url",
            "https://chat.example.org",
        ],
    )
    .await;
    let c = &desktop.client;
    let name = Desktop::unique("fp");
    let email = format!("{name}@example.com");
    let api = ApiClient::new(&desktop.server_url, Arc::new(MemoryStore::new())).expect("client");
    api.register(&shared::api::RegisterRequest {
        username: name.clone(),
        email: email.clone(),
        password: PASSWORD.to_owned(),
        confirm_password: PASSWORD.to_owned(),
    })
    .await
    .expect("register");

    type_into(c, "#server-url", &desktop.server_url).await;
    click(c, "#server-continue").await;
    click(c, "#tab-login").await;
    click(c, "#forgot-password").await;
    type_into(c, "#reset-email", &email).await;
    click(c, "#reset-request-submit").await;
    let sent = find(c, "#reset-sent").await;
    let text = sent.text().await.expect("sent text");
    assert!(text.contains("If an account has this address"), "{text}");

    let link = eventually(60, "the reset mail", || async {
        smtp.messages().iter().find_map(|mail| {
            mail["text"]
                .as_str()?
                .split_whitespace()
                .find(|w| w.contains("/reset-password?token="))
                .map(str::to_owned)
        })
    })
    .await;
    const NEW_PASSWORD: &str = "Quiet-Lantern-Orchard-42";
    type_into(c, "#reset-code", &link).await;
    type_into(c, "#reset-password", NEW_PASSWORD).await;
    type_into(c, "#reset-confirm", NEW_PASSWORD).await;
    click(c, "#reset-submit").await;
    let note = find(c, "#login-note").await;
    let note = note.text().await.expect("note text");
    assert!(note.contains("new password"), "{note}");

    assert!(
        api.login(&name, PASSWORD).await.is_err(),
        "the old password still works"
    );

    // Someone's invite page offers `confab://invite/<code>`; clicked before A signs in, the
    // desktop starts the app a second time with it, which hands it to the running window
    // and exits. Once signed in, the window joins that group and opens it.
    let owner = ApiClient::new(&desktop.server_url, Arc::new(MemoryStore::new())).expect("client");
    let owner_name = Desktop::unique("owner");
    owner
        .register(&shared::api::RegisterRequest {
            username: owner_name.clone(),
            email: format!("{owner_name}@example.com"),
            password: PASSWORD.to_owned(),
            confirm_password: PASSWORD.to_owned(),
        })
        .await
        .expect("register the group's owner");
    owner
        .login(&owner_name, PASSWORD)
        .await
        .expect("the owner signs in");
    let group = owner
        .create_room(&shared::api::CreateRoomRequest {
            title: "Linked group".to_owned(),
            max_participants: None,
        })
        .await
        .expect("a group");
    let invite = owner
        .create_invite(
            group.id,
            &shared::api::CreateInviteRequest {
                expires_in: None,
                max_uses: None,
            },
        )
        .await
        .expect("an invite");
    desktop.open_link(&format!("confab://invite/{}", invite.token));

    type_into(c, "#login-login", &name).await;
    type_into(c, "#login-password", NEW_PASSWORD).await;
    click(c, "#login-submit").await;
    find(c, SHELL).await;
    find(
        c,
        &format!("[data-testid='conversation'][data-room-id='{}']", group.id),
    )
    .await;
    find(c, &rail_room(&group.id.to_string())).await;
    drop(smtp);
    desktop
        .client
        .clone()
        .close()
        .await
        .expect("closing the session");
}

/// Communities, a picture and search in the real window: A creates a community (it opens
/// at its #general), adds a channel in its settings and opens it; a picture drawn in the
/// page is dropped on the conversation and goes out with a line of text; its preview
/// loads from the server's signed link; a search for a word of the line lists it, and
/// the hit opens the channel at that message. The server is on https with the test's own
/// CA, which only the app trusts (`CONFAB_CA_FILE`), not WebKit: the preview comes
/// through the app's `confab-media:` scheme (`webview_media.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_channel_a_picture_and_a_search_that_lands_on_it() {
    let desktop = Desktop::start_over_tls(Path::new(env!("CARGO_BIN_EXE_confab"))).await;
    let c = &desktop.client;
    desktop.sign_up(&Desktop::unique("e2e")).await;

    // A new community from the discover pane: its icon in the strip, its #general open.
    click(c, "[data-testid='space-discover']").await;
    type_into(c, "#community-name", "E2E Club").await;
    click(c, "[data-testid='community-create-submit']").await;
    find(c, "[data-testid='space-community']").await;
    let general = eventually(20, "#general, open", || async {
        let row = c
            .find(Locator::Css("[data-testid='channel-row'].active"))
            .await
            .ok()?;
        row.attr("data-room-id").await.ok()?
    })
    .await;
    find(
        c,
        &format!("[data-testid='conversation'][data-room-id='{general}']"),
    )
    .await;

    // A channel made in the community's settings, then opened from its list.
    click(c, "[data-testid='community-settings-open']").await;
    click(c, "[data-testid='community-tab-channels']").await;
    type_into(c, "#ch-name", "photos").await;
    click(c, "[data-testid='channel-create-submit']").await;
    let row = "//li[@data-testid='channel-row'][.//*[@data-testid='channel-name'][normalize-space()='photos']]";
    let channel = eventually(20, "the photos channel in the list", || async {
        let el = c.find(Locator::XPath(row)).await.ok()?;
        el.attr("data-room-id").await.ok()?
    })
    .await;
    click(
        c,
        &format!("[data-testid='channel-row'][data-room-id='{channel}'] button"),
    )
    .await;
    find(
        c,
        &format!("[data-testid='conversation'][data-room-id='{channel}']"),
    )
    .await;

    // A picture drawn in the page, dropped on the conversation: it uploads, then goes out
    // with a line of text.
    c.execute_async(
        r##"const done = arguments[arguments.length - 1];
           const canvas = document.createElement("canvas");
           canvas.width = 96; canvas.height = 64;
           const g = canvas.getContext("2d");
           g.fillStyle = "#e0803a"; g.fillRect(0, 0, 96, 64);
           g.fillStyle = "#3a60e0"; g.fillRect(0, 40, 96, 24);
           canvas.toBlob((blob) => {
             const file = new File([blob], "sunset.png", { type: "image/png" });
             const drop = new Event("drop", { bubbles: true, cancelable: true });
             Object.defineProperty(drop, "dataTransfer", {
               value: { files: [file], types: ["Files"] },
             });
             document.querySelector(".conversation").dispatchEvent(drop);
             done(true);
           }, "image/png");"##,
        vec![],
    )
    .await
    .expect("dropping a picture");
    find(c, "[data-testid='upload'][data-state='done']").await;
    type_into(c, "[data-testid='composer-input']", "sunset over the lake").await;
    click(c, "[data-testid='composer-send']").await;

    // Its preview loads from the server (the BlurHash placeholder goes once it has).
    let image = "[data-testid='message'][data-state='sent'] [data-testid='image-attachment']";
    let loaded = within(30, || async {
        let el = c.find(Locator::Css(image)).await.ok()?;
        el.attr("data-loaded")
            .await
            .ok()
            .flatten()
            .filter(|v| v == "true")
    })
    .await;
    if loaded.is_none() {
        panic!("the preview did not load:\n{}", page_source(c).await);
    }
    let src = find(c, &format!("{image} img"))
        .await
        .attr("src")
        .await
        .expect("src")
        .unwrap_or_default();
    assert!(
        src.starts_with("confab-media://localhost/api/files/"),
        "{src}"
    );

    // Search for a word of it, then land on the message.
    click(c, "[data-testid='channel-search']").await;
    type_into(c, "[data-testid='search-query']", "lake").await;
    click(c, "[data-testid='search-submit']").await;
    let hit = find(c, "[data-testid='search-hit']").await;
    let marked = find(c, "[data-testid='search-body'] mark").await;
    assert_eq!(marked.text().await.expect("mark"), "lake");
    hit.click().await.expect("opening the hit");
    find(
        c,
        &format!(
            "[data-testid='conversation'][data-room-id='{channel}'] [data-testid='message'][data-focused='true'] [data-testid='image-attachment']"
        ),
    )
    .await;
    desktop
        .client
        .clone()
        .close()
        .await
        .expect("closing the session");
}
