//! Behind a real reverse proxy (Debian's nginx and Caddy, started by the test on a free
//! port with a configuration in a folder of its own): with `--trusted-proxies` each
//! client gets its own rate-limit bucket, without it everyone shares the proxy's; the
//! WebSocket upgrade passes through. Clients connect from 127.0.0.2 and 127.0.0.3 (Linux
//! answers on all of 127.0.0.0/8), so nginx sees two different addresses.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::signal::{ClientMsg, ServerMsg};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// nginx in front of `upstream`; stopped when dropped.
struct Nginx {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Nginx {
    async fn start(upstream: &str) -> Self {
        let nginx = std::env::var("CONFAB_TEST_NGINX").unwrap_or_else(|_| {
            if Path::new("/usr/sbin/nginx").exists() {
                "/usr/sbin/nginx".into()
            } else {
                "nginx".into()
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        // The server block is the one docs/deploy.md recommends.
        let conf = format!(
            r#"# One process, no workers: killing it (also when a test fails) leaves nothing behind.
master_process off;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {nginx} (apt-get install nginx): {e}"));
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { port, dir, child };
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("nginx did not listen on {port}");
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("error.log"));
            eprintln!("nginx's log: {}", log.unwrap_or_default());
        }
    }
}

/// Caddy in front of `upstream`, with the Caddyfile docs/deploy.md recommends (on plain
/// HTTP here); stopped when dropped.
struct Caddy {
    port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Caddy {
    async fn start(upstream: &str) -> Self {
        let caddy = std::env::var("CONFAB_TEST_CADDY").unwrap_or_else(|_| "caddy".into());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n}}\n\
             http://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\treverse_proxy {upstream}\n}}\n"
        );
        let conf_path = dir.path().join("Caddyfile");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        let mut child = Command::new(&caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf_path)
            // Caddy keeps state under the home and XDG folders: the test's own.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {caddy} (apt-get install caddy): {e}"));
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    _dir: dir,
                    child,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.path().join("caddy.log")).unwrap_or_default();
                panic!("caddy exited with {status}: {log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("caddy did not listen on {port}");
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An HTTP client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login(
    http: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Limits: three login attempts a minute per address, none per account.
const LIMITS: [&str; 4] = [
    "--auth-rate-per-ip",
    "3",
    "--auth-rate-per-account",
    "100000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let mut flags = LIMITS.to_vec();
    flags.extend(["--trusted-proxies", "127.0.0.1/32,::1"]);
    let mut server = TestServer::start_with(Db::Sqlite, &flags).await;
    // Registered from an address of its own, straight to the server.
    let (status, body) = client_from("127.0.0.4")
        .post(format!("{}/api/auth/register", server.base))
        .json(&json!({"username": "gina", "email": "gina@example.com", "password": PASSWORD, "confirm_password": PASSWORD}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{:?}", body.text().await);
    let proxy = Nginx::start(&server.base["http://".len()..]).await;
    let (two, three) = (client_from("127.0.0.2"), client_from("127.0.0.3"));

    // 127.0.0.2 uses up its three attempts.
    for _ in 0..3 {
        assert_eq!(
            login(&two, &proxy.base(), "gina", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body) = login(&two, &proxy.base(), "gina", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // 127.0.0.3, through the same proxy, has its own.
    let (status, body) = login(&three, &proxy.base(), "gina", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    // And the session remembers where it came from, not the proxy.
    let sessions: Value = three
        .get(format!("{}/api/auth/sessions", proxy.base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions[0]["ip"], "127.0.0.3", "{sessions}");

    // A client cannot pick another bucket by sending the header itself: nginx appends
    // the real address, and the server walks the chain from the right.
    let resp = two
        .post(format!("{}/api/auth/login", proxy.base()))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"login": "gina", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nor by going around the proxy with it: the header is believed from proxies only.
    let resp = two
        .post(format!("{}/api/auth/login", server.base))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"login": "gina", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // The WebSocket upgrade passes through the proxy.
    let (status, body) = login(&three, &proxy.base(), "gina", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gina = common::TestUser {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        name: "gina".into(),
        token: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        session: body["session_id"].as_str().unwrap().to_owned(),
    };
    server.ws_url = format!("ws://127.0.0.1:{}/ws", proxy.port);
    let mut ws = server.ws(&gina).await;
    ws.send(&ClientMsg::Ping { nonce: 7 }).await;
    let pong = ws.recv_until(|m| matches!(m, ServerMsg::Pong { .. })).await;
    assert!(matches!(pong, ServerMsg::Pong { nonce: 7 }), "{pong:?}");
    drop(ws);
    drop(proxy);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_everyone_shares_the_proxys_bucket() {
    let server = TestServer::start_with(Db::Sqlite, &LIMITS).await;
    let proxy = Nginx::start(&server.base["http://".len()..]).await;
    let (two, three) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    for _ in 0..3 {
        assert_eq!(
            login(&two, &proxy.base(), "nobody", "wrong-password")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    // 127.0.0.3 has done nothing, but to the server it is the proxy, as 127.0.0.2 was.
    let (status, body) = login(&three, &proxy.base(), "nobody", "wrong-password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Straight to the server, 127.0.0.3 is itself again.
    let (status, _) = login(&three, &server.base, "nobody", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop(proxy);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_caddy_each_client_has_its_own_bucket_and_the_websocket_passes() {
    let mut flags = LIMITS.to_vec();
    flags.extend(["--trusted-proxies", "127.0.0.1/32"]);
    let mut server = TestServer::start_with(Db::Sqlite, &flags).await;
    let proxy = Caddy::start(&server.base["http://".len()..]).await;
    let (two, three) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    for _ in 0..3 {
        assert_eq!(
            login(&two, &proxy.base(), "nobody", "wrong-password")
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    // A header of its own does not get 127.0.0.2 a fresh bucket through Caddy either.
    let resp = two
        .post(format!("{}/api/auth/login", proxy.base()))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"login": "nobody", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // 127.0.0.3 has its own: it registers, signs in and opens the WebSocket through Caddy.
    let resp = three
        .post(format!("{}/api/auth/register", proxy.base()))
        .json(&json!({"username": "ivy", "email": "ivy@example.com", "password": PASSWORD, "confirm_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (status, body) = login(&three, &proxy.base(), "ivy", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ivy = common::TestUser {
        id: body["user"]["id"].as_str().unwrap().to_owned(),
        name: "ivy".into(),
        token: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        session: body["session_id"].as_str().unwrap().to_owned(),
    };
    server.ws_url = format!("ws://127.0.0.1:{}/ws", proxy.port);
    let mut ws = server.ws(&ivy).await;
    ws.send(&ClientMsg::Ping { nonce: 9 }).await;
    let pong = ws.recv_until(|m| matches!(m, ServerMsg::Pong { .. })).await;
    assert!(matches!(pong, ServerMsg::Pong { nonce: 9 }), "{pong:?}");
    drop(ws);
    drop(proxy);
    server.stop().await;
}
