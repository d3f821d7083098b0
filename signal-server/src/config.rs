//! Server configuration: one `clap` struct; every setting is a flag and an environment
//! variable, and every one has a default so that `confab-server` alone just works.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Confab's server: accounts, rooms and WebSocket signaling.
#[derive(Parser, Clone, Debug)]
#[command(name = "confab-server", version, about)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "CONFAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Folder for the SQLite database and the generated JWT secret; created if missing.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://...` for PostgreSQL, `sqlite://...` for another SQLite
    /// file. Default: `<data-dir>/confab.db`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Most database connections the pool opens.
    #[arg(long, env = "CONFAB_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,

    /// Secret for signing access tokens (at least 32 bytes). Default: a random 256-bit
    /// secret generated on first start and kept in `<data-dir>/jwt-secret` (mode 0600).
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "CONFAB_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Lifetime of refresh tokens (and so of an unused session), in seconds.
    #[arg(long, env = "CONFAB_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl: u64,

    /// Origins allowed to open the WebSocket and to call the API from a browser, comma
    /// separated. Requests without an Origin header (native clients) are always allowed.
    #[arg(
        long,
        env = "CONFAB_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "tauri://localhost,http://tauri.localhost,https://tauri.localhost,http://localhost:1420"
    )]
    pub allowed_origins: Vec<String>,

    /// Login and registration attempts allowed per client address per minute.
    #[arg(long, env = "CONFAB_AUTH_RATE_PER_IP", default_value_t = 20)]
    pub auth_rate_per_ip: u32,

    /// Login and registration attempts allowed per account (login name) per minute.
    #[arg(long, env = "CONFAB_AUTH_RATE_PER_ACCOUNT", default_value_t = 10)]
    pub auth_rate_per_account: u32,

    /// WebSocket messages a connection may send per second (bursts of twice that pass).
    #[arg(long, env = "CONFAB_WS_RATE", default_value_t = 100)]
    pub ws_rate: u32,

    /// Seconds between the server's WebSocket pings.
    #[arg(long, env = "CONFAB_WS_HEARTBEAT", default_value_t = 20)]
    pub ws_heartbeat: u64,

    /// Seconds without any frame from a client before its connection is closed.
    #[arg(long, env = "CONFAB_WS_IDLE_TIMEOUT", default_value_t = 60)]
    pub ws_idle_timeout: u64,

    /// Chat messages one user may send per second, over REST and WebSocket together
    /// (bursts of three times that pass).
    #[arg(long, env = "CONFAB_MESSAGE_RATE", default_value_t = 5)]
    pub message_rate: u32,

    /// Seconds a direct call rings before it counts as missed.
    #[arg(long, env = "CONFAB_RING_TIMEOUT", default_value_t = shared::signal::RING_TIMEOUT_SECS)]
    pub ring_timeout: u64,

    /// Most members a group may hold.
    #[arg(long, env = "CONFAB_MAX_GROUP_MEMBERS", default_value_t = shared::api::GROUP_DEFAULT_MAX_MEMBERS)]
    pub max_group_members: u32,

    /// Most members a community may hold (every member is in every channel of it).
    #[arg(long, env = "CONFAB_MAX_COMMUNITY_MEMBERS", default_value_t = shared::communities::COMMUNITY_DEFAULT_MAX_MEMBERS)]
    pub max_community_members: u32,

    /// Messages queued for one WebSocket client before it is disconnected as too slow.
    #[arg(long, env = "CONFAB_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,

    /// STUN servers offered to clients for WebRTC, comma separated `stun:` (or `stuns:`)
    /// URLs, e.g. `stun:stun.example.org:3478`. Default: none. On a LAN or loopback, host
    /// candidates suffice, and a self-hosted server must not send its users to a third
    /// party's STUN server unasked.
    #[arg(long, env = "CONFAB_STUN_URLS", value_delimiter = ',', value_parser = stun_url)]
    pub stun_urls: Vec<String>,

    /// TURN servers offered to clients for WebRTC, comma separated `turn:` or `turns:`
    /// URLs, e.g. `turn:turn.example.org:3478?transport=udp`. Needs `--turn-secret`: the
    /// server hands out credentials, never the secret. Default: none.
    #[arg(
        long,
        env = "CONFAB_TURN_URLS",
        value_delimiter = ',',
        value_parser = turn_url,
        requires = "turn_secret"
    )]
    pub turn_urls: Vec<String>,

    /// The shared secret of the TURN server (coturn's `static-auth-secret`, with
    /// `use-auth-secret`); clients get short-lived credentials derived from it.
    #[arg(
        long,
        env = "CONFAB_TURN_SECRET",
        hide_env_values = true,
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub turn_secret: Option<String>,

    /// Lifetime of the TURN credentials handed to clients, in seconds. coturn checks it on
    /// every allocation refresh, so it should outlast the longest call.
    #[arg(
        long,
        env = "CONFAB_TURN_CREDENTIAL_TTL",
        default_value_t = 24 * 3600,
        value_parser = clap::value_parser!(u64).range(60..=MAX_TURN_CREDENTIAL_TTL)
    )]
    pub turn_credential_ttl: u64,

    /// Log format.
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The address users reach this server at, e.g. `https://chat.example.org` (behind a
    /// proxy: the proxy's). Links in emails point there. Default: `http://<bind>`.
    #[arg(long, env = "CONFAB_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,

    /// The SMTP server for password-reset mail: `smtp://host:25` (plain, for a local
    /// relay), `smtp://host:587?tls=required` (STARTTLS) or `smtps://host:465` (implicit
    /// TLS). Certificates are checked against the OS trust store. Default: no mail; the
    /// operator hands out reset links with `confab-server admin reset-link USER`.
    #[arg(long, env = "CONFAB_SMTP_URL", requires = "smtp_from")]
    pub smtp_url: Option<String>,

    /// The SMTP login name, if the server wants authentication.
    #[arg(long, env = "CONFAB_SMTP_USER")]
    pub smtp_user: Option<String>,

    /// The SMTP password (with `--smtp-user`).
    #[arg(
        long,
        env = "CONFAB_SMTP_PASSWORD",
        hide_env_values = true,
        requires = "smtp_user"
    )]
    pub smtp_password: Option<String>,

    /// The sender of the server's mail, e.g. `Confab <confab@example.org>`.
    #[arg(long, env = "CONFAB_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// New accounts must confirm their email address (a link is mailed at sign-up)
    /// before they can sign in. Needs `--smtp-url`. Accounts made before, and by
    /// `admin create-user`, are not affected.
    #[arg(long, env = "CONFAB_REQUIRE_EMAIL_VERIFICATION", requires = "smtp_url")]
    pub require_email_verification: bool,

    /// How long a password-reset link works, in seconds.
    #[arg(
        long,
        env = "CONFAB_PASSWORD_RESET_TTL",
        default_value_t = 30 * 60,
        value_parser = clap::value_parser!(u64).range(60..=7 * 24 * 3600)
    )]
    pub password_reset_ttl: u64,

    /// Password-reset requests and confirmations allowed per client address per hour.
    #[arg(long, env = "CONFAB_RESET_RATE_PER_IP", default_value_t = 20)]
    pub reset_rate_per_ip: u32,

    /// Password-reset requests allowed per email address (and confirmations per account)
    /// per hour.
    #[arg(long, env = "CONFAB_RESET_RATE_PER_ACCOUNT", default_value_t = 5)]
    pub reset_rate_per_account: u32,

    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed, comma
    /// separated addresses or CIDRs, e.g. `127.0.0.1,10.0.0.0/8`. A request from one of
    /// them counts as coming from the client the header names, for rate limits, the
    /// sessions list and logs. Default: none (the headers are ignored).
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::client_ip::parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// TLS certificate chain (PEM). With `--tls-key` the server speaks HTTPS and WSS
    /// itself; without, plain HTTP (behind a TLS-terminating proxy, or on a LAN). Both
    /// files are re-read when they change, so a renewal needs no restart.
    #[arg(long, env = "CONFAB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The TLS certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CONFAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Seconds between checks of the TLS files for a renewed certificate.
    #[arg(
        long,
        env = "CONFAB_TLS_RELOAD_INTERVAL",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=24 * 3600)
    )]
    pub tls_reload_interval: u64,

    /// Address for Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9090`: a
    /// listener of its own, so the public port does not expose them. Default: off.
    #[arg(long, env = "CONFAB_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Redis for running several nodes as one server, e.g. `redis://127.0.0.1:6379`: all
    /// nodes on one PostgreSQL database and one Redis share real-time events, presence
    /// and node liveness. Default: off (one node; nothing leaves the process).
    #[arg(long, env = "CONFAB_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel this cluster uses: nodes with the same
    /// prefix are one server.
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = "confab")]
    pub redis_prefix: String,

    /// Largest file one upload may be, in bytes (attachments; avatars and icons take at
    /// most 5 MiB). Bigger uploads are refused with 413 as they arrive.
    #[arg(long, env = "CONFAB_MAX_UPLOAD_SIZE", default_value_t = shared::files::UPLOAD_MAX_DEFAULT)]
    pub max_upload_size: u64,

    /// Where uploaded files are kept: `local` (`<data-dir>/files`) or `s3` (an
    /// S3-compatible bucket, `--s3-*`), which several nodes can share.
    #[arg(long, env = "CONFAB_STORAGE", value_enum, default_value_t = StorageKind::Local)]
    pub storage: StorageKind,

    /// The bucket, with `--storage s3`.
    #[arg(long, env = "CONFAB_S3_BUCKET", required_if_eq("storage", "s3"))]
    pub s3_bucket: Option<String>,

    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` for a self-hosted server (requests
    /// are path-style then). Default: AWS.
    #[arg(long, env = "CONFAB_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The bucket's region.
    #[arg(long, env = "CONFAB_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// The S3 access key id. Default: `AWS_ACCESS_KEY_ID` and the other usual `AWS_*`
    /// variables.
    #[arg(long, env = "CONFAB_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    /// The S3 secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "CONFAB_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Allow a plain-http S3 endpoint (a server on the same host or LAN).
    #[arg(long, env = "CONFAB_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,

    /// An operator's command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `confab-server COMMAND`: operator's tools on the same database (the flags and
/// environment before the command say which).
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Account administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Copies the SQLite database to PATH while the server may keep running (`VACUUM
    /// INTO`: a consistent, compacted copy). For PostgreSQL use `pg_dump`.
    Backup {
        /// Where the copy goes; must not exist yet.
        path: PathBuf,
    },
}

