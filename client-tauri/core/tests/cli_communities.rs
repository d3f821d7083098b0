//! `confab-cli` for communities, files and search, as two people run it from a shell:
//! Alice makes a community, Bob finds and joins it, Alice adds a channel and sends a
//! message with two files to it while Bob follows the channel, Bob finds the message by
//! a word (marked) and downloads a file byte for byte; then Alice kicks Bob (the channel
//! and its messages are gone for him), invites him back, he leaves, she bans him and the
//! door stays shut. Refusals end with a non-zero exit and a one-line JSON error.

#![allow(clippy::unwrap_used)]

mod common;

// SQLite only, as the other CLI suite (see tests/common): what is tested is the command
// line over the engine, which one database exercises as well as two.
use common::{Db, PASSWORD, TestServer, register, unique};
use shared::api::Message;
use shared::files::{FileKind, Upload};
use shared::{CommunityId, RoomId};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// `confab-cli ARGS --server .. --user USER --outbox <temp>`, ready to run.
fn cli(server: &TestServer, outbox: &Path, user: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confab-cli"));
    cmd.args(args)
        .args(["--server", &server.base, "--user", user])
        .arg("--outbox")
        .arg(outbox.join(format!("{}.sqlite", uuid::Uuid::new_v4())))
        .env("CONFAB_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs commands as the users of one story, with their outbox files in a temp dir.
struct Shell<'a> {
    server: &'a TestServer,
    dir: &'a Path,
}

impl Shell<'_> {
    async fn run(&self, user: &str, args: &[&str]) -> Output {
        let output = cli(self.server, self.dir, user, args).output();
        tokio::time::timeout(Duration::from_secs(30), output)
            .await
            .expect("confab-cli finishes")
            .unwrap()
    }

    /// A command that must succeed: its stdout.
    async fn ok(&self, user: &str, args: &[&str]) -> String {
        let output = self.run(user, args).await;
        assert!(
            output.status.success(),
            "confab-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A command that must fail with one JSON error line on stderr: its code and message.
    async fn fails(&self, user: &str, args: &[&str]) -> (String, String) {
        let output = self.run(user, args).await;
        assert!(!output.status.success(), "confab-cli {args:?} succeeded");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let line = stderr.lines().last().unwrap_or_default();
        let error: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON error ({e}): {stderr}"));
        (
            error["error"]["code"].as_str().unwrap().to_owned(),
            error["error"]["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// A real PNG (the server decodes it): 64x32, one colour, so it stays small.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(64, 32, image::Rgb([200, 40, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_community_is_run_from_the_command_line() {
    let server = TestServer::start(Db::Sqlite).await;
    let (_, alice) = register(&server, "alice").await;
    let (_, bob) = register(&server, "bob").await;
    let temp = tempfile::tempdir().unwrap();
    let sh = Shell {
        server: &server,
        dir: temp.path(),
    };
    let tag = unique("readers");
    let title = format!("Readers {tag}");

    // Alice makes a public community; Bob finds it by a word of its name and joins it.
    let created = sh
        .ok(
            &alice,
            &["community", "create", &title, "--description", "Books"],
        )
        .await;
    let community: CommunityId = created.trim().parse().unwrap();
    let id = community.to_string();
    assert_eq!(sh.ok(&bob, &["community", "list"]).await, "");
    let found = sh
        .ok(&bob, &["community", "list", "--public", "--q", &tag])
        .await;
    assert_eq!(
        found.trim(),
        format!("{id} {title} (public, 1 member): Books")
    );
    let joined = sh.ok(&bob, &["community", "join", &id]).await;
    assert_eq!(joined.trim(), format!("joined {id} {title}"));
    let mine = sh.ok(&alice, &["community", "list"]).await;
    assert!(mine.contains("(public, 2 members, owner)"), "{mine}");

    // A channel: only an admin makes one; the members see it in its category.
    let made = sh
        .ok(
            &alice,
            &[
                "community",
                "channel-create",
                &id,
                "books",
                "--category",
                "Reading",
            ],
        )
        .await;
    let channel: RoomId = made.trim().parse().unwrap();
    let room = channel.to_string();
    let listed = sh.ok(&bob, &["community", "channels", &id]).await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].ends_with(" #general"), "{listed}");
    assert_eq!(lines[1], format!("{room} #books (in Reading)"));
    let (code, _) = sh
        .fails(&bob, &["community", "channel-create", &id, "mine"])
        .await;
    assert_eq!(code, "forbidden");

    // Bob follows the channel while Alice sends a line with two files.
    let mut tail = cli(
        &server,
        temp.path(),
        &bob,
        &["chat", "tail", &room, "--count", "1"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(tail.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.starts_with("following room") {
                return;
            }
        }
        panic!("chat tail ended before following");
    })
    .await
    .expect("chat tail starts following");

    let notes = temp.path().join("notes.txt");
    let notes_bytes = "Minutes: the budget holds, the reading list grows.\n".repeat(8);
    std::fs::write(&notes, &notes_bytes).unwrap();
    let picture = temp.path().join("cover.png");
    std::fs::write(&picture, png()).unwrap();
    let sent = sh
        .ok(
            &alice,
            &[
                "chat",
                "send",
                &room,
                "the budget for March",
                "--attach",
                notes.to_str().unwrap(),
                "--attach",
                picture.to_str().unwrap(),
                "--json",
            ],
        )
        .await;
    let sent: Message = serde_json::from_str(sent.trim()).unwrap();
    let files: Vec<(&str, FileKind)> = sent
        .attachments
        .iter()
        .map(|a| (a.name.as_str(), a.kind))
        .collect();
    assert_eq!(
        files,
        [
            ("notes.txt", FileKind::File),
            ("cover.png", FileKind::Image)
        ]
    );
    assert_eq!(sent.attachments[0].size, notes_bytes.len() as u64);

    let followed = tokio::time::timeout(Duration::from_secs(30), tail.wait_with_output())
        .await
        .expect("chat tail stops after one message")
        .unwrap();
    assert!(followed.status.success());
    let picture_size = sent.attachments[1].size;
    assert!(picture_size < 1024, "a small picture: {picture_size} bytes");
    assert_eq!(
        String::from_utf8(followed.stdout).unwrap().trim(),
        format!(
            "[#{}] {alice}: the budget for March (files: notes.txt {} B; cover.png {picture_size} B)",
            sent.seq,
            notes_bytes.len()
        )
    );

    // Bob finds it by a word, marked, with where, who and when.
    let hits = sh.ok(&bob, &["search", "BUDGET"]).await;
    let hits: Vec<&str> = hits.lines().collect();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let fields: Vec<&str> = hits[0].split(" | ").collect();
    assert_eq!(fields[0], format!("# books · {title}"));
    assert_eq!(fields[1], alice);
    assert!(fields[2].ends_with(" UTC"), "{}", fields[2]);
    assert_eq!(fields[3], "the [budget] for March");
    let yesterday = (time::OffsetDateTime::now_utc() - time::Duration::days(1)).date();
    let yesterday = format!(
        "{}-{:02}-{:02}",
        yesterday.year(),
        u8::from(yesterday.month()),
        yesterday.day()
    );
    let filtered = sh
        .ok(
            &bob,
            &[
                "search", "march", "budget", "--room", &room, "--author", &alice, "--after",
                &yesterday, "--order", "best", "--json",
            ],
        )
        .await;
    let hit: serde_json::Value = serde_json::from_str(filtered.trim()).unwrap();
    assert_eq!(hit["id"], serde_json::json!(sent.id));
    assert_eq!(hit["marked"], "the [budget] for [March]");
    let none = sh
        .ok(&bob, &["search", "budget", "--before", "2000-01-01"])
        .await;
    assert_eq!(none, "");
    let typo = sh
        .run(&bob, &["search", "budget", "--after", "01/12/2026"])
        .await;
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("YYYY-MM-DD"));

    // Bob saves the notes by their upload id, into a folder under their own name.
    let downloads = temp.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let upload = sent.attachments[0].id.to_string();
    let saved = sh
        .ok(&bob, &["download", &upload, downloads.to_str().unwrap()])
        .await;
    let path = downloads.join("notes.txt");
    assert_eq!(
        saved.trim(),
        format!("{} ({} B)", path.display(), notes_bytes.len())
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), notes_bytes);
    let cover = downloads.join("cover-copy.png");
    sh.ok(
        &bob,
        &[
            "download",
            &sent.attachments[1].id.to_string(),
            cover.to_str().unwrap(),
        ],
    )
    .await;
    let decoded = image::open(&cover).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (64, 32));

    // A file uploaded alone is its uploader's until it is attached: Alice fetches it by
    // its signed link, Bob cannot even see it.
    let uploaded = sh
        .ok(&alice, &["upload", notes.to_str().unwrap(), "--json"])
        .await;
    let uploaded: Upload = serde_json::from_str(uploaded.trim()).unwrap();
    assert!(!uploaded.attached);
    let copy = temp.path().join("copy.txt");
    sh.ok(
        &alice,
        &["download", &uploaded.links.url, copy.to_str().unwrap()],
    )
    .await;
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), notes_bytes);
    let (code, _) = sh
        .fails(
            &bob,
            &[
                "download",
                &uploaded.file.id.to_string(),
                copy.to_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(code, "not_found");
    let (code, _) = sh
        .fails(
            &alice,
            &[
                "download",
                "https://elsewhere.invalid/x",
                copy.to_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(
        code, "bad_request",
        "a link to another server is not followed"
    );
    let missing = temp.path().join("no-such-file.txt");
    let (code, message) = sh
        .fails(&alice, &["upload", missing.to_str().unwrap()])
        .await;
    assert_eq!(code, "bad_request");
    assert!(message.contains("no-such-file.txt"), "{message}");

    // Members, then a kick: the channel and what was said in it are gone for Bob.
    let members = sh.ok(&alice, &["community", "members", &id]).await;
    let roles: Vec<(&str, &str)> = members
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts[1], parts[2])
        })
        .collect();
    assert_eq!(roles, [(alice.as_str(), "owner"), (bob.as_str(), "member")]);
    let kicked = sh.ok(&alice, &["community", "kick", &id, &bob]).await;
    assert_eq!(kicked.trim(), format!("kicked {bob}"));
    assert_eq!(sh.ok(&bob, &["community", "list"]).await, "");
    assert_eq!(sh.ok(&bob, &["search", "budget"]).await, "");
    let (code, _) = sh
        .fails(&bob, &["chat", "send", &room, "still here?"])
        .await;
    assert_eq!(code, "not_found");

    // An invite brings him back; he leaves; a ban keeps him out.
    let token = sh
        .ok(&alice, &["community", "invite", &id, "--max-uses", "1"])
        .await;
    let link = format!("{}/api/communities/join/{}", server.base, token.trim());
    let rejoined = sh.ok(&bob, &["community", "join", &link]).await;
    assert_eq!(rejoined.trim(), format!("joined {id} {title}"));
    let left = sh.ok(&bob, &["community", "leave", &id]).await;
    assert_eq!(left.trim(), format!("left {id}"));
    let banned = sh
        .ok(&alice, &["community", "ban", &id, &bob, "--reason", "spam"])
        .await;
    assert_eq!(banned.trim(), format!("banned {bob}"));
    let (code, _) = sh.fails(&bob, &["community", "join", &id]).await;
    assert_eq!(code, "forbidden");
    let (code, _) = sh
        .fails(
            &bob,
            &["community", "leave", &CommunityId::new().to_string()],
        )
        .await;
    assert_eq!(code, "not_found");
}
