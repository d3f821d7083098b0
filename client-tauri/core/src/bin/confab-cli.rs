//! `confab-cli`: a headless Confab participant. It signs in, joins a room's call, sends
//! media (the camera and microphone, or with `--synthetic` the test pattern and a tone),
//! and prints per-participant statistics every second. Tests, demos and load runs use it.
//!
//! The messenger commands (`chat`, `contacts`, `dm`, `ring`, `answer`, `community`,
//! `search`) run on a [`confab_core::connection::Connection`]; `upload` and `download`
//! on the API client alone. They print text or with `--json` one JSON value per line on
//! stdout, and on failure exit non-zero with the error as the server's JSON error shape
//! (`{"error": {"code", "message"}}`, one line) on stderr.

use clap::{Args, Parser, Subcommand};
use confab_core::api::ApiClient;
use confab_core::call::VoiceProcessing;
use confab_core::call::{
    AudioSource, CallConfig, CallEvent, ScreenTarget, VideoKind, VideoSource, setup,
};
use confab_core::keystore::MemoryStore;
use shared::api::{Me, RegisterRequest};
use shared::{ErrorCode, MessageId, RoomId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[path = "confab-cli/communities.rs"]
mod communities;
#[path = "confab-cli/files.rs"]
mod files;
#[path = "confab-cli/search.rs"]
mod search;

#[derive(Parser, Debug)]
#[command(name = "confab-cli", version, about = "A headless Confab participant")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A PEM file of CA certificates to trust besides the system's, for an https://
    /// server with a private CA's certificate.
    #[arg(long, global = true, env = "CONFAB_CA_FILE")]
    ca_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join a room's call and print statistics every second.
    Call(Box<CallArgs>),
    /// List cameras, microphones and speakers.
    Devices,
    /// List the monitors and windows `call --screen` can share.
    Screens,
    /// Send, follow and read messages.
    Chat(ChatArgs),
    /// Find people, manage contacts, requests and blocks.
    Contacts(ContactsArgs),
    /// Print the id of the direct room with a contact (created on first use).
    Dm(DmArgs),
    /// Call a contact with synthetic media and print how the ring ends: answered,
    /// declined or missed.
    Ring(RingArgs),
    /// Wait for a call to ring, then answer it with synthetic media.
    Answer(AnswerArgs),
    /// Communities: find, create, join and leave them, invites, channels, members.
    Community(communities::CommunityArgs),
    /// Upload a file and print its upload id (attach it with `chat send --attach` instead
    /// to send it at once).
    Upload(files::UploadArgs),
    /// Download a file by its upload id or one of its signed links.
    Download(files::DownloadArgs),
    /// Search the messages of every room I am in; matched words are shown [like this].
    Search(search::SearchArgs),
}

/// Who signs in where; shared by every command that talks to a server.
#[derive(Args, Debug, Clone)]
struct Account {
    /// Server URL, e.g. http://127.0.0.1:8080
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Username or email.
    #[arg(long, global = true, default_value = "")]
    user: String,
    #[arg(
        long,
        global = true,
        env = "CONFAB_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    password: String,
    /// Create the account first (an existing one is fine).
    #[arg(long, global = true)]
    register: bool,
}

/// A messenger session: an account, its outbox and the output format.
#[derive(Args, Debug, Clone)]
struct Session {
    #[command(flatten)]
    account: Account,
    /// The outbox file for unsent messages (default: confab/confab-cli-outbox.sqlite in
    /// the OS data directory, or the temp directory). Messages a failed `chat send` left
    /// there are sent by the next command that uses the same file.
    #[arg(long, global = true)]
    outbox: Option<PathBuf>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Debug)]
struct CallArgs {
    #[command(flatten)]
    account: Account,
    /// Room id (UUID). The user joins the room first if not a member yet.
    #[arg(long)]
    room: RoomId,
    /// Send the test pattern and a tone instead of the camera and microphone, and play
    /// nothing.
    #[arg(long)]
    synthetic: bool,
    /// Tone frequency with --synthetic, Hz.
    #[arg(long, default_value_t = 440.0)]
    tone: f64,
    /// Video size and rate.
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Target video bitrate, kbit/s.
    #[arg(long, default_value_t = 800)]
    kbps: u32,
    /// Camera index (see `confab-cli devices`).
    #[arg(long, default_value_t = 0)]
    camera: u32,
    /// Microphone and speaker ids (see `confab-cli devices`); default devices otherwise.
    #[arg(long)]
    microphone: Option<String>,
    #[arg(long)]
    speaker: Option<String>,
    /// Leave after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
    /// Local address for the peer connections (e.g. 127.0.0.1:0 for loopback-only tests).
    #[arg(long, default_value = "0.0.0.0:0")]
    udp_addr: String,
    /// Print one JSON object per participant per second instead of a table.
    #[arg(long)]
    json: bool,
    /// Voice processing on the microphone: `on` (echo cancellation, noise suppression and
    /// gain control), `off`, or a comma list of `aec`, `ns`, `agc`. A tone is never processed.
    #[arg(long, default_value = "on")]
    voice_processing: VoiceProcessing,
    /// Share a screen from the start: `monitor` (the primary one), `monitor:ID` or
    /// `window:ID` (see `confab-cli screens`).
    #[arg(long, value_parser = parse_screen_target)]
    screen: Option<ScreenTarget>,
    /// Read commands from standard input, one a line: `screen TARGET` starts (or
    /// switches) sharing, `screen stop` stops it.
    #[arg(long)]
    commands: bool,
}

