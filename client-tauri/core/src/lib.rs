//! Confab's client engine. It has no Tauri dependency: the desktop app wraps it with a
//! thin shell, and it runs headless in tests and in `confab-cli`.

pub mod api;
pub mod call;
pub mod connection;
pub mod keystore;
pub mod negotiation;
pub mod outbox;
pub mod signaling;
