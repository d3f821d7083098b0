//! Several nodes as one server (`--redis-url`): an event for users goes only to the
//! nodes where one of them is connected, and each node delivers what the others sent it
//! to its own connections.
//!
//! What the nodes share lives in Redis under `--redis-prefix`:
//! - `PREFIX:bus`: the pub/sub channel every node reads, for what every node needs:
//!   presence (each node mirrors the others'), `Hello`, call sizes, call ends and session
//!   kicks. Events travel as [`Event`] in an [`Envelope`], as MessagePack; a `ServerMsg`
//!   an event carries is its JSON text as raw bytes, written once by the sending hub and
//!   handed to the sockets as it arrives, never re-parsed.
//! - `PREFIX:nodes`: the set of node ids; `PREFIX:node:ID`: a node's liveness, a key
//!   refreshed every [`HEARTBEAT`] that expires after [`NODE_TTL`].
//! - `PREFIX:presence:ID`: a hash of the users connected to that node and their
//!   presence there.
//! - `PREFIX:user:ID`: the set of nodes with a connection of that user, kept with the
//!   presence hash (in the same pipeline, so the hash is the node's index of the sets
//!   naming it).
//!
//! **User events** (chat, edits, reactions, typing, receipts, room and contact events,
//! presence announcements, ringing, user kicks) go through `ROUTE`, a script run in
//! Redis that reads the recipients' sets and publishes the event to each of those nodes'
//! channels, so a node decodes only what concerns its connections. Nothing is lost for a
//! user who connects meanwhile: a node adds itself to a user's set, and waits until Redis
//! has it ([`settle`]), before it welcomes the connection, and a sender runs the script
//! after its database write. So either the script ran after the set had the new node,
//! which then gets the event, or before, and then the write is done before the welcome,
//! and the client's catch-up (it follows the welcome) finds it.
//!
//! A node that stops takes itself out of its users' sets (`DROP`, over its hash); one
//! killed is taken out by the first node that sees its liveness expire. A set naming a
//! node whose hash expired first (every node gone) only costs a publish nobody reads.
//! After Redis restarts empty, each node rewrites its hash and its users' sets with its
//! resync, in one transaction.
//!
//! Each node mirrors the others' presence in its hub (so presence answers need no round
//! trip), updates the mirror from the events, and rebuilds it from the hashes whenever
//! its subscription (re)starts. A node whose liveness key expired is dropped: its users'
//! presence changes, which every node announces to its own connections.
//!
//! - `PREFIX:to:ID`: a node's own channel, for what concerns its connections alone.
//! - `PREFIX:call:ROOM`: the home of the room's call, the node whose hub holds it.
//!
//! **Calls across nodes.** A call lives in one hub, its home: the node of its first
//! joiner, claimed atomically in Redis (a script that keeps a live home and replaces a
//! dead one). A join on another node is forwarded to the home's channel; the home takes
//! the connection in as a guest, tells its node (`entered`, before anything else), and
//! from then on sends that guest's messages (`call_joined`, `participant_joined`, relays,
//! media states, `call_left`) to its node, which hands them to the connection. The
//! guest's node forwards its leaves and media states to the home, so membership
//! changes happen under one lock and every participant sees them in one order. With every
//! membership change the home also tells each guest's node where every participant is
//! (`peers`, before the messages about that change), so a guest's relay goes in one hop
//! to the node holding its addressee (the home, another guest's node, or straight across
//! when both are connections of one node); only a relay to someone that node does not
//! know of goes to the home, which answers an error. Ringing and
//! call notices are user events and reach every device on every node. A node that dies
//! takes its guests out of the calls homed elsewhere (the others see them leave); the
//! calls it was home to end for the participants elsewhere (`call_left`), and the next
//! join makes a new home. Without Redis each node holds its own calls.
//!
//! The database stays the source of truth for everything durable: an event lost while
//! Redis is away costs latency, never data (clients catch up through `/changes`).

