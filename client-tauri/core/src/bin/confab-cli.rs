//! `confab-cli`: a headless Confab participant. It signs in, joins a room's call, sends
//! media (the camera and microphone, or with `--synthetic` the test pattern and a tone),
//! and prints per-participant statistics every second. Tests, demos and load runs use it.

use clap::{Args, Parser, Subcommand};
use confab_core::api::ApiClient;
use confab_core::call::{
    AudioSource, Call, CallConfig, CallEvent, RTCIceServer, VideoSource, rtc_ice_servers,
};
use confab_core::keystore::MemoryStore;
use confab_core::signaling::{SignalingClient, SignalingConfig};
use confab_media::audio::device::{list_input_devices, list_output_devices};
use confab_media::video::camera::list_cameras;
use shared::api::RegisterRequest;
use shared::{ErrorCode, RoomId};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[derive(Parser, Debug)]
#[command(name = "confab-cli", version, about = "A headless Confab participant")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join a room's call and print statistics every second.
    Call(Box<CallArgs>),
    /// List cameras, microphones and speakers.
    Devices,
}

#[derive(Args, Debug)]
struct CallArgs {
    /// Server URL, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Room id (UUID). The user joins the room first if not a member yet.
    #[arg(long)]
    room: RoomId,
    /// Username or email.
    #[arg(long)]
    user: String,
    #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
    password: String,
    /// Create the account first (an existing one is fine).
    #[arg(long)]
    register: bool,
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
    let result = match Cli::parse().command {
        Command::Call(args) => call(*args).await,
        Command::Devices => devices(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab-cli: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn devices() -> anyhow::Result<()> {
    println!("cameras:");
    for c in list_cameras()? {
        println!("  {}: {} ({})", c.index, c.name, c.description);
    }
    for (title, list) in [
        ("microphones:", list_input_devices()),
        ("speakers:", list_output_devices()),
    ] {
        println!("{title}");
        for d in list? {
            println!(
                "  {}{}: {}",
                d.id,
                if d.is_default { " (default)" } else { "" },
                d.name
            );
        }
    }
    Ok(())
}

async fn call(args: CallArgs) -> anyhow::Result<()> {
    let api = ApiClient::new(&args.server, Arc::new(MemoryStore::new()))?;
    if args.register {
        let request = RegisterRequest {
            username: args.user.clone(),
            email: format!("{}@confab-cli.invalid", args.user),
            password: args.password.clone(),
            confirm_password: args.password.clone(),
        };
        match api.register(&request).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let me = api.login(&args.user, &args.password).await?;
    api.join_room(args.room).await?;
    let ice_servers = ice_servers(&api).await;

    let (signaling, events) = SignalingClient::start(
        SignalingConfig::new(api.ws_url().to_string()),
        Arc::new(api.clone()),
    );
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
        ice_servers,
        udp_addrs: vec![args.udp_addr.clone()],
    };
    let (call, mut events) = Call::start(signaling, events, config)?;
    eprintln!("{} joined room {}", me.username, args.room);

    // Glass-to-glass latency per participant, from the test pattern's capture timestamps.
    let latencies = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let watcher = {
        let latencies = Arc::clone(&latencies);
        let mut frames = call.video_frames();
        tokio::spawn(async move {
            loop {
                match frames.recv().await {
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
                    if args.json {
                        let mut value = serde_json::to_value(&stats)?;
                        value["glass_to_glass_ms"] = serde_json::json!(g2g);
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
                Some(CallEvent::Ended { reason }) => break Some(reason),
                Some(_) => {}
                None => break Some("the call ended".to_owned()),
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

/// STUN/TURN servers from the server; none (host candidates only) if it has none.
async fn ice_servers(api: &ApiClient) -> Vec<RTCIceServer> {
    match api.ice_servers().await {
        Ok(response) => rtc_ice_servers(response.ice_servers),
        Err(e) => {
            eprintln!("no ICE servers from the server ({e}); using host candidates only");
            Vec::new()
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
