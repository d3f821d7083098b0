//! Message search, one interface over two engines: SQLite FTS5 and PostgreSQL full-text
//! search. The matching rule is `shared::search`'s (every term, in any case, at a word
//! start or, for unspaced scripts and punctuation, anywhere); the engines only narrow
//! the candidates, and every candidate is checked against the rule in Rust, which also
//! finds the highlights. So both backends answer the same hits for the same messages.
//!
//! The schema is not in `migrations/` because the two engines share no DDL: [`ensure`]
//! applies each backend's own, idempotently, right after the migrations, in one
//! transaction (so an upgrade is all or nothing), and back-fills what is already stored.
//!
//! SQLite: an FTS5 table with the trigram tokenizer (any script: a term of 3 or more
//! characters is a substring lookup, which covers word starts, Cyrillic and CJK alike),
//! contentless (the text is in `messages` already), kept in step by triggers on
//! `messages` (send, edit, delete: a deletion empties the body and so leaves the index).
//! Its rowids are `message_search.doc`, an `integer primary key` of our own: the implicit
//! rowid of `messages` (text primary key) may be renumbered by `vacuum`, and
//! `confab-server backup` is a `vacuum into`.
//!
//! PostgreSQL: two expression indexes on `messages`, which PostgreSQL keeps up to date on
//! every insert and update by itself and builds over the existing rows when created:
//! GIN on the body's words by the rule (see [`PostgresWords`]: word-prefix lookups and the
//! `best` rank; the `simple` configuration lowercases without stemming, neutral for every
//! language) and GIN trigrams (`pg_trgm`) on `body` for terms in unspaced scripts or with
//! punctuation.
//!
//! Terms the engine cannot index (SQLite: shorter than 3 characters; PostgreSQL: a
//! substring term shorter than 3) narrow nothing; when no term narrows, the search walks
//! the readable messages newest first and checks each. Every request looks at a bounded
//! number of candidates and answers with a cursor to go on, so a query that narrows
//! little costs pages, not seconds.
//!
//! Who may see a hit is decided in the same statement, at query time: the searcher's
//! `room_members` rows now (a room left is gone at once), not deleted, and not by someone
//! the searcher blocks.

use anyhow::Context;
use sha2::Digest;
use shared::search::Term;
use shared::{RoomId, UserId};
use sqlx::{AnyPool, FromRow};

/// Which engine a pool runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The pool's backend, from its URL.
    pub fn of(pool: &AnyPool) -> Self {
        if pool.connect_options().database_url.scheme() == "sqlite" {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }
}

/// Creates the search schema of `pool`'s backend if it is missing, indexing the messages
/// already stored. Safe to run on every start and from several nodes at once.
pub async fn ensure(pool: &AnyPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    match Backend::of(pool) {
        Backend::Sqlite => {
            let existed: i64 = sqlx::query_scalar(
                "select count(*) from sqlite_master where type = 'table' and name = 'message_search'",
            )
            .fetch_one(&mut *tx)
            .await?;
            let words_existed: i64 = sqlx::query_scalar(
                "select count(*) from sqlite_master where type = 'table' and name = 'message_words'",
            )
            .fetch_one(&mut *tx)
            .await?;
            for statement in sqlite_schema() {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
            if existed == 0 {
                // Back-fill, oldest first, so `doc` follows time as it does for new ones.
                sqlx::query(
                    "insert into message_search (message_id, room_id) \
                     select id, room_id from messages order by created_at, room_id, seq",
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "insert into message_fts (rowid, body) \
                     select s.doc, m.body from message_search s \
                     join messages m on m.id = s.message_id where m.body <> ''",
                )
                .execute(&mut *tx)
                .await?;
            }
            if words_existed == 0 {
                // New, or a database from before the word index: every body in it.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "insert into message_words (rowid, body) \
                     select s.doc, {} from message_search s \
                     join messages m on m.id = s.message_id where m.body <> ''",
                    word_index_text("m.body")
                )))
                .execute(&mut *tx)
                .await?;
            }
        }
        Backend::Postgres => {
            // Nodes starting together would race on `create ... if not exists` (it is not
            // atomic against a concurrent create); this lock takes them one at a time.
            sqlx::query("select pg_advisory_xact_lock(7171010)")
                .execute(&mut *tx)
                .await?;
            for statement in postgres_schema() {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
            PostgresWords::get().drop_others(&mut tx).await?;
        }
    }
    tx.commit().await.context("creating the search index")?;
    Ok(())
}

/// The SQLite schema, in order. Tables and the index are created if missing; the
/// triggers are replaced on every start (a trigger is created once by name, so an upgrade
/// that changes what they do must drop the old ones).
fn sqlite_schema() -> Vec<String> {
    let mut schema: Vec<String> = [
        // One row per message: the FTS rowid (`doc`, in the order messages arrive, so
        // newest first is `doc` descending) and the room, to check membership without
        // the message.
        "create table if not exists message_search ( \
             doc integer primary key, \
             message_id text not null unique, \
             room_id text not null)",
        "create index if not exists message_search_by_room on message_search (room_id, doc)",
        // Contentless (the body is in `messages`), with deletes (SQLite 3.43+; the bundled
        // one is newer); trigram folds case in every script and finds any substring of 3+
        // characters.
        "create virtual table if not exists message_fts using fts5( \
             body, content = '', contentless_delete = 1, tokenize = 'trigram')",
        // Words (see [`word_indexable`]): a term is one doclist, where the trigram index
        // intersects one per three letters (a rare word of 12 letters: 16 ms, here
        // 0.1 ms). A term matches a word's start, so every lookup is a prefix, and FTS5
        // merges the doclists of every word with that prefix before it gives the first
        // (30 ms for a word in 40 % of messages); the prefix indexes hold each prefix of
        // 1 to 8 characters as a doclist of its own, read newest first and only as far
        // as needed. A longer term looks up its first 8 characters. Only which docs hold
        // a word (`detail = none`: no phrases here). Case is folded, marks are kept (the
        // rule matches "é" only as "é"). 1,000,000 messages: 69 MB (the trigram index:
        // 161 MB), built in 13 s.
        "create virtual table if not exists message_words using fts5( \
             body, content = '', contentless_delete = 1, detail = none, \
             prefix = '1 2 3 4 5 6 7 8', tokenize = 'unicode61 remove_diacritics 0')",
        // Before the word index: one set of triggers, for the trigram index alone.
        "drop trigger if exists message_search_insert",
        "drop trigger if exists message_search_update",
        "drop trigger if exists message_search_delete",
        "drop trigger if exists message_index_insert",
        "drop trigger if exists message_index_update",
        "drop trigger if exists message_index_delete",
    ]
    .map(str::to_owned)
    .into();
    // The new text into both indexes, and the old text out of both.
    let words = word_index_text("new.body");
    let index_new = format!(
        "insert into message_fts (rowid, body) \
             select doc, new.body from message_search \
             where message_id = new.id and new.body <> ''; \
         insert into message_words (rowid, body) \
             select doc, {words} from message_search \
             where message_id = new.id and new.body <> '';"
    );
    let unindex_old = "delete from message_fts where old.body <> '' \
             and rowid = (select doc from message_search where message_id = old.id); \
         delete from message_words where old.body <> '' \
             and rowid = (select doc from message_search where message_id = old.id);";
    schema.push(format!(
        "create trigger message_index_insert after insert on messages begin \
             insert into message_search (message_id, room_id) values (new.id, new.room_id); \
             {index_new} \
         end"
    ));
    // An edit, and a deletion (which empties the body): out with the old text, in with
    // the new one if any.
    schema.push(format!(
        "create trigger message_index_update after update of body on messages \
         when new.body is not old.body begin \
             {unindex_old} \
             {index_new} \
         end"
    ));
    // Rows go when their room does (a cascade fires this trigger too).
    schema.push(format!(
        "create trigger message_index_delete after delete on messages begin \
             {unindex_old} \
             delete from message_search where message_id = old.id; \
         end"
    ));
    schema
}