use crate::db;
use crate::state::AppState;
use crate::ws::hub::{CallContext, CallFull, Hub};
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use shared::api::PresenceStatus;
use shared::signal::Participant;
use shared::{ParticipantId, RoomId, SessionId, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a node refreshes its liveness key and checks the others'.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A node whose liveness key was not refreshed for this long is gone.
pub const NODE_TTL: Duration = Duration::from_secs(10);

/// Events waiting for the publisher; past this they are dropped (and counted).
const QUEUE: usize = 65_536;

/// Most queued commands sent in one pipeline.
const BATCH: usize = 512;

/// How many times a join follows a home that moved before it settles here.
const MAX_HOPS: u8 = 2;

/// Claims a room's call for a node unless a live node holds it. KEYS[1]: the call key;
/// ARGV[1]: the claiming node; ARGV[2]: the liveness key prefix. Returns the home.
const CLAIM: &str = "local home = redis.call('GET', KEYS[1]) \
if home and (home == ARGV[1] or redis.call('EXISTS', ARGV[2] .. home) == 1) then return home end \
redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]";

/// Deletes a call key if it still names this node. KEYS[1]: the key; ARGV[1]: the node.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('DEL', KEYS[1]) end return 0";

/// Publishes an event to every node with a connection of one of its users, but the
/// sender, each once. KEYS: the users' sets; ARGV[1]: the node channel prefix; ARGV[2]:
/// the sending node; ARGV[3]: the envelope. Short: its text goes with every event.
const ROUTE: &str = "local s={} for _,k in ipairs(KEYS) do \
for _,n in ipairs(redis.call('SMEMBERS',k)) do if n~=ARGV[2] and not s[n] then s[n]=1 \
redis.call('PUBLISH',ARGV[1]..n,ARGV[3]) end end end return 0";

/// Takes a node out of the sets of the users in its presence hash, and deletes the hash.
/// KEYS[1]: the hash; ARGV[1]: the user set prefix; ARGV[2]: the node.
const DROP: &str = "for _,u in ipairs(redis.call('HKEYS',KEYS[1])) do \
redis.call('SREM',ARGV[1]..u,ARGV[2]) end return redis.call('DEL',KEYS[1])";

/// How long a new connection waits for Redis to hold its user's route before it is
/// welcomed anyway (Redis slow or going away: the catch-up still covers it).
const SETTLE: Duration = Duration::from_secs(3);

/// A serialized `ServerMsg` (JSON text) carried as raw bytes in the binary envelope.
mod raw {
    use axum::extract::ws::Utf8Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(msg: &Utf8Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(msg.as_bytes())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Utf8Bytes, D::Error> {
        let buf = serde_bytes::ByteBuf::deserialize(d)?;
        Utf8Bytes::try_from(buf.into_vec()).map_err(serde::de::Error::custom)
    }
}

/// What one node tells the others (on the bus) or one node (on its channel).
///
/// Encoded positionally (MessagePack arrays): every field is always written, none may be
/// skipped when empty.
#[derive(Debug, Serialize, Deserialize)]
pub enum Event {
    /// A serialized `ServerMsg` for every connection of `users` (but `except` and `skip`).
    Users {
        users: Vec<UserId>,
        except: Option<ParticipantId>,
        skip: Vec<ParticipantId>,
        #[serde(with = "raw")]
        msg: Utf8Bytes,
    },
    /// The sender's presence of `user` on its own node.
    Presence {
        user: UserId,
        status: PresenceStatus,
    },
    KickSession {
        session: SessionId,
        code: u16,
    },
    KickUser {
        user: UserId,
        code: u16,
    },
    /// The sender (re)wrote its presence hash: read it again.
    Hello,
    /// A call homed on the sender has `count` participants (0: it ended).
    CallSize {
        room: RoomId,
        count: usize,
    },
    /// A user left a room: out of its call, wherever it is homed.
    RemoveFromCall {
        room: RoomId,
        user: UserId,
    },
    /// A room was deleted: its call ends, wherever it is homed.
    EndCall {
        room: RoomId,
    },
    /// A callee declined on a node that does not hold the ring.
    Decline {
        room: RoomId,
        user: UserId,
    },

    // To one node: the home of a call, from a guest's node.
    /// A connection of the sender joins a call homed at the addressee.
    Join {
        room: RoomId,
        session: SessionId,
        participant: Participant,
        max: usize,
        context: CallContext,
        request_id: Option<u64>,
        hops: u8,
    },
    Leave {
        room: RoomId,
        participant: ParticipantId,
    },
    /// A serialized signaling message from `from` to `to`, both in `room`'s call: to the
    /// call's home, or straight to the node of `to`.
    Relay {
        room: RoomId,
        from: ParticipantId,
        to: ParticipantId,
        #[serde(with = "raw")]
        msg: Utf8Bytes,
    },
    Media {
        room: RoomId,
        participant: ParticipantId,
        audio_muted: bool,
        video_muted: bool,
    },

    // To one node: a guest's node, from the call's home.
    /// A serialized `ServerMsg` for these connections of the addressee.
    Deliver {
        to: Vec<ParticipantId>,
        #[serde(with = "raw")]
        msg: Utf8Bytes,
    },
    /// Who is in a call homed on the sender and on which node (the home's own connections
    /// under its id), for a node with connections in it: their relays go straight there.
    Peers {
        room: RoomId,
        peers: Vec<(ParticipantId, String)>,
    },
    /// The connection is now in the call.
    Entered {
        participant: ParticipantId,
        room: RoomId,
    },
    /// The connection is out of the call.
    Left {
        participant: ParticipantId,
        room: RoomId,
    },
    /// Close the connection (a newer one of its session replaced it in the call).
    KickParticipant {
        participant: ParticipantId,
        code: u16,
    },
}

impl Event {
    /// The metrics label of an event.
    fn kind(&self) -> &'static str {
        match self {
            Self::Users { .. } => "users",
            Self::Presence { .. } => "presence",
            Self::KickSession { .. } | Self::KickUser { .. } | Self::KickParticipant { .. } => {
                "kick"
            }
            Self::Hello => "hello",
            Self::CallSize { .. } => "call_size",
            Self::RemoveFromCall { .. } | Self::EndCall { .. } | Self::Decline { .. } => "call",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Relay { .. } => "relay",
            Self::Media { .. } => "media",
            Self::Deliver { .. } => "deliver",
            Self::Entered { .. } | Self::Left { .. } | Self::Peers { .. } => "membership",
        }
    }
}

/// An event and who sent it, as it travels (MessagePack: `[node, at, event]`).
#[derive(Debug, Deserialize)]
struct Envelope {
    node: String,
    /// When it was sent, in microseconds since the Unix epoch (for the transit metric;
    /// across machines it is only as good as their clocks).
    at: u64,
    event: Event,
}

/// Encodes an envelope. Ids, numbers, strings and bytes only: encoding cannot fail.
fn encode_envelope(node: &str, event: &Event) -> Vec<u8> {
    rmp_serde::to_vec(&EnvelopeRef {
        node,
        at: unix_micros(),
        event,
    })
    .unwrap_or_default()
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What the publisher task does, in the order the hub asked.
#[derive(Debug)]
enum Out {
    Publish(Vec<u8>),
    /// To the nodes of these users' connections (their set keys), through `ROUTE`.
    Route {
        sets: Vec<String>,
        payload: Vec<u8>,
    },
    /// Answered once everything queued before it is in Redis.
    Fence(tokio::sync::oneshot::Sender<()>),
    /// To one node's channel.
    Direct {
        channel: String,
        payload: Vec<u8>,
    },
    /// A call homed here ended: its key goes (if it still names this node).
    Release(RoomId),
    Presence {
        user: UserId,
        status: PresenceStatus,
        payload: Vec<u8>,
    },
    Resync(Vec<(UserId, PresenceStatus)>, Vec<RoomId>),
}

/// The hub's side of the cluster: queues events for the publisher, never waits.
#[derive(Debug)]
pub struct Link {
    pub node: String,
    keys: Keys,
    tx: mpsc::Sender<Out>,
    /// For the few commands that need an answer (claiming a call's home).
    conn: ConnectionManager,
    /// Subscribed and synced with Redis (false: degraded, serving this node's users).
    healthy: AtomicBool,
    /// Set by the publisher when Redis refused a pipeline: what this node shares may
    /// miss an update (a user's set without this node), so the heartbeat has it resync.
    lost: Arc<AtomicBool>,
}

impl Link {
    /// Queues an event for the other nodes: an event for users to the nodes where they
    /// are connected, anything else to every node.
    pub fn publish(&self, event: &Event) {
        let users = match event {
            Event::Users { users, .. } => users.as_slice(),
            Event::KickUser { user, .. } => std::slice::from_ref(user),
            _ => return self.queue(Out::Publish(self.envelope(event))),
        };
        if users.is_empty() {
            return;
        }
        let mut sets: Vec<String> = users.iter().map(|u| self.keys.user(*u)).collect();
        sets.sort_unstable();
        sets.dedup();
        self.queue(Out::Route {
            sets,
            payload: self.envelope(event),
        });
    }

    /// Queues this node's new presence of `user` (its hash entry and the event).
    pub fn presence(&self, user: UserId, status: PresenceStatus) {
        let payload = self.envelope(&Event::Presence { user, status });
        self.queue(Out::Presence {
            user,
            status,
            payload,
        });
    }

    /// Queues a rewrite of this node's presence hash from a snapshot, and of the keys
    /// of the calls homed here.
    pub fn resync(&self, snapshot: Vec<(UserId, PresenceStatus)>, calls: Vec<RoomId>) {
        self.queue(Out::Resync(snapshot, calls));
    }

    /// Queues an event for one node.
    pub fn send_to(&self, node: &str, event: &Event) {
        self.queue(Out::Direct {
            channel: self.keys.inbox(node),
            payload: self.envelope(event),
        });
    }

    /// Queues the release of a call's home (its call here ended).
    pub fn release_home(&self, room: RoomId) {
        self.queue(Out::Release(room));
    }

    /// The home of `room`'s call, claimed for this node if none is alive; `None` if
    /// Redis does not answer.
    async fn claim_home(&self, room: RoomId) -> Option<String> {
        let mut conn = self.conn.clone();
        redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(1)
            .arg(self.keys.call(room))
            .arg(&self.node)
            .arg(self.keys.node(""))
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| tracing::debug!(error = %e, "claiming a call's home"))
            .ok()
    }

    /// Forgets `home` as the home of `room`'s call (nobody listens there any more).
    async fn forget_home(&self, room: RoomId, home: &str) {
        let mut conn = self.conn.clone();
        let _ = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.keys.call(room))
            .arg(home)
            .query_async::<i64>(&mut conn)
            .await;
    }

    /// Publishes to one node at once; false if no node listens on its channel.
    async fn send_now(&self, node: &str, event: &Event) -> bool {
        let mut conn = self.conn.clone();
        let heard: redis::RedisResult<i64> = conn
            .publish(self.keys.inbox(node), self.envelope(event))
            .await;
        heard.is_ok_and(|n| n > 0)
    }

    /// Whether Redis answers and this node is subscribed.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    fn envelope(&self, event: &Event) -> Vec<u8> {
        encode_envelope(&self.node, event)
    }

    fn queue(&self, out: Out) {
        if self.tx.try_send(out).is_err() {
            metrics::counter!("confab_cluster_dropped_total").increment(1);
        }
    }
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    node: &'a str,
    at: u64,
    event: &'a Event,
}

