//! Test support for the black-box suites of this crate and of the client (feature
//! `testing`): a real [`Server`] in the test's own process, on a database of the test's
//! own, a fresh SQLite file or a fresh PostgreSQL database, that can be stopped and
//! started again on the same port and database.
//!
//! Only the server's and the database's lifecycle is here; each suite brings its own
//! clients (raw HTTP and WebSocket for the server's, `confab-core`'s for the client's).

use crate::Server;
use crate::config::Config;
use clap::Parser;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The environment variable naming the PostgreSQL server (and a database on it to
/// connect to) on which each test creates a database of its own.
pub const POSTGRES_URL_VAR: &str = "CONFAB_TEST_POSTGRES_URL";

/// Used when [`POSTGRES_URL_VAR`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Every test database's name starts with this, so one left behind (a test binary that
/// was killed) can be found and dropped.
pub const DATABASE_PREFIX: &str = "confab_test_";

/// Runs each listed story `async fn NAME(db: Db)` once on SQLite and once on
/// PostgreSQL, as the tests `NAME::sqlite` and `NAME::postgres`. A story returns `()`
/// or a `Result<(), E: Debug>` (an `Err` fails the test).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::testing::StoryOutcome::check(
                    super::$name($crate::testing::Db::Sqlite).await,
                )
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::testing::StoryOutcome::check(
                    super::$name($crate::testing::Db::Postgres).await,
                )
            }
        }
    )*};
}

/// What a story run by [`on_both_databases!`] may return.
pub trait StoryOutcome {
    /// Fails the test if the story failed.
    fn check(self);
}

impl StoryOutcome for () {
    fn check(self) {}
}

impl<E: Debug> StoryOutcome for Result<(), E> {
    fn check(self) {
        if let Err(e) = self {
            panic!("the story failed: {e:?}");
        }
    }
}

/// A server (running or not) over a database and a data folder of its own. Dropping it
/// drops the database and removes the folder, also when the test panics.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (`https://` with `--tls-cert`): the same across restarts.
    pub base: String,
    /// `ws://127.0.0.1:PORT/ws` (`wss://` with `--tls-cert`).
    pub ws_url: String,
    /// The address it listens on; port 0 until the first start, then kept.
    pub addr: SocketAddr,
    server: Option<Server>,
    database: TestDatabase,
    /// Flags and their values (`None` for a bare switch), at most one entry per flag.
    flags: Vec<(String, Option<String>)>,
}

impl TestServer {
    /// A server with lifted login rate limits (tests sign in many users from one
    /// address).
    pub async fn start(db: Db) -> Self {
        Self::start_with(db, &[]).await
    }

    /// A server with extra flags, e.g. `["--ws-rate", "5"]`; a flag given here replaces
    /// the harness's default for it.
    pub async fn start_with(db: Db, flags: &[&str]) -> Self {
        let mut this = Self::unstarted(db, flags).await;
        this.boot().await;
        this
    }

    /// A fresh database and data folder with no server on them yet: for a test that
    /// runs the real `confab-server` binary itself (and sets `base` to where it
    /// listens), or starts this one later with [`TestServer::start_again`].
    pub async fn unstarted(db: Db, flags: &[&str]) -> Self {
        let mut this = Self {
            base: String::new(),
            ws_url: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: None,
            database: TestDatabase::create(db).await,
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
        this
    }

    /// Another node on this one's database (with `--redis-url`, one server with it):
    /// the same flags but for `flags`, a data folder and a port of its own. The
    /// database stays this server's: it goes when this one goes, not with the node.
    pub async fn another_node(&self, flags: &[&str]) -> Self {
        let mut node = Self {
            base: String::new(),
            ws_url: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: None,
            database: TestDatabase::borrow(&self.database.url),
            flags: self.flags.clone(),
        };
        node.set_flags(flags);
        node.boot().await;
        node
    }

    /// The command line of this server (`--bind` its address, or port 0 before the
    /// first start): for a test that runs the real `confab-server` binary on it.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--bind".to_owned(),
            self.addr.to_string(),
            "--data-dir".to_owned(),
            self.database.dir.display().to_string(),
            "--database-url".to_owned(),
            self.database.url.clone(),
        ];
        for (name, value) in &self.flags {
            args.push(name.clone());
            args.extend(value.clone());
        }
        args
    }

    /// The URL of this test's database.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.database.dir
    }

    /// The running server (its `state` reaches the database and the hub).
    pub fn server(&self) -> &Server {
        self.server
            .as_ref()
            .expect("the test server is not running")
    }

    /// Shuts down gracefully (WebSockets get 1001), keeping the database: the port
    /// refuses connections until [`TestServer::start_again`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server
                .shutdown()
                .await
                .expect("shutting the test server down");
        }
    }

    /// Starts again on the same port and database after [`TestServer::stop`] (or for
    /// the first time after [`TestServer::unstarted`]).
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "the test server is already running");
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

    /// Shuts down gracefully, then drops the database and removes the data folder.
    /// Unlike the drop that would otherwise do it, this fails the test when it cannot.
    pub async fn remove(mut self) {
        self.stop().await;
        self.database.remove().await;
    }

    /// Adds flags, replacing earlier values of the same flags (the server takes each
    /// flag once). `--flag value`, `--flag=value` and bare `--switch` are understood.
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
        let mut args = vec!["confab-server".to_owned()];
        args.extend(self.args());
        let config = Config::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("the test server's flags {args:?}: {e}"));
        let server = Server::start(config)
            .await
            .unwrap_or_else(|e| panic!("starting the test server on {}: {e:#}", self.addr));
        self.addr = server.addr;
        let tls = server.state.config.tls_cert.is_some();
        let (http, ws) = if tls {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        self.base = format!("{http}://{}", server.addr);
        self.ws_url = format!("{ws}://{}/ws", server.addr);
        self.server = Some(server);
    }
}

