//! End to end, in the real desktop window: a real `confab-server`, the real app under
//! Xvfb driven through tauri-driver and WebKitWebDriver, and a `confab-cli` participant.
//! A user picks the server, signs up, creates a room and joins its call with the test
//! pattern while `confab-cli` joins the same room; the remote tile must show frames
//! whose painted frame counter advances, and the participant list must show both.
//!
//! Needs Xvfb, WebKitWebDriver (webkit2gtk-driver) and tauri-driver, which
//! `scripts/test.sh` installs, and the UI built into `client-tauri/ui/dist` before the
//! app is compiled. The call-view screenshot goes to `$CARGO_TARGET_TMPDIR/call-view.png`
//! and, when `CONFAB_SCREENSHOT` names a file, there too (the README's picture).

mod support;

use fantoccini::Locator;
use std::path::{Path, PathBuf};
use support::{
    Desktop, PASSWORD, attr_u64, click, eventually, find, page_source, type_into, within,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_create_a_room_and_see_a_cli_participant_in_the_call() {
    let desktop = Desktop::start(Path::new(env!("CARGO_BIN_EXE_confab"))).await;
    let client = &desktop.client;

    // First run: pick the server, then sign up. Client-side validation first: a
    // too-short username is flagged on its field, not sent.
    type_into(client, "#server-url", &desktop.server_url).await;
    click(client, "#server-continue").await;
    find(client, "#signup-form").await;
    let username = Desktop::unique("e2e");
    type_into(client, "#signup-username", "ab").await;
    type_into(client, "#signup-email", &format!("{username}@example.com")).await;
    type_into(client, "#signup-password", PASSWORD).await;
    type_into(client, "#signup-confirm", PASSWORD).await;
    click(client, "#signup-submit").await;
    let error = find(client, "#signup-username-error").await;
    let text = eventually(10, "the username error", || async {
        error.text().await.ok().filter(|t| !t.trim().is_empty())
    })
    .await;
    assert!(text.contains('3'), "the error names the rule: {text}");
    type_into(client, "#signup-username", &username).await;
    click(client, "#signup-submit").await;
    find(client, "#rooms-list").await;

    let room = desktop.create_room("E2E standup").await;
    let mut cli = desktop.cli_participant(&room, &Desktop::unique("cli"), 120);
    desktop.join_call_with_test_pattern(&room).await;

    // The remote tile shows frames, and the painted frame counter advances.
    let remote = ".tile[data-local='false'][data-frame-counter]";
    let first = within(60, || async {
        attr_u64(client, remote, "data-frame-counter")
            .await
            .filter(|n| *n > 0)
    })
    .await;
    let Some(first) = first else {
        panic!(
            "no remote frames; the window shows:\n{}",
            page_source(client).await
        );
    };
    eventually(30, "the remote frame counter to advance", || async {
        attr_u64(client, remote, "data-frame-counter")
            .await
            .filter(|n| *n >= first + 10)
    })
    .await;

    // The participant list shows both.
    let names = eventually(30, "both participants in the list", || async {
        let items = client
            .find_all(Locator::Css("#participants li"))
            .await
            .ok()?;
        let mut names = Vec::new();
        for item in items {
            names.push(item.text().await.ok()?);
        }
        (names.len() == 2).then_some(names)
    })
    .await;
    assert!(names.iter().any(|n| n.contains("cli_")), "{names:?}");

    // The picture for the README.
    let png = client.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("call-view.png"), &png).expect("saving the screenshot");
    if let Some(path) = std::env::var_os("CONFAB_SCREENSHOT") {
        std::fs::write(path, &png).expect("saving the screenshot");
    }

    click(client, "#leave-call").await;
    find(client, "#rooms-list").await;
    assert!(
        cli.0.try_wait().expect("cli status").is_none(),
        "confab-cli stayed in the call"
    );
    desktop
        .client
        .clone()
        .close()
        .await
        .expect("closing the session");
}
