//! Message search: `GET /api/search` bodies, its limits, and the one matching rule both
//! the server and the clients apply, so what the server found and what a client marks
//! in it are the same words.
//!
//! The rule: a query is split at whitespace into terms, and a message matches when its
//! body holds every term, in any case. A term of letters and digits in a script written
//! with spaces (Latin, Cyrillic, Greek, ...) must start a word there ("meet" finds
//! "Meeting" but not "greeting"); any other term (Chinese, Japanese, Thai, or one holding
//! punctuation such as "e-mail") is found anywhere, since those scripts do not mark words.

use crate::ids::{MessageId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest query, in characters (after trimming).
pub const SEARCH_QUERY_MAX: usize = 200;
/// Most terms (whitespace-separated words) in a query.
pub const SEARCH_TERMS_MAX: usize = 10;
/// Hits per page when `limit` is absent.
pub const SEARCH_PAGE_DEFAULT: u32 = 20;
/// Most hits per page.
pub const SEARCH_PAGE_MAX: u32 = 50;

/// The order of the hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "lowercase")]
pub enum SearchOrder {
    /// Newest message first.
    #[default]
    Newest,
    /// Best match first (the database's relevance rank), among a window of the newest
    /// matches; ties newest first.
    Best,
}

/// Where a term occurs in a hit's body: `start..end` in characters (Unicode scalar
/// values, not bytes or UTF-16 units), `end` exclusive. Ranges are sorted and never
/// overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Highlight {
    pub start: u32,
    pub end: u32,
}

/// One message found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Its place in the room's timeline (open the room around it).
    pub seq: u64,
    /// None only for system messages without a user behind them.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub author: Option<UserId>,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub edited_at: Option<OffsetDateTime>,
    /// The matched words in `body`, to mark (render them as text, never as HTML).
    pub highlights: Vec<Highlight>,
}

/// `GET /api/search`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Pass as `cursor` (with the same query) for more; absent when there is no more.
    /// A page may hold fewer than `limit` hits and still have a cursor: each request
    /// looks through a bounded number of candidates.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// One term of a query, lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The term in lowercase.
    pub text: String,
    /// True: must start a word. False: found anywhere.
    pub word: bool,
}

impl Term {
    /// Its length in characters.
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }
}

/// A query's terms: split at whitespace, lowercased, duplicates dropped.
pub fn terms(q: &str) -> Vec<Term> {
    let mut out: Vec<Term> = Vec::new();
    for raw in q.split_whitespace() {
        let text = raw.to_lowercase();
        let word = text.chars().all(|c| c.is_alphanumeric() && !is_unspaced(c));
        if !out.iter().any(|t| t.text == text) {
            out.push(Term { text, word });
        }
    }
    out
}

/// Characters of scripts written without spaces between words (CJK ideographs, kana,
/// Thai, Lao, Khmer, Myanmar), where a term is found anywhere.
pub fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3000..=0x30FF // CJK punctuation, Hiragana, Katakana
        | 0x31F0..=0x31FF // Katakana extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF65..=0xFF9F // half-width Katakana
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

/// The body folded to lowercase one character at a time, each folded character with
/// the index of the character it came from (lowercasing can lengthen a character).
fn folded(body: &str) -> (Vec<char>, Vec<usize>, Vec<char>) {
    let original: Vec<char> = body.chars().collect();
    let mut chars = Vec::with_capacity(original.len());
    let mut from = Vec::with_capacity(original.len());
    for (i, c) in original.iter().enumerate() {
        for l in c.to_lowercase() {
            chars.push(l);
            from.push(i);
        }
    }
    (chars, from, original)
}

/// Whether `c` is part of a word for the word-start rule: a term that must start a word
/// matches only where the character before it is not one.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced(c)
}

/// Every place each term occurs in `body` under the matching rule, merged, in
/// characters of `body`; empty when some term does not occur (the body does not match).
pub fn highlights(body: &str, terms: &[Term]) -> Vec<Highlight> {
    if terms.is_empty() {
        return Vec::new();
    }
    let (chars, from, original) = folded(body);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for term in terms {
        let needle: Vec<char> = term.text.chars().collect();
        if needle.is_empty() || needle.len() > chars.len() {
            return Vec::new();
        }
        let mut found = false;
        for at in 0..=chars.len() - needle.len() {
            if chars[at..at + needle.len()] != needle[..] {
                continue;
            }
            let start = from[at];
            if term.word && start > 0 && is_word_char(original[start - 1]) {
                continue;
            }
            // A folded match may begin inside a lengthened character's expansion: mark
            // the whole character.
            ranges.push((start, from[at + needle.len() - 1] + 1));
            found = true;
        }
        if !found {
            return Vec::new();
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<Highlight> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        let (start, end) = (to_u32(start), to_u32(end));
        match merged.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => merged.push(Highlight { start, end }),
        }
    }
    merged
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether `body` matches every term.
pub fn matches(body: &str, terms: &[Term]) -> bool {
    !highlights(body, terms).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(body: &str, q: &str) -> Vec<String> {
        let chars: Vec<char> = body.chars().collect();
        highlights(body, &terms(q))
            .iter()
            .map(|h| chars[h.start as usize..h.end as usize].iter().collect())
            .collect()
    }

    #[test]
    fn words_match_at_word_starts_in_any_case() {
        assert_eq!(marked("Meeting at noon", "meet"), ["Meet"]);
        assert!(marked("a greeting", "meet").is_empty());
        assert_eq!(marked("world-wide web", "wide"), ["wide"]);
        assert_eq!(
            marked("ПРИВЕТ, мир! Привет", "привет"),
            ["ПРИВЕТ", "Привет"]
        );
    }

    #[test]
    fn every_term_must_occur() {
        assert_eq!(
            marked("budget review today", "review budget"),
            ["budget", "review"]
        );
        assert!(marked("budget only", "budget review").is_empty());
    }

    #[test]
    fn unspaced_scripts_and_punctuation_match_anywhere() {
        assert_eq!(marked("明天开会议，会议室见", "会议"), ["会议", "会议"]);
        assert_eq!(marked("send an E-mail", "e-mail"), ["E-mail"]);
        assert!(terms("会议")[0].text == "会议" && !terms("会议")[0].word);
    }

    #[test]
    fn offsets_count_characters_and_overlaps_merge() {
        let h = highlights("ü meeting meet", &terms("meet meeting"));
        assert_eq!(
            h,
            [
                Highlight { start: 2, end: 9 },
                Highlight { start: 10, end: 14 }
            ]
        );
    }

    #[test]
    fn lengthening_lowercase_keeps_offsets_in_the_original() {
        // 'İ' lowercases to two characters; the mark still covers the original one.
        assert_eq!(marked("İstanbul", "i̇stanbul"), ["İstanbul"]);
        assert_eq!(marked("xİ istanbul", "istanbul"), ["istanbul"]);
    }
}