/// `confab-server admin ...`
#[derive(Subcommand, Clone, Debug)]
pub enum AdminCommand {
    /// Prints a password-reset link for an account (username or email), valid for
    /// `--password-reset-ttl`: for servers without mail, or a user who lost access to it.
    ResetLink {
        /// Username or email address.
        user: String,
    },
    /// Creates an account. Without `--password-stdin` it gets no usable password, and a
    /// reset link is printed for its owner to choose one.
    CreateUser {
        username: String,
        email: String,
        /// Read the password from the first line of stdin (the usual rules apply).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists every account: id, username, email, created, disabled, live sessions.
    ListUsers,
    /// Disables an account (username or email): it is signed out everywhere and cannot
    /// sign in again until `enable-user`.
    DisableUser { user: String },
    /// Enables a disabled account again.
    EnableUser { user: String },
    /// Signs an account (username or email) out of every session.
    RevokeSessions { user: String },
}

/// Parses `--public-url`: an http(s) URL, kept without a trailing slash.
fn public_url(value: &str) -> Result<String, String> {
    let url = value.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https:// or http://"))?;
    if rest.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{url:?} must name a host, as in https://chat.example.org"
        ));
    }
    Ok(url.to_owned())
}

/// Longest TURN credential lifetime accepted: one year.
const MAX_TURN_CREDENTIAL_TTL: u64 = 365 * 24 * 3600;

