//! What the desktop end-to-end test and the desktop benchmark share: a real
//! `confab-server`, Xvfb, tauri-driver with WebKitWebDriver, a WebDriver session with the
//! app, and small helpers to drive its window.

#![allow(dead_code)]

use confab_core::api::CA_FILE_VAR;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use signal_server::testing::TestCa;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// The app shell, on screen once signed in.
pub const SHELL: &str = "[data-testid='shell']";

/// A conversation's row in the rail.
pub fn rail_room(room: &str) -> String {
    format!("[data-testid='rail-room'][data-room-id='{room}']")
}

/// A child process killed when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A binary built next to this test (the workspace's other binaries).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A program this test needs from the system: on PATH, in cargo's bin folder, or at one
/// of `candidates`.
pub fn tool(name: &str, candidates: &[&str], hint: &str) -> PathBuf {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|c| c.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(name))
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found: {hint} (scripts/test.sh installs it)"))
}

pub struct Display {
    pub name: String,
    _xvfb: Reaped,
}

pub fn start_xvfb() -> Display {
    let xvfb = tool("Xvfb", &["/usr/bin/Xvfb"], "apt-get install xvfb");
    for number in 90..140 {
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        if socket.exists() || Path::new(&format!("/tmp/.X{number}-lock")).exists() {
            continue;
        }
        let child = Command::new(&xvfb)
            .args([
                &format!(":{number}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb");
        let xvfb = Reaped(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if socket.exists() {
            return Display {
                name: format!(":{number}"),
                _xvfb: xvfb,
            };
        }
    }
    panic!("no free X display for Xvfb");
}

pub async fn find(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on screen: {e}"))
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    let field = find(client, css).await;
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Clicks `css`, retrying for a while: a toast can lie over a button for a few seconds,
/// and a user would wait for it too. A refused click scrolls the element to the middle
/// of its list first (a row below the fold of a long rail is "not interactable").
pub async fn click(client: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let element = find(client, css).await;
        let error = match element.clone().click().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if let Ok(element) = serde_json::to_value(&element) {
            let _ = client
                .execute(
                    "arguments[0].scrollIntoView({block: 'center'})",
                    vec![element],
                )
                .await;
        }
        if Instant::now() >= deadline {
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(std::env::temp_dir().join("confab-e2e-failure.png"), png);
            }
            panic!(
                "click {css}: {error:?} (screenshot in the temp dir: confab-e2e-failure.png)\n{}",
                page_source(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls `read` until it gives `Some`, for up to `secs`.
pub async fn within<T, F, Fut>(secs: u64, mut read: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = read().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `read` until it gives `Some`, or fails with `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(secs, read)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Gives the app's window the X input focus. With no window manager the focus follows the
/// pointer (PointerRoot), so the window would count as focused only while the pointer
/// happens to be over it; a conversation marks messages read only in a focused window.
async fn focus_app_window(display: &str) {
    let xdotool = tool("xdotool", &["/usr/bin/xdotool"], "apt-get install xdotool");
    let run = |args: &[&str]| {
        Command::new(&xdotool)
            .args(args)
            .env("DISPLAY", display)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let focused = within(30, || async {
        let found = run(&["search", "--onlyvisible", "--name", "^Confab"])?;
        let window = found.lines().next()?.to_owned();
        run(&["windowfocus", &window])?;
        (run(&["getwindowfocus"])? == window).then_some(())
    })
    .await;
    assert!(
        focused.is_some(),
        "could not give the Confab window the input focus on {display}"
    );
}

/// Whether the webview thinks it has the focus, and what has it: for a failure message
/// about anything that needs a focused window.
pub async fn focus_state(client: &Client) -> String {
    client
        .execute(
            "return `document.hasFocus()=${document.hasFocus()} visibility=${document.visibilityState} active=${document.activeElement?.outerHTML?.slice(0, 120)}`;",
            vec![],
        )
        .await
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|e| format!("(no focus state: {e})"))
}

/// Like [`eventually`], and on a timeout the panic shows the window's focus state and markup.
pub async fn eventually_in<T, F, Fut>(client: &Client, secs: u64, what: &str, read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match within(secs, read).await {
        Some(value) => value,
        None => panic!(
            "timed out waiting for {what}; {}\n{}",
            focus_state(client).await,
            page_source(client).await
        ),
    }
}

/// The window's markup, for a failure message.
pub async fn page_source(client: &Client) -> String {
    client
        .source()
        .await
        .unwrap_or_else(|e| format!("(no page source: {e})"))
}

pub async fn attr_u64(client: &Client, css: &str, attr: &str) -> Option<u64> {
    let el = client.find(Locator::Css(css)).await.ok()?;
    el.attr(attr).await.ok()??.parse().ok()
}

/// A server, a display, tauri-driver and a WebDriver session with the app.
pub struct Desktop {
    pub client: Client,
    pub server_url: String,
    /// The CA the app and `confab-cli` trust, for a server on https and wss.
    pub ca_file: Option<PathBuf>,
    /// The app binary the driver started.
    pub app: PathBuf,
    // Dropped in this order: the driver (and the app with it), the display, the server,
    // then their files.
    _driver: Reaped,
    pub display: Display,
    _server: Reaped,
    pub work: tempfile::TempDir,
    // Last: released once everything above is gone.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Makes `command` trust `ca_file` (the app and `confab-cli` read `CONFAB_CA_FILE`), or
/// no extra CA at all: a CA file set in the test's own environment is not passed on.
fn trust(command: &mut Command, ca_file: Option<&Path>) {
    match ca_file {
        Some(ca) => command.env(CA_FILE_VAR, ca),
        None => command.env_remove(CA_FILE_VAR),
    };
}

/// One desktop at a time in a test process: each is a WebKit web process, an app, a
/// server and often a call, and four of them at once on a 2-core machine starved
/// WebKitWebDriver (sessions lost to "page crash or hang", refused session requests).
static ONE_DESKTOP_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Desktop {
    /// Starts everything, on a first run of `app` (no saved server or account).
    pub async fn start(app: &Path) -> Self {
        Self::start_with(app, &[]).await
    }

    /// Like [`Desktop::start`], with extra flags for the server (e.g. lifted rate limits
    /// for a bench that seeds many messages).
    pub async fn start_with(app: &Path, server_flags: &[&str]) -> Self {
        Self::launch(app, server_flags, false).await
    }

    /// Like [`Desktop::start`], with the server on https and wss. Its certificate is
    /// issued by a CA of the test's own, which the app and `confab-cli` trust through
    /// `CONFAB_CA_FILE`, as the users of a private deployment do.
    pub async fn start_over_tls(app: &Path) -> Self {
        Self::launch(app, &[], true).await
    }

    async fn launch(app: &Path, server_flags: &[&str], tls: bool) -> Self {
        let turn = ONE_DESKTOP_AT_A_TIME.lock().await;
        let tauri_driver = tool("tauri-driver", &[], "cargo install tauri-driver --locked");
        let webkit_driver = tool(
            "WebKitWebDriver",
            &["/usr/bin/WebKitWebDriver"],
            "apt-get install webkit2gtk-driver",
        );
        let work = tempfile::tempdir().expect("temp dir");
        let server_port = free_port();
        let mut server = Command::new(workspace_bin("confab-server"));
        server
            .args(["--bind", &format!("127.0.0.1:{server_port}")])
            .args([
                "--data-dir",
                &work.path().join("server").display().to_string(),
            ])
            .args(server_flags);
        let ca_file = tls.then(|| {
            let (cert, key, ca_file) = (
                work.path().join("cert.pem"),
                work.path().join("key.pem"),
                work.path().join("ca.pem"),
            );
            let ca = TestCa::new("Confab desktop e2e CA");
            ca.issue_server_cert(&cert, &key);
            ca.write_pem(&ca_file);
            server.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            ca_file
        });
        let scheme = if tls { "https" } else { "http" };
        let server_url = format!("{scheme}://127.0.0.1:{server_port}");
        let server = Reaped(
            server
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting confab-server"),
        );
        wait_for_port(server_port, "confab-server");

        let display = start_xvfb();
        let (driver_port, native_port) = (free_port(), free_port());
        let mut driver = Command::new(tauri_driver);
        driver
            .args(["--port", &driver_port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .arg("--native-driver")
            .arg(webkit_driver)
            .env("DISPLAY", &display.name)
            .env("XDG_CONFIG_HOME", work.path().join("config"))
            .env("XDG_DATA_HOME", work.path().join("data"))
            .env("XDG_CACHE_HOME", work.path().join("cache"));
        trust(&mut driver, ca_file.as_deref());
        let driver = Reaped(
            driver
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting tauri-driver"),
        );
        wait_for_port(driver_port, "tauri-driver");
        // tauri-driver listens before the WebKitWebDriver it starts does, and a session
        // asked for in between is dropped (seen on a loaded machine).
        wait_for_port(native_port, "WebKitWebDriver");

        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        caps.insert("browserName".into(), "wry".into());
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a WebDriver session with the app");
        focus_app_window(&display.name).await;
        Self {
            client,
            server_url,
            ca_file,
            app: app.to_owned(),
            work,
            _driver: driver,
            display,
            _server: server,
            _turn: turn,
        }
    }

    /// Opens `link` as the desktop does when a `confab://` link is clicked: a second start
    /// of the app with the link as its one argument, in the running app's session (its
    /// display, D-Bus session and data directories). Returns once that start has exited:
    /// it hands the link to the running app (single-instance) and ends.
    pub fn open_link(&self, link: &str) {
        let mut start = Command::new(&self.app);
        start
            .arg(link)
            .env("DISPLAY", &self.display.name)
            .env("XDG_CONFIG_HOME", self.work.path().join("config"))
            .env("XDG_DATA_HOME", self.work.path().join("data"))
            .env("XDG_CACHE_HOME", self.work.path().join("cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        trust(&mut start, self.ca_file.as_deref());
        let mut child = Reaped(start.spawn().expect("a second start of the app"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("its status") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the second start did not hand its link over and exit within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.0.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        assert!(
            status.success(),
            "the second start failed: {status}\n{stderr}"
        );
    }

    /// Picks this server and signs up as `username`; ends in the app shell.
    pub async fn sign_up(&self, username: &str) {
        let c = &self.client;
        type_into(c, "#server-url", &self.server_url).await;
        click(c, "#server-continue").await;
        find(c, "#signup-form").await;
        type_into(c, "#signup-username", username).await;
        type_into(c, "#signup-email", &format!("{username}@example.com")).await;
        type_into(c, "#signup-password", PASSWORD).await;
        type_into(c, "#signup-confirm", PASSWORD).await;
        click(c, "#signup-submit").await;
        find(c, SHELL).await;
    }

    /// Creates a group from the shell's home pane; returns its id.
    pub async fn create_room(&self, title: &str) -> String {
        let c = &self.client;
        if c.find(Locator::Css("#room-title")).await.is_err() {
            click(c, "#rail-home").await;
        }
        type_into(c, "#room-title", title).await;
        click(c, "#room-create").await;
        let xpath = format!(
            "//li[@data-testid='rail-room'][@data-kind='group'][.//*[@data-testid='rail-room-title'][normalize-space()='{title}']]"
        );
        let found = within(30, || async {
            let row = c.find(Locator::XPath(&xpath)).await.ok()?;
            row.attr("data-room-id").await.ok()?
        })
        .await;
        match found {
            Some(room) => room,
            None => panic!("no group {title:?} in the rail:\n{}", page_source(c).await),
        }
    }

    /// Opens a conversation from the rail.
    pub async fn open_room(&self, room: &str) {
        let c = &self.client;
        click(c, &format!("{} button", rail_room(room))).await;
        find(
            c,
            &format!("[data-testid='conversation'][data-room-id='{room}']"),
        )
        .await;
    }

    /// `confab-cli` as `user` (registered on first use) against this server, with an
    /// outbox file of its own per run.
    pub fn cli(&self, user: &str, args: &[&str]) -> Command {
        let outbox = self
            .work
            .path()
            .join(format!("cli-{}.sqlite", Desktop::unique("outbox")));
        let mut command = Command::new(workspace_bin("confab-cli"));
        command
            .args(args)
            .args(["--server", &self.server_url, "--user", user, "--register"])
            .arg("--outbox")
            .arg(outbox)
            .env("CONFAB_PASSWORD", PASSWORD);
        trust(&mut command, self.ca_file.as_deref());
        command
    }

    /// Runs `confab-cli` to the end; its stdout.
    pub fn cli_output(&self, user: &str, args: &[&str]) -> String {
        let out = self.cli(user, args).output().expect("running confab-cli");
        assert!(
            out.status.success(),
            "confab-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A `confab-cli` participant in `room` sending the test pattern and a tone.
    pub fn cli_participant(&self, room: &str, user: &str, secs: u64) -> Reaped {
        let mut command = Command::new(workspace_bin("confab-cli"));
        command
            .args(["call", "--server", &self.server_url, "--room", room])
            .args(["--user", user, "--register", "--synthetic"])
            .args(["--udp-addr", "127.0.0.1:0", "--duration", &secs.to_string()])
            .env("CONFAB_PASSWORD", PASSWORD);
        trust(&mut command, self.ca_file.as_deref());
        Reaped(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting confab-cli"),
        )
    }

    /// From the shell: open the group `room`, pre-join `room` with the test pattern and tone, then join.
    pub async fn join_call_with_test_pattern(&self, room: &str) {
        let c = &self.client;
        self.open_room(room).await;
        click(c, "[data-testid='conversation'] .room-call").await;
        // One CI run (2026-12-02) timed out here once with the click taken and no pre-join
        // screen; it never happened in local runs. Say so and click once more rather than
        // lose the whole story to it, so the log shows whether it recurs.
        let shown = within(15, || async { c.find(Locator::Css("#prejoin")).await.ok() }).await;
        if shown.is_none() {
            eprintln!("no #prejoin 15 s after clicking the call button: clicking it again");
            click(c, "[data-testid='conversation'] .room-call").await;
        }
        find(c, "#prejoin").await;
        for checkbox in ["#use-test-pattern", "#use-test-tone"] {
            let el = find(c, checkbox).await;
            if el.prop("checked").await.expect("checked").as_deref() != Some("true") {
                el.click().await.expect("tick");
            }
        }
        // The preview shows the local test pattern before joining.
        eventually(30, "local preview frames", || {
            attr_u64(c, "#prejoin [data-frames]", "data-frames")
        })
        .await;
        click(c, "#join-call").await;
        find(c, "#call-view").await;
    }

    /// Unique-enough names for one run.
    pub fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{prefix}_{:x}{nanos:x}", std::process::id())
    }
}
