//! `search_load`: `GET /api/search` latency over a large message store, on SQLite and
//! PostgreSQL.
//!
//! ```text
//! cargo bench -p signal-server --bench search_load -- run [--database sqlite|postgres|both]
//!     [--messages 1000000] [--rooms 1000] [--member-of 50] [--requests 100]
//! ```
//!
//! For each database it starts the server in this process on a fresh database (SQLite: a
//! new file; PostgreSQL: a new database on `CONFAB_TEST_POSTGRES_URL`'s server, dropped
//! afterwards), signs up the searcher and 20 authors through the API, and writes rooms,
//! memberships and `--messages` messages straight into the database (multi-row inserts,
//! 10,000 rows a transaction). The messages go round-robin over `--rooms` rooms, so every
//! room's messages are spread over the whole history as in a real server; the searcher is
//! a member of `--member-of` of them. On SQLite the triggers index each message as it is
//! written; on PostgreSQL the search indexes are dropped first and built over the
//! seeded rows by `db::search::ensure` (the upgrade path), then `vacuum analyze` runs
//! (as autovacuum would after so many inserts).
//!
//! The text: 80 % English-like messages of 6-16 words (half from 50 stop words, most of
//! the rest from a 2,000-word topic vocabulary drawn with a Zipf law, 5 % from 20,000 rare
//! words), 10 % Russian-like and 10 % Chinese-like ones (two-character words, no spaces).
//!
//! Then the mix, each query kind `--requests` times, one request at a time through HTTP
//! (reqwest to the in-process server, so the figure includes HTTP, JSON and auth): the
//! most common topic word (in ~40 % of messages), a middling one (~2 %), a rare one
//! (~25 messages in a million), two words, a Cyrillic word, a 2- and a 3-character
//! Chinese word, a 2-letter word (the short-query walk on SQLite), each without and
//! with a room filter, and the common and middling words with `order=best`. Reported per
//! kind and for the whole mix: p50, p99 and max, hits per page; then one `RESULT {json}`
//! line.

use anyhow::{Context, Result, ensure};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use signal_server::testing::{Db, TestServer};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "GET /api/search latency over a large message store")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Appended by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Seed and measure.
    Run(RunArgs),
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// `sqlite`, `postgres` or `both`.
    #[arg(long, default_value = "both")]
    database: String,
    /// Messages to seed.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Rooms they are spread over.
    #[arg(long, default_value_t = 1_000)]
    rooms: u64,
    /// Rooms the searcher is a member of.
    #[arg(long, default_value_t = 50)]
    member_of: u64,
    /// Requests per query kind.
    #[arg(long, default_value_t = 100)]
    requests: u64,
    /// Leave the seeded database behind (its URL is printed) instead of dropping it:
    /// for looking at query plans by hand. Drop it yourself afterwards.
    #[arg(long)]
    keep: bool,
    /// Appended by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let Some(Command::Run(args)) = cli.command else {
        // `cargo bench` over the workspace runs every bench bare: seeding a million
        // messages is nothing to start by surprise.
        println!("search_load: give `run` to seed and measure (see --help); nothing to do.");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dbs: &[(Db, &str)] = match args.database.as_str() {
        "sqlite" => &[(Db::Sqlite, "sqlite")],
        "postgres" => &[(Db::Postgres, "postgres")],
        "both" => &[(Db::Sqlite, "sqlite"), (Db::Postgres, "postgres")],
        other => anyhow::bail!("--database {other}: sqlite, postgres or both"),
    };
    let mut results = Vec::new();
    for (db, name) in dbs {
        results.push(runtime.block_on(run(*db, name, &args))?);
    }
    println!("RESULT {}", json!({ "search": results }));
    Ok(())
}

/// A small deterministic generator (SplitMix64): the same text on every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks an index in `0..weights.len()` by cumulative weights.
fn pick(cumulative: &[f64], rng: &mut Rng) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let x = rng.unit() * total;
    cumulative
        .partition_point(|c| *c < x)
        .min(cumulative.len() - 1)
}

fn zipf(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    (1..=n)
        .map(|k| {
            acc += 1.0 / k as f64;
            acc
        })
        .collect()
}

