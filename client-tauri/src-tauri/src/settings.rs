//! What the app remembers between runs that is not secret: the server and the last
//! account's username (which names its refresh token in the keyring). A small JSON file
//! in the app's config folder.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Saved {
    pub server_url: Option<String>,
    pub username: Option<String>,
}

/// The settings file and its current contents.
#[derive(Debug)]
pub struct Settings {
    path: PathBuf,
    saved: Mutex<Saved>,
}

impl Settings {
    /// Reads `path`; a missing or unreadable file is a first run.
    pub fn load(path: PathBuf) -> Self {
        let saved = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            path,
            saved: Mutex::new(saved),
        }
    }

    pub fn get(&self) -> Saved {
        self.saved.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the settings and writes them (a failed write is logged: the app keeps
    /// working, it only forgets on restart).
    pub fn update(&self, change: impl FnOnce(&mut Saved)) {
        let saved = {
            let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut saved);
            saved.clone()
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&saved)?)?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot save settings");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart_and_a_missing_file_is_a_first_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("settings.json");
        let settings = Settings::load(path.clone());
        assert_eq!(settings.get(), Saved::default());
        settings.update(|s| {
            s.server_url = Some("http://127.0.0.1:8080/".into());
            s.username = Some("alice".into());
        });
        let again = Settings::load(path);
        assert_eq!(again.get().username.as_deref(), Some("alice"));
        assert_eq!(
            again.get().server_url.as_deref(),
            Some("http://127.0.0.1:8080/")
        );
    }
}
