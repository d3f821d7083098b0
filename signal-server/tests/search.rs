//! Message search over real HTTP, on SQLite (FTS5: words and trigrams) and PostgreSQL
//! (tsvector and pg_trgm): words in Latin, Cyrillic and Chinese with their marks, words
//! glued to Chinese or inside URLs and paths, edits and deletions reindexed, only rooms you
//! are in now, filters, both orders, paging, bad input, and upgrades of a database from
//! before the index.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Db, TestServer, TestUser};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

on_both_databases!(
    words_in_every_script_are_found_and_marked,
    edits_are_reindexed_and_deletions_leave,
    only_rooms_you_are_in_now,
    filters_by_room_author_and_day,
    newest_or_best_first_in_pages,
    bad_input_is_refused_and_operators_are_plain_text,
    messages_from_before_the_index_are_found,
    words_glued_to_other_scripts_are_found,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_from_before_the_word_index_gets_it_on_start() {
    sqlite_from_before_the_word_index().await;
}

/// `GET /api/search` with these parameters as `user`.
async fn search_as(
    server: &TestServer,
    user: &TestUser,
    params: &[(&str, &str)],
) -> (StatusCode, Value) {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    let resp = server
        .http
        .get(format!("{}/api/search?{}", server.base, query.join("&")))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hits' bodies for `q`, expecting a 200.
async fn found(server: &TestServer, user: &TestUser, q: &str) -> Vec<String> {
    found_with(server, user, &[("q", q)]).await
}

async fn found_with(server: &TestServer, user: &TestUser, params: &[(&str, &str)]) -> Vec<String> {
    let (status, page) = search_as(server, user, params).await;
    assert_eq!(status, StatusCode::OK, "{params:?}: {page}");
    bodies(&page)
}

fn bodies(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["body"].as_str().unwrap().to_owned())
        .collect()
}

/// The marked parts of a hit's body (highlights count characters).
fn marked(hit: &Value) -> Vec<String> {
    let chars: Vec<char> = hit["body"].as_str().unwrap().chars().collect();
    hit["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let (s, e) = (h["start"].as_u64().unwrap(), h["end"].as_u64().unwrap());
            chars[s as usize..e as usize].iter().collect()
        })
        .collect()
}

