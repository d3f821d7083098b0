//! One peer connection per remote participant: a task that owns the connection and its
//! negotiation machine, executes the machine's commands, and wires the connection's
//! events (candidates, state, remote tracks) to signaling and to the receive tasks.

use crate::call::CallEvent;
use crate::call::bwe::{Bwe, BweInterceptor};
use crate::call::codecs::{OPUS_PAYLOAD_TYPE, VP8_PAYLOAD_TYPE, local_track, media_engine};
use crate::call::feedback::{
    AUDIO_RESERVE_BPS, FeedbackInterceptor, MAX_VIDEO_KBPS, MIN_VIDEO_KBPS, SendFeedback,
};
use crate::call::local::{Fanout, SendingVideo, VideoControl};
use crate::call::remote::{LinkInfo, Sinks, VideoKind, receive_audio, receive_video};
use crate::call::screen::{SCREEN_STREAM_PREFIX, sdp_sends_screen};
use crate::call::stats::{PeerStats, ReceiveCounters, StatsTracker};
use crate::negotiation::{
    Command, IceConnectionState, Input, NegotiationConfig, Negotiator, PeerIdentity, SdpKind,
    SessionDescription,
};
use crate::signaling::SignalingSender;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackResponderBuilder, Slot, TwccReceiverBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_TRANSPORT_CC,
};
use shared::signal::{ClientMsg, IceCandidate, Participant};
use shared::{ParticipantId, RoomId};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, Registry,
    SettingEngineBuilder, StatsSelector, configure_rtcp_reports,
};
use webrtc::rtp_transceiver::RtpSender;

/// What a peer task is told.
#[derive(Debug)]
pub(crate) enum PeerInput {
    /// An offer, answer or candidate from this participant, via signaling.
    Signal(Input),
}

/// Events the peer connection reports, forwarded to the peer task.
enum PcEvent {
    NegotiationNeeded,
    Candidate(RTCIceCandidateInit),
    IceState(RTCIceConnectionState),
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

/// Forwards the connection's callbacks into the peer task. Unbounded, so the connection's
/// driver never waits for us (it would deadlock against an operation we are awaiting).
struct Handler(mpsc::UnboundedSender<PcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_negotiation_needed(&self) {
        let _ = self.0.send(PcEvent::NegotiationNeeded);
    }
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.0.send(PcEvent::Candidate(init));
            }
            Err(e) => tracing::warn!(error = %e, "unusable local candidate"),
        }
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.0.send(PcEvent::IceState(state));
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(PcEvent::State(state));
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.0.send(PcEvent::Track(track));
    }
}

/// Everything a peer task needs from its call.
pub(crate) struct PeerSetup {
    pub room: RoomId,
    pub local: PeerIdentity,
    pub remote: Participant,
    /// True when we joined after them: we make the first offer, they wait for it, so the
    /// usual case needs one round trip and no glare.
    pub offer_first: bool,
    pub signaling: SignalingSender,
    pub ice_servers: Vec<RTCIceServer>,
    pub udp_addrs: Vec<String>,
    pub fanout: Arc<Fanout>,
    pub video_control: Option<std_mpsc::Sender<VideoControl>>,
    /// Where the RTCP about our tracks goes (keyframe requests, loss, estimates).
    pub feedback: Arc<SendFeedback>,
    /// What the video encoder sends now.
    pub sending: Arc<watch::Sender<SendingVideo>>,
    /// The video bitrate the call starts at (the estimator's starting point).
    pub video_kbps: u32,
    pub sinks: Sinks,
    pub events: mpsc::UnboundedSender<CallEvent>,
    /// The screen share's tracks while we share (`None`: not sharing).
    pub screen: watch::Receiver<Option<Arc<Fanout>>>,
}

const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Longest wait for candidate gathering before an offer or answer goes out without
/// (some of) them; host candidates take a millisecond, a STUN round trip a few dozen.
const GATHER_WAIT: Duration = Duration::from_millis(150);
const ICE_MAX_BINDING_REQUESTS: u16 = 28;