/// The Redis key names under one prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn bus(&self) -> String {
        format!("{}:bus", self.prefix)
    }
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }
    fn presence(&self, id: &str) -> String {
        format!("{}:presence:{id}", self.prefix)
    }
    fn inbox(&self, id: &str) -> String {
        format!("{}:to:{id}", self.prefix)
    }
    /// The set of nodes with a connection of `user`.
    fn user(&self, user: UserId) -> String {
        format!("{}:user:{user}", self.prefix)
    }
    fn user_prefix(&self) -> String {
        format!("{}:user:", self.prefix)
    }
    fn call(&self, room: RoomId) -> String {
        format!("{}:call:{room}", self.prefix)
    }
}

fn status_name(s: PresenceStatus) -> &'static str {
    match s {
        PresenceStatus::Online => "online",
        PresenceStatus::Idle => "idle",
        PresenceStatus::Offline => "offline",
    }
}

fn parse_status(s: &str) -> Option<PresenceStatus> {
    match s {
        "online" => Some(PresenceStatus::Online),
        "idle" => Some(PresenceStatus::Idle),
        _ => None,
    }
}

/// Publishes one event on the bus from outside a server (`confab-server admin`), so
/// every node acts on it at once.
pub async fn publish_once(url: &str, prefix: &str, event: &Event) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(3),
        client.get_multiplexed_async_connection(),
    )
    .await??;
    let keys = Keys {
        prefix: prefix.to_owned(),
    };
    let payload = rmp_serde::to_vec(&EnvelopeRef {
        node: "admin",
        at: unix_micros(),
        event,
    })?;
    conn.publish::<_, _, ()>(keys.bus(), payload).await?;
    Ok(())
}

