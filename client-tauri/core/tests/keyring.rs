//! `KeyringStore` against a real Secret Service, and the fall back to memory when there
//! is none. It needs a session bus with an unlocked keyring, and fails without one:
//!
//! ```sh
//! scripts/with-keyring.sh cargo test -p confab-core --test keyring
//! ```

use confab_core::keystore::{self, AccountKey, KEYRING_SERVICE, KeyringStore, TokenStore};
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Names the test a child process of [`run_child`] is to run.
const CHILD: &str = "CONFAB_KEYRING_TEST_CHILD";

fn keyring() -> KeyringStore {
    KeyringStore::open().unwrap_or_else(|e| {
        panic!("no usable Secret Service ({e}); run this suite under scripts/with-keyring.sh")
    })
}

/// An account no other run has used.
fn account() -> AccountKey {
    AccountKey {
        server: "https://keyring-test.example".into(),
        username: format!("user-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// What `secret-tool` (libsecret's own client, not our code) finds for the account.
fn secret_tool_search(account: &AccountKey) -> String {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", KEYRING_SERVICE])
        .args(["username", &account.keyring_user()])
        .output()
        .expect("secret-tool runs (package libsecret-tools)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_refresh_token_round_trips_through_the_secret_service() -> TestResult {
    let store = keyring();
    let account = account();
    assert!(store.is_persistent());
    assert_eq!(store.load(&account)?, None);

    store.save(&account, "first-refresh-token")?;
    assert_eq!(
        store.load(&account)?.as_deref(),
        Some("first-refresh-token")
    );
    let found = secret_tool_search(&account);
    assert!(found.contains("secret = first-refresh-token"), "{found}");

    // A rotated token replaces the old one: one entry per account.
    store.save(&account, "second-refresh-token")?;
    assert_eq!(
        store.load(&account)?.as_deref(),
        Some("second-refresh-token")
    );
    let found = secret_tool_search(&account);
    assert!(found.contains("secret = second-refresh-token"), "{found}");
    assert!(!found.contains("first-refresh-token"), "{found}");

    store.delete(&account)?;
    assert_eq!(store.load(&account)?, None);
    let found = secret_tool_search(&account);
    assert!(!found.contains("refresh-token"), "{found}");
    // Deleting what is not there is not an error (logout after a failed save).
    store.delete(&account)?;
    Ok(())
}

#[test]
fn the_default_store_is_the_keyring_when_there_is_one() {
    let opened = keystore::open_default();
    assert_eq!(opened.fallback_reason, None);
    assert!(opened.store.is_persistent(), "{:?}", opened.store);
}

/// In a child process (see [`run_child`]): there is no usable keyring, so
/// `open_default` falls back to memory and says why.
fn expect_the_memory_fallback() -> TestResult {
    let opened = keystore::open_default();
    let reason = opened.fallback_reason.expect("a reason for the fallback");
    println!("fallback reason: {reason}");
    assert!(
        reason.starts_with("No system keyring is available ("),
        "{reason}"
    );
    assert!(
        reason.ends_with("); you will need to sign in again next time."),
        "{reason}"
    );
    assert!(!opened.store.is_persistent());
    let account = account();
    opened.store.save(&account, "token")?;
    assert_eq!(opened.store.load(&account)?.as_deref(), Some("token"));
    Ok(())
}

/// Runs the test `name` of this binary again in a child process, behind `wrapper` (a
/// command prefix) and with `env` added, and checks that it passed. The keyring crate
/// sets its store up once per process, and a running (multi-threaded) test cannot
/// safely change its own environment, so each keyring-less setup gets a process.
fn run_child(name: &str, wrapper: &[&str], env: &[(&str, &str)]) -> TestResult {
    let exe = std::env::current_exe()?;
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    let out = command
        .args(["--exact", name, "--nocapture"])
        .env(CHILD, name)
        .envs(env.iter().copied())
        .output()?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    assert!(output.contains("1 passed"), "{output}");
    Ok(())
}

fn is_child(name: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == name)
}

#[test]
fn without_a_session_bus_tokens_stay_in_memory_and_the_user_is_told() -> TestResult {
    let name = "without_a_session_bus_tokens_stay_in_memory_and_the_user_is_told";
    if is_child(name) {
        return expect_the_memory_fallback();
    }
    let nowhere = "unix:path=/nonexistent/confab-test-bus";
    run_child(name, &[], &[("DBUS_SESSION_BUS_ADDRESS", nowhere)])
}

/// A session bus where the Secret Service starts on demand but its keyring was never
/// unlocked (nobody there to type the password): lookups work, storing does not.
#[test]
fn with_a_keyring_that_cannot_store_tokens_stay_in_memory() -> TestResult {
    let name = "with_a_keyring_that_cannot_store_tokens_stay_in_memory";
    if is_child(name) {
        return expect_the_memory_fallback();
    }
    let dir = std::env::temp_dir().join(format!("confab-locked-{}", uuid::Uuid::new_v4()));
    let (home, runtime) = (dir.join("home"), dir.join("xdg"));
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&runtime)?;
    let result = run_child(
        name,
        &["dbus-run-session", "--"],
        &[
            ("HOME", home.to_str().expect("a UTF-8 temp dir")),
            (
                "XDG_RUNTIME_DIR",
                runtime.to_str().expect("a UTF-8 temp dir"),
            ),
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
    result
}