/// How often the local addresses are looked at. One that went away restarts ICE at once,
/// instead of after the ~10 s of silence before ICE says `disconnected` (rtc, 5 s) and
/// the machine gives up on it (another 5 s).
const INTERFACE_CHECK: Duration = Duration::from_secs(1);

/// How long the side that waits for the other's offer waits before offering itself.
const OFFER_WAIT: Duration = Duration::from_secs(3);

/// The handle the call keeps for each peer.
pub(crate) struct PeerHandle {
    pub tx: mpsc::UnboundedSender<PeerInput>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl PeerHandle {
    pub fn spawn(setup: PeerSetup) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(setup, rx, cancel.clone()));
        Self { tx, cancel, task }
    }

    /// Closes the connection and waits for the task to finish.
    pub async fn close(self) {
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "peer task failed");
        }
    }
}

async fn run(
    setup: PeerSetup,
    mut rx: mpsc::UnboundedReceiver<PeerInput>,
    cancel: CancellationToken,
) {
    let remote_id = setup.remote.participant_id;
    let (pc_tx, mut pc_rx) = mpsc::unbounded_channel();
    let pc = match build(&setup, pc_tx).await {
        Ok(built) => built,
        Err(e) => {
            tracing::error!(error = %e, participant = %remote_id, "cannot set up the peer connection");
            return;
        }
    };
    let mut peer = Peer {
        negotiator: Negotiator::new(
            &setup.local,
            &PeerIdentity {
                user_id: setup.remote.user_id,
                participant_id: remote_id,
            },
            NegotiationConfig::default(),
        ),
        pc,
        counters: Arc::new(ReceiveCounters::default()),
        link: watch::channel(LinkInfo::default()).0,
        receivers: JoinSet::new(),
        stats: StatsTracker::new(remote_id, setup.remote.user_id),
        negotiation_held: !setup.offer_first,
        connected: false,
        screen: None,
        screen_unnegotiated: false,
        remote_sharing: false,
        selected_local: None,
        setup,
    };
    // Sharing already: the first offer carries the screen track too.
    peer.sync_screen().await;
    if !peer.negotiation_held {
        // webrtc-rs 0.21 queues `negotiationneeded` on add_track without waking its
        // driver, so the event can arrive late or, on an idle connection, not at all: the
        // first offer is ours to start.
        peer.negotiator
            .handle_input(Input::NegotiationNeeded, Instant::now());
    }
    let wait_for_offer = tokio::time::sleep(if peer.negotiation_held {
        OFFER_WAIT
    } else {
        Duration::ZERO
    });
    tokio::pin!(wait_for_offer);
    peer.run_commands().await;
    let mut stats_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut local_addrs = gathering_addrs(&peer.setup.udp_addrs);
    let mut interface_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + INTERFACE_CHECK,
        INTERFACE_CHECK,
    );
    loop {
        let deadline = peer
            .negotiator
            .poll_timeout()
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            () = cancel.cancelled() => break,
            input = rx.recv() => match input {
                Some(PeerInput::Signal(input)) => {
                    if matches!(input, Input::RemoteDescription(_)) {
                        // Their offer covers our tracks too (the answer sends them).
                        peer.release_negotiation(false);
                    }
                    peer.negotiator.handle_input(input, Instant::now());
                }
                None => break,
            },
            Some(event) = pc_rx.recv() => peer.on_pc_event(event),
            () = &mut wait_for_offer, if peer.negotiation_held => {
                tracing::debug!(participant = %remote_id, "no offer came; offering ourselves");
                peer.release_negotiation(true);
            }
            () = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                peer.negotiator.handle_timeout(Instant::now());
            }
            _ = stats_tick.tick() => {
                let stats = peer.stats().await;
                let _ = peer.setup.events.send(CallEvent::Stats(stats));
            }
            Ok(()) = peer.setup.screen.changed() => peer.sync_screen().await,
            _ = interface_tick.tick() => {
                let now = gathering_addrs(&peer.setup.udp_addrs);
                let gone: Vec<&IpAddr> = local_addrs.difference(&now).collect();
                // Only when the media's own address went: a container's or a VPN's
                // interface going away must not stall every call. Unknown (no pair
                // selected yet, or a relayed one): any address that went.
                let hit = match peer.selected_local {
                    Some(ip) => gone.contains(&&ip),
                    None => !gone.is_empty(),
                };
                if hit && peer.connected {
                    tracing::info!(participant = %remote_id, ?gone, "a local address went away: restarting ICE now");
                    peer.negotiator.handle_input(Input::RestartIce, Instant::now());
                }
                local_addrs = now;
            }
        }
        peer.run_commands().await;
        peer.negotiate_screen_when_settled().await;
    }
    if let Some(screen) = peer.screen.take() {
        screen.fanout.remove(remote_id);
        peer.setup.feedback.remove_screen_ssrc(screen.ssrc);
    }
    peer.setup.fanout.remove(remote_id);
    peer.setup.feedback.remove(remote_id);
    peer.receivers.abort_all();
    if let Err(e) = peer.pc.close().await {
        tracing::debug!(error = %e, "closing the peer connection");
    }
}

