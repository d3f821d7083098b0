//! Several nodes as one server (`--redis-url`): every node's hub publishes the events
//! for users to one Redis channel, and every node delivers what the others published to
//! its own connections.
//!
//! What the nodes share lives in Redis under `--redis-prefix`:
//! - `PREFIX:bus`: the pub/sub channel of events ([`Event`] in an [`Envelope`]).
//! - `PREFIX:nodes`: the set of node ids; `PREFIX:node:ID`: a node's liveness, a key
//!   refreshed every [`HEARTBEAT`] that expires after [`NODE_TTL`].
//! - `PREFIX:presence:ID`: a hash of the users connected to that node and their
//!   presence there.
//!
//! Each node mirrors the others' presence in its hub (so presence answers need no round
//! trip), updates the mirror from the events, and rebuilds it from the hashes whenever
//! its subscription (re)starts. A node whose liveness key expired is dropped: its users'
//! presence changes, which every node announces to its own connections.
//!
//! The database stays the source of truth for everything durable: an event lost while
//! Redis is away costs latency, never data (clients catch up through `/changes`).

use crate::db;
use crate::state::AppState;
use crate::ws::hub::Hub;
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use shared::api::PresenceStatus;
use shared::{ParticipantId, SessionId, UserId};
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

/// What one node tells the others.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    /// A serialized `ServerMsg` for every connection of `users` (but `except`).
    Users {
        users: Vec<UserId>,
        except: Option<ParticipantId>,
        msg: String,
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
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: String,
    #[serde(flatten)]
    event: Event,
}

/// What the publisher task does, in the order the hub asked.
#[derive(Debug)]
enum Out {
    Publish(String),
    Presence {
        user: UserId,
        status: PresenceStatus,
        payload: String,
    },
    Resync(Vec<(UserId, PresenceStatus)>),
}

/// The hub's side of the cluster: queues events for the publisher, never waits.
#[derive(Debug)]
pub struct Link {
    pub node: String,
    keys: Keys,
    tx: mpsc::Sender<Out>,
    /// Subscribed and synced with Redis (false: degraded, serving this node's users).
    healthy: AtomicBool,
}

impl Link {
    /// Queues an event for the other nodes.
    pub fn publish(&self, event: &Event) {
        self.queue(Out::Publish(self.envelope(event)));
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

    /// Queues a rewrite of this node's presence hash from a snapshot.
    pub fn resync(&self, snapshot: Vec<(UserId, PresenceStatus)>) {
        self.queue(Out::Resync(snapshot));
    }

    /// Whether Redis answers and this node is subscribed.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    fn envelope(&self, event: &Event) -> String {
        let envelope = EnvelopeRef {
            node: &self.node,
            event,
        };
        // Ids, numbers and strings only: serializing cannot fail.
        serde_json::to_string(&envelope).unwrap_or_default()
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
    #[serde(flatten)]
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
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let node = uuid::Uuid::new_v4().simple().to_string();
    let keys = Keys {
        prefix: prefix.to_owned(),
    };
    let link = Arc::new(Link {
        node: node.clone(),
        keys: keys.clone(),
        tx,
        healthy: AtomicBool::new(false),
    });
    state.hub.attach(link.clone());
    tracing::info!(%node, prefix, "joining the cluster");
    state
        .tasks
        .spawn(publisher(conn.clone(), keys.clone(), node.clone(), rx));
    state.tasks.spawn(subscriber(
        state.clone(),
        client,
        conn.clone(),
        link.clone(),
    ));
    state.tasks.spawn(heartbeat(state.clone(), conn, link));
    Ok(())
}

/// Sends what the hub queued, in order, many commands to a pipeline.
async fn publisher(
    mut conn: ConnectionManager,
    keys: Keys,
    node: String,
    mut rx: mpsc::Receiver<Out>,
) {
    let bus = keys.bus();
    let hash = keys.presence(&node);
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut published = 0u64;
        for out in batch.drain(..) {
            match out {
                Out::Publish(payload) => {
                    pipe.publish(&bus, payload).ignore();
                    published += 1;
                }
                Out::Presence {
                    user,
                    status,
                    payload,
                } => {
                    if status == PresenceStatus::Offline {
                        pipe.hdel(&hash, user.to_string()).ignore();
                    } else {
                        pipe.hset(&hash, user.to_string(), status_name(status))
                            .ignore();
                    }
                    pipe.publish(&bus, payload).ignore();
                    published += 1;
                }
                Out::Resync(snapshot) => {
                    pipe.del(&hash).ignore();
                    let fields: Vec<(String, &str)> = snapshot
                        .iter()
                        .map(|(u, s)| (u.to_string(), status_name(*s)))
                        .collect();
                    if !fields.is_empty() {
                        pipe.hset_multiple(&hash, &fields).ignore();
                    }
                    pipe.set_ex(keys.node(&node), 1, NODE_TTL.as_secs())
                        .ignore();
                    pipe.sadd(keys.nodes(), &node).ignore();
                    let hello = serde_json::to_string(&EnvelopeRef {
                        node: &node,
                        event: &Event::Hello,
                    })
                    .unwrap_or_default();
                    pipe.publish(&bus, hello).ignore();
                }
            }
        }
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => metrics::counter!("confab_cluster_published_total").increment(published),
            Err(e) => {
                metrics::counter!("confab_cluster_dropped_total").increment(published);
                tracing::debug!(error = %e, "publishing to Redis failed");
            }
        }
    }
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
            pubsub.subscribe(link.keys.bus()).await?;
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
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    on_event(&state, &mut conn, &link, &payload).await;
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

async fn on_event(state: &AppState, conn: &mut ConnectionManager, link: &Link, payload: &str) {
    let Ok(envelope) = serde_json::from_str::<Envelope>(payload) else {
        tracing::debug!("an unreadable event on the cluster bus");
        return;
    };
    if envelope.node == link.node {
        return;
    }
    metrics::counter!("confab_cluster_received_total").increment(1);
    let hub = &state.hub;
    match envelope.event {
        Event::Users { users, except, msg } => hub.deliver_here(&users, except, msg.into()),
        Event::Presence { user, status } => {
            // The sending node announces the change itself; this only keeps the mirror.
            hub.set_remote(&envelope.node, user, status);
        }
        Event::KickSession { session, code } => hub.kick_session_here(session, code),
        Event::KickUser { user, code } => hub.kick_user_here(user, code),
        Event::Hello => {
            let users = load_node(conn, &link.keys, &envelope.node).await;
            if let Some(users) = users {
                let changed = hub.replace_remote(&envelope.node, Some(users));
                announce_here(state, hub, changed).await;
            }
        }
    }
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
            .set_ex(keys.node(&link.node), 1, NODE_TTL.as_secs())
            .ignore()
            .sadd(keys.nodes(), &link.node)
            .ignore()
            .expire(keys.presence(&link.node), 6 * NODE_TTL.as_secs() as i64)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        if refreshed.is_err() || !link.healthy() {
            healthy_since = None;
            continue;
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
                    tracing::info!(%node, "a node's liveness expired: dropping its users");
                    let _ = redis::pipe()
                        .srem(keys.nodes(), &node)
                        .ignore()
                        .del(keys.presence(&node))
                        .ignore()
                        .query_async::<()>(&mut conn)
                        .await;
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
    let _ = redis::pipe()
        .del(link.keys.node(&link.node))
        .ignore()
        .del(link.keys.presence(&link.node))
        .ignore()
        .srem(link.keys.nodes(), &link.node)
        .ignore()
        .query_async::<()>(&mut conn)
        .await;
}