const STOP: &[&str] = &[
    "the", "to", "and", "a", "i", "you", "it", "is", "of", "for", "in", "that", "on", "we", "this",
    "be", "have", "can", "will", "with", "are", "not", "do", "at", "so", "but", "just", "if", "me",
    "my", "what", "all", "was", "get", "there", "they", "about", "one", "like", "from", "ok",
    "yes", "no", "now", "up", "out", "how", "when", "an", "as",
];
const RUSSIAN: &[&str] = &[
    "привет",
    "как",
    "дела",
    "сегодня",
    "завтра",
    "встреча",
    "проект",
    "задача",
    "время",
    "вопрос",
    "работа",
    "нужно",
    "можно",
    "сделать",
    "посмотрю",
    "спасибо",
    "хорошо",
    "да",
    "нет",
    "потом",
    "уже",
    "ещё",
    "отчёт",
    "релиз",
    "сервер",
    "база",
    "ошибка",
    "готово",
];
const CHINESE: &[&str] = &[
    "会议", "明天", "我们", "项目", "时间", "问题", "今天", "工作", "公司", "客户", "开发", "测试",
    "需要", "已经", "可以", "没有", "现在", "一下", "发布", "文档", "服务", "数据",
];

/// Syllables for the synthetic topic and rare words (Latin letters, word-like).
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "tor", "vel", "sar", "qui", "den", "bru", "fal", "gen", "hop", "jin",
    "kes", "lum", "mor", "nax", "pel", "rin", "sto", "tav", "ure", "wix", "yel", "zon",
];

struct Corpus {
    topic: Vec<String>,
    topic_weights: Vec<f64>,
    rare: Vec<String>,
    stop_weights: Vec<f64>,
}

impl Corpus {
    fn new() -> Self {
        let word = |mut n: usize, syllables: usize| {
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(SYLLABLES[n % SYLLABLES.len()]);
                n /= SYLLABLES.len();
            }
            w
        };
        Self {
            // Three syllables: 17,576 possible; the first 2,000 are the topic words.
            topic: (0..2_000).map(|i| word(i * 7 + 3, 3)).collect(),
            topic_weights: zipf(2_000),
            // Four syllables: disjoint from the topic words (different lengths or letters).
            rare: (0..20_000).map(|i| word(i * 13 + 5, 4) + "x").collect(),
            stop_weights: zipf(STOP.len()),
        }
    }

    fn message(&self, rng: &mut Rng) -> String {
        let kind = rng.below(10);
        if kind == 0 {
            let n = 3 + rng.below(8);
            let words: Vec<&str> = (0..n)
                .map(|_| RUSSIAN[rng.below(RUSSIAN.len() as u64) as usize])
                .collect();
            return words.join(" ");
        }
        if kind == 1 {
            let n = 4 + rng.below(8);
            let mut s = String::new();
            for _ in 0..n {
                s.push_str(CHINESE[rng.below(CHINESE.len() as u64) as usize]);
                if rng.below(10) == 0 {
                    s.push('室');
                }
            }
            return s;
        }
        let n = 6 + rng.below(11);
        let mut words = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let r = rng.unit();
            let w = if r < 0.5 {
                STOP[pick(&self.stop_weights, rng)]
            } else if r < 0.95 {
                &self.topic[pick(&self.topic_weights, rng)]
            } else {
                &self.rare[rng.below(self.rare.len() as u64) as usize]
            };
            words.push(w);
        }
        let mut s = words.join(" ");
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        s
    }
}

struct Seeded {
    token: String,
    my_rooms: Vec<String>,
    seed_secs: f64,
    index_secs: f64,
}

async fn sign_up(http: &reqwest::Client, base: &str, name: &str) -> Result<(String, String)> {
    let password = "Correct-Horse-Battery-9";
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password, "confirm_password": password}))
        .send()
        .await?;
    ensure!(
        r.status().is_success(),
        "register {name}: {}",
        r.text().await?
    );
    let body: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"login": name, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        body["user"]["id"]
            .as_str()
            .context("no user id")?
            .to_owned(),
        body["access_token"]
            .as_str()
            .context("no token")?
            .to_owned(),
    ))
}

const ROWS_PER_INSERT: u64 = 100;
const ROWS_PER_TX: u64 = 10_000;