/// Joins the cluster at `url`: attaches a [`Link`] to the hub and starts the publisher,
/// the subscriber and the heartbeat, which all end at shutdown. Redis being down is no
/// error: the node serves its own users and keeps trying.
pub fn start(state: &AppState, url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
    // The publisher's own connection: its pipelines never queue behind a claim, a
    // heartbeat or a presence reload, nor those behind a long pipeline.
    let publishing = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let lost = Arc::new(AtomicBool::new(false));
    let node = state.hub.node().to_owned();
    let keys = Keys {
        prefix: prefix.to_owned(),
    };
    let link = Arc::new(Link {
        node: node.clone(),
        keys: keys.clone(),
        tx,
        conn: conn.clone(),
        healthy: AtomicBool::new(false),
        lost: lost.clone(),
    });
    state.hub.attach(link.clone());
    tracing::info!(%node, prefix, "joining the cluster");
    state
        .tasks
        .spawn(publisher(publishing, keys.clone(), node.clone(), rx, lost));
    state.tasks.spawn(subscriber(
        state.clone(),
        client,
        conn.clone(),
        link.clone(),
    ));
    state.tasks.spawn(heartbeat(state.clone(), conn, link));
    Ok(())
}

/// Sends what the hub queued, in order: whatever queued while the previous pipeline was
/// on its way goes in the next one (up to [`BATCH`] commands), so under load one round
/// trip carries many events, and an event alone goes at once.
///
/// Fences are answered once a pipeline at or after them reached Redis, but not while a
/// refused one may have lost an update of this node's entry: then `lost` asks the
/// heartbeat for a resync, and fences wait until a resync has rewritten the entry.
async fn publisher(
    mut conn: ConnectionManager,
    keys: Keys,
    node: String,
    mut rx: mpsc::Receiver<Out>,
    lost: Arc<AtomicBool>,
) {
    let bus = keys.bus();
    let hash = keys.presence(&node);
    let inboxes = keys.inbox("");
    let mut batch = Vec::with_capacity(BATCH);
    let mut fences = Vec::new();
    let mut dirty = false;
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut published = 0u64;
        for out in batch.drain(..) {
            match out {
                Out::Publish(payload) => {
                    pipe.publish(&bus, payload).ignore();
                    published += 1;
                }
                Out::Route { sets, payload } => {
                    pipe.cmd("EVAL")
                        .arg(ROUTE)
                        .arg(sets.len())
                        .arg(sets)
                        .arg(&inboxes)
                        .arg(&node)
                        .arg(payload)
                        .ignore();
                    published += 1;
                }
                Out::Fence(done) => fences.push(done),
                Out::Direct { channel, payload } => {
                    pipe.publish(channel, payload).ignore();
                    published += 1;
                }
                Out::Release(room) => {
                    pipe.cmd("EVAL")
                        .arg(RELEASE)
                        .arg(1)
                        .arg(keys.call(room))
                        .arg(&node)
                        .ignore();
                }
                Out::Presence {
                    user,
                    status,
                    payload,
                } => {
                    if status == PresenceStatus::Offline {
                        pipe.hdel(&hash, user.to_string()).ignore();
                        pipe.srem(keys.user(user), &node).ignore();
                    } else {
                        pipe.hset(&hash, user.to_string(), status_name(status))
                            .ignore();
                        pipe.sadd(keys.user(user), &node).ignore();
                    }
                    pipe.publish(&bus, payload).ignore();
                    published += 1;
                }
                Out::Resync(snapshot, calls) => {
                    // What queued before it goes first, then the resync on its own, retried
                    // until Redis takes it: it is what tells the other nodes that this one
                    // is back and who is on it, and it comes just as Redis returns, when
                    // this connection's first request is likely to fail on the old socket.
                    if !send(&mut conn, &pipe, published).await {
                        dirty = true;
                        lost.store(true, Ordering::Release);
                    }
                    pipe = redis::pipe();
                    published = 0;
                    let resync = resync_pipe(&keys, &node, &hash, &snapshot, calls);
                    for attempt in 0.. {
                        match resync.query_async::<()>(&mut conn).await {
                            Ok(()) => {
                                dirty = false;
                                break;
                            }
                            Err(e) if attempt < 20 => {
                                tracing::debug!(error = %e, "rewriting this node's entry failed; retrying");
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "could not rewrite this node's entry in Redis");
                                lost.store(true, Ordering::Release);
                                break;
                            }
                        }
                    }
                }
            }
        }
        if !send(&mut conn, &pipe, published).await {
            dirty = true;
            lost.store(true, Ordering::Release);
        }
        if !dirty {
            for fence in fences.drain(..) {
                let _ = fence.send(());
            }
        }
        // A fence that waited past its sender's patience has nobody to answer.
        fences.retain(|f| !f.is_closed());
    }
}

