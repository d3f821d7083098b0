//! WebRTC "perfect negotiation" for one peer connection, as a state machine without I/O.
//!
//! This is the pattern of the W3C spec's example
//! (<https://w3c.github.io/webrtc-pc/#perfect-negotiation-example>): either side may
//! offer at any time; when both offer at once (glare) the *impolite* side ignores the
//! offer it receives and the *polite* side rolls its own back and answers. Which side is
//! polite is fixed when the machine is built, from the two participants' ids
//! ([`is_polite`]), so both ends agree without a message.
//!
//! The machine does no I/O and reads no clock (after str0m): the caller feeds it
//! [`Input`]s (what the peer connection reported, what arrived over signaling, with the
//! current time) and executes the [`Command`]s it hands out in order. A command that
//! starts an asynchronous peer-connection operation (`CreateOffer`, `CreateAnswer`,
//! `SetLocalDescription`, `SetRemoteDescription`, `Rollback`) must be answered by its
//! completion input (`OfferCreated`, `AnswerCreated`, `LocalDescriptionSet`,
//! `RemoteDescriptionSet`, `RolledBack`) or by `OperationFailed`; the machine starts the
//! next such operation only after that, so at most one is in flight, as on the spec's
//! operations chain. The other commands (`Send*`, `AddRemoteCandidate`, `IgnoreOffer`)
//! need no answer.
//!
//! Differences from the spec's example, and why:
//! - The rollback is explicit (`Rollback` before `SetRemoteDescription`) because a native
//!   stack may not roll back implicitly on `setRemoteDescription(offer)`.
//! - When the polite side's own offer is still being created or set when the remote offer
//!   arrives, it is not sent: the impolite side would only ignore it.
//! - Remote ICE candidates are held while a remote description is being applied and until
//!   there is one, and dropped while an ignored offer is in effect, instead of relying on
//!   `addIceCandidate` errors.
//! - ICE restarts are driven here: on `failed`, or after `disconnected` for longer than
//!   [`NegotiationConfig::ice_disconnected_timeout`], the side creates an offer with
//!   `ice_restart: true`. Both sides may do so at once; that is ordinary glare.
//!
//! The machine follows the signaling state from the completions it is given. Forward
//! every `negotiationneeded` event of the peer connection: after a rollback the peer
//! connection fires it again if something is still un-negotiated, and the machine relies
//! on that rather than guessing.

use shared::signal::IceCandidate;
use shared::{ParticipantId, UserId};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// One end of a peer connection: who, and which connection of theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    pub user_id: UserId,
    pub participant_id: ParticipantId,
}

/// Whether `local` is the polite side towards `remote`: the side whose user id is the
/// smaller, or, for two connections of the same user, whose participant id is. Both ends
/// compute the opposite answer from the same two ids.
pub fn is_polite(local: &PeerIdentity, remote: &PeerIdentity) -> bool {
    (local.user_id, local.participant_id) < (remote.user_id, remote.participant_id)
}

/// Offer or answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpKind {
    Offer,
    Answer,
}

/// An SDP offer or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub kind: SdpKind,
    pub sdp: String,
}

impl SessionDescription {
    /// An offer.
    pub fn offer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpKind::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer.
    pub fn answer(sdp: impl Into<String>) -> Self {
        Self {
            kind: SdpKind::Answer,
            sdp: sdp.into(),
        }
    }
}

/// The peer connection's signaling state, as the machine knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalingState {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
}

/// The peer connection's ICE connection state (`RTCIceConnectionState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceConnectionState {
    New,
    Checking,
    Connected,
    Completed,
    Disconnected,
    Failed,
    Closed,
}

/// What the caller tells the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The peer connection fired `negotiationneeded` (a track was added or removed).
    NegotiationNeeded,
    /// Ask for an ICE restart now (e.g. the network interface changed).
    RestartIce,
    /// `CreateOffer` finished with this SDP.
    OfferCreated(String),
    /// `CreateAnswer` finished with this SDP.
    AnswerCreated(String),
    /// `SetLocalDescription` finished.
    LocalDescriptionSet,
    /// `SetRemoteDescription` finished.
    RemoteDescriptionSet,
    /// `Rollback` finished.
    RolledBack,
    /// The operation in flight failed; the peer connection's state did not change.
    OperationFailed(String),
    /// An offer or answer arrived from the peer over signaling.
    RemoteDescription(SessionDescription),
    /// An ICE candidate arrived from the peer over signaling.
    RemoteCandidate(IceCandidate),
    /// The peer connection's ICE connection state changed.
    IceConnectionState(IceConnectionState),
}

/// What the machine asks the caller to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create an offer (with new ICE credentials when `ice_restart`); answer with
    /// [`Input::OfferCreated`].
    CreateOffer { ice_restart: bool },
    /// Create an answer to the remote offer just set; answer with [`Input::AnswerCreated`].
    CreateAnswer,
    /// Apply a local description; answer with [`Input::LocalDescriptionSet`].
    SetLocalDescription(SessionDescription),
    /// Apply a remote description; answer with [`Input::RemoteDescriptionSet`].
    SetRemoteDescription(SessionDescription),
    /// Roll back to stable; answer with [`Input::RolledBack`]. It undoes our pending
    /// offer (`setLocalDescription` of a rollback) or, when `remote_offer`, a remote offer
    /// we could not answer (`setRemoteDescription` of a rollback).
    Rollback { remote_offer: bool },
    /// Send this offer to the peer (`ClientMsg::Offer`).
    SendOffer(String),
    /// Send this answer to the peer (`ClientMsg::Answer`).
    SendAnswer(String),
    /// Pass a remote candidate to the peer connection (`addIceCandidate`).
    AddRemoteCandidate(IceCandidate),
    /// Nothing to execute: a remote offer collided with ours and, as the impolite side, we
    /// ignored it (and will drop its candidates). For logs and tests.
    IgnoreOffer,
}