async fn seed(
    server: &TestServer,
    db: Db,
    http: &reqwest::Client,
    args: &RunArgs,
) -> Result<Seeded> {
    let pool = &server.server().state.pool;
    let (me, token) = sign_up(http, &server.base, "searcher").await?;
    let mut authors = Vec::new();
    for i in 0..20 {
        authors.push(sign_up(http, &server.base, &format!("author{i}")).await?.0);
    }
    let t0 = signal_server::db::now() - 200 * 86_400;
    let rooms: Vec<String> = (0..args.rooms)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let stride = (args.rooms / args.member_of.max(1)).max(1);
    let mut my_rooms = Vec::new();
    let mut tx = pool.begin().await?;
    for (i, room) in rooms.iter().enumerate() {
        let owner = &authors[i % authors.len()];
        sqlx::query(
            "insert into rooms (id, title, owner_id, max_participants, member_count, created_at, kind) \
             values ($1, $2, $3, 8, 5, $4, 'group')",
        )
        .bind(room)
        .bind(format!("room {i}"))
        .bind(owner)
        .bind(t0)
        .execute(&mut *tx)
        .await?;
        let mut members: Vec<&String> = (0..5)
            .map(|k| &authors[(i + k * 3) % authors.len()])
            .collect();
        members.dedup();
        if (i as u64).is_multiple_of(stride) && (my_rooms.len() as u64) < args.member_of {
            members.push(&me);
            my_rooms.push(room.clone());
        }
        for (k, user) in members.iter().enumerate() {
            sqlx::query(
                "insert into room_members (room_id, user_id, joined_at, role) values ($1, $2, $3, $4)",
            )
            .bind(room)
            .bind(*user)
            .bind(t0)
            .bind(if k == 0 { "owner" } else { "member" })
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;

    if db == Db::Postgres {
        // Built over the seeded rows afterwards, as an upgrade builds them: every search
        // index (the word index's name carries a hash of its definition).
        let drops: Vec<String> = sqlx::query_scalar(
            "select format('drop index %I', indexname) from pg_indexes \
             where tablename = 'messages' and indexname like 'messages\\_search\\_%'",
        )
        .fetch_all(pool)
        .await?;
        anyhow::ensure!(drops.len() >= 4, "search indexes to drop: {drops:?}");
        for drop in drops {
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await?;
        }
    }
    let corpus = Corpus::new();
    let mut rng = Rng(42);
    let started = Instant::now();
    let mut next = 0u64;
    while next < args.messages {
        let mut tx = pool.begin().await?;
        let end = (next + ROWS_PER_TX).min(args.messages);
        while next < end {
            let rows = ROWS_PER_INSERT.min(end - next);
            let values: Vec<String> = (0..rows)
                .map(|k| {
                    let p = 1 + 7 * k;
                    format!(
                        "(${p}, ${}, ${}, ${}, 'text', ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6
                    )
                })
                .collect();
            let sql = format!(
                "insert into messages (id, room_id, seq, rev, kind, author_id, body, created_at) values {}",
                values.join(", ")
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for i in next..next + rows {
                let room = (i % args.rooms) as usize;
                let seq = i64::try_from(i / args.rooms + 1)?;
                insert = insert
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(rooms[room].clone())
                    .bind(seq)
                    .bind(seq)
                    .bind(authors[(room + 3 * (i as usize % 5)) % authors.len()].clone())
                    .bind(corpus.message(&mut rng))
                    // ~200 days of history, one message every ~17 s on average.
                    .bind(t0 + i64::try_from(i * 200 * 86_400 / args.messages.max(1))?);
            }
            insert.execute(&mut *tx).await?;
            next += rows;
        }
        tx.commit().await?;
        if next.is_multiple_of(100_000) {
            eprintln!(
                "  {next} messages, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let per_room = i64::try_from(args.messages / args.rooms)?;
    sqlx::query("update rooms set last_seq = $1, last_rev = $1")
        .bind(per_room)
        .execute(pool)
        .await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    match db {
        Db::Postgres => {
            signal_server::db::search::ensure(pool).await?;
            // What autovacuum does after that many inserts: statistics, and the
            // visibility map (so the newest-first walk reads its index alone).
            sqlx::query("vacuum analyze").execute(pool).await?;
        }
        Db::Sqlite => {
            sqlx::query("pragma wal_checkpoint(truncate)")
                .execute(pool)
                .await?;
        }
    }
    Ok(Seeded {
        token,
        my_rooms,
        seed_secs,
        index_secs: started.elapsed().as_secs_f64(),
    })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Kind {
    name: String,
    /// Query strings to rotate through.
    queries: Vec<String>,
    room_filter: bool,
    best: bool,
}

async fn run(db: Db, name: &str, args: &RunArgs) -> Result<Value> {
    eprintln!(
        "== {name}: seeding {} messages over {} rooms",
        args.messages, args.rooms
    );
    let server = TestServer::start_with(db, &["--db-max-connections", "4"]).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?;
    let seeded = seed(&server, db, &http, args).await?;
    eprintln!(
        "   seeded in {:.0} s, indexed in {:.0} s",
        seeded.seed_secs, seeded.index_secs
    );
    let corpus = Corpus::new();
    let mut rng = Rng(7);
    let rare: Vec<String> = (0..50)
        .map(|_| corpus.rare[rng.below(corpus.rare.len() as u64) as usize].clone())
        .collect();
    let common = corpus.topic[0].clone();
    let middling = corpus.topic[20].clone();
    let base_kinds: Vec<(&str, Vec<String>)> = vec![
        ("common word", vec![common.clone()]),
        ("middling word", vec![middling.clone()]),
        ("rare word", rare),
        (
            "two words",
            vec![format!("{} {}", corpus.topic[5], corpus.topic[50])],
        ),
        (
            "cyrillic",
            vec!["привет".into(), "отчёт".into(), "встреча".into()],
        ),
        ("cjk 2 chars", vec!["会议".into(), "客户".into()]),
        ("cjk 3 chars", vec!["会议室".into(), "发布文".into()]),
        ("2 letters", vec!["ok".into(), "up".into()]),
    ];
    let mut kinds = Vec::new();
    for (kind, queries) in &base_kinds {
        for room_filter in [false, true] {
            kinds.push(Kind {
                name: format!("{kind}{}", if room_filter { ", one room" } else { "" }),
                queries: queries.clone(),
                room_filter,
                best: false,
            });
        }
    }
    for (kind, q) in [
        ("common word, best", &common),
        ("middling word, best", &middling),
    ] {
        kinds.push(Kind {
            name: kind.into(),
            queries: vec![q.clone()],
            room_filter: false,
            best: true,
        });
    }
    // Warm up: every kind once (caches, prepared statements).
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rows = Vec::new();
    println!(
        "\n{name}: {} messages, {} rooms, the searcher in {}",
        args.messages,
        args.rooms,
        seeded.my_rooms.len()
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>6}",
        "query", "p50 ms", "p99 ms", "max ms", "hits"
    );
    for pass in [false, true] {
        for kind in &kinds {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut hits = 0usize;
            let n = if pass { args.requests } else { 3 };
            for i in 0..n {
                let q = &kind.queries[i as usize % kind.queries.len()];
                let mut url = format!("{}/api/search?q={}", server.base, urlencode(q));
                if kind.room_filter {
                    let room = &seeded.my_rooms[rng.below(seeded.my_rooms.len() as u64) as usize];
                    url += &format!("&room={room}");
                }
                if kind.best {
                    url += "&order=best";
                }
                let started = Instant::now();
                let resp = http.get(&url).bearer_auth(&seeded.token).send().await?;
                let status = resp.status();
                let body: Value = resp.json().await?;
                let us = u64::try_from(started.elapsed().as_micros())?;
                ensure!(status.is_success(), "{url}: {status} {body}");
                hits += body["hits"].as_array().map_or(0, Vec::len);
                h.record(us.max(1))?;
                if pass {
                    all.record(us.max(1))?;
                }
            }
            if pass {
                let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                let avg_hits = hits as f64 / n as f64;
                println!(
                    "{:<28} {:>9.2} {:>9.2} {:>9.2} {:>6.1}",
                    kind.name,
                    ms(0.5),
                    ms(0.99),
                    h.max() as f64 / 1000.0,
                    avg_hits
                );
                rows.push(json!({"query": kind.name, "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": h.max() as f64 / 1000.0, "hits": avg_hits}));
            }
        }
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{:<28} {:>9.2} {:>9.2} {:>9.2}",
        "whole mix",
        ms(0.5),
        ms(0.99),
        all.max() as f64 / 1000.0
    );
    let mut server = server;
    server.stop().await;
    if args.keep {
        eprintln!("   kept: {}", server.database_url());
        // The harness drops its database when the server goes: not this time.
        std::mem::forget(server);
    } else {
        server.remove().await;
    }
    Ok(json!({
        "database": name,
        "messages": args.messages,
        "rooms": args.rooms,
        "member_of": seeded.my_rooms.len(),
        "seed_secs": seeded.seed_secs,
        "index_secs": seeded.index_secs,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "max_ms": all.max() as f64 / 1000.0,
        "kinds": rows,
    }))
}