/// Sends one pipeline of events (lossy: a failed one is counted and dropped). Returns
/// whether Redis took it (an empty one: yes).
async fn send(conn: &mut ConnectionManager, pipe: &redis::Pipeline, published: u64) -> bool {
    if pipe.is_empty() {
        return true;
    }
    match pipe.query_async::<()>(conn).await {
        Ok(()) => {
            metrics::counter!("confab_cluster_published_total").increment(published);
            true
        }
        Err(e) => {
            metrics::counter!("confab_cluster_dropped_total").increment(published);
            tracing::debug!(error = %e, "publishing to Redis failed");
            false
        }
    }
}

/// Waits (at most [`SETTLE`]) until Redis holds what this node queued so far: called
/// when a connection has registered, before it is welcomed, so that its user's set names
/// this node before the client's catch-up starts (see the module's "User events").
/// Without Redis, or while it is away, nothing is waited for.
pub async fn settle(state: &AppState) {
    let Some(link) = state.hub.link() else {
        return;
    };
    if !link.healthy() {
        return;
    }
    let (done, settled) = tokio::sync::oneshot::channel();
    link.queue(Out::Fence(done));
    if !matches!(tokio::time::timeout(SETTLE, settled).await, Ok(Ok(()))) {
        tracing::debug!("Redis did not confirm a new connection's route in time");
    }
}