/// Tunables.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NegotiationConfig {
    /// ICE `disconnected` for longer than this is handled like `failed`: restart ICE.
    /// Browsers move from `disconnected` to `failed` only after tens of seconds; a call
    /// should recover sooner.
    pub ice_disconnected_timeout: Duration,
}

impl Default for NegotiationConfig {
    fn default() -> Self {
        Self {
            ice_disconnected_timeout: Duration::from_secs(5),
        }
    }
}

/// The asynchronous operation the caller is executing.
#[derive(Debug)]
enum Op {
    CreateOffer {
        ice_restart: bool,
    },
    SetLocalOffer {
        sdp: String,
        ice_restart: bool,
    },
    CreateAnswer,
    SetLocalAnswer {
        sdp: String,
    },
    SetRemote {
        desc: SessionDescription,
    },
    /// Then apply this remote offer, if any.
    Rollback {
        then: Option<SessionDescription>,
    },
}

/// Something from the peer, kept in arrival order so a candidate is never applied before
/// the description it follows.
#[derive(Debug)]
enum Remote {
    Description(SessionDescription),
    Candidate(IceCandidate),
}

/// Perfect negotiation for one peer connection. See the module documentation.
#[derive(Debug)]
pub struct Negotiator {
    polite: bool,
    config: NegotiationConfig,
    signaling: SignalingState,
    in_flight: Option<Op>,
    inbox: VecDeque<Remote>,
    /// `negotiationneeded` arrived and no offer for it was started yet.
    wants_offer: bool,
    /// ICE must be restarted: our next offer carries `ice_restart`.
    wants_ice_restart: bool,
    /// The offer we sent (waiting for its answer) restarts ICE.
    sent_offer_restarts_ice: bool,
    /// The last remote offer was ignored: drop the candidates that follow it.
    ignore_offer: bool,
    has_remote_description: bool,
    /// Candidates that arrived before any remote description.
    early_candidates: Vec<IceCandidate>,
    /// `a=ice-ufrag` of the remote description in effect: a new one means the peer
    /// restarted ICE.
    remote_ufrag: Option<String>,
    disconnected_since: Option<Instant>,
    closed: bool,
    out: VecDeque<Command>,
}

impl Negotiator {
    /// A machine for the connection from `local` to `remote`.
    pub fn new(local: &PeerIdentity, remote: &PeerIdentity, config: NegotiationConfig) -> Self {
        Self::with_politeness(is_polite(local, remote), config)
    }

    /// A machine whose politeness is already decided.
    pub fn with_politeness(polite: bool, config: NegotiationConfig) -> Self {
        Self {
            polite,
            config,
            signaling: SignalingState::Stable,
            in_flight: None,
            inbox: VecDeque::new(),
            wants_offer: false,
            wants_ice_restart: false,
            sent_offer_restarts_ice: false,
            ignore_offer: false,
            has_remote_description: false,
            early_candidates: Vec::new(),
            remote_ufrag: None,
            disconnected_since: None,
            closed: false,
            out: VecDeque::new(),
        }
    }

    /// Whether this side gives way in glare.
    pub fn is_polite(&self) -> bool {
        self.polite
    }

    /// The signaling state after the operations completed so far.
    pub fn signaling_state(&self) -> SignalingState {
        self.signaling
    }

    /// Stable, nothing in flight, nothing waiting: a negotiation round is over.
    pub fn is_settled(&self) -> bool {
        self.signaling == SignalingState::Stable
            && self.in_flight.is_none()
            && self.inbox.is_empty()
            && !self.wants_offer
            && !self.wants_ice_restart
            && self.out.is_empty()
    }