/// Whether the word index can look up a term holding `c` (lowercased): a letter or digit
/// of Latin (ASCII, Latin-1, Extended-A, Romanian's ș and ț), Greek or Cyrillic that
/// SQLite's `unicode61` tokenizer keeps inside a word and folds as Rust lowercases: for
/// these (checked over every code point against SQLite 3.51), every body where the
/// matching rule finds the term at a word start holds a word the term is a prefix of.
/// Terms with other characters go to the trigram index as before.
fn word_indexable(c: char) -> bool {
    match c {
        '0'..='9' | 'a'..='z' | '\u{219}' | '\u{21B}' | '\u{430}'..='\u{45F}' => true,
        '\u{DF}'..='\u{FF}' => c != '\u{F7}',
        // ſ: SQLite folds it to s, Rust keeps it.
        '\u{100}'..='\u{17E}' => c.is_lowercase(),
        // ς: SQLite folds it to σ, Rust keeps it.
        '\u{3AC}'..='\u{3CE}' => c != '\u{3C2}',
        _ => false,
    }
}

/// The token a glued body is indexed with besides its words (see [`word_index_text`]):
/// every lookup in the word index asks for it too, so those bodies are always candidates
/// (and checked in Rust like every candidate).
const GLUED: &str = "0glued";

/// Characters after which both SQLite's tokenizer and the matching rule see a word
/// start, or neither does: SQLite starts a word after everything it does not count as a
/// word character, and the rule after everything but letters and digits of spaced
/// scripts, so these are SQLite's separators and those letters and digits (Unicode 14's
/// L* and N*), in the blocks a Latin, Greek or Cyrillic word is likely to follow.
/// Derived over every code point against SQLite 3.51; ranges under 4 characters left
/// out (they only make more bodies glued). Outside them: CJK and kana, Thai, combining
/// marks, emoji modifiers, private use, unassigned code points, which SQLite takes as
/// part of a word.
const WORD_START_AFTER: &[(u32, u32)] = &[
    (0x9, 0x2FF),
    (0x370, 0x377),
    (0x37A, 0x37F),
    (0x384, 0x38A),
    (0x38E, 0x3A1),
    (0x3A3, 0x52F),
    (0x1E00, 0x1F15),
    (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45),
    (0x1F48, 0x1F4D),
    (0x1F50, 0x1F57),
    (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4),
    (0x1FB6, 0x1FC4),
    (0x1FC6, 0x1FD3),
    (0x1FD6, 0x1FDB),
    (0x1FDD, 0x1FEF),
    (0x1FF6, 0x1FFE),
    (0x2000, 0x2064),
    (0x206A, 0x2071),
    (0x2074, 0x208E),
    (0x2090, 0x209C),
    (0x20A0, 0x20B9),
    (0x20D0, 0x20F0),
    (0x2100, 0x2189),
    (0x2190, 0x23F3),
    (0x2400, 0x2426),
    (0x2440, 0x244A),
    (0x2460, 0x26FF),
    (0x2701, 0x2B4C),
    (0x2B50, 0x2B59),
    (0x3000, 0x3004),
    (0x3008, 0x3020),
    (0x302A, 0x3030),
    (0xFF01, 0xFF64),
    (0x1F000, 0x1F02B),
    (0x1F030, 0x1F093),
    (0x1F0A0, 0x1F0AE),
    (0x1F0B1, 0x1F0BE),
    (0x1F0C1, 0x1F0CF),
    (0x1F0D1, 0x1F0DF),
    (0x1F100, 0x1F10C),
    (0x1F110, 0x1F12E),
    (0x1F130, 0x1F16B),
    (0x1F170, 0x1F19A),
    (0x1F1E6, 0x1F202),
    (0x1F210, 0x1F23A),
    (0x1F240, 0x1F248),
    (0x1F300, 0x1F320),
    (0x1F330, 0x1F335),
    (0x1F337, 0x1F37C),
    (0x1F380, 0x1F393),
    (0x1F3A0, 0x1F3C4),
    (0x1F3C6, 0x1F3CA),
    (0x1F3E0, 0x1F3F0),
    (0x1F400, 0x1F43E),
    (0x1F442, 0x1F4F7),
    (0x1F4F9, 0x1F4FC),
    (0x1F500, 0x1F53D),
    (0x1F540, 0x1F543),
    (0x1F550, 0x1F567),
    (0x1F5FB, 0x1F640),
    (0x1F645, 0x1F64F),
    (0x1F680, 0x1F6C5),
    (0x1F700, 0x1F773),
];

/// What the word index holds for `body` (an SQL expression): the body, and [`GLUED`]
/// too when SQLite could miss a word start the rule sees: a character outside
/// [`WORD_START_AFTER`] right before an indexable letter or digit in any case (as in
/// "用Zoom开会", one word to SQLite), or an İ (Rust lowercases it to two characters,
/// SQLite keeps it). Checked with `glob`, whose classes are code point ranges.
fn word_index_text(body: &str) -> String {
    let range = |(lo, hi): (u32, u32)| {
        let c = |u| char::from_u32(u).unwrap_or('\u{FFFD}');
        format!("{}-{}", c(lo), c(hi))
    };
    let after: String = WORD_START_AFTER.iter().copied().map(range).collect();
    // Every character that lowercases to a `word_indexable` one, and more.
    let letters =
        "0-9A-Za-z\u{C0}-\u{24F}\u{370}-\u{3FF}\u{400}-\u{45F}\u{1E9E}\u{2126}\u{212A}\u{212B}";
    format!(
        "case when {body} glob '*[^{after}][{letters}]*' or instr({body}, '\u{130}') > 0 \
         then {body} || ' {GLUED}' else {body} end"
    )
}

/// PostgreSQL's word index, as the rule sees words: `to_tsvector('simple', …)` of the
/// body with every character that is not a word character (see
/// [`shared::search::is_word_char`]) made a space. PostgreSQL's parser alone takes
/// "用Zoom开会" as one word, and "zoom.us", "ann@example.org" or "/usr/bin" as one host,
/// email or path token (none of "us", "example" or "bin" would be a word there), and a
/// combining mark inside a word; the rule sees a word start after each of those, and on
/// this text the parser sees exactly the rule's words. (Checked over every code point
/// against PostgreSQL 15 with glibc's C.UTF-8: a word after any non-word character is
/// found, and a word term with any word character in it, but for 4 letters of Unicode 16
/// that glibc 2.36 does not lowercase.)
///
/// An SQL function (inlined by the planner, so the index is an expression index on it),
/// named after a hash of its definition: when a newer Rust's Unicode tables change what
/// the rule counts as a word, the next start creates the new function and index beside
/// the old ones and then drops those.
struct PostgresWords {
    /// `message_words_<hash>`.
    function: String,
    /// `messages_search_words_<hash>`.
    index: String,
    /// The `create function` statement.
    definition: String,
}