/// A node's presence hash and its users' sets of nodes emptied of it (`DROP`).
fn drop_node(pipe: &mut redis::Pipeline, keys: &Keys, node: &str) {
    pipe.cmd("EVAL")
        .arg(DROP)
        .arg(1)
        .arg(keys.presence(node))
        .arg(keys.user_prefix())
        .arg(node)
        .ignore();
}

/// This node's entry rewritten (its calls, its presence hash and its users' sets, its
/// liveness) and a `Hello` that makes the others reload it. One transaction: no event is
/// routed while the sets are between their old and new contents.
fn resync_pipe(
    keys: &Keys,
    node: &str,
    hash: &str,
    snapshot: &[(UserId, PresenceStatus)],
    calls: Vec<RoomId>,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for room in calls {
        pipe.set(keys.call(room), node).ignore();
    }
    drop_node(&mut pipe, keys, node);
    let fields: Vec<(String, &str)> = snapshot
        .iter()
        .map(|(u, s)| (u.to_string(), status_name(*s)))
        .collect();
    if !fields.is_empty() {
        pipe.hset_multiple(hash, &fields).ignore();
    }
    for (user, _) in snapshot {
        pipe.sadd(keys.user(*user), node).ignore();
    }
    pipe.set_ex(keys.node(node), 1, NODE_TTL.as_secs()).ignore();
    pipe.sadd(keys.nodes(), node).ignore();
    pipe.publish(keys.bus(), encode_envelope(node, &Event::Hello))
        .ignore();
    pipe
}

/// Subscribes to the bus and delivers the other nodes' events; on every (re)subscription
/// rewrites this node's entry and reloads the others'.
async fn subscriber(
    state: AppState,
    client: redis::Client,
    mut conn: ConnectionManager,
    link: Arc<Link>,
) {
    let shutdown = state.shutdown.clone();
    let mut warned = false;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub
                .subscribe(&[link.keys.bus(), link.keys.inbox(&link.node)])
                .await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(3), subscribed) => r,
        };
        match subscribed {
            Ok(Ok(pubsub)) => {
                tracing::info!(node = %link.node, "subscribed to the cluster bus");
                warned = false;
                state.hub.resync();
                reload_all(&state, &mut conn, &link).await;
                link.healthy.store(true, Ordering::Release);
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        () = shutdown.cancelled() => return,
                        msg = messages.next() => msg,
                    };
                    let Some(msg) = msg else { break };
                    on_event(&state, &mut conn, &link, msg.get_payload_bytes()).await;
                }
                link.healthy.store(false, Ordering::Release);
                tracing::warn!(node = %link.node, "lost the cluster bus; resubscribing");
            }
            Ok(Err(e)) => {
                link.healthy.store(false, Ordering::Release);
                if !warned {
                    tracing::warn!(error = %e, "cannot reach Redis; serving this node's users only");
                    warned = true;
                }
            }
            Err(_) => link.healthy.store(false, Ordering::Release),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn on_event(state: &AppState, conn: &mut ConnectionManager, link: &Link, payload: &[u8]) {
    let Ok(envelope) = rmp_serde::from_slice::<Envelope>(payload) else {
        tracing::debug!("an unreadable event on the cluster bus");
        return;
    };
    if envelope.node == link.node {
        return;
    }
    let kind = envelope.event.kind();
    metrics::counter!("confab_cluster_received_total", "kind" => kind).increment(1);
    if envelope.at > 0 {
        let transit = unix_micros().saturating_sub(envelope.at) as f64 / 1e6;
        metrics::histogram!("confab_cluster_transit_seconds", "kind" => kind).record(transit);
    }
    let hub = &state.hub;
    let from = envelope.node.as_str();
    match envelope.event {
        Event::Users {
            users,
            except,
            skip,
            msg,
        } => hub.deliver_here(&users, except, &skip, msg),
        Event::Presence { user, status } => {
            // The sending node tells only its own connections (`announce_presence_change`):
            // each node announces a change to its own once its mirror has it.
            if hub.set_remote(&envelope.node, user, status) {
                announce_here(state, hub, vec![user]).await;
            }
        }
        Event::KickSession { session, code } => hub.kick_session_here(session, code),
        Event::KickUser { user, code } => hub.kick_user_here(user, code),
        Event::Hello => {
            let users = load_node(conn, &link.keys, from).await;
            if let Some(users) = users {
                let changed = hub.replace_remote(from, Some(users));
                announce_here(state, hub, changed).await;
            }
        }
        Event::CallSize { room, count } => hub.set_remote_call_size(from, room, count),
        Event::RemoveFromCall { room, user } => hub.remove_user_from_call_here(room, user),
        Event::EndCall { room } => hub.end_call_here(room),
        Event::Decline { room, user } => {
            hub.decline_call_here(room, user);
        }
        Event::Join {
            room,
            session,
            participant,
            max,
            context,
            request_id,
            hops,
        } => {
            // The call may have ended here meanwhile: take it back, unless another
            // node did, which then gets the join.
            if !hub.has_call(room)
                && hops < MAX_HOPS
                && let Some(home) = link.claim_home(room).await
                && home != link.node
            {
                let forward = Event::Join {
                    room,
                    session,
                    participant,
                    max,
                    context,
                    request_id,
                    hops: hops + 1,
                };
                // Still the guest's node's event: the home answers that node.
                link.queue(Out::Direct {
                    channel: link.keys.inbox(&home),
                    payload: encode_envelope(from, &forward),
                });
                return;
            }
            hub.join_guest(from, session, participant, room, max, context, request_id);
        }
        Event::Leave { room, participant } => hub.leave_guest(participant, room),
        Event::Relay {
            room,
            from: sender,
            to,
            msg,
        } => hub.relay_guest(sender, room, to, msg),
        Event::Media {
            room,
            participant,
            audio_muted,
            video_muted,
        } => {
            let _ = hub.media_state(participant, room, audio_muted, video_muted);
        }
        Event::Deliver { to, msg } => hub.deliver_to(&to, msg),
        Event::Peers { room, peers } => hub.set_peers(room, from, peers),
        Event::Entered { participant, room } => {
            if !hub.entered(participant, room, from) {
                link.send_to(from, &Event::Leave { room, participant });
            }
        }
        Event::Left { participant, room } => hub.left(participant, room, from),
        Event::KickParticipant { participant, code } => hub.kick_here(participant, code),
    }
}