    /// The next command to execute, if any.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    /// When [`Negotiator::handle_timeout`] should be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.wants_ice_restart || self.sent_offer_restarts_ice {
            return None;
        }
        self.disconnected_since
            .map(|since| since + self.config.ice_disconnected_timeout)
    }

    /// Lets time pass: restarts ICE once it has been disconnected for too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout()
            && now >= deadline
        {
            debug!("ICE disconnected for too long; restarting it");
            self.disconnected_since = None;
            self.request_ice_restart();
            self.drive();
        }
    }

    /// Feeds one input. `now` is the caller's clock, used for the ICE disconnect timer.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        if self.closed {
            return;
        }
        match input {
            Input::NegotiationNeeded => self.wants_offer = true,
            Input::RestartIce => self.request_ice_restart(),
            Input::OfferCreated(sdp) => self.on_offer_created(sdp),
            Input::AnswerCreated(sdp) => self.on_answer_created(sdp),
            Input::LocalDescriptionSet => self.on_local_description_set(),
            Input::RemoteDescriptionSet => self.on_remote_description_set(),
            Input::RolledBack => self.on_rolled_back(),
            Input::OperationFailed(reason) => self.on_failed(&reason),
            Input::RemoteDescription(desc) => self.inbox.push_back(Remote::Description(desc)),
            Input::RemoteCandidate(candidate) => self.inbox.push_back(Remote::Candidate(candidate)),
            Input::IceConnectionState(state) => self.on_ice_state(state, now),
        }
        self.drive();
    }

    fn request_ice_restart(&mut self) {
        // One restart at a time: the one under way already renews the credentials.
        if !self.sent_offer_restarts_ice && !self.offer_in_progress_restarts_ice() {
            self.wants_ice_restart = true;
        }
    }

    fn offer_in_progress_restarts_ice(&self) -> bool {
        matches!(
            self.in_flight,
            Some(
                Op::CreateOffer { ice_restart: true }
                    | Op::SetLocalOffer {
                        ice_restart: true,
                        ..
                    }
            )
        )
    }

    fn on_ice_state(&mut self, state: IceConnectionState, now: Instant) {
        match state {
            IceConnectionState::Failed => {
                self.disconnected_since = None;
                self.request_ice_restart();
            }
            IceConnectionState::Disconnected => {
                self.disconnected_since.get_or_insert(now);
            }
            IceConnectionState::Closed => {
                self.closed = true;
                self.out.clear();
                self.inbox.clear();
            }
            IceConnectionState::New
            | IceConnectionState::Checking
            | IceConnectionState::Connected
            | IceConnectionState::Completed => self.disconnected_since = None,
        }
    }

    /// Is a remote offer waiting behind the operation in flight?
    fn remote_offer_waiting(&self) -> bool {
        self.inbox
            .iter()
            .any(|r| matches!(r, Remote::Description(d) if d.kind == SdpKind::Offer))
    }

    fn on_offer_created(&mut self, sdp: String) {
        let Some(Op::CreateOffer { ice_restart }) = self.in_flight.take() else {
            warn!("OfferCreated without a CreateOffer in flight; ignored");
            return;
        };
        if self.polite && self.remote_offer_waiting() {
            // Glare, and we give way: the remote offer is applied next and our offer is
            // never set. The ICE restart stays wanted until it happens.
            debug!("polite: dropping our new offer for the remote one");
            return;
        }
        self.in_flight = Some(Op::SetLocalOffer {
            sdp: sdp.clone(),
            ice_restart,
        });
        self.out
            .push_back(Command::SetLocalDescription(SessionDescription::offer(sdp)));
    }

    fn on_answer_created(&mut self, sdp: String) {
        let Some(Op::CreateAnswer) = self.in_flight.take() else {
            warn!("AnswerCreated without a CreateAnswer in flight; ignored");
            return;
        };
        self.in_flight = Some(Op::SetLocalAnswer { sdp: sdp.clone() });
        self.out
            .push_back(Command::SetLocalDescription(SessionDescription::answer(
                sdp,
            )));
    }

    fn on_local_description_set(&mut self) {
        match self.in_flight.take() {
            Some(Op::SetLocalOffer { sdp, ice_restart }) => {
                self.signaling = SignalingState::HaveLocalOffer;
                if self.polite && self.remote_offer_waiting() {
                    // Glare while we were setting it: it is rolled back next, so there is
                    // no point sending it (the impolite side would ignore it).
                    debug!("polite: not sending our offer; a remote one is waiting");
                    return;
                }
                self.sent_offer_restarts_ice = ice_restart;
                if ice_restart {
                    self.wants_ice_restart = false;
                }
                self.out.push_back(Command::SendOffer(sdp));
            }
            Some(Op::SetLocalAnswer { sdp }) => {
                self.signaling = SignalingState::Stable;
                self.out.push_back(Command::SendAnswer(sdp));
            }
            other => {
                warn!(op = ?other, "LocalDescriptionSet without a local description in flight; ignored");
                self.in_flight = other;
            }
        }
    }

    fn on_remote_description_set(&mut self) {
        let Some(Op::SetRemote { desc }) = self.in_flight.take() else {
            warn!("RemoteDescriptionSet without a remote description in flight; ignored");
            return;
        };
        let ufrag = ice_ufrag(&desc.sdp);
        let restarted =
            self.remote_ufrag.is_some() && ufrag.is_some() && ufrag != self.remote_ufrag;
        self.remote_ufrag = ufrag;
        self.has_remote_description = true;
        for candidate in std::mem::take(&mut self.early_candidates) {
            self.out.push_back(Command::AddRemoteCandidate(candidate));
        }
        match desc.kind {
            SdpKind::Offer => {
                if restarted {
                    // The peer restarted ICE, which renews both sides' credentials: ours
                    // would be a second restart for nothing.
                    self.wants_ice_restart = false;
                }
                self.signaling = SignalingState::HaveRemoteOffer;
                self.in_flight = Some(Op::CreateAnswer);
                self.out.push_back(Command::CreateAnswer);
            }
            SdpKind::Answer => {
                self.signaling = SignalingState::Stable;
                self.sent_offer_restarts_ice = false;
            }
        }
    }

    fn on_rolled_back(&mut self) {
        let Some(Op::Rollback { then }) = self.in_flight.take() else {
            warn!("RolledBack without a rollback in flight; ignored");
            return;
        };
        self.signaling = SignalingState::Stable;
        // An ICE restart we offered was withdrawn; it is still wanted.
        if self.sent_offer_restarts_ice {
            self.sent_offer_restarts_ice = false;
            self.wants_ice_restart = true;
        }
        if let Some(offer) = then {
            self.set_remote(offer);
        }
    }

    fn on_failed(&mut self, reason: &str) {
        let Some(op) = self.in_flight.take() else {
            warn!(%reason, "OperationFailed with nothing in flight; ignored");
            return;
        };
        warn!(?op, %reason, "peer connection operation failed");
        match op {
            // Still stable (or still in have-local-offer after a failed renegotiation):
            // do not retry at once, that would likely fail the same way. A later
            // NegotiationNeeded or RestartIce tries again.
            Op::CreateOffer { .. } | Op::SetLocalOffer { .. } => {
                self.wants_offer = false;
                self.wants_ice_restart = false;
            }
            // Stuck half-way through an exchange: go back to stable so that the next
            // negotiation can start.
            Op::CreateAnswer | Op::SetLocalAnswer { .. } => self.start_rollback(None),
            Op::SetRemote { desc } => {
                if desc.kind == SdpKind::Answer {
                    self.start_rollback(None);
                }
            }
            Op::Rollback { .. } => {}
        }
    }

    fn start_rollback(&mut self, then: Option<SessionDescription>) {
        let remote_offer = self.signaling == SignalingState::HaveRemoteOffer;
        self.in_flight = Some(Op::Rollback { then });
        self.out.push_back(Command::Rollback { remote_offer });
    }

    fn set_remote(&mut self, desc: SessionDescription) {
        self.out
            .push_back(Command::SetRemoteDescription(desc.clone()));
        self.in_flight = Some(Op::SetRemote { desc });
    }

    /// Starts whatever can start now.
    fn drive(&mut self) {
        loop {
            // Candidates at the head of the queue belong to the remote description in
            // effect; they wait only while a new one is being applied.
            while matches!(self.inbox.front(), Some(Remote::Candidate(_)))
                && !matches!(
                    self.in_flight,
                    Some(Op::SetRemote { .. } | Op::Rollback { .. })
                )
            {
                if let Some(Remote::Candidate(candidate)) = self.inbox.pop_front() {
                    self.on_candidate(candidate);
                }
            }
            if self.in_flight.is_some() {
                return;
            }
            if let Some(Remote::Description(desc)) = self.inbox.pop_front() {
                self.on_description(desc);
                continue;
            }
            if self.signaling == SignalingState::Stable
                && (self.wants_offer || self.wants_ice_restart)
            {
                let ice_restart = self.wants_ice_restart;
                self.wants_offer = false;
                self.in_flight = Some(Op::CreateOffer { ice_restart });
                self.out.push_back(Command::CreateOffer { ice_restart });
            }
            return;
        }
    }

    fn on_candidate(&mut self, candidate: IceCandidate) {
        if self.ignore_offer {
            debug!("dropping a candidate of an ignored offer");
        } else if self.has_remote_description {
            self.out.push_back(Command::AddRemoteCandidate(candidate));
        } else {
            self.early_candidates.push(candidate);
        }
    }

    /// A remote description, taken up when nothing is in flight (so we are not in the
    /// middle of making an offer: the spec's `makingOffer` is covered by the state).
    fn on_description(&mut self, desc: SessionDescription) {
        match desc.kind {
            SdpKind::Offer => {
                let collision = self.signaling != SignalingState::Stable;
                self.ignore_offer = !self.polite && collision;
                if self.ignore_offer {
                    debug!("impolite: ignoring a colliding remote offer");
                    self.out.push_back(Command::IgnoreOffer);
                    return;
                }
                if self.signaling == SignalingState::HaveLocalOffer {
                    debug!("polite: rolling back our offer for the remote one");
                    self.start_rollback(Some(desc));
                } else {
                    self.set_remote(desc);
                }
            }
            SdpKind::Answer => {
                if self.signaling != SignalingState::HaveLocalOffer {
                    // An answer to an offer we rolled back, or a duplicate.
                    debug!("ignoring an answer that matches no offer of ours");
                    return;
                }
                self.ignore_offer = false;
                self.set_remote(desc);
            }
        }
    }
}