impl PostgresWords {
    fn get() -> &'static Self {
        static WORDS: std::sync::OnceLock<PostgresWords> = std::sync::OnceLock::new();
        WORDS.get_or_init(|| {
            let escape = |u: u32| {
                if u > 0xFFFF {
                    format!("\\U{u:08X}")
                } else {
                    format!("\\u{u:04X}")
                }
            };
            let mut class = String::from("[");
            for (lo, hi) in not_word_ranges() {
                class += &escape(lo);
                if hi > lo {
                    class.push('-');
                    class += &escape(hi);
                }
            }
            class.push(']');
            let body = format!(
                "select to_tsvector('simple'::regconfig, regexp_replace(body, '{class}', ' ', 'g'))"
            );
            let hash = sha2::Sha256::digest(body.as_bytes());
            let hash: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
            let function = format!("message_words_{hash}");
            PostgresWords {
                definition: format!(
                    "create or replace function {function}(body text) returns tsvector \
                     language sql immutable strict parallel safe as $$ {body} $$"
                ),
                index: format!("messages_search_words_{hash}"),
                function,
            }
        })
    }

    /// The words of `body` (an SQL expression), as the index holds them.
    fn of(&self, body: &str) -> String {
        format!("{}({body})", self.function)
    }

    /// Drops the word indexes and functions of other definitions (and the index from
    /// before, on the bare `to_tsvector`): the indexes first, then the functions they used.
    async fn drop_others(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> anyhow::Result<()> {
        let statements: Vec<String> = sqlx::query_scalar(
            "select statement from ( \
                 select 1 as step, format('drop index if exists %I', indexname) as statement \
                 from pg_indexes where tablename = 'messages' \
                 and indexname like 'messages\\_search\\_words%' and indexname <> $1 \
                 union all \
                 select 2, format('drop function if exists %I(text)', proname) \
                 from pg_proc where proname like 'message\\_words\\_%' and proname <> $2 \
             ) as stale order by step",
        )
        .bind(&self.index)
        .bind(&self.function)
        .fetch_all(&mut **tx)
        .await?;
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// The code points that are not word characters, as inclusive ranges (surrogates, which
/// no text holds, join the ranges around them).
fn not_word_ranges() -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for u in 1..=u32::from(char::MAX) {
        if char::from_u32(u).is_some_and(shared::search::is_word_char) {
            continue;
        }
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == u => last.1 = u,
            _ => ranges.push((u, u)),
        }
    }
    ranges
}

fn postgres_schema() -> Vec<String> {
    let words = PostgresWords::get();
    vec![
        // A trusted extension since PostgreSQL 13: the database's owner may create it.
        "create extension if not exists pg_trgm".to_owned(),
        words.definition.clone(),
        format!(
            "create index if not exists {} on messages using gin ({})",
            words.index,
            words.of("body")
        ),
        "create index if not exists messages_search_trigrams on messages \
         using gin (body gin_trgm_ops)"
            .to_owned(),
        // The newest-first order itself: for a common word the planner walks this and
        // checks each row (a few thousand for a page) instead of sorting every match the
        // GIN index gives (hundreds of thousands).
        "create index if not exists messages_search_recent on messages \
         (created_at desc, room_id desc, seq desc)"
            .to_owned(),
        // The same order within one room, for a search in one room (or a user reading
        // few) whose words are too common for the GIN index to be the cheaper way.
        "create index if not exists messages_search_room_recent on messages \
         (room_id, created_at desc, seq desc)"
            .to_owned(),
    ]
}

/// A place in the newest-first order: SQLite's `doc` (the order messages arrived in), or
/// PostgreSQL's `(created_at, room_id, seq)` (seq keeps a room's order within a second;
/// rooms sent to in the same second come in id order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// `doc`, or `created_at`.
    pub key: i64,
    /// PostgreSQL only (empty on SQLite's marker rows).
    pub room: String,
    pub seq: i64,
}

/// Where a scan starts: below `pos`, or at it too when `inclusive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    pub pos: Pos,
    pub inclusive: bool,
}

/// What to look for, and where.
#[derive(Clone, Debug)]
pub struct Filter<'a> {
    pub user: UserId,
    pub terms: &'a [Term],
    pub room: Option<RoomId>,
    pub author: Option<UserId>,
    /// Unix seconds, inclusive.
    pub after: Option<i64>,
    /// Unix seconds, exclusive.
    pub before: Option<i64>,
}

/// A candidate: what the hit shows, its place and its rank (higher is better).
#[derive(FromRow, Debug, Clone)]
pub struct Candidate {
    pub key: i64,
    pub id: String,
    pub score: f64,
    pub room_id: String,
    pub seq: i64,
    pub author_id: Option<String>,
    pub body: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
}

impl Candidate {
    pub fn pos(&self) -> Pos {
        Pos {
            key: self.key,
            room: self.room_id.clone(),
            seq: self.seq,
        }
    }
}

/// One batch of candidates, newest first.
#[derive(Debug, Default)]
pub struct Batch {
    pub candidates: Vec<Candidate>,
    /// How many rows the engine looked at (candidates or not).
    pub examined: usize,
    /// The last place looked at, where the next batch starts (exclusive).
    pub last: Option<Pos>,
    /// Nothing is left below `last`.
    pub exhausted: bool,
}

/// The SQLite terms the trigram index can look up, as an FTS5 query: each a quoted
/// string (a `"` doubled), so FTS5's operators (`NEAR`, `*`, `-`, `^`, `:`) typed by a
/// user are plain text. None when no term has 3 characters.
fn fts5_query(terms: &[Term]) -> Option<String> {
    let quoted: Vec<String> = terms
        .iter()
        .filter(|t| t.chars() >= 3)
        .map(|t| format!("\"{}\"", t.text.replace('"', "\"\"")))
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(" AND "))
}

/// The SQLite terms the word index can look up, as an FTS5 query: each a prefix of at
/// most 8 characters (the longest prefix index), all of them, or the glued bodies (see
/// [`word_index_text`]). None when no term is a word of [`word_indexable`] characters.
/// Terms of one or two characters are left to the check when a longer one narrows more.
/// The characters need no quoting: letters and digits only.
fn words_query(terms: &[Term]) -> Option<String> {
    let words: Vec<&Term> = terms
        .iter()
        .filter(|t| t.word && t.text.chars().all(word_indexable))
        .collect();
    let long = words.iter().any(|t| t.chars() >= 3);
    let chosen: Vec<String> = words
        .iter()
        .filter(|t| !long || t.chars() >= 3)
        .map(|t| format!("\"{}\"*", t.text.chars().take(8).collect::<String>()))
        .collect();
    (!chosen.is_empty()).then(|| format!("({}) OR {GLUED}", chosen.join(" AND ")))
}

/// A term as a `tsquery` prefix lexeme (`'term':*`), quotes doubled.
fn tsquery_prefix(term: &Term) -> String {
    format!("'{}':*", term.text.replace('\'', "''"))
}

