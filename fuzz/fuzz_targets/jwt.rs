//! Fuzz target: an `Authorization` header value (and the bare token) against a fixed key set:
//! peeking, then full authentication as the exporter does it. Every input is refused or
//! accepted, never a panic; anything accepted must carry the expected audience and scope.
#![no_main]
use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::domain::metadata::{PublicMetadata, RemotePublicMetadata};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const OWN_UUID: &str = "00000000-0000-0000-0000-00000000000b";

fn peers() -> &'static RemotePublicMetadata {
    static PEERS: OnceLock<RemotePublicMetadata> = OnceLock::new();
    PEERS.get_or_init(|| {
        let mut m = RemotePublicMetadata::new();
        for (uuid, key) in [
            (
                "00000000-0000-0000-0000-00000000000a",
                include_str!("../../testdata/fixtures/ed25519-a.pub"),
            ),
            (
                "00000000-0000-0000-0000-00000000000c",
                include_str!("../../testdata/fixtures/ed25519-b.pub"),
            ),
        ] {
            m.insert(
                uuid.to_owned(),
                PublicMetadata {
                    cluster_uuid: uuid.to_owned(),
                    authn_key_pub: key.to_owned(),
                    root_ca: String::new(),
                },
            );
        }
        m
    })
}

/// The peers' keys parsed once, as the servers hold them between reloads.
fn keys() -> &'static jwt::PeerKeys {
    static KEYS: OnceLock<jwt::PeerKeys> = OnceLock::new();
    KEYS.get_or_init(|| jwt::PeerKeys::new(peers()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::peek_claims(header);
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    for scope in [Scope::PrivateFederation, Scope::Api] {
        if let Ok(c) = jwt::authenticate_with_keys(Some(header), OWN_UUID, scope, keys(), now) {
            assert_eq!(c.aud, OWN_UUID);
            assert_eq!(c.scope, scope.as_str());
            assert!(peers().contains_key(&c.sub));
        }
    }
});
