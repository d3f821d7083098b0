//! Message search for the window: the server's hits with their conversation's title and
//! the author's name, and the matched words as UTF-16 ranges (what JavaScript strings
//! index), so the window marks exactly the words the server matched.

use super::{Messenger, Result};
use crate::views::rfc3339;
use confab_core::api::SearchQuery;
use serde::{Deserialize, Serialize};
use shared::api::RoomKind;
use shared::search::{Highlight, SearchHit, SearchOrder};
use shared::{MessageId, RoomId, UserId};
use specta::Type;

/// A matched stretch of a hit's body, in UTF-16 code units, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Type)]
pub struct MarkView {
    pub start: u32,
    pub end: u32,
}

/// One message found.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitView {
    pub message_id: MessageId,
    pub room_id: RoomId,
    /// "# general · Rust Readers", a group's title, or the other person's name.
    pub room_title: String,
    pub seq: u64,
    pub author_id: Option<UserId>,
    pub author_name: Option<String>,
    /// The author's avatar path on the server, when known.
    pub author_avatar_url: Option<String>,
    pub body: String,
    pub marks: Vec<MarkView>,
    pub created_at: String,
}

/// A search's filters as the window's form gives them; absent ones are not applied.
#[derive(Clone, Debug, Default, Deserialize, Type)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchFilters {
    /// Only this conversation's or channel's messages.
    pub room_id: Option<RoomId>,
    /// Only this person's messages.
    pub author_id: Option<UserId>,
    /// `YYYY-MM-DD`: sent on or after this day (UTC).
    pub after: Option<String>,
    /// `YYYY-MM-DD`: sent before this day (UTC).
    pub before: Option<String>,
    /// Newest first (the default) or best match first.
    pub order: Option<SearchOrder>,
}

/// A page of hits, newest first.
#[derive(Clone, Debug, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    pub hits: Vec<SearchHitView>,
    /// Pass back (with the same words) for more.
    pub next_cursor: Option<String>,
}

/// Character ranges (Unicode scalar values) as UTF-16 ranges of the same text.
pub fn utf16_marks(body: &str, highlights: &[Highlight]) -> Vec<MarkView> {
    // The UTF-16 offset of every character boundary.
    let mut at = Vec::with_capacity(body.len() + 1);
    let mut units = 0u32;
    for c in body.chars() {
        at.push(units);
        units += u32::try_from(c.len_utf16()).unwrap_or(2);
    }
    at.push(units);
    let pos = |i: u32| at.get(i as usize).copied().unwrap_or(units);
    highlights
        .iter()
        .filter(|h| h.start < h.end)
        .map(|h| MarkView {
            start: pos(h.start),
            end: pos(h.end),
        })
        .collect()
}

impl Messenger {
    /// Messages with every word of `q` in my rooms, narrowed by `filters`, newest (or
    /// best match) first.
    pub async fn search(
        &self,
        q: &str,
        filters: SearchFilters,
        cursor: Option<String>,
    ) -> Result<SearchResults> {
        let day = |d: Option<String>| d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        let page = self
            .inner
            .conn
            .api()
            .search(&SearchQuery {
                q: q.trim().to_owned(),
                room: filters.room_id,
                author: filters.author_id,
                after: day(filters.after),
                before: day(filters.before),
                order: filters.order,
                cursor,
                ..SearchQuery::default()
            })
            .await?;
        Ok(SearchResults {
            hits: page.hits.into_iter().map(|h| self.hit_view(h)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    fn room_title(&self, room: RoomId) -> String {
        let conn = &self.inner.conn;
        let Some(summary) = conn.room(room) else {
            return "A conversation you left".into();
        };
        match summary.room.kind {
            RoomKind::Direct => summary
                .other_user
                .map(|u| u.display_name.unwrap_or(u.username))
                .unwrap_or_default(),
            RoomKind::Channel => match conn.community_of(room).and_then(|c| conn.community(c)) {
                Some(c) => format!("# {} · {}", summary.room.title, c.summary.community.name),
                None => format!("# {}", summary.room.title),
            },
            RoomKind::Group => summary.room.title,
        }
    }

    fn hit_view(&self, h: SearchHit) -> SearchHitView {
        SearchHitView {
            marks: utf16_marks(&h.body, &h.highlights),
            message_id: h.id,
            room_title: self.room_title(h.room_id),
            room_id: h.room_id,
            seq: h.seq,
            author_name: h.author.and_then(|a| self.inner.name(a)),
            author_avatar_url: h.author.and_then(|a| self.inner.avatar(a)),
            author_id: h.author,
            body: h.body,
            created_at: rfc3339(h.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::search::{highlights, terms};

    #[test]
    fn marks_count_utf16_units_like_javascript() {
        // "😀" is one character but two UTF-16 units; the mark after it moves by two.
        let body = "😀 meeting at noon, Привет";
        let marks = utf16_marks(body, &highlights(body, &terms("meet привет")));
        let units: Vec<u16> = body.encode_utf16().collect();
        let text: Vec<String> = marks
            .iter()
            .map(|m| String::from_utf16_lossy(&units[m.start as usize..m.end as usize]))
            .collect();
        assert_eq!(text, ["meet", "Привет"]);
    }
}