/// A term as an `ilike` pattern for "anywhere".
fn like_anywhere(term: &Term) -> String {
    let mut out = String::with_capacity(term.text.len() + 2);
    out.push('%');
    for c in term.text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Binds, in order, for a statement built alongside them. Only placeholders are ever
/// added to the SQL text; every value a user typed goes in here.
#[derive(Default)]
struct Binds(Vec<BindValue>);

enum BindValue {
    Text(String),
    Int(i64),
}

impl Binds {
    /// Adds a value; answers its placeholder.
    fn text(&mut self, v: impl Into<String>) -> String {
        self.0.push(BindValue::Text(v.into()));
        format!("${}", self.0.len())
    }
    fn int(&mut self, v: i64) -> String {
        self.0.push(BindValue::Int(v));
        format!("${}", self.0.len())
    }
}

/// The conditions on `m` (messages) both engines share: readable now, not deleted, not
/// by someone the user blocks, and the filters. The columns say where the message's room
/// is read from (SQLite's `message_search` has it, so rooms are checked before messages
/// are read); on SQLite the membership test is written `+s.room_id`, a unary `+` that
/// keeps SQLite from driving the query by the membership list (every doc of every room of
/// the user, then a sort): it stays a filter on rows met in doc order.
fn visible(binds: &mut Binds, f: &Filter<'_>, member_column: &str, room_column: &str) -> String {
    let me = binds.text(f.user.to_string());
    let mut sql = format!(
        "{member_column} in (select room_id from room_members where user_id = {me}) \
         and m.deleted_at is null \
         and (m.author_id is null \
              or m.author_id not in (select blocked_id from blocks where blocker_id = {me}))"
    );
    if let Some(room) = f.room {
        sql += &format!(" and {room_column} = {}", binds.text(room.to_string()));
    }
    if let Some(author) = f.author {
        sql += &format!(" and m.author_id = {}", binds.text(author.to_string()));
    }
    if let Some(after) = f.after {
        sql += &format!(" and m.created_at >= {}", binds.int(after));
    }
    if let Some(before) = f.before {
        sql += &format!(" and m.created_at < {}", binds.int(before));
    }
    sql
}

/// The next `size` candidates below `from` (all of them when `from` is None), newest
/// first.
async fn batch(
    pool: &AnyPool,
    way: Way,
    f: &Filter<'_>,
    scope: &Scope,
    from: Option<&From>,
    size: usize,
) -> anyhow::Result<Batch> {
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let mut binds = Binds::default();
    let (sql, marked) = match way {
        Way::SqliteIndexed => {
            let q = fts5_query(f.terms).context("no term for the index")?;
            let sql = sqlite_indexed(&mut binds, f, "message_fts", &q, from, size_i);
            (sql, true)
        }
        Way::SqliteWords => {
            let q = words_query(f.terms).context("no word for the index")?;
            let sql = sqlite_indexed(&mut binds, f, "message_words", &q, from, size_i);
            (sql, true)
        }
        Way::SqliteWalk => sqlite_walk(&mut binds, f, from, size_i),
        Way::PostgresIndexed => (postgres_indexed(&mut binds, f, scope, from, size_i), false),
        Way::PostgresWalk => (postgres_walk(&mut binds, f, scope, from, size_i), true),
    };
    let mut query = sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(sql));
    for b in binds.0 {
        query = match b {
            BindValue::Text(s) => query.bind(s),
            BindValue::Int(i) => query.bind(i),
        };
    }
    // PostgreSQL: an unnamed statement, planned for these values each time. A prepared
    // one turns generic after five runs, and a generic plan cannot tell a rare word from
    // a common one (nor one room from fifty).
    let mut rows = query.persistent(way.is_sqlite()).fetch_all(pool).await?;
    if way == Way::PostgresWalk {
        // The marker row `postgres_walk` adds (id `''`), absent when no row was left:
        // the last place looked at and (in `score`) how many were looked at.
        let Some(at) = rows.iter().position(|r| r.id.is_empty()) else {
            return Ok(Batch {
                exhausted: true,
                ..Batch::default()
            });
        };
        let marker = rows.swap_remove(at);
        let examined = marker.score as usize;
        rows.sort_by(|a, b| (b.key, &b.room_id, b.seq).cmp(&(a.key, &a.room_id, a.seq)));
        return Ok(Batch {
            candidates: rows,
            examined,
            last: Some(marker.pos()),
            exhausted: examined < size,
        });
    }
    if marked {
        // The marker row `sqlite_indexed` (and a prefiltered `sqlite_walk`) adds (id
        // `''`): the lowest doc looked at, and (in `seq`) how many were looked at.
        let at = rows
            .iter()
            .position(|r| r.id.is_empty())
            .context("the search marker row is missing")?;
        let marker = rows.swap_remove(at);
        let examined = usize::try_from(marker.seq).unwrap_or(0);
        rows.sort_by_key(|r| std::cmp::Reverse(r.key));
        return Ok(Batch {
            candidates: rows,
            examined,
            last: (examined > 0).then(|| Pos {
                key: marker.key,
                room: String::new(),
                seq: 0,
            }),
            exhausted: examined < size,
        });
    }
    let examined = rows.len();
    Ok(Batch {
        last: rows.last().map(Candidate::pos),
        exhausted: examined < size,
        examined,
        candidates: rows,
    })
}

/// The comparison and the placeholder of a scan's start, for SQLite's `doc`.
fn below(binds: &mut Binds, from: Option<&From>) -> Option<(&'static str, String)> {
    from.map(|from| {
        let op = if from.inclusive { "<=" } else { "<" };
        (op, binds.int(from.pos.key))
    })
}

const HIT_COLUMNS: &str = "m.room_id, m.seq, m.author_id, m.body, m.created_at, m.edited_at";

/// SQLite with a term `index` (the trigram or the word index) can look up: the next
/// `size` docs the index gives (whatever their room), newest first, joined to their messages, of which only the
/// visible ones come back, plus one marker row (id `''`) saying how far the lookup went,
/// so the next batch goes on from there even when none of these was visible. `cross
/// join` fixes the order (the index's docs, then each one's row by primary key): left to
/// itself SQLite starts from the user's rooms. No rank here: FTS5's bm25() reads every
/// row's positions (~45 µs a row); `best` ranks the few hits in Rust instead.
fn sqlite_indexed(
    binds: &mut Binds,
    f: &Filter<'_>,
    index: &str,
    fts_query: &str,
    from: Option<&From>,
    size: i64,
) -> String {
    let q = binds.text(fts_query);
    let below = below(binds, from).map_or(String::new(), |(op, p)| format!(" and rowid {op} {p}"));
    let visible = visible(binds, f, "+s.room_id", "s.room_id");
    let limit = binds.int(size);
    format!(
        "with f as materialized ( \
             select rowid as doc from {index} \
             where {index} match {q}{below} order by rowid desc limit {limit}) \
         select f.doc as key, m.id, 0.0 as score, {HIT_COLUMNS} \
         from f cross join message_search s on s.doc = f.doc \
         cross join messages m on m.id = s.message_id \
         where {visible} \
         union all \
         select coalesce(min(doc), 0), '', 0.0, '', count(*), null, '', 0, null from f"
    )
}