/// Parses one `--stun-urls` entry.
fn stun_url(value: &str) -> Result<String, String> {
    ice_url(value, &["stun:", "stuns:"])
}

/// Parses one `--turn-urls` entry.
fn turn_url(value: &str) -> Result<String, String> {
    ice_url(value, &["turn:", "turns:"])
}

/// Checks the scheme and that a host follows it (RFC 7064, RFC 7065). Browsers and
/// WebRTC stacks refuse a configuration with one bad URL in it, so a typo is better
/// caught at startup than in every client's call.
fn ice_url(value: &str, schemes: &[&str]) -> Result<String, String> {
    let url = value.trim();
    let expected = schemes.join(" or ");
    let scheme = schemes
        .iter()
        .find(|s| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        })
        .ok_or_else(|| format!("{url:?} must start with {expected}"))?;
    let rest = &url[scheme.len()..];
    if rest.is_empty() || rest.starts_with(['/', ':', '?']) {
        return Err(format!(
            "{url:?} must name a host right after {scheme}, as in {scheme}example.org:3478"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} must not contain spaces"));
    }
    Ok(url.to_owned())
}

/// Where uploaded files are kept.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// A folder under `--data-dir`.
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Where users reach the server (`--public-url`, else this server's own address).
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("confab.db").display()
            )
        })
    }
}