/// `monitor`, `monitor:ID` or `window:ID`.
fn parse_screen_target(s: &str) -> Result<ScreenTarget, String> {
    match s {
        "monitor" => {
            let sources = confab_core::call::screen::list_sources().map_err(|e| e.to_string())?;
            sources
                .iter()
                .filter(|s| matches!(s.target, ScreenTarget::Monitor(_)))
                .max_by_key(|s| s.primary)
                .map(|s| s.target)
                .ok_or_else(|| "no monitor to share".to_owned())
        }
        _ => s.parse(),
    }
}

#[derive(Args, Debug)]
struct ChatArgs {
    #[command(flatten)]
    session: Session,
    #[command(subcommand)]
    action: ChatAction,
}

#[derive(Subcommand, Debug)]
enum ChatAction {
    /// Send a message; returns once the server has stored it.
    Send {
        room: RoomId,
        /// The text (may be empty when files are attached).
        #[arg(default_value = "")]
        text: String,
        /// A file to upload and attach (repeatable, at most 10). Every file is uploaded
        /// before the message is sent; if one fails, nothing is sent.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<PathBuf>,
        /// The id of the message this one answers.
        #[arg(long)]
        reply_to: Option<MessageId>,
        /// Give up waiting after this many seconds (the message stays in the outbox).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print a room's messages as they arrive, one per line.
    Tail {
        room: RoomId,
        /// Stop after this many messages (default: run until Ctrl-C).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Print a room's latest messages, oldest first.
    History {
        room: RoomId,
        /// How many (pages of up to 100 are fetched until there are this many).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages before this seq.
        #[arg(long)]
        before: Option<u64>,
    },
}

#[derive(Args, Debug)]
struct ContactsArgs {
    #[command(flatten)]
    session: Session,
    #[command(subcommand)]
    action: ContactsAction,
}

/// USER is a username or a user id.
#[derive(Subcommand, Debug)]
enum ContactsAction {
    /// Find users by username prefix or display name.
    Search { q: String },
    /// Ask someone to become a contact (accepted at once if they asked you).
    Add {
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Accept the pending request from USER.
    Accept {
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Decline the pending request from USER.
    Decline {
        #[arg(value_name = "USER")]
        who: String,
    },
    /// List contacts.
    List,
    /// End a contact.
    Remove {
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Block a user (ends the contact).
    Block {
        #[arg(value_name = "USER")]
        who: String,
    },
    /// Unblock a user.
    Unblock {
        #[arg(value_name = "USER")]
        who: String,
    },
}

#[derive(Args, Debug)]
struct DmArgs {
    #[command(flatten)]
    session: Session,
    /// Username or user id of a contact.
    #[arg(value_name = "USER")]
    who: String,
}

/// Synthetic media for `ring` and `answer`.
#[derive(Args, Debug, Clone)]
struct RingMedia {
    /// An audio call: join with the camera off.
    #[arg(long)]
    audio: bool,
    /// Stay in the call this many seconds once it is answered (default: until Ctrl-C or
    /// the other side leaves).
    #[arg(long)]
    duration: Option<u64>,
    /// Give up after this many seconds without an outcome.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Local address for the peer connections.
    #[arg(long, default_value = "0.0.0.0:0")]
    udp_addr: String,
}

#[derive(Args, Debug)]
struct RingArgs {
    #[command(flatten)]
    session: Session,
    /// Username or user id of a contact.
    #[arg(value_name = "USER")]
    who: String,
    #[command(flatten)]
    media: RingMedia,
}

#[derive(Args, Debug)]
struct AnswerArgs {
    #[command(flatten)]
    session: Session,
    #[command(flatten)]
    media: RingMedia,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,rtc=error,rtc_ice=error,rtc_dtls=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(ca) = cli.ca_file {
        confab_core::api::trust_ca_file(ca);
    }
    let (result, json_errors) = match cli.command {
        Command::Call(args) => (call(*args).await, false),
        Command::Devices => (devices(), false),
        Command::Screens => (screens(), false),
        Command::Chat(args) => (messenger::chat(args).await, true),
        Command::Contacts(args) => (messenger::contacts(args).await, true),
        Command::Dm(args) => (messenger::dm(args).await, true),
        Command::Ring(args) => (messenger::ring(args).await, true),
        Command::Answer(args) => (messenger::answer(args).await, true),
        Command::Community(args) => (communities::run(args).await, true),
        Command::Upload(args) => (files::upload(args).await, true),
        Command::Download(args) => (files::download(args).await, true),
        Command::Search(args) => (search::run(args).await, true),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json_errors => {
            eprintln!("{}", messenger::error_json(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("confab-cli: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn screens() -> anyhow::Result<()> {
    for s in confab_core::call::screen::list_sources()? {
        let primary = if s.primary { " (primary)" } else { "" };
        println!("{}{primary}: {} {}x{}", s.target, s.name, s.width, s.height);
    }
    Ok(())
}

fn devices() -> anyhow::Result<()> {
    let listed = setup::list_devices();
    println!("cameras:");
    for c in &listed.cameras {
        println!("  {}: {} ({})", c.index, c.name, c.description);
    }
    for (title, list) in [
        ("microphones:", &listed.microphones),
        ("speakers:", &listed.speakers),
    ] {
        println!("{title}");
        for d in list {
            println!(
                "  {}{}: {}",
                d.id,
                if d.is_default { " (default)" } else { "" },
                d.name
            );
        }
    }
    for note in &listed.notes {
        eprintln!("{note}");
    }
    Ok(())
}

/// A signed-in API client for `account` (registered first with `--register`).
async fn sign_in(account: &Account) -> anyhow::Result<(ApiClient, Me)> {
    if account.user.is_empty() {
        anyhow::bail!("--user is required");
    }
    let api = ApiClient::new(&account.server, Arc::new(MemoryStore::new()))?;
    if account.register {
        let request = RegisterRequest {
            username: account.user.clone(),
            email: format!("{}@confab-cli.invalid", account.user),
            password: account.password.clone(),
            confirm_password: account.password.clone(),
        };
        match api.register(&request).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let me = api.login(&account.user, &account.password).await?;
    Ok((api, me))
}

async fn call(args: CallArgs) -> anyhow::Result<()> {
    let (api, me) = sign_in(&args.account).await?;
    api.join_room(args.room).await?;
    let config = CallConfig {
        room_id: args.room,
        video: Some(if args.synthetic {
            VideoSource::TestPattern {
                width: args.width,
                height: args.height,
                fps: args.fps,
            }
        } else {
            VideoSource::Camera {
                index: args.camera,
                width: args.width,
                height: args.height,
                fps: args.fps,
            }
        }),
        audio: Some(if args.synthetic {
            AudioSource::Tone {
                frequency: args.tone,
            }
        } else {
            AudioSource::Microphone {
                device: args.microphone.clone(),
            }
        }),
        speaker: (!args.synthetic).then(|| args.speaker.clone()),
        video_kbps: args.kbps,
        ice_servers: Vec::new(),
        udp_addrs: vec![args.udp_addr.clone()],
        voice_processing: args.voice_processing,
    };
    let (call, mut events) = setup::start_alone(&api, config).await?;
    eprintln!("{} joined room {}", me.username, args.room);
    if let Some(target) = args.screen {
        call.share_screen(target);
    }
    let mut stdin_lines = args.commands.then(|| {
        use tokio::io::AsyncBufReadExt as _;
        tokio::io::BufReader::new(tokio::io::stdin()).lines()
    });
    // Screen frames received per participant: (count, width, height).
    let screens = Arc::new(std::sync::Mutex::new(HashMap::new()));

    // Glass-to-glass latency per participant, from the test pattern's capture timestamps.
    let latencies = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let watcher = {
        let latencies = Arc::clone(&latencies);
        let screens = Arc::clone(&screens);
        let mut frames = call.video_frames();
        tokio::spawn(async move {
            loop {
                match frames.recv().await {
                    Ok(frame) if frame.kind == VideoKind::Screen => {
                        let mut map = screens.lock().unwrap_or_else(|e| e.into_inner());
                        let entry = map.entry(frame.participant_id).or_insert((0u64, 0, 0));
                        *entry = (entry.0 + 1, frame.frame.width(), frame.frame.height());
                    }
                    Ok(frame) => {
                        if let Some(marker) = frame.marker {
                            let ms = frame.decoded_at_us.saturating_sub(marker.timestamp_us) as f64
                                / 1000.0;
                            let mut map = latencies.lock().unwrap_or_else(|e| e.into_inner());
                            map.insert(frame.participant_id, ms);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        })
    };

    let stop = async {
        match args.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    let ended = loop {
        tokio::select! {
            () = &mut stop => break None,
            event = events.recv() => match event {
                Some(CallEvent::Stats(stats)) => {
                    let g2g = latencies.lock().unwrap_or_else(|e| e.into_inner()).get(&stats.participant_id).copied();
                    let screen = screens.lock().unwrap_or_else(|e| e.into_inner()).get(&stats.participant_id).copied();
                    if args.json {
                        let mut value = serde_json::to_value(&stats)?;
                        value["glass_to_glass_ms"] = serde_json::json!(g2g);
                        if let Some((frames, width, height)) = screen {
                            value["screen"] = serde_json::json!({"frames": frames, "width": width, "height": height});
                        }
                        println!("{value}");
                    } else {
                        println!(
                            "{} rtt {} ms  send {:.0} kbps  recv {:.0} kbps  lost {}  jitter {:.1} ms  frames {}  {:.1} fps  {}x{}  glass-to-glass {}",
                            short(&stats.participant_id.to_string()),
                            stats.rtt_ms.map_or("-".to_owned(), |r| format!("{r:.1}")),
                            stats.send_kbps,
                            stats.recv_kbps,
                            stats.packets_lost,
                            stats.jitter_ms,
                            stats.frames_decoded,
                            stats.fps,
                            stats.width,
                            stats.height,
                            g2g.map_or("-".to_owned(), |ms| format!("{ms:.1} ms")),
                        );
                    }
                }
                Some(CallEvent::Joined { participants, .. }) => eprintln!("in the call with {} others", participants.len()),
                Some(CallEvent::ParticipantJoined(p)) => eprintln!("{} joined", p.username),
                Some(CallEvent::ParticipantLeft { participant_id, .. }) => eprintln!("{} left", short(&participant_id.to_string())),
                Some(CallEvent::Reconnecting { attempt }) => eprintln!("reconnecting (attempt {attempt})"),
                Some(CallEvent::Error { code, message }) => eprintln!("server refused: {message} ({code:?})"),
                Some(CallEvent::RemoteScreen { participant_id, sharing, .. }) => eprintln!(
                    "{} {} sharing a screen",
                    short(&participant_id.to_string()),
                    if sharing { "started" } else { "stopped" },
                ),
                Some(CallEvent::LocalScreen { target: Some(t), .. }) => eprintln!("sharing {t}"),
                Some(CallEvent::LocalScreen { error: Some(e), .. }) => eprintln!("cannot share the screen: {e}"),
                Some(CallEvent::LocalScreen { .. }) => eprintln!("stopped sharing"),
                Some(CallEvent::Ended { reason }) => break Some(reason),
                Some(_) => {}
                None => break Some("the call ended".to_owned()),
            },
            line = async {
                match stdin_lines.as_mut() {
                    Some(lines) => lines.next_line().await,
                    None => std::future::pending().await,
                }
            } => match line {
                Ok(Some(line)) => match line.trim().split_once(' ') {
                    Some(("screen", "stop")) => call.stop_screen_share(),
                    Some(("screen", target)) => match parse_screen_target(target.trim()) {
                        Ok(target) => call.share_screen(target),
                        Err(e) => eprintln!("{e}"),
                    },
                    _ if line.trim().is_empty() => {}
                    _ => eprintln!("unknown command {line:?} (screen TARGET | screen stop)"),
                },
                // Standard input closed: no more commands, the call goes on.
                Ok(None) | Err(_) => stdin_lines = None,
            },
        }
    };
    watcher.abort();
    call.leave().await;
    match ended {
        Some(reason) => anyhow::bail!("{reason}"),
        None => Ok(()),
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The messenger commands, on a [`Connection`].
mod messenger {
    use super::{
        AnswerArgs, ChatAction, ChatArgs, ContactsAction, ContactsArgs, DmArgs, RingArgs,
        RingMedia, Session, sign_in,
    };
    use anyhow::Context as _;
    use confab_core::api::{ApiError, PageAnchor, TransferError};
    use confab_core::call::{CallConfig, CallEvent, setup};
    use confab_core::connection::{Connection, ConnectionConfig, ConnectionError, ConnectionEvent};
    use shared::api::{ContactRequestStatus, Message, PublicUser};
    use shared::signal::RingEnd;
    use shared::{ErrorCode, ErrorDetail, RoomId};
    use std::path::PathBuf;
    use std::time::Duration;
    use tokio::sync::broadcast;
    use tokio::sync::broadcast::error::RecvError;

    /// How long a command waits for its first resync.
    pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

    /// The error as the server's JSON error shape.
    pub fn error_json(e: &anyhow::Error) -> serde_json::Value {
        // A transfer's API failure is an API failure; its local ones (a file that cannot
        // be read or written) are the caller's.
        let api =
            e.downcast_ref::<ApiError>()
                .or_else(|| match e.downcast_ref::<TransferError>() {
                    Some(TransferError::Api(e)) => Some(e),
                    _ => None,
                });
        let detail = if let Some(e) = e.downcast_ref::<ConnectionError>() {
            e.detail()
        } else if let Some(ApiError::Server { detail, .. }) = api {
            detail.clone()
        } else {
            let code = match api {
                Some(ApiError::Transport(_)) => ErrorCode::Unavailable,
                // A link (or --server) that is not this server's: the caller's mistake.
                Some(ApiError::InvalidServerUrl { .. }) => ErrorCode::BadRequest,
                Some(e) if e.needs_sign_in() => ErrorCode::Unauthorized,
                Some(_) => ErrorCode::Internal,
                None => ErrorCode::BadRequest,
            };
            ErrorDetail {
                code,
                message: format!("{e:#}"),
                fields: None,
            }
        };
        serde_json::json!({ "error": detail })
    }

    fn default_outbox() -> PathBuf {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("confab")
            .join("confab-cli-outbox.sqlite")
    }

    async fn connect(
        session: &Session,
    ) -> anyhow::Result<(Connection, broadcast::Receiver<ConnectionEvent>)> {
        let (api, _) = sign_in(&session.account).await?;
        let path = session.outbox.clone().unwrap_or_else(default_outbox);
        Ok(Connection::open(api, ConnectionConfig::new(path)).await?)
    }

    /// Runs `work` on a connection and closes it, whatever the outcome.
    pub async fn with_connection<F, Fut>(session: &Session, work: F) -> anyhow::Result<()>
    where
        F: FnOnce(Connection, broadcast::Receiver<ConnectionEvent>) -> Fut,
        Fut: Future<Output = (Connection, anyhow::Result<()>)>,
    {
        let (conn, events) = connect(session).await?;
        let (conn, result) = work(conn, events).await;
        conn.close().await;
        result
    }

    pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(value)?);
        Ok(())
    }

    pub fn name(conn: &Connection, user: Option<shared::UserId>) -> String {
        match user {
            None => "(system)".to_owned(),
            Some(id) if id == conn.me().id => conn.me().username.clone(),
            Some(id) => conn.user(id).map_or_else(|| id.to_string(), |u| u.username),
        }
    }

    /// Users' names: the connection's model first (contacts, direct rooms), then the
    /// server, asked once each (a community's members need not be in the model).
    #[derive(Debug, Default)]
    pub struct Names(std::collections::HashMap<shared::UserId, String>);

    impl Names {
        pub async fn of(&mut self, conn: &Connection, user: Option<shared::UserId>) -> String {
            let Some(id) = user else {
                return name(conn, None);
            };
            if let Some(known) = self.0.get(&id) {
                return known.clone();
            }
            let found = match conn.user(id) {
                Some(_) => name(conn, user),
                None if id == conn.me().id => name(conn, user),
                None => conn
                    .api()
                    .user(id)
                    .await
                    .map_or_else(|_| id.to_string(), |u| u.username),
            };
            self.0.insert(id, found.clone());
            found
        }
    }

    fn print_message(json: bool, m: &Message, author: &str) -> anyhow::Result<()> {
        if json {
            return print_json(m);
        }
        let body = if m.deleted {
            "(deleted)"
        } else {
            m.body.as_str()
        };
        let edited = if m.edited_at.is_some() {
            " (edited)"
        } else {
            ""
        };
        let files = if m.attachments.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = m
                .attachments
                .iter()
                .map(|a| format!("{} {}", a.name, super::files::size(a.size)))
                .collect();
            format!(" (files: {})", list.join("; "))
        };
        let text = format!("{body}{edited}{files}");
        println!("[#{}] {author}: {}", m.seq, text.trim_start());
        Ok(())
    }

    pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
        let json = args.session.json;
        with_connection(&args.session, |conn, mut events| async move {
            let result = async {
                match args.action {
                    ChatAction::Send {
                        room,
                        text,
                        attach,
                        reply_to,
                        timeout,
                    } => {
                        let uploads = super::files::upload_all(conn.api(), &attach).await?;
                        let pending = conn
                            .queue_message_with(room, &text, reply_to, uploads)
                            .await?;
                        let sent =
                            wait_sent(&conn, &mut events, &pending.client_id, timeout).await?;
                        if json {
                            print_json(&sent)?;
                        } else {
                            println!("sent #{} ({})", sent.seq, sent.id);
                        }
                        Ok(())
                    }
                    ChatAction::Tail { room, count } => {
                        // What is there before the first sync is history, not news.
                        let _ = tokio::time::timeout(SYNC_TIMEOUT, conn.wait_synced()).await;
                        eprintln!("following room {room}");
                        let mut names = Names::default();
                        let mut printed = 0;
                        while count.is_none_or(|c| printed < c) {
                            let event = tokio::select! {
                                event = events.recv() => event,
                                _ = tokio::signal::ctrl_c() => return Ok(()),
                            };
                            match event {
                                Ok(ConnectionEvent::MessageCreated(m)) if m.room_id == room => {
                                    let author = names.of(&conn, m.author).await;
                                    print_message(json, &m, &author)?;
                                    printed += 1;
                                }
                                Ok(ConnectionEvent::RoomRemoved(id)) if id == room => {
                                    anyhow::bail!("no longer a member of room {room}");
                                }
                                Ok(ConnectionEvent::Disconnected {
                                    terminal: true,
                                    reason,
                                    ..
                                }) => {
                                    anyhow::bail!("disconnected: {reason}");
                                }
                                Ok(_) => {}
                                Err(RecvError::Lagged(n)) => eprintln!("(missed {n} events)"),
                                Err(RecvError::Closed) => anyhow::bail!("the connection closed"),
                            }
                        }
                        Ok(())
                    }
                    ChatAction::History {
                        room,
                        limit,
                        before,
                    } => {
                        let mut messages: Vec<Message> = Vec::new();
                        let mut anchor = before.map_or(PageAnchor::Latest, PageAnchor::Before);
                        while (messages.len() as u64) < u64::from(limit) {
                            let want = (u64::from(limit) - messages.len() as u64).min(100) as u32;
                            let page = conn.history(room, anchor, Some(want)).await?;
                            let first = page.messages.first().map(|m| m.seq);
                            let mut older = page.messages;
                            older.append(&mut messages);
                            messages = older;
                            match first {
                                Some(seq) if page.has_more_before => {
                                    anchor = PageAnchor::Before(seq)
                                }
                                _ => break,
                            }
                        }
                        // Names of authors the model has not met yet.
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), conn.wait_synced()).await;
                        let mut names = Names::default();
                        for m in &messages {
                            let author = names.of(&conn, m.author).await;
                            print_message(json, m, &author)?;
                        }
                        Ok(())
                    }
                }
            }
            .await;
            (conn, result)
        })
        .await
    }

    /// Waits until the outbox reports the message stored (or refused), or `timeout`.
    async fn wait_sent(
        conn: &Connection,
        events: &mut broadcast::Receiver<ConnectionEvent>,
        client_id: &str,
        timeout: u64,
    ) -> anyhow::Result<Message> {
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(ConnectionEvent::MessageSent {
                        client_id: id,
                        message,
                    }) if id == client_id => {
                        return Ok(message);
                    }
                    Ok(ConnectionEvent::MessageFailed {
                        client_id: id,
                        error,
                        ..
                    }) if id == client_id => {
                        return Err(ConnectionError::Refused(error).into());
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(ConnectionError::Closed.into()),
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(timeout), wait).await {
            Ok(result) => result,
            Err(_) => {
                let pending = conn.pending_messages().await.unwrap_or_default();
                if pending.iter().any(|p| p.client_id == client_id) {
                    Err(ConnectionError::NotConnected).context(
                        "not delivered yet; it stays in the outbox and is sent by the next command that uses it",
                    )
                } else {
                    Err(ConnectionError::Closed.into())
                }
            }
        }
    }

    fn print_user(json: bool, u: &PublicUser) -> anyhow::Result<()> {
        if json {
            return print_json(u);
        }
        println!(
            "{} {}{}",
            u.id,
            u.username,
            u.display_name
                .as_deref()
                .map_or_else(String::new, |d| format!(" ({d})"))
        );
        Ok(())
    }

    pub async fn contacts(args: ContactsArgs) -> anyhow::Result<()> {
        let json = args.session.json;
        with_connection(&args.session, |conn, _events| async move {
            let result = async {
                let accept = matches!(args.action, ContactsAction::Accept { .. });
                match args.action {
                    ContactsAction::Search { q } => {
                        for u in conn.search_users(&q).await? {
                            print_user(json, &u)?;
                        }
                    }
                    ContactsAction::Add { who: user } => {
                        let id = conn.resolve_user(&user).await?;
                        let outcome = conn.add_contact(id).await?;
                        if json {
                            print_json(&outcome)?;
                        } else if outcome.status == ContactRequestStatus::Accepted {
                            println!("{user} is now a contact");
                        } else {
                            println!("asked {user} to become a contact");
                        }
                    }
                    ContactsAction::Accept { who: user }
                    | ContactsAction::Decline { who: user } => {
                        let request = find_request(&conn, &user).await?;
                        if accept {
                            let contact = conn.accept_request(request.id).await?;
                            if json {
                                print_json(&contact)?;
                            } else {
                                println!("{} is now a contact", contact.user.username);
                            }
                        } else {
                            conn.decline_request(request.id).await?;
                            if json {
                                print_json(&serde_json::json!({"declined": request.id}))?;
                            } else {
                                println!("declined {}", request.from.username);
                            }
                        }
                    }
                    ContactsAction::List => {
                        let contacts = conn.api().contacts().await?;
                        if json {
                            print_json(&contacts)?;
                        } else {
                            for c in &contacts {
                                println!(
                                    "{} {} {:?}{}",
                                    c.user.id,
                                    c.user.username,
                                    c.presence,
                                    c.direct_room_id
                                        .map_or_else(String::new, |r| format!(" dm {r}"))
                                );
                            }
                        }
                    }
                    ContactsAction::Remove { who: user } => {
                        let id = conn.resolve_user(&user).await?;
                        conn.remove_contact(id).await?;
                        done(json, "removed", &user)?;
                    }
                    ContactsAction::Block { who: user } => {
                        let id = conn.resolve_user(&user).await?;
                        conn.block(id).await?;
                        done(json, "blocked", &user)?;
                    }
                    ContactsAction::Unblock { who: user } => {
                        let id = match conn.resolve_user(&user).await {
                            Ok(id) => id,
                            // Search hides users I block: look in my block list.
                            Err(e) => conn
                                .blocks()
                                .await?
                                .into_iter()
                                .find(|b| b.user.username.eq_ignore_ascii_case(&user))
                                .map(|b| b.user.id)
                                .ok_or(e)?,
                        };
                        conn.unblock(id).await?;
                        done(json, "unblocked", &user)?;
                    }
                }
                Ok(())
            }
            .await;
            (conn, result)
        })
        .await
    }

    fn done(json: bool, what: &str, user: &str) -> anyhow::Result<()> {
        if json {
            print_json(&serde_json::json!({ what: user }))
        } else {
            println!("{what} {user}");
            Ok(())
        }
    }

    /// The pending request to me from `user` (a username or an id).
    async fn find_request(
        conn: &Connection,
        user: &str,
    ) -> anyhow::Result<shared::api::ContactRequest> {
        let requests = conn.api().contact_requests().await?;
        let by_name = requests
            .incoming
            .iter()
            .find(|r| r.from.username.eq_ignore_ascii_case(user) || r.from.id.to_string() == user);
        if let Some(found) = by_name {
            return Ok(found.clone());
        }
        let id = conn.resolve_user(user).await?;
        conn.request_from(id)
            .await?
            .ok_or_else(|| ConnectionError::NoSuchRequest(user.to_owned()).into())
    }

    pub async fn dm(args: DmArgs) -> anyhow::Result<()> {
        let json = args.session.json;
        with_connection(&args.session, |conn, _events| async move {
            let result = async {
                let id = conn.resolve_user(&args.who).await?;
                let room = conn.open_direct(id).await?;
                if json {
                    print_json(&room)?;
                } else {
                    println!("{}", room.id);
                }
                Ok(())
            }
            .await;
            (conn, result)
        })
        .await
    }

    fn media(room: RoomId, media: &RingMedia, video: bool) -> CallConfig {
        let mut config = CallConfig::synthetic(room);
        if !video {
            config.video = None;
        }
        config.udp_addrs = vec![media.udp_addr.clone()];
        config
    }

    fn outcome(json: bool, event: &str, room: RoomId) -> anyhow::Result<()> {
        if json {
            print_json(&serde_json::json!({ "event": event, "room_id": room }))
        } else {
            println!("{event} {room}");
            Ok(())
        }
    }

    /// Stays in an answered call for `duration`, or until the other side leaves.
    async fn stay(
        calls: &mut tokio::sync::mpsc::UnboundedReceiver<CallEvent>,
        duration: Option<u64>,
    ) -> anyhow::Result<()> {
        let until = async {
            match duration {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => return Ok(()),
                _ = tokio::signal::ctrl_c() => return Ok(()),
                event = calls.recv() => match event {
                    Some(CallEvent::ParticipantLeft { .. }) => return Ok(()),
                    Some(CallEvent::Ended { reason }) => anyhow::bail!("the call ended: {reason}"),
                    Some(CallEvent::Error { message, .. }) => eprintln!("server refused: {message}"),
                    Some(_) => {}
                    None => return Ok(()),
                },
            }
        }
    }

    pub async fn ring(args: RingArgs) -> anyhow::Result<()> {
        let json = args.session.json;
        with_connection(&args.session, |conn, mut events| async move {
            let result = async {
                let _ = tokio::time::timeout(SYNC_TIMEOUT, conn.wait_synced()).await;
                let user = conn.resolve_user(&args.who).await?;
                let mut config = media(RoomId::new(), &args.media, !args.media.audio);
                config.ice_servers = setup::ice_servers(conn.api()).await;
                let (room, call, mut calls) = conn.ring(user, config).await?;
                outcome(json, "ringing", room)?;
                let deadline = tokio::time::sleep(Duration::from_secs(args.media.timeout));
                tokio::pin!(deadline);
                let answered = loop {
                    tokio::select! {
                        () = &mut deadline => break Err(anyhow::anyhow!("no outcome within {} s", args.media.timeout)),
                        event = events.recv() => match event {
                            Ok(ConnectionEvent::CallDeclined { room_id, .. }) if room_id == room => {
                                outcome(json, "declined", room)?;
                                break Ok(false);
                            }
                            Ok(ConnectionEvent::CallMissed { room_id }) if room_id == room => {
                                outcome(json, "missed", room)?;
                                break Ok(false);
                            }
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => break Err(ConnectionError::Closed.into()),
                        },
                        event = calls.recv() => match event {
                            Some(CallEvent::ParticipantJoined(_)) => {
                                outcome(json, "answered", room)?;
                                break Ok(true);
                            }
                            Some(CallEvent::Ended { reason }) => break Err(anyhow::anyhow!("the call ended: {reason}")),
                            Some(CallEvent::Error { code, message }) => {
                                break Err(ConnectionError::Refused(ErrorDetail { code, message, fields: None }).into());
                            }
                            Some(_) => {}
                            None => break Err(anyhow::anyhow!("the call ended")),
                        },
                    }
                };
                let stayed = match answered {
                    Ok(true) => stay(&mut calls, args.media.duration).await,
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
                call.leave().await;
                stayed
            }
            .await;
            (conn, result)
        })
        .await
    }

    pub async fn answer(args: AnswerArgs) -> anyhow::Result<()> {
        let json = args.session.json;
        with_connection(&args.session, |conn, mut events| async move {
            let result = async {
                let deadline = tokio::time::sleep(Duration::from_secs(args.media.timeout));
                tokio::pin!(deadline);
                let _ = tokio::time::timeout(SYNC_TIMEOUT, conn.wait_synced()).await;
                eprintln!("waiting for a call");
                let ring = loop {
                    if let Some(ring) = conn.ringing().into_iter().next() {
                        break ring;
                    }
                    tokio::select! {
                        () = &mut deadline => anyhow::bail!("nothing rang within {} s", args.media.timeout),
                        event = events.recv() => match event {
                            Ok(ConnectionEvent::CallRinging(ring)) => break ring,
                            Ok(ConnectionEvent::CallRingStopped { reason: RingEnd::Cancelled, .. }) => {}
                            Ok(_) | Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => return Err(ConnectionError::Closed.into()),
                        },
                    }
                };
                let config = media(ring.room_id, &args.media, ring.video && !args.media.audio);
                let (call, mut calls) = setup::start_on(&conn, config).await?;
                let joined = loop {
                    match calls.recv().await {
                        Some(CallEvent::Joined { .. }) => break Ok(()),
                        Some(CallEvent::Ended { reason }) => break Err(anyhow::anyhow!("the call ended: {reason}")),
                        Some(CallEvent::Error { code, message }) => {
                            break Err(ConnectionError::Refused(ErrorDetail { code, message, fields: None }).into());
                        }
                        Some(_) => {}
                        None => break Err(anyhow::anyhow!("the call ended")),
                    }
                };
                let result = match joined {
                    Ok(()) => {
                        outcome(json, "answered", ring.room_id)?;
                        stay(&mut calls, args.media.duration).await
                    }
                    Err(e) => Err(e),
                };
                call.leave().await;
                result
            }
            .await;
            (conn, result)
        })
        .await
    }
}
