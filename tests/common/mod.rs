//! Helpers shared by the server tests: peer identities, JWTs minted the Deckhouse way, data dirs
//! laid out and updated the way kubelet does it (`..data` symlink swap), and HTTP clients.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::domain::pki;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A cluster identity: UUID and Ed25519 keypair (public PEM labelled the Deckhouse way).
pub struct Identity {
    pub uuid: String,
    pub private: String,
    pub public: String,
}

impl Identity {
    pub fn new(uuid: &str) -> Self {
        let (private, public) = pki::generate_ed25519_keypair().unwrap();
        Identity {
            uuid: uuid.into(),
            private,
            public: public.replace("PUBLIC KEY", "ED25519 PUBLIC KEY"),
        }
    }

    /// `Authorization` value with a token from this identity to `aud`.
    pub fn bearer(&self, aud: &str, scope: Scope) -> String {
        format!(
            "Bearer {}",
            jwt::sign(&self.private, &self.uuid, aud, scope, chrono::Utc::now()).unwrap()
        )
    }

    /// Public metadata as peers publish it.
    pub fn public_metadata(&self, root_ca: &str) -> Value {
        json!({"clusterUUID": self.uuid, "authnKeyPub": self.public, "rootCA": root_ca})
    }
}

/// A token built byte by byte as a Deckhouse peer builds it (go-jose, EdDSA): header exactly
/// `{"alg":"EdDSA"}`, string claims plus integer `nbf`/`exp`.
pub fn deckhouse_token(private_pem: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let key = openssl::pkey::PKey::private_key_from_pem(private_pem.as_bytes()).unwrap();
    let mut signer = openssl::sign::Signer::new_without_digest(&key).unwrap();
    let sig = signer.sign_oneshot_to_vec(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A directory laid out like a mounted Secret: `..<version>/` holds the files, `..data` points
/// at the current version, and each file name is a symlink through `..data`.
pub struct SecretDir {
    pub tmp: tempfile::TempDir,
    version: u32,
}

impl SecretDir {
    pub fn new() -> Self {
        SecretDir {
            tmp: tempfile::tempdir().unwrap(),
            version: 0,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Publishes a new version holding exactly `files` (name → bytes), swapping `..data`
    /// atomically as kubelet does.
    pub fn publish(&mut self, files: &[(&str, &[u8])]) {
        self.version += 1;
        let root = self.tmp.path();
        let dir_name = format!("..v{}", self.version);
        let dir = root.join(&dir_name);
        std::fs::create_dir(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
            let link = root.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
            }
        }
        let tmp_link = root.join("..data_tmp");
        std::os::unix::fs::symlink(&dir_name, &tmp_link).unwrap();
        std::fs::rename(&tmp_link, root.join("..data")).unwrap();
        if self.version > 1 {
            let _ = std::fs::remove_dir_all(root.join(format!("..v{}", self.version - 1)));
        }
    }
}

/// A reqwest client for plain HTTP on 127.0.0.1.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A reqwest client trusting only `ca_pem`.
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// Polls `check` every 50 ms until it returns true; gives up (returns false) after `tries`.
pub async fn eventually<F, Fut>(tries: u32, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