/// SQLite without a term the index can use: the user's messages (or the filtered
/// room's), newest first. When some term has a [`sqlite_prefilter`], only the rows that
/// pass it come back, plus a marker row (id `''`) as [`sqlite_indexed`] adds: a page of
/// Chinese messages then leaves SQLite as its few candidates, not as 500 bodies.
fn sqlite_walk(
    binds: &mut Binds,
    f: &Filter<'_>,
    from: Option<&From>,
    size: i64,
) -> (String, bool) {
    let below = below(binds, from).map_or(String::new(), |(op, p)| format!(" and s.doc {op} {p}"));
    let visible = visible(binds, f, "+s.room_id", "s.room_id");
    let limit = binds.int(size);
    let rows = format!(
        "select s.doc as key, m.id, 0.0 as score, {HIT_COLUMNS} \
         from message_search s cross join messages m on m.id = s.message_id \
         where {visible}{below} \
         order by s.doc desc limit {limit}"
    );
    let prefilters: Vec<String> = f
        .terms
        .iter()
        .filter_map(|t| sqlite_prefilter(binds, t))
        .collect();
    if prefilters.is_empty() {
        return (rows, false);
    }
    let sql = format!(
        "with w as materialized ({rows}) \
         select * from w where {} \
         union all \
         select coalesce(min(key), 0), '', 0.0, '', count(*), null, '', 0, null from w",
        prefilters.join(" and ")
    );
    (sql, true)
}

/// A condition on a walked row's `body` that every body holding `term` under the
/// matching rule passes, cheap for SQLite: `instr` for a term without case (CJK, kana,
/// Thai, ASCII digits and punctuation), `like` (which folds ASCII case) for an ASCII
/// one, or the two characters outside ASCII that lowercase into it (K, the Kelvin sign;
/// İ). None for the rest (Cyrillic, say: SQLite folds ASCII case only).
fn sqlite_prefilter(binds: &mut Binds, term: &Term) -> Option<String> {
    let caseless =
        |c: char| shared::search::is_unspaced(c) || (c.is_ascii() && !c.is_ascii_alphabetic());
    if term.text.chars().all(caseless) {
        return Some(format!(
            "instr(body, {}) > 0",
            binds.text(term.text.clone())
        ));
    }
    if term.text.is_ascii() {
        let p = binds.text(like_anywhere(term));
        return Some(format!(
            "(body like {p} escape '\\' or instr(body, '\u{212A}') > 0 \
              or instr(body, '\u{130}') > 0)"
        ));
    }
    None
}

/// The PostgreSQL conditions on `m` every way shares: the rooms resolved before (see
/// [`Scope`]), not deleted, not by someone the user blocks, the filters, and every term
/// (a word through the `tsvector` index, anything else through trigrams); with the
/// `best` rank's expression.
fn postgres_conditions(binds: &mut Binds, f: &Filter<'_>, rooms: &str) -> (String, String) {
    let me = binds.text(f.user.to_string());
    let mut conditions = format!(
        "{rooms} and m.deleted_at is null \
         and (m.author_id is null \
              or m.author_id not in (select blocked_id from blocks where blocker_id = {me}))"
    );
    if let Some(author) = f.author {
        conditions += &format!(" and m.author_id = {}", binds.text(author.to_string()));
    }
    if let Some(after) = f.after {
        conditions += &format!(" and m.created_at >= {}", binds.int(after));
    }
    if let Some(before) = f.before {
        conditions += &format!(" and m.created_at < {}", binds.int(before));
    }
    conditions += &postgres_terms(binds, f.terms);
    let rank_terms: Vec<String> = f
        .terms
        .iter()
        .filter(|t| t.word)
        .map(tsquery_prefix)
        .collect();
    let score = if rank_terms.is_empty() {
        "0.0::float8".to_owned()
    } else {
        // Any of the words counts toward the rank (all of them are required anyway).
        let q = binds.text(rank_terms.join(" | "));
        format!(
            "ts_rank({}, to_tsquery('simple', {q}))::float8",
            PostgresWords::get().of("m.body")
        )
    };
    (conditions, score)
}

/// Every term as a condition on `m.body`, each starting with ` and `.
fn postgres_terms(binds: &mut Binds, terms: &[Term]) -> String {
    let mut sql = String::new();
    for term in terms {
        if term.word {
            let p = binds.text(tsquery_prefix(term));
            let words = PostgresWords::get().of("m.body");
            sql += &format!(" and {words} @@ to_tsquery('simple', {p})");
        } else {
            let p = binds.text(like_anywhere(term));
            sql += &format!(" and m.body ilike {p}");
        }
    }
    sql
}

/// The newest-first place condition on `table`'s columns, starting with ` and `: the
/// row comparison, and `created_at` alone, which an index can start at.
fn postgres_below(binds: &mut Binds, table: &str, from: Option<&From>) -> String {
    let Some(from) = from else {
        return String::new();
    };
    let op = if from.inclusive { "<=" } else { "<" };
    let key = binds.int(from.pos.key);
    format!(
        " and {table}.created_at <= {key} \
         and ({table}.created_at, {table}.room_id, {table}.seq) {op} ({key}, {}, {})",
        binds.text(from.pos.room.clone()),
        binds.int(from.pos.seq)
    )
}

/// PostgreSQL through the GIN indexes: every match of the terms (in the readable rooms),
/// sorted. `created_at + 0` keeps the planner off the newest-first index, whose walk
/// [`postgres_walk`] does better when it is the cheaper way.
fn postgres_indexed(
    binds: &mut Binds,
    f: &Filter<'_>,
    scope: &Scope,
    from: Option<&From>,
    size: i64,
) -> String {
    let rooms = scope.rooms_condition(binds, "m.room_id");
    let (conditions, score) = postgres_conditions(binds, f, &rooms);
    let below = postgres_below(binds, "m", from);
    let limit = binds.int(size);
    format!(
        "select m.created_at as key, m.id, {score} as score, {HIT_COLUMNS} \
         from messages m where {conditions}{below} \
         order by m.created_at + 0 desc, m.room_id desc, m.seq desc limit {limit}"
    )
}

/// PostgreSQL walking the readable rooms' messages newest first: the next `size` places
/// (from the index alone: time, room and seq), then each one's row checked against the
/// terms, plus one marker row (id `''`, the last place, and in `score` how many places)
/// so the next batch goes on from there even when none of these matched. For a common
/// word this looks at a few hundred rows where the GIN index would give hundreds of
/// thousands to sort.
fn postgres_walk(
    binds: &mut Binds,
    f: &Filter<'_>,
    scope: &Scope,
    from: Option<&From>,
    size: i64,
) -> String {
    let rooms = scope.rooms_condition(binds, "p.room_id");
    let below = postgres_below(binds, "p", from);
    let mut window = String::new();
    if let Some(after) = f.after {
        window += &format!(" and p.created_at >= {}", binds.int(after));
    }
    if let Some(before) = f.before {
        window += &format!(" and p.created_at < {}", binds.int(before));
    }
    let limit = binds.int(size);
    let (conditions, score) =
        postgres_conditions(binds, f, "m.room_id = p.room_id and m.seq = p.seq");
    // `offset 0` keeps the lateral lookup a lookup (one row by the room's seq index):
    // flattened into a join, the planner may rather fetch every match of the terms.
    format!(
        "with p as materialized ( \
             select p.created_at, p.room_id, p.seq from messages p \
             where {rooms}{window}{below} \
             order by p.created_at desc, p.room_id desc, p.seq desc limit {limit}) \
         select h.* from p cross join lateral ( \
             select m.created_at as key, m.id, {score} as score, {HIT_COLUMNS} \
             from messages m where {conditions} offset 0) h \
         union all \
         (select p.created_at, '', (select count(*) from p)::float8, p.room_id, p.seq, \
                 null::text, '', 0::bigint, null::bigint \
          from p order by p.created_at, p.room_id, p.seq limit 1)"
    )
}