/// Packets the NACK responder keeps per stream for retransmission: about 2 s of video at
/// 2.5 Mbit/s (a power of two, as rtc requires).
const RETRANSMIT_BUFFER: u16 = 512;

/// After every rtc interceptor, before the terminus.
const FEEDBACK_SLOT: usize = 20_000;

/// The interceptors: RTCP sender and receiver reports, transport-wide congestion control
/// feedback for what we receive, the NACK responder (retransmissions of what we send, on
/// the RTX stream, `codecs::rtx`) and
/// ours that reads what the remote reports about our streams (`feedback.rs`). Not rtc's
/// NACK generator: the receive path asks for retransmissions itself (`nack.rs`), timed by
/// the round trip.
fn interceptors(
    setup: &PeerSetup,
    engine: &mut webrtc::peer_connection::MediaEngine,
) -> webrtc::error::Result<Registry> {
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(RETRANSMIT_BUFFER)
                .build(),
        )
        .with(
            Slot::from(FEEDBACK_SLOT),
            FeedbackInterceptor::new(setup.remote.participant_id, Arc::clone(&setup.feedback)),
        );
    let registry = configure_rtcp_reports(registry);
    // Transport-wide congestion control feedback both ways (`configure_twcc`: the header
    // extension, feedback for what we receive), and for what we send our own estimator
    // (`bwe.rs`) in place of rtc's TWCC sender: it numbers every packet (retransmissions
    // and probes too), reads the feedback and tells `SendFeedback` the estimate. Not rtc's
    // GCC (why: `bwe.rs`, with figures in the README), and not rtc's pacer: it paces at
    // exactly the estimate in one FIFO, so whenever the encoder is above a falling estimate
    // (every keyframe, and the second before the encoder follows) video and the audio
    // behind it queue for seconds (measured: at 10 % loss 77 % of frames rendered, 45 % of
    // the time frozen, glass-to-glass p95 2.6 s, against 100 %, 0 %, 50 ms without it).
    let bwe = Bwe::new(
        f64::from(setup.video_kbps) * 1000.0 + AUDIO_RESERVE_BPS,
        f64::from(MIN_VIDEO_KBPS) * 1000.0 + AUDIO_RESERVE_BPS,
        f64::from(MAX_VIDEO_KBPS) * 1000.0 / 0.85 + AUDIO_RESERVE_BPS,
    );
    let bwe = BweInterceptor::new(
        setup.remote.participant_id,
        Arc::clone(&setup.feedback),
        bwe,
    );
    Ok(with_twcc(registry, engine)?.with(Slot::TwccSender, bwe))
}

/// rtc's `configure_twcc` without its TWCC sender (the slot `BweInterceptor` takes): the
/// transport-cc header extension and feedback for audio and video, and the receiver side
/// that reports what arrives.
fn with_twcc(
    registry: Registry,
    engine: &mut webrtc::peer_connection::MediaEngine,
) -> webrtc::error::Result<Registry> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(),
                ..Default::default()
            },
            kind,
        );
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(registry.with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()))
}