/// Puts this node's connection `id` in `room`'s call, wherever it is homed: here (the
/// hub's own join), or on the node that holds it, which answers the connection.
pub async fn join_call(
    state: &AppState,
    id: ParticipantId,
    room: RoomId,
    max: usize,
    context: CallContext,
    request_id: Option<u64>,
) -> Result<(), CallFull> {
    let hub = &state.hub;
    let link = match hub.link_arc() {
        Some(link) if link.healthy() && !hub.has_call(room) => link,
        // Without Redis (or while it is away) every node holds its own calls.
        _ => return hub.join_call(id, room, max, context, request_id),
    };
    for _ in 0..3 {
        let Some(home) = link.claim_home(room).await else {
            break;
        };
        if home == link.node {
            break;
        }
        let Some((session, participant)) = hub.card(id) else {
            return Ok(());
        };
        hub.leave_other_call(id, room);
        let join = Event::Join {
            room,
            session,
            participant,
            max,
            context: context.clone(),
            request_id,
            hops: 0,
        };
        if link.send_now(&home, &join).await {
            return Ok(());
        }
        // Nobody listens there: that node is gone, though its liveness has not run out.
        link.forget_home(room, &home).await;
    }
    hub.join_call(id, room, max, context, request_id)
}

/// One node's presence hash; `None` if Redis did not answer.
async fn load_node(
    conn: &mut ConnectionManager,
    keys: &Keys,
    node: &str,
) -> Option<HashMap<UserId, PresenceStatus>> {
    let raw: HashMap<String, String> = conn.hgetall(keys.presence(node)).await.ok()?;
    Some(
        raw.into_iter()
            .filter_map(|(u, s)| Some((u.parse().ok()?, parse_status(&s)?)))
            .collect(),
    )
}

/// Reloads every other live node's presence.
async fn reload_all(state: &AppState, conn: &mut ConnectionManager, link: &Link) {
    let Ok(nodes) = conn.smembers::<_, Vec<String>>(link.keys.nodes()).await else {
        return;
    };
    for node in nodes.into_iter().filter(|n| *n != link.node) {
        if let Some(users) = load_node(conn, &link.keys, &node).await {
            let changed = state.hub.replace_remote(&node, Some(users));
            announce_here(state, &state.hub, changed).await;
        }
    }
}

/// Tells this node's connections about presence changes every node sees for itself.
async fn announce_here(state: &AppState, hub: &Hub, users: Vec<UserId>) {
    for user in users {
        match db::contacts::presence_audience(&state.pool, user).await {
            Ok(audience) => hub.announce_presence_here(user, &audience),
            Err(e) => tracing::warn!(error = %e, "loading the presence audience"),
        }
    }
}