/// PostgreSQL: what a search reads, resolved before it: the user's rooms now (or the
/// filtered one, if the user is in it), how many messages they hold, and how many the
/// table holds. The statements then name the rooms (`room_id = any(...)`), so the
/// planner sees the readable set's true size, and [`Way::choose`] can price each way.
#[derive(Debug, Default)]
struct Scope {
    rooms: Vec<String>,
    /// Messages in those rooms (their last seqs).
    readable: f64,
    /// Messages in the table (the planner's statistics).
    total: f64,
}

impl Scope {
    async fn resolve(pool: &AnyPool, f: &Filter<'_>) -> anyhow::Result<Self> {
        let mut binds = Binds::default();
        let me = binds.text(f.user.to_string());
        let mut sql = format!(
            "select rm.room_id, r.last_seq, \
                    (select greatest(reltuples, 0)::bigint from pg_class \
                     where oid = 'messages'::regclass) as total \
             from room_members rm join rooms r on r.id = rm.room_id \
             where rm.user_id = {me}"
        );
        if let Some(room) = f.room {
            sql += &format!(" and rm.room_id = {}", binds.text(room.to_string()));
        }
        let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql));
        for b in binds.0 {
            query = match b {
                BindValue::Text(s) => query.bind(s),
                BindValue::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(pool).await?;
        let readable: i64 = rows.iter().map(|r| r.1.max(0)).sum();
        let total = rows.first().map_or(0, |r| r.2).max(readable).max(1);
        Ok(Self {
            // Room ids come from our own rows (UUIDs); checked anyway, as they go into
            // the statement's text.
            rooms: rows
                .into_iter()
                .map(|r| r.0)
                .filter(|id| {
                    uuid::Uuid::parse_str(id).is_ok()
                        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                })
                .collect(),
            readable: readable as f64,
            total: total as f64,
        })
    }

    /// `column` in the rooms: `=` for one (so an index on the room and time gives the
    /// order), `= any(array)` for more. The array is a literal in the statement, not a
    /// bind: a constant the planner hashes once, where a bound text cast to an array is
    /// parsed again for every row (~9 µs each). Only ids of hex digits and dashes (see
    /// [`Scope::resolve`]) go into it.
    fn rooms_condition(&self, binds: &mut Binds, column: &str) -> String {
        match &self.rooms[..] {
            [one] => format!("{column} = {}", binds.text(one.clone())),
            rooms => format!("{column} = any('{{{}}}'::text[])", rooms.join(",")),
        }
    }
}

/// PostgreSQL's estimate of how many messages hold every term, from its statistics
/// (`explain`, planned for these terms): None when no term can use an index.
async fn postgres_matches(pool: &AnyPool, terms: &[Term]) -> anyhow::Result<Option<f64>> {
    if !terms.iter().any(|t| t.word || t.chars() >= 3) {
        return Ok(None);
    }
    let mut binds = Binds::default();
    let sql = format!(
        "explain select 1 from messages m where true{}",
        postgres_terms(&mut binds, terms)
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for b in binds.0 {
        query = match b {
            BindValue::Text(s) => query.bind(s),
            BindValue::Int(i) => query.bind(i),
        };
    }
    let first = query.persistent(false).fetch_one(pool).await?;
    // "Bitmap Heap Scan on messages m  (cost=245.87..35004.88 rows=23467 width=4)"
    let rows = first
        .split_once(" rows=")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .context("no row estimate in the plan")?;
    Ok(Some(rows))
}

/// Which PostgreSQL way costs less, in microseconds as measured on the bench's
/// machine: the GIN way fetches every match from the heap (~7.5 µs each; or, when the
/// planner ands in the rooms' index, ~0.3 µs a readable row and ~7 µs a readable
/// match); the walk reads ~0.15 µs an index entry and ~20 µs a row it checks, and
/// checks `want / p` rows (p: the matching fraction) from entries of the readable rooms
/// only (`1 / f` of the entries, f: the readable fraction, when it walks every room's).
fn postgres_cheaper(scope: &Scope, matches: Option<f64>, want: usize) -> Way {
    let Some(matches) = matches else {
        return Way::PostgresWalk;
    };
    let (n, r) = (scope.total, scope.readable.max(1.0));
    let p = (matches / n).clamp(1e-9, 1.0);
    let f = (r / n).clamp(1e-9, 1.0);
    let checked = (want as f64 / p).min(r);
    let entries = if scope.rooms.len() == 1 {
        checked
    } else {
        (checked / f).min(n)
    };
    let walk = 20.0 * checked + 0.15 * entries;
    let indexed = 0.5 * matches + (7.5 * matches).min(0.3 * r + 7.0 * matches * f);
    if indexed < walk {
        Way::PostgresIndexed
    } else {
        Way::PostgresWalk
    }
}

/// How many places a walk batch looks at to find `want` more matches, by the estimated
/// matching fraction (half again, for the estimate's error).
fn postgres_walk_size(scope: &Scope, matches: Option<f64>, want: usize) -> usize {
    let p = matches.map_or(0.05, |m| (m / scope.total).clamp(1e-6, 1.0));
    ((want as f64 * 1.5 / p).ceil() as usize).clamp(want.max(50), POSTGRES_WALK.batch)
}

/// How many rows one statement looks at, and how many one request may look at in all,
/// per way of looking: the trigram index's docs (whatever their room), the user's own
/// messages one by one, PostgreSQL's already narrowed rows.
#[derive(Clone, Copy, Debug)]
struct Budget {
    batch: usize,
    total: usize,
}

const SQLITE_INDEXED: Budget = Budget {
    batch: 2_000,
    total: 20_000,
};
const SQLITE_WALK: Budget = Budget {
    batch: 500,
    total: 2_000,
};
const POSTGRES_ROWS: Budget = Budget {
    batch: 200,
    total: 5_000,
};
/// The walk's places (index entries of readable rooms; each batch checks its rows).
const POSTGRES_WALK: Budget = Budget {
    batch: 4_000,
    total: 12_000,
};

/// A room filter on a room with at most this many messages walks the room (all of it in
/// one request) rather than the index's docs of every room.
const SQLITE_SMALL_ROOM: i64 = 2_000;

/// How candidates are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// The trigram index's docs, newest first, whatever their room.
    SqliteIndexed,
    /// The word index's docs, newest first, whatever their room.
    SqliteWords,
    /// The user's (or the filtered room's) messages, newest first.
    SqliteWalk,
    /// The GIN indexes' matches in the readable rooms, sorted.
    PostgresIndexed,
    /// The readable rooms' messages, newest first, each checked.
    PostgresWalk,
}

impl Way {
    fn budget(self) -> Budget {
        match self {
            Self::SqliteIndexed | Self::SqliteWords => SQLITE_INDEXED,
            Self::SqliteWalk => SQLITE_WALK,
            Self::PostgresIndexed => POSTGRES_ROWS,
            Self::PostgresWalk => POSTGRES_WALK,
        }
    }

    fn is_sqlite(self) -> bool {
        matches!(
            self,
            Self::SqliteIndexed | Self::SqliteWords | Self::SqliteWalk
        )
    }

    /// SQLite's way; PostgreSQL's is [`postgres_cheaper`]'s.
    async fn choose_sqlite(pool: &AnyPool, f: &Filter<'_>) -> anyhow::Result<Self> {
        let indexed = if words_query(f.terms).is_some() {
            Self::SqliteWords
        } else if fts5_query(f.terms).is_some() {
            Self::SqliteIndexed
        } else {
            return Ok(Self::SqliteWalk);
        };
        if let Some(room) = f.room {
            let size: Option<i64> = sqlx::query_scalar("select last_seq from rooms where id = $1")
                .bind(room.to_string())
                .fetch_optional(pool)
                .await?;
            if size.unwrap_or(0) <= SQLITE_SMALL_ROOM {
                return Ok(Self::SqliteWalk);
            }
        }
        Ok(indexed)
    }
}