async fn build(
    setup: &PeerSetup,
    events: mpsc::UnboundedSender<PcEvent>,
) -> webrtc::error::Result<Arc<dyn PeerConnection>> {
    let started = Instant::now();
    let mut engine = media_engine()?;
    let registry = interceptors(setup, &mut engine)?;
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(setup.ice_servers.clone())
        .build();
    // Connectivity checks every 50 ms (RFC 8445's Ta, what browsers pace at) instead of
    // rtc's 200 ms, for the same ~1.4 s per candidate pair: on a LAN the first check
    // round decides the setup time.
    //
    // An ICE restart (ours, or an offer with new credentials from them) rebinds the UDP
    // sockets and gathers again on the interfaces that exist then; webrtc-rs does that only
    // with this switch. Without it a restart keeps the sockets and candidates it started
    // with: a network that came up since (the one a handover moves to) is never a
    // candidate, so the call cannot move there, and the address that went away is checked
    // against every remote candidate for the rest of the call (tests/netchange.rs).
    let mut settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        .with_discard_local_candidates_during_ice_restart(true);
    log_gathering_interfaces(&setup.udp_addrs);
    if let Err(e) = probe_mdns_multicast() {
        tracing::info!(
            error = %e,
            "cannot join the mDNS multicast group (no route for 224.0.0.251, e.g. no default \
             route): peer connection without mDNS, remote .local candidates are not resolved"
        );
        settings = settings.with_multicast_dns_mode(MulticastDnsMode::Disabled);
    }
    let settings = settings.build();
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(engine)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler(events)))
            .with_udp_addrs(setup.udp_addrs.clone())
            .build()
            .await?,
    );
    tracing::debug!(participant = %setup.remote.participant_id, took = ?started.elapsed(), "peer connection built");
    let stream_id = setup.local.participant_id.to_string();
    for (kind, payload_type) in [
        (RtpCodecKind::Audio, OPUS_PAYLOAD_TYPE),
        (RtpCodecKind::Video, VP8_PAYLOAD_TYPE),
    ] {
        let (track, ssrc) = local_track(kind, &stream_id)?;
        pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        setup
            .fanout
            .add(setup.remote.participant_id, kind, track, ssrc, payload_type);
    }
    tracing::debug!(participant = %setup.remote.participant_id, "tracks added");
    Ok(pc)
}

/// Joins the mDNS group the way webrtc-rs's mDNS socket does (`rtc_mdns::MulticastSocket`:
/// group 224.0.0.251 on `INADDR_ANY`). With mDNS on (the default `QueryOnly`), webrtc-rs
/// opens that socket when it binds its transports and fails the whole peer connection if it
/// cannot: on Linux, joining on `INADDR_ANY` picks the interface by a route lookup for the
/// group, which fails with `ENODEV` ("No such device", os error 19) on a host with no
/// default route and no multicast route (a LAN-only network, a namespace with one /24).
fn probe_mdns_multicast() -> std::io::Result<()> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.join_multicast_v4(&MDNS_GROUP, &Ipv4Addr::UNSPECIFIED)
}

/// The mDNS IPv4 group (RFC 6762).
const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// Says which interfaces a wildcard bind address gathers candidates on and why the others
/// are skipped. webrtc-rs expands `0.0.0.0:port` into one socket per interface address
/// when it binds (again on every ICE restart) and skips loopback, link-local and the
/// other family without a word; an address that fails to bind it reports itself.
fn log_gathering_interfaces(udp_addrs: &[String]) {
    let wildcards = wildcard_binds(udp_addrs);
    if wildcards.is_empty() {
        return;
    }
    let interfaces = match rtc::shared::ifaces::ifaces() {
        Ok(interfaces) => interfaces,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the network interfaces: host candidates may be unusable");
            return;
        }
    };
    let mut used = Vec::new();
    for interface in interfaces {
        let Some(addr) = interface.addr else { continue };
        let ip = addr.ip();
        match unusable(ip, &wildcards) {
            Some(why) => {
                tracing::info!(interface = %interface.name, %ip, "candidate gathering skips the interface: {why}")
            }
            None => used.push(format!("{} {ip}", interface.name)),
        }
    }
    if used.is_empty() {
        tracing::warn!("no usable network interface: only relayed candidates (TURN) can connect");
    } else {
        tracing::info!(interfaces = %used.join(", "), "gathering candidates on");
    }
}