/// Refreshes this node's liveness and drops the nodes whose liveness expired.
async fn heartbeat(state: AppState, mut conn: ConnectionManager, link: Arc<Link>) {
    let shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Until this node has been healthy for a whole TTL, a missing key may be a node
    // that has not yet rewritten its entry after Redis came back.
    let mut healthy_since: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let keys = &link.keys;
        let refreshed = redis::pipe()
            .exists(keys.node(&link.node))
            .set_ex(keys.node(&link.node), 1, NODE_TTL.as_secs())
            .ignore()
            .sadd(keys.nodes(), &link.node)
            .ignore()
            .expire(keys.presence(&link.node), 6 * NODE_TTL.as_secs() as i64)
            .ignore()
            .query_async::<(bool,)>(&mut conn)
            .await;
        let Ok((was_alive,)) = refreshed else {
            healthy_since = None;
            continue;
        };
        if !link.healthy() {
            healthy_since = None;
            continue;
        }
        if !was_alive {
            // This node's liveness ran out (a stall longer than the TTL): the others may
            // have dropped it, its hash and its users' sets with it. Rewrite them.
            link.lost.store(true, Ordering::Release);
        }
        if link.lost.swap(false, Ordering::AcqRel) {
            // A pipeline was refused while the subscription held, or the liveness ran
            // out: rewrite this node's entry (the publisher sets the flag again if that
            // fails too).
            tracing::info!(node = %link.node, "this node's entry in Redis may be stale; resyncing it");
            state.hub.resync();
        }
        let since = *healthy_since.get_or_insert_with(Instant::now);
        if since.elapsed() < NODE_TTL {
            continue;
        }
        let Ok(members) = conn.smembers::<_, Vec<String>>(keys.nodes()).await else {
            continue;
        };
        let mut known: Vec<String> = state.hub.remote_nodes();
        known.extend(members.iter().cloned());
        known.sort();
        known.dedup();
        for node in known.into_iter().filter(|n| *n != link.node) {
            let alive = conn.exists::<_, bool>(keys.node(&node)).await;
            match alive {
                Ok(false) => {
                    tracing::info!(%node, "a node's liveness expired: dropping its users and calls");
                    state.hub.node_gone(&node);
                    let mut pipe = redis::pipe();
                    pipe.srem(keys.nodes(), &node).ignore();
                    drop_node(&mut pipe, keys, &node);
                    let _ = pipe.query_async::<()>(&mut conn).await;
                    let changed = state.hub.replace_remote(&node, None);
                    announce_here(&state, &state.hub, changed).await;
                }
                Ok(true) if !state.hub.remote_nodes().contains(&node) => {
                    // A node whose hello this one missed.
                    if let Some(users) = load_node(&mut conn, keys, &node).await {
                        let changed = state.hub.replace_remote(&node, Some(users));
                        announce_here(&state, &state.hub, changed).await;
                    }
                }
                _ => {}
            }
        }
    }
    // A node that stops cleanly leaves at once; its users' sessions were closed.
    let mut pipe = redis::pipe();
    pipe.del(link.keys.node(&link.node))
        .ignore()
        .srem(link.keys.nodes(), &link.node)
        .ignore();
    drop_node(&mut pipe, &link.keys, &link.node);
    let _ = pipe.query_async::<()>(&mut conn).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_carries_its_message_bytes_as_they_were_written() {
        let msg = r#"{"type":"ice_candidate","candidate":{"candidate":"a \"quoted\" é"}}"#;
        let (room, from, to) = (RoomId::new(), ParticipantId::new(), ParticipantId::new());
        let event = Event::Relay {
            room,
            from,
            to,
            msg: Utf8Bytes::from(msg),
        };
        let bytes = encode_envelope("node-1", &event);
        // Binary, with the JSON text in it unescaped (no envelope around a string).
        assert!(bytes.windows(msg.len()).any(|w| w == msg.as_bytes()));
        let back: Envelope = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.node, "node-1");
        assert!(back.at > 0);
        match back.event {
            Event::Relay {
                room: r,
                from: f,
                to: t,
                msg: m,
            } => {
                assert_eq!((r, f, t), (room, from, to));
                assert_eq!(m.as_str(), msg);
            }
            other => panic!("{other:?}"),
        }
        // An empty `skip` is written too (the encoding is positional).
        let users = Event::Users {
            users: vec![UserId::new()],
            except: None,
            skip: Vec::new(),
            msg: Utf8Bytes::from("{}"),
        };
        let back: Envelope = rmp_serde::from_slice(&encode_envelope("n", &users)).unwrap();
        assert!(
            matches!(back.event, Event::Users { skip, msg, .. } if skip.is_empty() && msg == "{}")
        );
        // Not UTF-8 where a message should be: refused, not handed to a socket.
        let mut broken = encode_envelope("n", &users);
        let at = broken.len() - 1;
        broken[at] = 0xff;
        assert!(rmp_serde::from_slice::<Envelope>(&broken).is_err());
    }
}