/// How one request looks: the way, and for PostgreSQL what it reads and the estimate.
struct Plan {
    way: Way,
    scope: Scope,
    matches: Option<f64>,
}

impl Plan {
    async fn choose(pool: &AnyPool, f: &Filter<'_>, want: usize) -> anyhow::Result<Self> {
        if Backend::of(pool) == Backend::Sqlite {
            return Ok(Self {
                way: Way::choose_sqlite(pool, f).await?,
                scope: Scope::default(),
                matches: None,
            });
        }
        let scope = Scope::resolve(pool, f).await?;
        if scope.rooms.is_empty() {
            return Ok(Self {
                way: Way::PostgresIndexed,
                scope,
                matches: None,
            });
        }
        let matches = postgres_matches(pool, f.terms).await?;
        Ok(Self {
            way: postgres_cheaper(&scope, matches, want),
            scope,
            matches,
        })
    }

    /// Nothing to read: PostgreSQL resolved no room (SQLite checks in the query).
    fn reads_nothing(&self) -> bool {
        !self.way.is_sqlite() && self.scope.rooms.is_empty()
    }
}

/// `order=best` ranks this many of the newest matches at a time.
pub const BEST_WINDOW: usize = 100;

/// Where a page starts: an opaque string to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Newest first, below this place.
    Newest(Pos),
    /// Best first: the window of matches starting at `from`, `offset` of them already
    /// shown.
    Best { from: From, offset: usize },
}

impl Cursor {
    /// `n.KEY.ROOM.SEQ` or `b.{i|x}.KEY.ROOM.SEQ.OFFSET` (ROOM a UUID, or empty).
    pub fn encode(&self) -> String {
        let pos = |p: &Pos| format!("{}.{}.{}", p.key, p.room, p.seq);
        match self {
            Self::Newest(p) => format!("n.{}", pos(p)),
            Self::Best { from, offset } => format!(
                "b.{}.{}.{offset}",
                if from.inclusive { "i" } else { "x" },
                pos(&from.pos)
            ),
        }
    }

    /// None for anything [`Cursor::encode`] does not make.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('.').collect();
        let pos = |key: &str, room: &str, seq: &str| {
            let room_ok = room.is_empty() || uuid::Uuid::parse_str(room).is_ok();
            Some(Pos {
                key: key.parse().ok()?,
                room: room_ok.then(|| room.to_owned())?,
                seq: seq.parse().ok()?,
            })
        };
        match parts[..] {
            ["n", key, room, seq] => Some(Self::Newest(pos(key, room, seq)?)),
            ["b", inc, key, room, seq, offset] => Some(Self::Best {
                from: From {
                    pos: pos(key, room, seq)?,
                    inclusive: match inc {
                        "i" => true,
                        "x" => false,
                        _ => return None,
                    },
                },
                offset: offset.parse().ok().filter(|o| *o < BEST_WINDOW)?,
            }),
            _ => None,
        }
    }
}

/// A match: the candidate and where its terms are.
#[derive(Debug, Clone)]
pub struct Hit {
    pub row: Candidate,
    pub highlights: Vec<shared::search::Highlight>,
}

/// A page of hits and the cursor for the next one.
#[derive(Debug, Default)]
pub struct Page {
    pub hits: Vec<Hit>,
    pub next: Option<Cursor>,
}

/// What a walk over candidates found.
struct Found {
    hits: Vec<Hit>,
    /// The place of the first row looked at.
    first: Option<Pos>,
    /// Where to go on (exclusive); None when nothing is left.
    rest: Option<Pos>,
}

/// Walks candidates newest first from `from` until `want` hits, the end, or the budget.
async fn walk(
    pool: &AnyPool,
    plan: &Plan,
    f: &Filter<'_>,
    from: Option<From>,
    want: usize,
) -> anyhow::Result<Found> {
    let way = plan.way;
    let budget = way.budget();
    let mut found = Found {
        hits: Vec::new(),
        first: None,
        rest: None,
    };
    let mut from = from;
    let mut examined = 0;
    loop {
        // PostgreSQL's rows are already matches (the SQL applies every term), so it is
        // asked for what is still wanted: a small LIMIT lets its planner walk the newest
        // rows of a common word and stop early.
        let wanted = want - found.hits.len() + 1;
        let size = match way {
            Way::PostgresIndexed => budget.batch.min(wanted),
            Way::PostgresWalk => postgres_walk_size(&plan.scope, plan.matches, wanted),
            _ => budget.batch,
        };
        let batch = batch(pool, way, f, &plan.scope, from.as_ref(), size).await?;
        examined += batch.examined;
        if found.first.is_none() {
            found.first = batch.candidates.first().map(Candidate::pos);
        }
        for mut row in batch.candidates {
            let highlights = shared::search::highlights(&row.body, f.terms);
            if highlights.is_empty() {
                continue;
            }
            if way.is_sqlite() {
                row.score = rank(&row.body, f.terms);
            }
            let pos = row.pos();
            found.hits.push(Hit { row, highlights });
            if found.hits.len() == want {
                found.rest = Some(pos);
                return Ok(found);
            }
        }
        let Some(last) = batch.last.filter(|_| !batch.exhausted) else {
            return Ok(found);
        };
        if examined >= budget.total {
            found.rest = Some(last);
            return Ok(found);
        }
        from = Some(From {
            pos: last,
            inclusive: false,
        });
    }
}

/// SQLite's `best` rank of a hit: BM25's term-frequency saturation and length
/// normalisation (k1 = 1.2, b = 0.75, against an 80-character message), a whole word
/// counting double a word's start. No IDF: it needs document frequencies FTS5 only
/// gives through bm25(), and every hit holds every term anyway.
fn rank(body: &str, terms: &[Term]) -> f64 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    const AVERAGE: f64 = 80.0;
    let chars: Vec<char> = body.chars().collect();
    let norm = K1 * (1.0 - B + B * chars.len() as f64 / AVERAGE);
    terms
        .iter()
        .map(|term| {
            let tf: f64 = shared::search::highlights(body, std::slice::from_ref(term))
                .iter()
                .map(|h| {
                    let next = chars.get(h.end as usize);
                    let whole = next.is_none_or(|c| !c.is_alphanumeric());
                    if whole { 1.0 } else { 0.5 }
                })
                .sum();
            tf * (K1 + 1.0) / (tf + norm)
        })
        .sum()
}