/// A test's data folder and its database: a SQLite file in the folder, or a PostgreSQL
/// database of its own. Both go when this is dropped.
#[derive(Debug)]
struct TestDatabase {
    dir: PathBuf,
    url: String,
    /// The PostgreSQL database's name, until it is dropped.
    postgres: Option<String>,
}

impl TestDatabase {
    async fn create(db: Db) -> Self {
        let id = uuid::Uuid::new_v4().simple();
        let dir = std::env::temp_dir().join(format!("confab-test-{id}"));
        std::fs::create_dir_all(&dir).expect("creating the test server's data folder");
        let (url, postgres) = match db {
            Db::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.join("confab.db").display()),
                None,
            ),
            Db::Postgres => {
                let name = format!("{DATABASE_PREFIX}{id}");
                let admin = postgres_admin_url();
                admin_exec(&admin, &format!("create database {name}"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "creating a test database on {} ({e:#}): PostgreSQL must be \
                             reachable for the postgres tests (set {POSTGRES_URL_VAR})",
                            crate::db::redact(&admin)
                        )
                    });
                (database_on(&admin, &name), Some(name))
            }
        };
        Self { dir, url, postgres }
    }

    /// A data folder of its own on another test database (which it does not drop).
    fn borrow(url: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple();
        let dir = std::env::temp_dir().join(format!("confab-test-{id}"));
        std::fs::create_dir_all(&dir).expect("creating the test node's data folder");
        Self {
            dir,
            url: url.to_owned(),
            postgres: None,
        }
    }

    async fn remove(&mut self) {
        if let Some(name) = self.postgres.take() {
            let admin = postgres_admin_url();
            admin_exec(&admin, &drop_statement(&name))
                .await
                .unwrap_or_else(|e| panic!("dropping the test database {name}: {e:#}"));
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres.take() {
            // Drop cannot await, and may run inside the test's runtime (where blocking
            // on another future panics) or while a failed test unwinds (where a panic
            // aborts): so a thread of its own with a runtime of its own does the
            // dropping, and a failure is only reported.
            let admin = postgres_admin_url();
            let sql = drop_statement(&name);
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(admin_exec(&admin, &sql))
                    .map_err(|e| format!("{e:#}"))
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("could not drop the test database {name}: {e}"),
                Err(_) => eprintln!("could not drop the test database {name}: the thread died"),
            }
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `with (force)` ends the connections a server that was never stopped still holds.
fn drop_statement(name: &str) -> String {
    format!("drop database if exists {name} with (force)")
}

/// `admin` with its database replaced by `name` (user, host and options kept).
fn database_on(admin: &str, name: &str) -> String {
    let (head, query) = match admin.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (admin, None),
    };
    let authority = head.find("://").map_or(0, |i| i + 3);
    let server = match head[authority..].find('/') {
        Some(slash) => &head[..authority + slash],
        None => head,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// One statement on the admin database, on a connection of its own.
async fn admin_exec(admin: &str, sql: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let work = async {
        let mut conn = sqlx::AnyConnection::connect(admin).await?;
        conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await?;
        conn.close().await
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .context("timed out")?
        .context(sql.to_owned())
}

/// The environment variable naming the Redis that tests of several nodes share (each
/// with a key prefix of its own).
pub const REDIS_URL_VAR: &str = "CONFAB_TEST_REDIS_URL";

/// Used when [`REDIS_URL_VAR`] is not set: the machine's Redis.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The Redis for tests of several nodes (`--redis-url`).
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// A Redis key prefix of a test's own, so tests sharing the machine's Redis do not meet.
pub fn redis_prefix() -> String {
    format!("confab-test-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes every key under `prefix` (what a test's nodes left behind).
pub async fn clear_redis(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// A certificate authority of a test's own (rcgen), for servers with `--tls-cert`.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA; `name` becomes its common name.
    pub fn new(name: &str) -> Self {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a CA key");
        Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).expect("the CA certificate"),
        }
    }

    /// The CA certificate, PEM: what a client trusts.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `path`.
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.pem()).expect("writing the CA certificate");
    }

    /// Issues a server certificate for `localhost` and 127.0.0.1 and writes it and its
    /// key (PEM) to `cert` and `key`, for `--tls-cert` and `--tls-key`.
    pub fn issue_server_cert(&self, cert: &Path, key: &Path) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = rcgen::KeyPair::generate().expect("a server key");
        let issued = params
            .signed_by(&server_key, &self.issuer)
            .expect("signing the server certificate");
        std::fs::write(cert, issued.pem()).expect("writing the server certificate");
        std::fs::write(key, server_key.serialize_pem()).expect("writing the server key");
    }
}

/// A real SMTP server for mail tests: Python's aiosmtpd (`tests/support/smtp_capture.py`)
/// on a free port, writing every message it receives as JSON into a folder of its own.
/// Killed when dropped.
#[derive(Debug)]
pub struct SmtpCapture {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpCapture {
    /// Starts it, failing the test with what to install when it cannot.
    pub fn start() -> Self {
        // Debian's python3-aiosmtpd lives in the system interpreter, which a pyenv or venv
        // python3 earlier on PATH would not see.
        let python = std::env::var("CONFAB_TEST_PYTHON").unwrap_or_else(|_| {
            if Path::new("/usr/bin/python3").exists() {
                "/usr/bin/python3".into()
            } else {
                "python3".into()
            }
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_capture.py");
        let dir = tempfile::tempdir().expect("a folder for the captured mail");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = std::process::Command::new(&python)
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {python}: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("aiosmtpd's stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("aiosmtpd's first line");
        if line.trim() != "ready" {
            let _ = child.kill();
            let out = child.wait_with_output().expect("aiosmtpd's output");
            panic!(
                "aiosmtpd did not start (apt-get install python3-aiosmtpd, or set \
                 CONFAB_TEST_PYTHON to a python3 that has it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self { port, dir, child }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The server flags that send mail here, with links to `https://chat.example.org`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--smtp-url".into(),
            self.url(),
            "--smtp-from".into(),
            "Confab <confab@example.org>".into(),
            "--public-url".into(),
            "https://chat.example.org".into(),
        ]
    }

    /// The messages received so far, in order (the script's JSON: `to`, `subject`, ...).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("reading the captured mail")
            .filter_map(|e| {
                let path = e.ok()?.path();
                let n = path.file_stem()?.to_str()?.parse().ok()?;
                (path.extension()? == "json").then_some((n, path))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| {
                let text = std::fs::read_to_string(p).expect("reading a captured message");
                serde_json::from_str(&text).expect("a captured message is JSON")
            })
            .collect()
    }

    /// Waits (up to a minute: the machine is shared) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..600 {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} messages did not arrive; got {:?}", self.messages());
    }

    /// The first message to `to`, waiting up to a minute.
    pub async fn mail_to(&self, to: &str) -> serde_json::Value {
        for _ in 0..600 {
            if let Some(m) = self
                .messages()
                .into_iter()
                .find(|m| m["to"][0].as_str() == Some(to))
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail to {to}; got {:?}", self.messages());
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::{Db, TestServer, database_on, postgres_admin_url};
    use sqlx::Connection;

    #[test]
    fn the_test_database_replaces_the_admin_database_in_the_url() {
        assert_eq!(
            database_on("postgres://postgres@127.0.0.1:5432/test", "confab_test_1"),
            "postgres://postgres@127.0.0.1:5432/confab_test_1"
        );
        assert_eq!(
            database_on("postgres://u:p@db/test?sslmode=disable", "x"),
            "postgres://u:p@db/x?sslmode=disable"
        );
        assert_eq!(database_on("postgres://db", "x"), "postgres://db/x");
    }

    /// A failing test unwinds through its locals: the server's database and folder go
    /// with it, though nothing called `remove`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_tests_database_is_dropped_as_it_unwinds() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let story = tokio::spawn(async move {
            let server = TestServer::start(Db::Postgres).await;
            let name = server
                .database
                .postgres
                .clone()
                .expect("a PostgreSQL database");
            tx.send((name, server.data_dir().to_owned()))
                .expect("the test waits");
            panic!("the story fails (as this test means it to)");
        });
        assert!(story.await.expect_err("the story panics").is_panic());
        let (name, dir) = rx.await.expect("the story started its server");
        assert!(!dir.exists(), "{} is left", dir.display());
        let mut admin = sqlx::AnyConnection::connect(&postgres_admin_url())
            .await
            .expect("connecting to PostgreSQL");
        let left: i64 = sqlx::query_scalar("select count(*) from pg_database where datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("reading the database list");
        assert_eq!(left, 0, "{name} is left");
        admin.close().await.ok();
    }
}