/// Why webrtc-rs gathers no candidate on `ip` for these wildcard binds (`None`: it does).
fn unusable(ip: IpAddr, wildcards: &[SocketAddr]) -> Option<&'static str> {
    if !wildcards.iter().any(|w| w.is_ipv4() == ip.is_ipv4()) {
        Some("not the bind address's family")
    } else if ip.is_loopback() {
        Some("loopback, no peer can reach it")
    } else if ip.is_unspecified() {
        Some("no address")
    } else if is_link_local(ip) {
        Some("link-local, meaningless to the peer")
    } else {
        None
    }
}

fn wildcard_binds(udp_addrs: &[String]) -> Vec<SocketAddr> {
    udp_addrs
        .iter()
        .filter_map(|a| a.parse::<SocketAddr>().ok())
        .filter(|a| a.ip().is_unspecified())
        .collect()
}

/// The local addresses candidates are gathered on now (empty unless a bind address is a
/// wildcard: a fixed address does not follow the interfaces).
fn gathering_addrs(udp_addrs: &[String]) -> BTreeSet<IpAddr> {
    let wildcards = wildcard_binds(udp_addrs);
    if wildcards.is_empty() {
        return BTreeSet::new();
    }
    rtc::shared::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.addr.map(|a| a.ip()))
        .filter(|ip| unusable(*ip, &wildcards).is_none())
        .collect()
}

/// Link-local unicast: 169.254.0.0/16 and fe80::/10.
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

struct Peer {
    setup: PeerSetup,
    pc: Arc<dyn PeerConnection>,
    negotiator: Negotiator,
    counters: Arc<ReceiveCounters>,
    /// The round trip, for the receive tasks' retransmission and keyframe timing.
    link: watch::Sender<LinkInfo>,
    receivers: JoinSet<()>,
    stats: StatsTracker,
    /// While true, `negotiationneeded` is held back: the other side makes the first offer.
    negotiation_held: bool,
    /// DTLS is up (the fan-outs feed this peer).
    connected: bool,
    /// Our screen track on this connection, while we share.
    screen: Option<ScreenTrack>,
    /// The screen track changed while the other side was to offer first: offer once
    /// their offer is answered (their offer cannot have a section for it).
    screen_unnegotiated: bool,
    /// Whether their last description sends a screen track.
    remote_sharing: bool,
    /// The local address of the selected candidate pair, from the last stats.
    selected_local: Option<IpAddr>,
}

/// Our screen track on one connection.
struct ScreenTrack {
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    fanout: Arc<Fanout>,
}

impl Peer {
    /// Stops holding back negotiation. With `offer_now` (their offer never came) we offer.
    /// Otherwise their offer arrived: answering it negotiates our tracks too (the
    /// connection fires a fresh `negotiationneeded` on returning to stable if anything is
    /// still un-negotiated).
    fn release_negotiation(&mut self, offer_now: bool) {
        if !self.negotiation_held {
            return;
        }
        self.negotiation_held = false;
        if offer_now {
            self.negotiator
                .handle_input(Input::NegotiationNeeded, Instant::now());
        }
    }

