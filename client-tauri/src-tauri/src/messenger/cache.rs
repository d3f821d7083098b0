//! The last state shown, kept for the next start: each room's newest page of messages and
//! the composer's drafts, in the outbox's SQLite file (beside the room list the messenger
//! saves as JSON). At start-up, before this run's first catch-up, a room opens with its
//! cached page (marked `cached`, so the UI replaces it when `synced` arrives); drafts
//! survive restarts.
//!
//! Pages are written behind the events: a room touched by a message or room event (or
//! every room, at a catch-up) is marked dirty, and a task writes the dirty rooms' pages
//! and the room list a moment later, so a burst of messages costs one write per room.

use super::{Inner, Messenger, PAGE, Result, contiguous, lock};
use crate::error::AppError;
use serde::Serialize;
use shared::RoomId;
use shared::api::{MESSAGE_BODY_MAX, Message};
use specta::Type;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long after a change the dirty pages are written (a burst costs one write).
const FLUSH_AFTER: Duration = Duration::from_millis(1500);

/// A room's draft, as the composer left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct DraftView {
    pub room_id: RoomId,
    pub body: String,
}

/// Rooms whose cached page is behind the model, and the flusher's wake-up.
#[derive(Debug, Default)]
pub(super) struct PageCache {
    dirty: Mutex<HashSet<RoomId>>,
    wake: Notify,
}

impl PageCache {
    pub(super) fn touch(&self, room: RoomId) {
        lock(&self.dirty).insert(room);
        self.wake.notify_one();
    }

    pub(super) fn touch_all(&self, rooms: impl IntoIterator<Item = RoomId>) {
        lock(&self.dirty).extend(rooms);
        self.wake.notify_one();
    }
}

/// The newest contiguous run of at most a page, ascending seq.
fn newest_page(messages: &[Message]) -> &[Message] {
    let tail = &messages[messages.len().saturating_sub(PAGE as usize)..];
    let gap = tail
        .windows(2)
        .rposition(|w| w[1].seq != w[0].seq + 1)
        .map_or(0, |i| i + 1);
    &tail[gap..]
}

impl Inner {
    /// Writes the dirty rooms' newest pages (a failure costs only the cache).
    pub(super) async fn flush_cache(&self) {
        let dirty: Vec<RoomId> = lock(&self.cache.dirty).drain().collect();
        // The room list too, so a room made or changed since the last catch-up is on the
        // rail at the next start (before this run's first catch-up the model is empty and
        // the saved list stays).
        if !dirty.is_empty() && self.conn.resyncs() > 0 {
            self.save_rooms();
        }
        for room in dirty {
            let written = if self.conn.room(room).is_none() {
                self.conn.outbox().forget_room(self.me, room).await
            } else {
                let messages = self.conn.messages(room);
                let page = newest_page(&messages);
                if page.is_empty() {
                    continue;
                }
                self.conn.outbox().cache_page(self.me, room, page).await
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, %room, "cannot cache the room's page");
            }
        }
    }

    /// Keeps a newest page the server sent (the model may not hold it).
    pub(super) fn cache_latest(self: &Arc<Self>, room: RoomId, messages: &[Message]) {
        if messages.is_empty() || !contiguous(messages) {
            return;
        }
        let page = newest_page(messages).to_vec();
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = inner.conn.outbox().cache_page(inner.me, room, &page).await {
                tracing::warn!(error = %e, %room, "cannot cache the room's page");
            }
        });
    }

    /// The room's cached page when this run has not caught up yet (empty otherwise).
    pub(super) async fn cached_page(&self, room: RoomId) -> Vec<Message> {
        if self.conn.resyncs() > 0 {
            return Vec::new();
        }
        self.conn
            .outbox()
            .cached_page(self.me, room)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, %room, "cannot read the room's cached page");
                Vec::new()
            })
    }
}

/// Writes dirty pages a moment after they change, until aborted.
pub(super) async fn flusher(inner: Arc<Inner>) {
    loop {
        inner.cache.wake.notified().await;
        tokio::time::sleep(FLUSH_AFTER).await;
        inner.flush_cache().await;
    }
}

impl Messenger {
    /// My drafts, by room, as the composer left them (also in an earlier run).
    pub async fn drafts(&self) -> Result<Vec<DraftView>> {
        let drafts = self
            .inner
            .conn
            .outbox()
            .drafts(self.inner.me)
            .await
            .map_err(storage)?;
        Ok(drafts
            .into_iter()
            .map(|(room_id, body)| DraftView { room_id, body })
            .collect())
    }

    /// Keeps `body` as the room's draft (empty: none).
    pub async fn set_draft(&self, room: RoomId, body: &str) -> Result<()> {
        if body.chars().count() > MESSAGE_BODY_MAX {
            return Err(AppError::field(
                "body",
                format!("A draft is at most {MESSAGE_BODY_MAX} characters."),
            ));
        }
        self.conversation(room)?;
        self.inner
            .conn
            .outbox()
            .set_draft(self.inner.me, room, body)
            .await
            .map_err(storage)
    }
}

fn storage(e: confab_core::outbox::OutboxError) -> AppError {
    AppError::Server {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::MessageKind;
    use shared::{MessageId, UserId};

    fn message(seq: u64) -> Message {
        Message {
            id: MessageId::new(),
            room_id: RoomId::new(),
            seq,
            rev: seq,
            kind: MessageKind::Text,
            author: Some(UserId::new()),
            body: format!("m{seq}"),
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mentions_everyone: false,
            attachments: Vec::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            edited_at: None,
            deleted: false,
            client_id: None,
            author_blocked: false,
        }
    }

    fn seqs(m: &[Message]) -> Vec<u64> {
        m.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn the_cached_page_is_the_newest_contiguous_run_of_a_page_at_most() {
        let few: Vec<_> = (1..=3).map(message).collect();
        assert_eq!(seqs(newest_page(&few)), vec![1, 2, 3]);
        let many: Vec<_> = (1..=120).map(message).collect();
        assert_eq!(seqs(newest_page(&many)), (71..=120).collect::<Vec<_>>());
        // A jump (an older window loaded, then live ones): only the run after it.
        let gap: Vec<_> = [1, 2, 3, 10, 11].into_iter().map(message).collect();
        assert_eq!(seqs(newest_page(&gap)), vec![10, 11]);
        assert!(newest_page(&[]).is_empty());
    }
}
