//! `GET /api/search`: messages of every room I am in, with their matched words.

use super::{ApiClient, ApiError, NO_BODY, json};
use reqwest::Method;
use shared::search::{SearchOrder, SearchPage};
use shared::{RoomId, UserId};

/// A search and its filters (absent ones are not sent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The words (every one must occur).
    pub q: String,
    pub room: Option<RoomId>,
    pub author: Option<UserId>,
    /// `YYYY-MM-DD`, inclusive.
    pub after: Option<String>,
    /// `YYYY-MM-DD`, exclusive.
    pub before: Option<String>,
    pub order: Option<SearchOrder>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl SearchQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("q", self.q.trim().to_owned())];
        let mut opt = |name, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                out.push((name, v));
            }
        };
        opt("room", self.room.map(|r| r.to_string()));
        opt("author", self.author.map(|a| a.to_string()));
        opt("after", self.after.clone());
        opt("before", self.before.clone());
        opt(
            "order",
            self.order.map(|o| match o {
                SearchOrder::Newest => "newest".to_owned(),
                SearchOrder::Best => "best".to_owned(),
            }),
        );
        opt("limit", self.limit.map(|l| l.to_string()));
        opt("cursor", self.cursor.clone());
        out
    }
}

impl ApiClient {
    /// One page of hits, newest (or best) first.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, ApiError> {
        let resp = self
            .authed_with(
                Method::GET,
                &["api", "search"],
                &query.pairs(),
                None,
                NO_BODY,
            )
            .await?;
        json(resp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_given_are_sent() {
        let q = SearchQuery {
            q: " budget review ".into(),
            order: Some(SearchOrder::Best),
            cursor: Some(String::new()),
            ..SearchQuery::default()
        };
        assert_eq!(
            q.pairs(),
            [
                ("q", "budget review".to_owned()),
                ("order", "best".to_owned())
            ]
        );
    }
}