    fn on_pc_event(&mut self, event: PcEvent) {
        let now = Instant::now();
        match event {
            // Ignored: webrtc-rs 0.21 queues this event without waking its driver, so it
            // arrives late or never, and a late one starts a pointless renegotiation. Our
            // tracks are all added when the connection is built, so negotiation is needed
            // exactly when we start it (see `run`) and for ICE restarts, which the machine
            // drives itself.
            PcEvent::NegotiationNeeded => {}
            PcEvent::Candidate(c) => {
                let candidate = IceCandidate {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                    username_fragment: c.username_fragment,
                };
                self.send(ClientMsg::IceCandidate {
                    room_id: self.setup.room,
                    to: self.remote(),
                    candidate,
                });
            }
            PcEvent::IceState(state) => {
                self.negotiator
                    .handle_input(Input::IceConnectionState(ice_state(state)), now);
            }
            PcEvent::State(state) => {
                if state == RTCPeerConnectionState::Connected {
                    self.connected = true;
                    self.setup.fanout.connected(self.remote());
                    if let Some(screen) = &self.screen {
                        screen.fanout.connected(self.remote());
                        self.setup.feedback.screen_keyframe_requested();
                    }
                    if let Some(video) = &self.setup.video_control {
                        // The new peer's decoder needs a keyframe to start from.
                        let _ = video.send(VideoControl::ForceKeyframe);
                    }
                }
                let _ = self.setup.events.send(CallEvent::PeerState {
                    participant_id: self.remote(),
                    state: state.to_string(),
                });
            }
            PcEvent::Track(track) => {
                let who = (self.remote(), self.setup.remote.user_id);
                let sinks = self.setup.sinks.clone();
                let counters = Arc::clone(&self.counters);
                let link = self.link.subscribe();
                self.receivers.spawn(async move {
                    match track.kind().await {
                        RtpCodecKind::Video
                            if track.stream_id().await.starts_with(SCREEN_STREAM_PREFIX) =>
                        {
                            // A screen of their own counters: the stats are the camera's.
                            let counters = Arc::new(ReceiveCounters::default());
                            receive_video(track, who, sinks, counters, link, VideoKind::Screen)
                                .await
                        }
                        RtpCodecKind::Video => {
                            receive_video(track, who, sinks, counters, link, VideoKind::Camera)
                                .await
                        }
                        RtpCodecKind::Audio => receive_audio(track, who, sinks, counters).await,
                        _ => {}
                    }
                });
            }
        }
    }

    fn remote(&self) -> ParticipantId {
        self.setup.remote.participant_id
    }