/// The first `a=ice-ufrag:` value of an SDP.
fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    //! Two machines wired back to back through a fake peer connection that enforces the
    //! JSEP signaling-state rules (and has no implicit rollback, like a native stack), and
    //! a fake network whose delivery the tests control.

    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A peer connection's signaling half, strict about JSEP transitions.
    #[derive(Debug)]
    struct FakePc {
        name: &'static str,
        state: SignalingState,
        ufrag_generation: u32,
        versions: u32,
        current_local: Option<SessionDescription>,
        pending_local: Option<SessionDescription>,
        current_remote: Option<SessionDescription>,
        pending_remote: Option<SessionDescription>,
        /// Offers applied with setRemoteDescription and not rolled back.
        remote_offers: Vec<String>,
        /// Offers applied with setLocalDescription, rolled back or not.
        local_offers: Vec<String>,
        rollbacks: u32,
        candidates: Vec<IceCandidate>,
        /// A track was added and not negotiated yet.
        unnegotiated: bool,
        /// The offer being made includes the unnegotiated track.
        offer_covers_track: bool,
    }

    impl FakePc {
        fn new(name: &'static str) -> Self {
            Self {
                name,
                state: SignalingState::Stable,
                ufrag_generation: 1,
                versions: 0,
                current_local: None,
                pending_local: None,
                current_remote: None,
                pending_remote: None,
                remote_offers: Vec::new(),
                local_offers: Vec::new(),
                rollbacks: 0,
                candidates: Vec::new(),
                unnegotiated: false,
                offer_covers_track: false,
            }
        }

        fn ufrag(&self) -> String {
            format!("{}{}", self.name, self.ufrag_generation)
        }

        fn sdp(&mut self, kind: &str) -> String {
            self.versions += 1;
            format!(
                "v=0\r\no=- {} {} IN IP4 127.0.0.1\r\ns={kind}\r\na=ice-ufrag:{}\r\n",
                self.name,
                self.versions,
                self.ufrag()
            )
        }

        fn remote_ufrag(&self) -> Option<String> {
            self.pending_remote
                .as_ref()
                .or(self.current_remote.as_ref())
                .and_then(|d| ice_ufrag(&d.sdp))
        }

        /// A local candidate for the current credentials.
        fn candidate(&self, n: u32) -> IceCandidate {
            IceCandidate {
                candidate: format!(
                    "candidate:{n} 1 udp 2122260223 10.0.0.{n} 5000{n} typ host ufrag {}",
                    self.ufrag()
                ),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: Some(self.ufrag()),
            }
        }

        /// Runs a command; returns its completion input, or panics where a real peer
        /// connection would reject the call.
        fn execute(&mut self, command: &Command) -> Option<Input> {
            use SignalingState::*;
            match command {
                Command::CreateOffer { ice_restart } => {
                    assert!(
                        matches!(self.state, Stable | HaveLocalOffer),
                        "{}: createOffer in {:?}",
                        self.name,
                        self.state
                    );
                    if *ice_restart {
                        self.ufrag_generation += 1;
                    }
                    self.offer_covers_track = self.unnegotiated;
                    Some(Input::OfferCreated(self.sdp("offer")))
                }
                Command::CreateAnswer => {
                    assert_eq!(self.state, HaveRemoteOffer, "{}: createAnswer", self.name);
                    // A restart offer from the peer makes us pick new credentials too.
                    Some(Input::AnswerCreated(self.sdp("answer")))
                }
                Command::SetLocalDescription(desc) => {
                    match desc.kind {
                        SdpKind::Offer => {
                            assert!(
                                matches!(self.state, Stable | HaveLocalOffer),
                                "{}: SLD(offer) in {:?}",
                                self.name,
                                self.state
                            );
                            self.state = HaveLocalOffer;
                            self.pending_local = Some(desc.clone());
                            self.local_offers.push(desc.sdp.clone());
                        }
                        SdpKind::Answer => {
                            assert_eq!(self.state, HaveRemoteOffer, "{}: SLD(answer)", self.name);
                            self.state = Stable;
                            self.current_local = Some(desc.clone());
                            self.current_remote = self.pending_remote.take();
                            // Our answer carries our tracks on the offered sections.
                            self.unnegotiated = false;
                        }
                    }
                    Some(Input::LocalDescriptionSet)
                }
                Command::SetRemoteDescription(desc) => {
                    match desc.kind {
                        SdpKind::Offer => {
                            assert!(
                                matches!(self.state, Stable | HaveRemoteOffer),
                                "{}: SRD(offer) in {:?} (no implicit rollback)",
                                self.name,
                                self.state
                            );
                            let new_ufrag = ice_ufrag(&desc.sdp);
                            if self.remote_ufrag().is_some() && new_ufrag != self.remote_ufrag() {
                                // The peer restarted ICE: so do we.
                                self.ufrag_generation += 1;
                            }
                            self.state = HaveRemoteOffer;
                            self.pending_remote = Some(desc.clone());
                            self.remote_offers.push(desc.sdp.clone());
                        }
                        SdpKind::Answer => {
                            assert_eq!(self.state, HaveLocalOffer, "{}: SRD(answer)", self.name);
                            self.state = Stable;
                            self.current_local = self.pending_local.take();
                            self.current_remote = Some(desc.clone());
                            if self.offer_covers_track {
                                self.unnegotiated = false;
                            }
                        }
                    }
                    Some(Input::RemoteDescriptionSet)
                }
                Command::Rollback { remote_offer } => {
                    if *remote_offer {
                        assert_eq!(
                            self.state, HaveRemoteOffer,
                            "{}: remote rollback",
                            self.name
                        );
                        self.pending_remote = None;
                    } else {
                        assert_eq!(self.state, HaveLocalOffer, "{}: local rollback", self.name);
                        self.pending_local = None;
                    }
                    self.state = Stable;
                    self.rollbacks += 1;
                    if self.offer_covers_track {
                        // The rolled-back offer's credentials are withdrawn with it.
                        self.offer_covers_track = false;
                    }
                    Some(Input::RolledBack)
                }
                Command::AddRemoteCandidate(c) => {
                    let remote = self.remote_ufrag();
                    assert!(
                        remote.is_some(),
                        "{}: addIceCandidate without a remote description",
                        self.name
                    );
                    assert_eq!(
                        c.username_fragment, remote,
                        "{}: candidate for other credentials",
                        self.name
                    );
                    self.candidates.push(c.clone());
                    None
                }
                Command::SendOffer(_) | Command::SendAnswer(_) | Command::IgnoreOffer => None,
            }
        }
    }

    /// What goes over signaling.
    #[derive(Clone, Debug)]
    enum Wire {
        Description(SessionDescription),
        Candidate(IceCandidate),
    }

    /// One end: the machine, its peer connection, what it sent and what it did.
    struct Side {
        machine: Negotiator,
        pc: FakePc,
        /// Sent to the other side, not delivered yet.
        outbox: VecDeque<Wire>,
        /// A completion the test holds back to create a race.
        held: Option<Input>,
        log: Vec<Command>,
        next_candidate: u32,
    }

    impl Side {
        fn new(name: &'static str, polite: bool) -> Self {
            Self {
                machine: Negotiator::with_politeness(polite, NegotiationConfig::default()),
                pc: FakePc::new(name),
                outbox: VecDeque::new(),
                held: None,
                log: Vec::new(),
                next_candidate: 1,
            }
        }

        fn input(&mut self, input: Input, now: Instant) {
            self.machine.handle_input(input, now);
        }

        /// Executes one command. With `hold`, an operation's completion is kept back
        /// instead of fed to the machine. Returns false when there was nothing to do.
        fn step(&mut self, now: Instant, hold: bool) -> bool {
            let Some(command) = self.machine.poll_command() else {
                return false;
            };
            let completion = self.pc.execute(&command);
            match &command {
                Command::SendOffer(sdp) => {
                    self.outbox
                        .push_back(Wire::Description(SessionDescription::offer(sdp.clone())));
                    self.gather();
                }
                Command::SendAnswer(sdp) => {
                    self.outbox
                        .push_back(Wire::Description(SessionDescription::answer(sdp.clone())));
                    self.gather();
                }
                _ => {}
            }
            self.log.push(command);
            if let Some(completion) = completion {
                if hold {
                    self.held = Some(completion);
                } else {
                    self.input(completion, now);
                }
            }
            true
        }

        /// Gathers two local candidates for the current credentials and trickles them.
        fn gather(&mut self) {
            for _ in 0..2 {
                let c = self.pc.candidate(self.next_candidate);
                self.next_candidate += 1;
                self.outbox.push_back(Wire::Candidate(c));
            }
        }

        /// Runs commands until the machine has nothing to do (releasing a held
        /// completion first).
        fn settle(&mut self, now: Instant) {
            if let Some(held) = self.held.take() {
                self.input(held, now);
            }
            while self.step(now, false) {}
        }

        /// Runs until the machine is waiting on the completion of `pred`'s command.
        fn run_until_holding(&mut self, now: Instant, pred: impl Fn(&Command) -> bool) {
            loop {
                let Some(command) = self.machine.poll_command() else {
                    panic!("{}: no command matching", self.pc.name);
                };
                let hit = pred(&command);
                self.machine.out.push_front(command);
                self.step(now, hit);
                if hit {
                    return;
                }
            }
        }

        fn deliver_to(&mut self, other: &mut Side, now: Instant) -> bool {
            let mut any = false;
            while let Some(wire) = self.outbox.pop_front() {
                any = true;
                let input = match wire {
                    Wire::Description(d) => Input::RemoteDescription(d),
                    Wire::Candidate(c) => Input::RemoteCandidate(c),
                };
                other.input(input, now);
            }
            any
        }

        fn offers_sent(&self) -> usize {
            self.log
                .iter()
                .filter(|c| matches!(c, Command::SendOffer(_)))
                .count()
        }

        fn restart_offers(&self) -> usize {
            self.log
                .iter()
                .filter(|c| matches!(c, Command::CreateOffer { ice_restart: true }))
                .count()
        }

        fn ignored(&self) -> usize {
            self.log
                .iter()
                .filter(|c| matches!(c, Command::IgnoreOffer))
                .count()
        }

        /// After a track was added: the peer connection marks itself and fires
        /// `negotiationneeded`.
        fn add_track(&mut self, now: Instant) {
            self.pc.unnegotiated = true;
            self.input(Input::NegotiationNeeded, now);
        }
    }

    /// Runs both sides and delivers everything until nothing moves; then, as a real
    /// peer connection does on reaching stable, fires `negotiationneeded` again for a
    /// side with un-negotiated tracks.
    fn run(a: &mut Side, b: &mut Side, now: Instant) {
        for _ in 0..100 {
            a.settle(now);
            b.settle(now);
            let moved = a.deliver_to(b, now) | b.deliver_to(a, now);
            if !moved {
                let mut refired = false;
                for side in [&mut *a, &mut *b] {
                    if side.pc.unnegotiated && side.machine.is_settled() {
                        side.input(Input::NegotiationNeeded, now);
                        refired = true;
                    }
                }
                if !refired {
                    return;
                }
            }
        }
        panic!("negotiation did not settle");
    }

    /// Both settled, and each side's descriptions mirror the other's.
    fn assert_converged(a: &Side, b: &Side) {
        assert!(a.machine.is_settled(), "{:?}", a.machine);
        assert!(b.machine.is_settled(), "{:?}", b.machine);
        assert_eq!(a.pc.state, SignalingState::Stable);
        assert_eq!(b.pc.state, SignalingState::Stable);
        assert_eq!(a.pc.current_local, b.pc.current_remote);
        assert_eq!(b.pc.current_local, a.pc.current_remote);
        assert!(a.pc.current_local.is_some() && b.pc.current_local.is_some());
    }

    fn pair() -> (Side, Side) {
        (Side::new("polite", true), Side::new("impolite", false))
    }

    #[test]
    fn politeness_is_decided_by_user_then_participant_and_both_ends_agree() {
        let user = UserId::new();
        let a = PeerIdentity {
            user_id: user,
            participant_id: ParticipantId::new(),
        };
        let b = PeerIdentity {
            user_id: user,
            participant_id: ParticipantId::new(),
        };
        assert_ne!(is_polite(&a, &b), is_polite(&b, &a));
        let c = PeerIdentity {
            user_id: UserId::new(),
            participant_id: ParticipantId::new(),
        };
        assert_ne!(is_polite(&a, &c), is_polite(&c, &a));
        assert_eq!(is_polite(&a, &c), a.user_id < c.user_id);
    }

    #[test]
    fn plain_offer_and_answer() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        impolite.add_track(now);
        assert_eq!(
            impolite.machine.poll_command(),
            Some(Command::CreateOffer { ice_restart: false })
        );
        impolite
            .machine
            .out
            .push_front(Command::CreateOffer { ice_restart: false });

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(impolite.offers_sent(), 1);
        assert_eq!(polite.offers_sent(), 0);
        assert_eq!(polite.pc.remote_offers.len(), 1);
        // Each side got the other's two candidates.
        assert_eq!(polite.pc.candidates.len(), 2);
        assert_eq!(impolite.pc.candidates.len(), 2);
    }

    #[test]
    fn glare_ends_with_the_impolite_offer_applied_on_both_sides() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        polite.add_track(now);
        impolite.add_track(now);
        // Both make and send their offers before either hears from the other.
        polite.settle(now);
        impolite.settle(now);
        assert_eq!(polite.pc.state, SignalingState::HaveLocalOffer);
        assert_eq!(impolite.pc.state, SignalingState::HaveLocalOffer);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        let impolite_offer = impolite.pc.local_offers[0].clone();
        assert_eq!(impolite.pc.local_offers.len(), 1);
        assert_eq!(polite.pc.remote_offers, vec![impolite_offer.clone()]);
        assert!(
            impolite.pc.remote_offers.is_empty(),
            "the polite offer was applied"
        );
        assert_eq!(
            impolite.pc.current_local.as_ref().unwrap().sdp,
            impolite_offer
        );
        assert_eq!(polite.pc.rollbacks, 1);
        assert_eq!(impolite.ignored(), 1);
        // The polite answer carried its track: nothing left to renegotiate.
        assert!(!polite.pc.unnegotiated && !impolite.pc.unnegotiated);
    }

    #[test]
    fn glare_while_the_polite_offer_is_still_being_created() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        impolite.add_track(now);
        impolite.settle(now);
        polite.add_track(now);
        polite.run_until_holding(now, |c| matches!(c, Command::CreateOffer { .. }));
        // The impolite offer arrives while createOffer is pending on the polite side.
        impolite.deliver_to(&mut polite, now);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(
            polite.offers_sent(),
            0,
            "a superseded polite offer went out"
        );
        assert!(polite.pc.local_offers.is_empty());
        assert_eq!(polite.pc.rollbacks, 0);
        assert_eq!(polite.pc.remote_offers.len(), 1);
    }

    #[test]
    fn candidates_that_arrive_before_the_remote_description_wait_for_it() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        impolite.add_track(now);
        impolite.settle(now);
        // Reorder: the candidates reach the polite side before the offer.
        let offer = impolite.outbox.pop_front().unwrap();
        impolite.outbox.push_back(offer);
        impolite.deliver_to(&mut polite, now);

        // The candidates are held: the offer is applied first (the fake peer connection
        // would panic on a candidate without a remote description).
        let first = polite.machine.poll_command();
        assert!(
            matches!(first, Some(Command::SetRemoteDescription(_))),
            "{first:?}"
        );
        polite.machine.out.push_front(first.unwrap());

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(polite.pc.candidates.len(), 2);
    }

    #[test]
    fn candidates_that_arrive_while_the_remote_description_is_being_applied_wait() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        impolite.add_track(now);
        impolite.settle(now);
        let offer = impolite.outbox.pop_front().unwrap();
        let Wire::Description(offer) = offer else {
            panic!()
        };
        polite.input(Input::RemoteDescription(offer), now);
        polite.run_until_holding(now, |c| matches!(c, Command::SetRemoteDescription(_)));
        // Candidates arrive while setRemoteDescription is pending: the fake would panic
        // if one were added now.
        impolite.deliver_to(&mut polite, now);
        assert!(polite.machine.poll_command().is_none());

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(polite.pc.candidates.len(), 2);
    }

    #[test]
    fn candidates_of_an_ignored_offer_are_dropped() {
        let now = Instant::now();
        let (mut polite, mut impolite) = pair();
        polite.add_track(now);
        impolite.add_track(now);
        polite.settle(now);
        impolite.settle(now);
        // The polite offer and its candidates reach the impolite side first.
        polite.deliver_to(&mut impolite, now);
        impolite.settle(now);
        assert_eq!(impolite.ignored(), 1);
        assert!(impolite.pc.candidates.is_empty());
        assert!(
            !impolite
                .log
                .iter()
                .any(|c| matches!(c, Command::AddRemoteCandidate(_)))
        );

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        // Only the candidates trickled after the polite answer were added.
        let answer_ufrag = ice_ufrag(&polite.pc.current_local.as_ref().unwrap().sdp);
        assert_eq!(impolite.pc.candidates.len(), 2);
        assert!(
            impolite
                .pc
                .candidates
                .iter()
                .all(|c| c.username_fragment == answer_ufrag)
        );
    }

    /// A connected pair, negotiated once.
    fn connected(now: Instant) -> (Side, Side) {
        let (mut polite, mut impolite) = pair();
        impolite.add_track(now);
        run(&mut polite, &mut impolite, now);
        assert_converged(&polite, &impolite);
        for side in [&mut polite, &mut impolite] {
            side.input(
                Input::IceConnectionState(IceConnectionState::Connected),
                now,
            );
            side.log.clear();
        }
        (polite, impolite)
    }

    fn ufrags(side: &Side) -> (Option<String>, Option<String>) {
        (
            side.pc
                .current_local
                .as_ref()
                .and_then(|d| ice_ufrag(&d.sdp)),
            side.pc
                .current_remote
                .as_ref()
                .and_then(|d| ice_ufrag(&d.sdp)),
        )
    }

    #[test]
    fn ice_failure_restarts_ice_once() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        let (before_local, before_remote) = ufrags(&impolite);
        impolite.input(Input::IceConnectionState(IceConnectionState::Failed), now);
        assert_eq!(
            impolite.machine.poll_command(),
            Some(Command::CreateOffer { ice_restart: true })
        );
        impolite
            .machine
            .out
            .push_front(Command::CreateOffer { ice_restart: true });
        // A second report while the restart is under way changes nothing.
        impolite.input(Input::IceConnectionState(IceConnectionState::Failed), now);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(impolite.restart_offers(), 1);
        assert_eq!(polite.restart_offers(), 0);
        let (after_local, after_remote) = ufrags(&impolite);
        assert_ne!(
            after_local, before_local,
            "our credentials were not renewed"
        );
        assert_ne!(
            after_remote, before_remote,
            "the peer's credentials were not renewed"
        );
    }

    #[test]
    fn both_sides_failing_at_once_restart_ice_once() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        polite.input(Input::IceConnectionState(IceConnectionState::Failed), now);
        impolite.input(Input::IceConnectionState(IceConnectionState::Failed), now);
        polite.settle(now);
        impolite.settle(now);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        // Glare: the impolite restart won, and it renewed the polite side's credentials
        // too, so the polite side does not restart again.
        assert_eq!(impolite.offers_sent(), 1);
        assert_eq!(polite.pc.rollbacks, 1);
        assert_eq!(
            polite.offers_sent(),
            1,
            "the polite restart was rolled back, not resent"
        );
    }

    #[test]
    fn prolonged_disconnection_restarts_ice_but_a_short_one_does_not() {
        let t0 = Instant::now();
        let timeout = NegotiationConfig::default().ice_disconnected_timeout;
        let (mut polite, mut impolite) = connected(t0);

        // A blip: disconnected, then connected again before the timeout.
        impolite.input(
            Input::IceConnectionState(IceConnectionState::Disconnected),
            t0,
        );
        assert_eq!(impolite.machine.poll_timeout(), Some(t0 + timeout));
        impolite.machine.handle_timeout(t0 + timeout / 2);
        impolite.input(
            Input::IceConnectionState(IceConnectionState::Connected),
            t0 + timeout / 2,
        );
        assert_eq!(impolite.machine.poll_timeout(), None);
        impolite.machine.handle_timeout(t0 + timeout * 2);
        assert!(impolite.machine.poll_command().is_none());

        // Disconnected for good: restart after the timeout, measured from the first report.
        let t1 = t0 + timeout * 3;
        impolite.input(
            Input::IceConnectionState(IceConnectionState::Disconnected),
            t1,
        );
        impolite.input(
            Input::IceConnectionState(IceConnectionState::Disconnected),
            t1 + timeout / 2,
        );
        impolite
            .machine
            .handle_timeout(t1 + timeout - Duration::from_millis(1));
        assert!(impolite.machine.poll_command().is_none());
        impolite.machine.handle_timeout(t1 + timeout);
        assert_eq!(
            impolite.machine.poll_command(),
            Some(Command::CreateOffer { ice_restart: true })
        );
        impolite
            .machine
            .out
            .push_front(Command::CreateOffer { ice_restart: true });
        assert_eq!(impolite.machine.poll_timeout(), None);

        run(&mut polite, &mut impolite, t1 + timeout);

        assert_converged(&polite, &impolite);
        assert_eq!(impolite.restart_offers(), 1);
    }

    #[test]
    fn impolite_ice_restart_wins_over_a_racing_remote_offer() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        impolite.input(Input::IceConnectionState(IceConnectionState::Failed), now);
        impolite.settle(now);
        // Meanwhile the polite side renegotiates (a new track).
        polite.add_track(now);
        polite.settle(now);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(impolite.ignored(), 1);
        assert_eq!(impolite.restart_offers(), 1);
        assert_eq!(polite.pc.rollbacks, 1);
        assert!(!polite.pc.unnegotiated);
    }

    #[test]
    fn polite_ice_restart_racing_with_a_plain_remote_offer_is_retried_after_it() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        let (polite_ufrag, _) = ufrags(&polite);
        polite.input(Input::IceConnectionState(IceConnectionState::Failed), now);
        polite.settle(now);
        // The impolite side renegotiates without restarting ICE at the same moment.
        impolite.add_track(now);
        impolite.settle(now);

        run(&mut polite, &mut impolite, now);

        assert_converged(&polite, &impolite);
        assert_eq!(polite.pc.rollbacks, 1);
        assert_eq!(impolite.ignored(), 1);
        // The plain offer did not restart ICE, so the polite side restarted it afterwards.
        assert_eq!(polite.restart_offers(), 2);
        let (after, _) = ufrags(&polite);
        assert_ne!(after, polite_ufrag);
        assert_eq!(impolite.pc.remote_offers.len(), 1);
    }

    #[test]
    fn a_stray_answer_is_ignored() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        polite.input(
            Input::RemoteDescription(SessionDescription::answer("v=0\r\n")),
            now,
        );
        assert!(polite.machine.poll_command().is_none());
        run(&mut polite, &mut impolite, now);
        assert_converged(&polite, &impolite);
    }

    #[test]
    fn a_failed_answer_rolls_back_to_stable() {
        let now = Instant::now();
        let (mut polite, mut impolite) = connected(now);
        impolite.add_track(now);
        impolite.settle(now);
        let Some(Wire::Description(offer)) = impolite.outbox.pop_front() else {
            panic!()
        };
        impolite.outbox.clear();
        polite.input(Input::RemoteDescription(offer), now);
        polite.step(now, false); // setRemoteDescription
        assert_eq!(polite.machine.poll_command(), Some(Command::CreateAnswer));
        polite.input(Input::OperationFailed("no codecs in common".into()), now);
        assert_eq!(
            polite.machine.poll_command(),
            Some(Command::Rollback { remote_offer: true })
        );
        polite.input(Input::RolledBack, now);
        assert_eq!(polite.machine.signaling_state(), SignalingState::Stable);
    }

    #[test]
    fn ufrag_is_read_from_the_sdp() {
        assert_eq!(
            ice_ufrag("v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:x\r\n").as_deref(),
            Some("abcd")
        );
        assert_eq!(ice_ufrag("v=0\r\n"), None);
    }
}