async fn group(server: &TestServer, owner: &TestUser, others: &[&TestUser]) -> String {
    let room = server.room(owner, 8).await;
    for u in others {
        let (status, body) = server.join(u, &room).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    room
}

async fn words_in_every_script_are_found_and_marked(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let room = group(&server, &ann, &[&bob]).await;
    for body in [
        "Quarterly budget meeting at noon",
        "Привет, команда! ПРИВЕТ всем",
        "明天开会议，会议室见",
        "a greeting from the lobby",
    ] {
        server.post_message(&ann, &room, body).await;
    }

    // A word matches where a word starts, in any case: "meet" is in "meeting", not in
    // "greeting"; Bob finds what Ann wrote.
    let (status, page) = search_as(&server, &bob, &[("q", "MEET")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(bodies(&page), ["Quarterly budget meeting at noon"]);
    let hit = &page["hits"][0];
    assert_eq!(marked(hit), ["meet"]);
    assert_eq!(hit["room_id"], room.as_str());
    assert_eq!(hit["author"], ann.id.as_str());
    assert_eq!(hit["seq"], 1);
    assert!(hit["created_at"].is_string() && hit["edited_at"].is_null());

    // Cyrillic, folded: both spellings are marked.
    let (_, page) = search_as(&server, &bob, &[("q", "привет")]).await;
    assert_eq!(bodies(&page), ["Привет, команда! ПРИВЕТ всем"]);
    assert_eq!(marked(&page["hits"][0]), ["Привет", "ПРИВЕТ"]);

    // Chinese has no spaces: found anywhere, with two characters (shorter than a
    // trigram) as with three.
    let (_, page) = search_as(&server, &bob, &[("q", "会议")]).await;
    assert_eq!(bodies(&page), ["明天开会议，会议室见"]);
    assert_eq!(marked(&page["hits"][0]), ["会议", "会议"]);
    assert_eq!(
        found(&server, &bob, "会议室").await,
        ["明天开会议，会议室见"]
    );

    // Every word must be there, in any order; short words too.
    assert_eq!(
        found(&server, &bob, "noon budget").await,
        ["Quarterly budget meeting at noon"]
    );
    assert_eq!(
        found(&server, &bob, "at").await,
        ["Quarterly budget meeting at noon"]
    );
    assert!(found(&server, &bob, "budget lunch").await.is_empty());
    assert!(
        found(&server, &bob, "eeting").await.is_empty(),
        "not a word start"
    );
    server.stop().await;
}

async fn edits_are_reindexed_and_deletions_leave(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    let msg = server.post_message(&ann, &room, "the old plan").await;
    assert_eq!(found(&server, &ann, "old").await, ["the old plan"]);

    // Edited: found by the new words only, and the hit says it was edited.
    let path = format!("/api/rooms/{room}/messages/{}", msg.id);
    let (status, body) = server
        .request(
            Method::PATCH,
            &path,
            Some(&ann.token),
            Some(json!({"body": "the revised plan"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(found(&server, &ann, "old").await.is_empty());
    let (_, page) = search_as(&server, &ann, &[("q", "revised")]).await;
    assert_eq!(bodies(&page), ["the revised plan"]);
    assert!(page["hits"][0]["edited_at"].is_string());

    // Deleted: gone from search.
    let (status, body) = server.delete(&path, Some(&ann.token)).await;
    assert!(status.is_success(), "{status} {body}");
    assert!(found(&server, &ann, "revised").await.is_empty());
    assert!(found(&server, &ann, "plan").await.is_empty());
    server.stop().await;
}

async fn only_rooms_you_are_in_now(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let eve = server.user("eve").await;
    let ours = group(&server, &ann, &[&bob]).await;
    let eves = group(&server, &eve, &[]).await;
    server
        .post_message(&ann, &ours, "launch plan for ours")
        .await;
    server
        .post_message(&eve, &eves, "launch plan for eve")
        .await;

    // A direct room counts too.
    server.befriend(&ann, &bob).await;
    let (status, direct) = server
        .post(
            &format!("/api/contacts/{}/direct", bob.id),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{direct}");
    let direct = direct["id"].as_str().unwrap().to_owned();
    server
        .post_message(&bob, &direct, "launch plan, just us")
        .await;

    let mine: HashSet<String> = found(&server, &bob, "launch").await.into_iter().collect();
    assert_eq!(
        mine,
        HashSet::from([
            "launch plan for ours".to_owned(),
            "launch plan, just us".to_owned()
        ])
    );
    assert_eq!(
        found(&server, &eve, "launch").await,
        ["launch plan for eve"]
    );
    // A room filter does not open a room you are not in.
    assert!(
        found_with(&server, &eve, &[("q", "launch"), ("room", &ours)])
            .await
            .is_empty()
    );

    // Bob leaves the group: its messages are gone from his search at once.
    let (status, body) = server
        .post(
            &format!("/api/rooms/{ours}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    assert_eq!(
        found(&server, &bob, "launch").await,
        ["launch plan, just us"]
    );

    // Ann blocks Bob: his messages leave her search (the block stays silent to him).
    let (status, _) = server
        .request(
            Method::PUT,
            &format!("/api/blocks/{}", bob.id),
            Some(&ann.token),
            None,
        )
        .await;
    assert!(status.is_success());
    assert_eq!(
        found(&server, &ann, "launch").await,
        ["launch plan for ours"]
    );
    server.stop().await;
}

async fn filters_by_room_author_and_day(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let first = group(&server, &ann, &[&bob]).await;
    let second = group(&server, &ann, &[&bob]).await;
    server
        .post_message(&ann, &first, "deploy by ann in first")
        .await;
    server
        .post_message(&bob, &first, "deploy by bob in first")
        .await;
    server
        .post_message(&bob, &second, "deploy by bob in second")
        .await;

    let q = |extra: &[(&'static str, String)]| {
        let mut p = vec![("q", "deploy".to_owned())];
        p.extend(extra.iter().cloned());
        p
    };
    let run = async |p: Vec<(&str, String)>| {
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut b = found_with(&server, &ann, &p).await;
        b.sort();
        b
    };
    assert_eq!(
        run(q(&[("room", first.clone())])).await,
        ["deploy by ann in first", "deploy by bob in first"]
    );
    assert_eq!(
        run(q(&[("author", bob.id.clone())])).await,
        ["deploy by bob in first", "deploy by bob in second"]
    );
    assert_eq!(
        run(q(&[("room", first.clone()), ("author", bob.id.clone())])).await,
        ["deploy by bob in first"]
    );

    // Days are UTC days: today's messages are on or after today and before tomorrow.
    let today = time::OffsetDateTime::now_utc().date();
    let day = |d: time::Date| d.to_string();
    let tomorrow = today.next_day().unwrap();
    assert_eq!(
        run(q(&[("after", day(today)), ("before", day(tomorrow))]))
            .await
            .len(),
        3
    );
    assert!(run(q(&[("before", day(today))])).await.is_empty());
    assert!(run(q(&[("after", day(tomorrow))])).await.is_empty());
    server.stop().await;
}

async fn newest_or_best_first_in_pages(db: Db) {
    let server = TestServer::start_with(db, &["--message-rate", "1000"]).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    let dense = "budget budget budget";
    server.post_message(&ann, &room, dense).await;
    let loose = "we talked about many other things today and then briefly the budget";
    server.post_message(&ann, &room, loose).await;

    // Newest first by default; best puts the message that is most about it first.
    assert_eq!(found(&server, &ann, "budget").await, [loose, dense]);
    assert_eq!(
        found_with(&server, &ann, &[("q", "budget"), ("order", "best")]).await,
        [dense, loose]
    );

    // 25 matches in pages of 10, each once, newest first, then no cursor.
    for i in 0..25 {
        server
            .post_message(&ann, &room, &format!("report number {i}"))
            .await;
    }
    for order in ["newest", "best"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut params = vec![("q", "report"), ("limit", "10"), ("order", order)];
            if let Some(c) = &cursor {
                params.push(("cursor", c));
            }
            let (status, page) = search_as(&server, &ann, &params).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            pages += 1;
            seen.extend(bodies(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(pages, 3, "{order}");
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), unique.len()), (25, 25), "{order}: {seen:?}");
        if order == "newest" {
            let expected: Vec<String> = (0..25)
                .rev()
                .map(|i| format!("report number {i}"))
                .collect();
            assert_eq!(seen, expected);
        }
    }

    // A message sent while paging does not shift the pages after the first.
    let (_, first) = search_as(
        &server,
        &ann,
        &[("q", "report"), ("limit", "10"), ("order", "best")],
    )
    .await;
    server.post_message(&ann, &room, "report number 25").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = search_as(
        &server,
        &ann,
        &[
            ("q", "report"),
            ("limit", "10"),
            ("order", "best"),
            ("cursor", cursor),
        ],
    )
    .await;
    let both: HashSet<String> = bodies(&first).into_iter().chain(bodies(&second)).collect();
    assert_eq!(both.len(), 20);
    assert!(!both.contains("report number 25"));
    server.stop().await;
}

async fn bad_input_is_refused_and_operators_are_plain_text(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    server.post_message(&ann, &room, "budget review").await;
    server
        .post_message(
            &ann,
            &room,
            r#"she said "budget* -x NEAR(a b)" at 100% yes"#,
        )
        .await;

    let long = "a".repeat(201);
    let many: String = (0..11).map(|i| format!("w{i} ")).collect();
    let (_, newest) = search_as(&server, &ann, &[("q", "budget"), ("limit", "1")]).await;
    let newest_cursor = newest["next_cursor"].as_str().unwrap().to_owned();
    for (params, field) in [
        (vec![("q", "")], "q"),
        (vec![("q", "   ")], "q"),
        (vec![("q", long.as_str())], "q"),
        (vec![("q", many.as_str())], "q"),
        (vec![("q", "bud\u{0}get")], "q"),
        (vec![("q", "budget"), ("limit", "0")], "limit"),
        (vec![("q", "budget"), ("limit", "51")], "limit"),
        (vec![("q", "budget"), ("cursor", "zzz")], "cursor"),
        (
            vec![("q", "budget"), ("cursor", "n.1.not-a-uuid")],
            "cursor",
        ),
        (
            vec![
                ("q", "budget"),
                ("order", "best"),
                ("cursor", newest_cursor.as_str()),
            ],
            "cursor",
        ),
        (vec![("q", "budget"), ("after", "2026-13-01")], "after"),
        (vec![("q", "budget"), ("before", "yesterday")], "before"),
        (
            vec![
                ("q", "budget"),
                ("after", "2026-01-02"),
                ("before", "2026-01-02"),
            ],
            "after",
        ),
    ] {
        let (status, body) = search_as(&server, &ann, &params).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{params:?}: {body}"
        );
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(
            body["error"]["fields"][field].is_string(),
            "{params:?}: {body}"
        );
    }
    let (status, body) = search_as(&server, &ann, &[("q", "x"), ("room", "nope")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["code"].is_string());
    let (status, _) = server.get("/api/search?q=budget", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // FTS5 and LIKE syntax is plain text: no error, and it means itself.
    let quoted = r#"she said "budget* -x NEAR(a b)" at 100% yes"#;
    for q in [
        r#""budget*"#,
        "-x",
        "near(a",
        "100%",
        "b)\"",
        "\"",
        "*",
        "%",
        "_",
        "'",
        "a:b",
    ] {
        let (status, body) = search_as(&server, &ann, &[("q", q)]).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        for b in bodies(&body) {
            assert_eq!(b, quoted, "{q} found {b}");
        }
    }
    assert_eq!(found(&server, &ann, "100%").await, [quoted]);
    assert!(
        found(&server, &ann, "%").await.len() == 1,
        "% is not a wildcard"
    );
    assert!(
        found(&server, &ann, "_").await.is_empty(),
        "_ is not a wildcard"
    );
    server.stop().await;
}

async fn messages_from_before_the_index_are_found(db: Db) {
    let mut server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    server
        .post_message(&ann, &room, "written before search existed")
        .await;
    server.post_message(&ann, &room, "до поиска").await;

    // Take the database back to before the search index: drop what `db::search` adds.
    let drop: &[&str] = match db {
        Db::Sqlite => &[
            "drop trigger message_index_insert",
            "drop trigger message_index_update",
            "drop trigger message_index_delete",
            "drop table message_words",
            "drop table message_fts",
            "drop table message_search",
        ],
        Db::Postgres => &[
            "drop index messages_search_trigrams",
            // The word index of then, on PostgreSQL's own parse of the body.
            "create index messages_search_words on messages \
                 using gin (to_tsvector('simple', body))",
        ],
    };
    if db == Db::Postgres {
        let (function, index) = postgres_words(&server).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("drop index {index}")))
            .execute(server.pool())
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop function {function}(text)"
        )))
        .execute(server.pool())
        .await
        .unwrap();
    }
    for sql in drop {
        sqlx::query(*sql).execute(server.pool()).await.unwrap();
    }
    // Starting again builds it over what is stored.
    server.restart().await;
    let ann = server.sign_in("ann").await;
    assert_eq!(
        found(&server, &ann, "before").await,
        ["written before search existed"]
    );
    assert_eq!(found(&server, &ann, "поиска").await, ["до поиска"]);
    let present: i64 = match db {
        Db::Sqlite => sqlx::query_scalar(
            "select count(*) from message_fts where message_fts match '\"before\"'",
        )
        .fetch_one(server.pool())
        .await
        .unwrap(),
        // The word index of now, and the one of then gone.
        Db::Postgres => sqlx::query_scalar(
            "select count(*) from pg_indexes where indexname like 'messages\\_search\\_words\\_%' \
             or indexname in ('messages_search_trigrams', 'messages_search_words')",
        )
        .fetch_one(server.pool())
        .await
        .unwrap(),
    };
    assert_eq!(
        present,
        match db {
            Db::Sqlite => 1,
            Db::Postgres => 2,
        }
    );
    // New messages are indexed again as they come.
    server.post_message(&ann, &room, "after the upgrade").await;
    assert_eq!(found(&server, &ann, "upgrade").await, ["after the upgrade"]);
    server.stop().await;
}

/// The PostgreSQL word index's function and index names (they carry a hash of the
/// function's definition).
async fn postgres_words(server: &TestServer) -> (String, String) {
    let function: String = sqlx::query_scalar(
        "select proname::text from pg_proc where proname like 'message\\_words\\_%'",
    )
    .fetch_one(server.pool())
    .await
    .unwrap();
    let index = function.replacen("message_words_", "messages_search_words_", 1);
    (function, index)
}

/// The PostgreSQL word index's promise: every body where the rule finds a term at a word
/// start holds a word the term's prefix query finds, whatever character stands before the
/// word (every code point of the first two planes, and every 61st of the rest), on the
/// PostgreSQL and C library of this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_word_index_finds_every_word_start_the_rule_sees() {
    let server = TestServer::start(Db::Postgres).await;
    let (function, _) = postgres_words(&server).await;
    let points: Vec<char> = (1..0x2_0000)
        .chain((0x2_0000..0x11_0000).step_by(61))
        .filter_map(char::from_u32)
        .collect();
    let body = |c: char| format!("{c}Kelvin x{c}привет x{c}Élan x{c}ok");
    for q in ["kelvin", "привет", "élan", "ok", "i"] {
        let t = shared::search::terms(q);
        let sql = format!(
            "select u::bigint from (select generate_series(1, 131071) as u \
                 union all select generate_series(131072, 1114111, 61)) as points \
             where (u < 55296 or u > 57343) \
                 and {function}(chr(u::int) || 'Kelvin x' || chr(u::int) || 'привет x' \
                     || chr(u::int) || 'Élan x' || chr(u::int) || 'ok') \
                 @@ to_tsquery('simple', $1)"
        );
        let found: HashSet<i64> = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .bind(format!("{q}:*"))
            .fetch_all(server.pool())
            .await
            .unwrap()
            .into_iter()
            .collect();
        let expected: Vec<&char> = points
            .iter()
            .filter(|c| shared::search::matches(&body(**c), &t))
            .collect();
        let missed: Vec<String> = expected
            .iter()
            .filter(|c| !found.contains(&i64::from(u32::from(***c))))
            .map(|c| format!("U+{:04X}", u32::from(**c)))
            .collect();
        assert!(missed.is_empty(), "{q}: missed after {missed:?}");
        // Not vacuous: "i" is in a few ("I", "İ" and the like), the rest in ~100,000.
        assert!(expected.len() >= 3, "{q}: {} expected", expected.len());
    }
    server.stop().await;
}

async fn words_glued_to_other_scripts_are_found(db: Db) {
    let server = TestServer::start(db).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    for body in [
        "明天用Zoom开会",
        "オンラインMeeting予定",
        "\u{1F44D}\u{1F3FD}ok then",
        "Tschüss, bis Übermorgen",
        "İzmir trip",
        "\u{212A}elvin scale",
        "call at meet.us/q/42",
        "mail ann@example.org, see /opt/bin or v1.2.3",
        "nothing to see",
    ] {
        server.post_message(&ann, &room, body).await;
    }

    // Each query twice: over every room (the word index) and in this small room (a
    // walk of the room, with a prefilter in SQL for ASCII and for Chinese terms).
    let both = |q: &'static str| {
        let (server, ann, room) = (&server, &ann, room.clone());
        async move {
            let everywhere = found(server, ann, q).await;
            let here = found_with(server, ann, &[("q", q), ("room", &room)]).await;
            assert_eq!(everywhere, here, "{q}: every room, and one");
            everywhere
        }
    };
    // The rule finds a word right after Chinese, kana or an emoji modifier, which a word
    // tokenizer takes as one word with it ("用zoom开会").
    assert_eq!(both("zoom").await, ["明天用Zoom开会"]);
    assert_eq!(both("meeting").await, ["オンラインMeeting予定"]);
    assert_eq!(both("ok").await, ["\u{1F44D}\u{1F3FD}ok then"]);
    assert_eq!(both("用z").await, ["明天用Zoom开会"]);
    // After punctuation inside what PostgreSQL's parser takes as one host, URL, email,
    // path or version.
    assert_eq!(both("us").await, ["call at meet.us/q/42"]);
    assert_eq!(both("q").await, ["call at meet.us/q/42"]);
    let mail = ["mail ann@example.org, see /opt/bin or v1.2.3"];
    for q in ["example", "org", "opt", "bin", "2", "3"] {
        assert_eq!(both(q).await, mail, "{q}");
    }
    // Letters beyond ASCII, in any case; a word start only.
    assert_eq!(both("übermorgen").await, ["Tschüss, bis Übermorgen"]);
    assert_eq!(both("TSCHÜSS").await, ["Tschüss, bis Übermorgen"]);
    assert!(both("morgen").await.is_empty());
    // Two characters outside ASCII lowercase into it: İ to "i" and a dot above, the
    // Kelvin sign to "k".
    assert_eq!(both("i").await, ["İzmir trip"]);
    assert_eq!(both("kelvin").await, ["\u{212A}elvin scale"]);
    server.stop().await;
}

/// SQLite as it was before the word index (the trigram index alone, under the triggers
/// of then): starting builds the word index over every message, and from then on sends,
/// edits and deletions keep both indexes right.
async fn sqlite_from_before_the_word_index() {
    let mut server = TestServer::start(Db::Sqlite).await;
    let ann = server.user("ann").await;
    let room = group(&server, &ann, &[]).await;
    server
        .post_message(&ann, &room, "Quarterly forecast before the upgrade")
        .await;
    let edited = server
        .post_message(&ann, &room, "draft agenda before the upgrade")
        .await;
    for sql in [
        "drop trigger message_index_insert",
        "drop trigger message_index_update",
        "drop trigger message_index_delete",
        "drop table message_words",
        "create trigger message_search_insert after insert on messages begin \
             insert into message_search (message_id, room_id) values (new.id, new.room_id); \
             insert into message_fts (rowid, body) \
                 select doc, new.body from message_search \
                 where message_id = new.id and new.body <> ''; \
         end",
        "create trigger message_search_update after update of body on messages \
         when new.body is not old.body begin \
             delete from message_fts where old.body <> '' \
                 and rowid = (select doc from message_search where message_id = old.id); \
             insert into message_fts (rowid, body) \
                 select doc, new.body from message_search \
                 where message_id = new.id and new.body <> ''; \
         end",
        "create trigger message_search_delete after delete on messages begin \
             delete from message_fts where old.body <> '' \
                 and rowid = (select doc from message_search where message_id = old.id); \
             delete from message_search where message_id = old.id; \
         end",
    ] {
        sqlx::query(sql).execute(server.pool()).await.unwrap();
    }
    server.restart().await;
    let ann = server.sign_in("ann").await;

    // Every message is in the word index, and the old triggers are gone (one set now).
    assert_eq!(in_index(&server, "message_words", "upgrade").await, 2);
    let triggers: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'trigger' and tbl_name = 'messages' \
         and name like 'message_%' order by name",
    )
    .fetch_all(server.pool())
    .await
    .unwrap();
    assert_eq!(
        triggers,
        [
            "message_index_delete",
            "message_index_insert",
            "message_index_update"
        ]
    );
    assert_eq!(
        found(&server, &ann, "forecast").await,
        ["Quarterly forecast before the upgrade"]
    );

    // An edit moves the message in both indexes; a deletion takes it out of both.
    let path = format!("/api/rooms/{room}/messages/{}", edited.id);
    let (status, body) = server
        .request(
            Method::PATCH,
            &path,
            Some(&ann.token),
            Some(json!({"body": "final agenda after review"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(found(&server, &ann, "draft").await.is_empty());
    assert_eq!(
        found(&server, &ann, "agenda review").await,
        ["final agenda after review"]
    );
    assert_eq!(in_index(&server, "message_words", "draft").await, 0);
    assert_eq!(in_index(&server, "message_words", "review").await, 1);
    let (status, body) = server.delete(&path, Some(&ann.token)).await;
    assert!(status.is_success(), "{status} {body}");
    assert!(found(&server, &ann, "agenda").await.is_empty());
    assert_eq!(in_index(&server, "message_words", "agenda").await, 0);
    assert_eq!(in_index(&server, "message_fts", "agenda").await, 0);

    // New messages go into both.
    server
        .post_message(&ann, &room, "fresh news after the upgrade")
        .await;
    assert_eq!(in_index(&server, "message_words", "fresh").await, 1);
    assert_eq!(in_index(&server, "message_fts", "fresh").await, 1);
    assert_eq!(
        found(&server, &ann, "fresh").await,
        ["fresh news after the upgrade"]
    );
    server.stop().await;
}

/// How many docs of SQLite's FTS5 table `table` hold `word`.
async fn in_index(server: &TestServer, table: &str, word: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} where {table} match $1"
    )))
    .bind(format!("\"{word}\""))
    .fetch_one(server.pool())
    .await
    .unwrap()
}