    /// Adds or removes our screen track to match the call's share, and renegotiates.
    async fn sync_screen(&mut self) {
        let wanted = self.setup.screen.borrow_and_update().clone();
        let same = match (&self.screen, &wanted) {
            (Some(have), Some(want)) => Arc::ptr_eq(&have.fanout, want),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(old) = self.screen.take() {
            old.fanout.remove(self.remote());
            self.setup.feedback.remove_screen_ssrc(old.ssrc);
            if let Err(e) = self.pc.remove_track(&old.sender).await {
                tracing::warn!(error = %e, "removing the screen track");
            }
        }
        if let Some(fanout) = wanted {
            // A stream id of its own per share: the receiving side opens one track per id.
            let stream_id = format!("{SCREEN_STREAM_PREFIX}{:08x}", rand::random::<u32>());
            let added = async {
                let (track, ssrc) = local_track(RtpCodecKind::Video, &stream_id)?;
                let sender = self
                    .pc
                    .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                    .await?;
                webrtc::error::Result::Ok((track, ssrc, sender))
            };
            match added.await {
                Ok((track, ssrc, sender)) => {
                    self.setup.feedback.add_screen_ssrc(ssrc);
                    fanout.add(
                        self.remote(),
                        RtpCodecKind::Video,
                        track,
                        ssrc,
                        VP8_PAYLOAD_TYPE,
                    );
                    if self.connected {
                        fanout.connected(self.remote());
                        self.setup.feedback.screen_keyframe_requested();
                    }
                    self.screen = Some(ScreenTrack {
                        sender,
                        ssrc,
                        fanout,
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot add the screen track"),
            }
        }
        // webrtc-rs does not fire `negotiationneeded` reliably (see `on_pc_event`).
        if self.negotiation_held {
            self.screen_unnegotiated = true;
        } else {
            self.negotiator
                .handle_input(Input::NegotiationNeeded, Instant::now());
        }
    }

    /// Offers the screen track change that waited for the other side's first offer.
    async fn negotiate_screen_when_settled(&mut self) {
        if self.screen_unnegotiated && !self.negotiation_held && self.negotiator.is_settled() {
            self.screen_unnegotiated = false;
            self.negotiator
                .handle_input(Input::NegotiationNeeded, Instant::now());
            self.run_commands().await;
        }
    }

    /// Their description says whether they share a screen: tell the call when it changes.
    fn remote_screen(&mut self, sharing: bool) {
        if sharing != self.remote_sharing {
            self.remote_sharing = sharing;
            let _ = self.setup.events.send(CallEvent::RemoteScreen {
                participant_id: self.remote(),
                user_id: self.setup.remote.user_id,
                sharing,
            });
        }
    }

    fn send(&self, msg: ClientMsg) {
        if let Err(e) = self.setup.signaling.send(msg) {
            tracing::debug!(error = %e, participant = %self.remote(), "signaling message not sent");
        }
    }

    /// Executes the machine's commands in order, feeding back each completion.
    async fn run_commands(&mut self) {
        while let Some(command) = self.negotiator.poll_command() {
            let completion = match command {
                Command::CreateOffer { ice_restart } => {
                    if ice_restart {
                        tracing::info!(participant = %self.remote(), "restarting ICE: new sockets and candidates on the interfaces there are now");
                        log_gathering_interfaces(&self.setup.udp_addrs);
                        if let Err(e) = self.pc.restart_ice().await {
                            tracing::warn!(error = %e, "ICE restart");
                        }
                    }
                    Some(match self.pc.create_offer(None).await {
                        Ok(offer) => Input::OfferCreated(offer.sdp),
                        Err(e) => Input::OperationFailed(e.to_string()),
                    })
                }
                Command::CreateAnswer => Some(match self.pc.create_answer(None).await {
                    Ok(answer) => Input::AnswerCreated(answer.sdp),
                    Err(e) => Input::OperationFailed(e.to_string()),
                }),
                Command::SetLocalDescription(desc) => Some(match to_rtc(desc) {
                    Ok(desc) => match self.pc.set_local_description(desc).await {
                        Ok(()) => Input::LocalDescriptionSet,
                        Err(e) => Input::OperationFailed(e.to_string()),
                    },
                    Err(e) => Input::OperationFailed(e.to_string()),
                }),
                Command::SetRemoteDescription(desc) => {
                    let sharing = sdp_sends_screen(&desc.sdp);
                    Some(match to_rtc(desc) {
                        Ok(desc) => match self.pc.set_remote_description(desc).await {
                            Ok(()) => {
                                self.remote_screen(sharing);
                                Input::RemoteDescriptionSet
                            }
                            Err(e) => Input::OperationFailed(e.to_string()),
                        },
                        Err(e) => Input::OperationFailed(e.to_string()),
                    })
                }
                Command::Rollback { remote_offer } => {
                    let result = match RTCSessionDescription::rollback(None) {
                        Ok(rollback) if remote_offer => {
                            self.pc.set_remote_description(rollback).await
                        }
                        Ok(rollback) => self.pc.set_local_description(rollback).await,
                        Err(e) => Err(e),
                    };
                    Some(match result {
                        Ok(()) => Input::RolledBack,
                        Err(e) => Input::OperationFailed(e.to_string()),
                    })
                }
                Command::SendOffer(sdp) => {
                    let sdp = self.with_candidates(sdp).await;
                    self.send(ClientMsg::Offer {
                        room_id: self.setup.room,
                        to: self.remote(),
                        sdp,
                    });
                    None
                }
                Command::SendAnswer(sdp) => {
                    let sdp = self.with_candidates(sdp).await;
                    self.send(ClientMsg::Answer {
                        room_id: self.setup.room,
                        to: self.remote(),
                        sdp,
                    });
                    None
                }
                Command::AddRemoteCandidate(c) => {
                    let init = RTCIceCandidateInit {
                        candidate: c.candidate,
                        sdp_mid: c.sdp_mid,
                        sdp_mline_index: c.sdp_mline_index,
                        username_fragment: c.username_fragment,
                        ..Default::default()
                    };
                    if let Err(e) = self.pc.add_ice_candidate(init).await {
                        tracing::debug!(error = %e, "remote candidate refused");
                    }
                    None
                }
                Command::IgnoreOffer => {
                    tracing::debug!(participant = %self.remote(), "ignored a colliding offer");
                    None
                }
            };
            if let Some(input) = completion {
                if let Input::OperationFailed(e) = &input {
                    tracing::warn!(error = %e, participant = %self.remote(), "negotiation step failed");
                }
                self.negotiator.handle_input(input, Instant::now());
            }
        }
    }

    /// The local description with the candidates gathered so far, waiting briefly for
    /// gathering to finish. Candidates are still trickled as they come; carrying the
    /// first ones in the description lets the other side start its connectivity checks
    /// the moment it applies it, instead of waiting for the trickled ones (webrtc-rs does
    /// not wake its ICE agent on `add_ice_candidate`, only on its next timer).
    async fn with_candidates(&self, sdp: String) -> String {
        let deadline = Instant::now() + GATHER_WAIT;
        loop {
            let current = self.pc.local_description().await.map(|d| d.sdp);
            let done = current
                .as_deref()
                .is_some_and(|s| s.contains("a=end-of-candidates"));
            if done || Instant::now() >= deadline {
                return match current {
                    Some(s) if s.contains("a=candidate") => s,
                    _ => sdp,
                };
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn stats(&mut self) -> PeerStats {
        let now = Instant::now();
        let report = self.pc.get_stats(now, StatsSelector::None).await;
        self.selected_local = selected_local_address(&report);
        let send = self.setup.feedback.snapshot(self.remote());
        let sending = *self.setup.sending.borrow();
        let stats = self
            .stats
            .update(now, &report, &self.counters, &send, &sending);
        if let Some(rtt) = stats.rtt_ms {
            let rtt = Duration::from_secs_f64(rtt / 1000.0);
            self.link.send_if_modified(|l| {
                // Follow slowly: one odd sample should not retime everything.
                let smoothed = if l.rtt == LinkInfo::default().rtt {
                    rtt
                } else {
                    (l.rtt * 3 + rtt) / 4
                };
                let changed = smoothed.abs_diff(l.rtt) >= Duration::from_millis(2);
                if changed {
                    l.rtt = smoothed;
                }
                changed
            });
        }
        stats
    }
}

/// The local address the media runs from: the transport's selected pair's local
/// candidate (a relayed or server-reflexive one names another host's address: `None`).
fn selected_local_address(report: &webrtc::peer_connection::RTCStatsReport) -> Option<IpAddr> {
    let pair_id = report.iter().find_map(|entry| match entry {
        RTCStatsReportEntry::Transport(t) if !t.selected_candidate_pair_id.is_empty() => {
            Some(t.selected_candidate_pair_id.clone())
        }
        _ => None,
    })?;
    let local_id = report.iter().find_map(|entry| match entry {
        RTCStatsReportEntry::IceCandidatePair(p) if p.stats.id == pair_id => {
            Some(p.local_candidate_id.clone())
        }
        _ => None,
    })?;
    report.iter().find_map(|entry| match entry {
        RTCStatsReportEntry::LocalCandidate(c) if c.stats.id == local_id => {
            c.address.as_deref()?.parse().ok()
        }
        _ => None,
    })
}

fn to_rtc(desc: SessionDescription) -> webrtc::error::Result<RTCSessionDescription> {
    match desc.kind {
        SdpKind::Offer => RTCSessionDescription::offer(desc.sdp),
        SdpKind::Answer => RTCSessionDescription::answer(desc.sdp),
    }
}

fn ice_state(state: RTCIceConnectionState) -> IceConnectionState {
    match state {
        RTCIceConnectionState::Checking => IceConnectionState::Checking,
        RTCIceConnectionState::Connected => IceConnectionState::Connected,
        RTCIceConnectionState::Completed => IceConnectionState::Completed,
        RTCIceConnectionState::Disconnected => IceConnectionState::Disconnected,
        RTCIceConnectionState::Failed => IceConnectionState::Failed,
        RTCIceConnectionState::Closed => IceConnectionState::Closed,
        _ => IceConnectionState::New,
    }
}
