//! Test harness shared by the client's black-box suites: a real `signal_server::Server`
//! in this process on an ephemeral port, over a fresh SQLite database in a temp dir, with
//! the login rate limits lifted (tests sign in many users from one address).
//!
//! The server can be stopped and started again on the same port and database, so a
//! client built against its URL keeps working across a restart (or sees it down).

#![allow(dead_code)]

use clap::Parser;
use signal_server::Server;
use signal_server::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A password the server's strength check accepts.
pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// A name no other test (or earlier run) uses: tests share nothing but the machine.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

/// A running (or stopped) server and its data.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, the same for the life of this value.
    pub base: String,
    /// `ws://127.0.0.1:PORT/ws`.
    pub ws_url: String,
    /// The address it listens on; kept across restarts.
    pub addr: SocketAddr,
    server: Option<Server>,
    dir: PathBuf,
    flags: Vec<(String, Option<String>)>,
}

impl TestServer {
    /// A server with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with extra flags, e.g. `["--access-token-ttl", "2"]`.
    pub async fn start_with(flags: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("confab-core-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("creating the server's data dir");
        let mut this = Self {
            base: String::new(),
            ws_url: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: None,
            dir,
            flags: Vec::new(),
        };
        this.set_flags(&[
            "--auth-rate-per-ip",
            "100000",
            "--auth-rate-per-account",
            "100000",
            "--db-max-connections",
            "4",
        ]);
        this.set_flags(flags);
        this.boot().await;
        this
    }

    /// Adds flags, replacing earlier values of the same flags.
    fn set_flags(&mut self, flags: &[&str]) {
        let mut it = flags.iter().peekable();
        while let Some(flag) = it.next() {
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => {
                    let value = it
                        .next_if(|v| !v.starts_with("--"))
                        .map(|v| (*v).to_owned());
                    ((*flag).to_owned(), value)
                }
            };
            self.flags.retain(|(n, _)| *n != name);
            self.flags.push((name, value));
        }
    }

    async fn boot(&mut self) {
        let mut args = vec![
            "confab-server".to_owned(),
            "--bind".to_owned(),
            self.addr.to_string(),
            "--data-dir".to_owned(),
            self.dir.display().to_string(),
        ];
        for (name, value) in &self.flags {
            args.push(name.clone());
            args.extend(value.clone());
        }
        let server = Server::start(Config::parse_from(args))
            .await
            .expect("starting the server");
        self.addr = server.addr;
        self.base = format!("http://{}", server.addr);
        self.ws_url = format!("ws://{}/ws", server.addr);
        self.server = Some(server);
    }

    /// The running server (its `state` reaches the database and the hub).
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server is stopped")
    }

    /// Shuts down gracefully, keeping the database: the port refuses connections until
    /// [`TestServer::start_again`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("shutting the server down");
        }
    }

    /// Starts again on the same port and database after [`TestServer::stop`].
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        self.boot().await;
    }

    /// Stops and starts again on the same port and database.
    pub async fn restart(&mut self) {
        self.restart_with(&[]).await;
    }

    /// Stops and starts again on the same port and database with some flags changed,
    /// e.g. `["--jwt-secret", "..."]` to make every issued access token invalid.
    pub async fn restart_with(&mut self, flags: &[&str]) {
        self.stop().await;
        self.set_flags(flags);
        self.boot().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server still running here ends with the test's runtime; SQLite copes with its
        // files being unlinked while open.
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
