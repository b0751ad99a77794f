//! Files that change under a running server (a Secret mounted the Kubernetes way: files behind a
//! `..data` symlink that kubelet swaps atomically; a projected ServiceAccount token that rotates).
//! A [`Watched`] value holds the last good parse of a file; a background task re-reads the file
//! every interval (following symlinks) and swaps in a new value when the content changed and
//! parses. A missing or broken file keeps the last good value and logs one warning per change.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Parses a file's bytes into a value, or says why not.
pub type Parser<T> = fn(&[u8]) -> Result<T, String>;

/// The last good value parsed from a file.
pub struct Watched<T> {
    slot: Arc<RwLock<Option<Arc<T>>>>,
}

impl<T> Clone for Watched<T> {
    fn clone(&self) -> Self {
        Watched {
            slot: self.slot.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// The current value; `None` until the file has parsed once.
    pub fn get(&self) -> Option<Arc<T>> {
        self.slot.read().ok().and_then(|g| g.clone())
    }

    /// Loads `path` now (a failure is logged, not fatal) and keeps polling it every `interval`
    /// until `shutdown` turns true. Must be called inside a tokio runtime.
    pub fn spawn(
        path: PathBuf,
        interval: Duration,
        parse: Parser<T>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let watched = Watched {
            slot: Arc::new(RwLock::new(None)),
        };
        let mut state = Poller {
            path,
            parse,
            last: None,
            slot: watched.slot.clone(),
        };
        state.poll(std::fs::read(&state.path));
        tokio::spawn(state.run(interval, shutdown));
        watched
    }
}

struct Poller<T> {
    path: PathBuf,
    parse: Parser<T>,
    /// What the last poll saw: the file's bytes, or the read error text.
    last: Option<Result<Vec<u8>, String>>,
    slot: Arc<RwLock<Option<Arc<T>>>>,
}

impl<T: Send + Sync + 'static> Poller<T> {
    async fn run(mut self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
            }
            let read = tokio::fs::read(&self.path).await;
            self.poll(read);
        }
    }

    fn poll(&mut self, read: std::io::Result<Vec<u8>>) {
        let seen = read.map_err(|e| e.to_string());
        if self.last.as_ref() == Some(&seen) {
            return;
        }
        let file = self.path.display().to_string();
        match &seen {
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "cannot read file; keeping the last good data")
            }
            Ok(bytes) => match (self.parse)(bytes) {
                Ok(v) => {
                    if let Ok(mut g) = self.slot.write() {
                        *g = Some(Arc::new(v));
                    }
                    tracing::info!(file = %file, bytes = bytes.len(), "loaded file");
                }
                Err(e) => {
                    tracing::warn!(file = %file, error = %e, "invalid file; keeping the last good data")
                }
            },
        }
        self.last = Some(seen);
    }
}

/// Parser for a JSON document of type `T`.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de)
        .map_err(|e| format!("invalid JSON at {}: {}", e.path(), e.inner()))
}

/// Parser for a bearer token file: trimmed, non-empty, printable ASCII.
pub fn token(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "token is not UTF-8".to_owned())?
        .trim();
    if text.is_empty() {
        return Err("token file is empty".into());
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("token holds characters not allowed in a header".into());
    }
    Ok(text.to_owned())
}