/// One page of `limit` hits for `f`, from `cursor` (None: the first page).
pub async fn search(
    pool: &AnyPool,
    f: &Filter<'_>,
    best: bool,
    limit: usize,
    cursor: Option<Cursor>,
) -> anyhow::Result<Page> {
    let plan = Plan::choose(pool, f, if best { BEST_WINDOW } else { limit + 1 }).await?;
    if plan.reads_nothing() {
        return Ok(Page::default());
    }
    if !best {
        let from = match cursor {
            Some(Cursor::Newest(pos)) => Some(From {
                pos,
                inclusive: false,
            }),
            Some(Cursor::Best { from, .. }) => Some(from),
            None => None,
        };
        // One more than the page: whether there is a next page is known, not guessed.
        let mut found = walk(pool, &plan, f, from, limit + 1).await?;
        if found.hits.len() > limit {
            found.hits.truncate(limit);
            let last = found.hits.last().map(|h| h.row.pos());
            return Ok(Page {
                hits: found.hits,
                next: last.map(Cursor::Newest),
            });
        }
        return Ok(Page {
            hits: found.hits,
            next: found.rest.map(Cursor::Newest),
        });
    }
    let (from, offset) = match cursor {
        Some(Cursor::Best { from, offset }) => (Some(from), offset),
        Some(Cursor::Newest(pos)) => (
            Some(From {
                pos,
                inclusive: false,
            }),
            0,
        ),
        None => (None, 0),
    };
    let found = walk(pool, &plan, f, from.clone(), BEST_WINDOW).await?;
    // The window's start, fixed, so later pages rank the same window even when newer
    // messages arrive meanwhile.
    let window = from.or_else(|| {
        found.first.clone().map(|pos| From {
            pos,
            inclusive: true,
        })
    });
    let mut hits = found.hits;
    hits.sort_by(|a, b| {
        b.row.score.total_cmp(&a.row.score).then_with(|| {
            (b.row.key, &b.row.room_id, b.row.seq).cmp(&(a.row.key, &a.row.room_id, a.row.seq))
        })
    });
    let total = hits.len();
    let page: Vec<Hit> = hits.into_iter().skip(offset).take(limit).collect();
    let shown = offset + page.len();
    let next = if shown < total {
        window.map(|from| Cursor::Best {
            from,
            offset: shown,
        })
    } else {
        found.rest.map(|pos| Cursor::Best {
            from: From {
                pos,
                inclusive: false,
            },
            offset: 0,
        })
    };
    Ok(Page { hits: page, next })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shared::search::terms;
    use std::collections::HashSet;

    #[test]
    fn fts5_operators_typed_by_users_are_quoted() {
        assert_eq!(
            fts5_query(&terms(r#"say "hi" NEAR(a b) -x* ok"#)).as_deref(),
            Some(r#""say" AND """hi""" AND "near(a" AND "-x*""#),
            "\"b)\" is too short for a trigram: checked, not looked up"
        );
        assert_eq!(fts5_query(&terms("ok hi")), None);
    }

    #[test]
    fn words_go_to_the_word_index_and_the_rest_to_trigrams() {
        assert_eq!(
            words_query(&terms("Budget ok 会议 привет")).as_deref(),
            Some(r#"("budget"* AND "привет"*) OR 0glued"#),
            "a short word narrows nothing next to a longer one"
        );
        assert_eq!(
            words_query(&terms("ok")).as_deref(),
            Some(r#"("ok"*) OR 0glued"#)
        );
        assert_eq!(
            words_query(&terms("Internationally")).as_deref(),
            Some(r#"("internat"*) OR 0glued"#),
            "the longest prefix index"
        );
        for q in ["会议室", "e-mail", "ſtraße", "λόγος", "ﬁne", "under_score"] {
            assert_eq!(words_query(&terms(q)), None, "{q}");
        }
    }

    /// The word index's promise (see [`WORD_START_AFTER`]): every body where the rule
    /// finds a term at a word start comes back from the word index, whatever character
    /// stands before the word, on the SQLite this build bundles.
    #[tokio::test]
    async fn the_word_index_finds_every_word_start_the_rule_sees() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let schema = sqlite_schema();
        let words_table = schema
            .iter()
            .find(|s| s.contains("exists message_words"))
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(words_table.clone()))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("create table bodies (id integer primary key, body text not null)")
            .execute(&pool)
            .await
            .unwrap();
        // Every code point of the first two planes before a word in each case, and
        // every 61st of the rest.
        let points: Vec<char> = (1..0x2_0000)
            .chain((0x2_0000..0x11_0000).step_by(61))
            .filter_map(char::from_u32)
            .collect();
        let body = |c: char| format!("{c}Kelvin x{c}привет x{c}Élan x{c}ok");
        let mut tx = pool.begin().await.unwrap();
        for chunk in points.chunks(500) {
            let values = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = format!("insert into bodies (id, body) values {values}");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(i64::from(u32::from(*c))).bind(body(*c));
            }
            q.execute(&mut *tx).await.unwrap();
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into message_words (rowid, body) select id, {} from bodies",
            word_index_text("body")
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        for q in ["kelvin", "привет", "élan", "ok", "i"] {
            let t = terms(q);
            let found: HashSet<i64> =
                sqlx::query_scalar("select rowid from message_words where message_words match ?")
                    .bind(words_query(&t).unwrap())
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
            let missed: Vec<String> = points
                .iter()
                .filter(|c| shared::search::matches(&body(**c), &t))
                .filter(|c| !found.contains(&i64::from(u32::from(**c))))
                .map(|c| format!("U+{:04X}", u32::from(*c)))
                .collect();
            assert!(missed.is_empty(), "{q}: missed after {missed:?}");
            assert!(found.len() > 100, "{q}: {} found", found.len());
        }
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let id = uuid::Uuid::new_v4().to_string();
        for c in [
            Cursor::Newest(Pos {
                key: 42,
                room: String::new(),
                seq: 0,
            }),
            Cursor::Best {
                from: From {
                    pos: Pos {
                        key: -7,
                        room: id.clone(),
                        seq: 9,
                    },
                    inclusive: true,
                },
                offset: 20,
            },
        ] {
            assert_eq!(Cursor::parse(&c.encode()), Some(c));
        }
        for junk in [
            "",
            "n",
            "n.1",
            "n.x..0",
            "n.1.nope.0",
            "n.1..x",
            "b.q.1..0.0",
            "b.i.1..0.100",
            "n.1...",
            "x.1..0",
        ] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn postgres_walks_for_common_words_and_indexes_rare_ones() {
        // The bench's shape: a million messages, 50 rooms of 1,000 readable.
        let scope = Scope {
            rooms: (0..50).map(|i| format!("{i}")).collect(),
            readable: 50_000.0,
            total: 1_000_000.0,
        };
        let way = |matches| postgres_cheaper(&scope, matches, 21);
        assert_eq!(way(Some(360_000.0)), Way::PostgresWalk, "a word in 36 %");
        assert_eq!(way(Some(23_000.0)), Way::PostgresWalk, "a word in 2 %");
        assert_eq!(way(Some(800.0)), Way::PostgresIndexed, "two middling words");
        assert_eq!(way(Some(25.0)), Way::PostgresIndexed, "a rare word");
        assert_eq!(way(None), Way::PostgresWalk, "nothing an index can use");
        // One room: its index walk checks its rows alone.
        let one = Scope {
            rooms: vec!["r".into()],
            readable: 1_000.0,
            total: 1_000_000.0,
        };
        assert_eq!(
            postgres_cheaper(&one, Some(360_000.0), 21),
            Way::PostgresWalk
        );
        assert_eq!(postgres_cheaper(&one, Some(25.0), 21), Way::PostgresIndexed);
        // A walk batch: enough places for the hits wanted at the estimated rate.
        assert_eq!(postgres_walk_size(&scope, Some(360_000.0), 21), 88);
        assert_eq!(
            postgres_walk_size(&scope, Some(100.0), 21),
            POSTGRES_WALK.batch
        );
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_anywhere(&terms("50%_a\\b")[0]), r"%50\%\_a\\b%");
    }
}
