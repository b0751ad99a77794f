//! Peer authentication shared by both servers: the `Authorization: Bearer <JWT>` check of
//! SPEC §6.1 (via `domain::jwt::authenticate_with_keys`) on a request's headers, with logging,
//! and the parser that turns remote-public-metadata.json into the peers' keys once per reload.

use crate::domain::jwt::{self, PeerKeys, Scope};
use crate::domain::metadata::RemotePublicMetadata;
use crate::servers::datadir;
use axum::http::{header, HeaderMap};

/// [`datadir::Parser`] for remote-public-metadata.json: every peer's `authnKeyPub` parsed once
/// per version of the file, not per request. A peer whose key is unusable is logged here and
/// stays known (its tokens are refused with "cannot verify JWT token with known public key").
pub fn parse_peers(bytes: &[u8]) -> Result<PeerKeys, String> {
    let peers: RemotePublicMetadata = datadir::json(bytes)?;
    let keys = PeerKeys::new(&peers);
    for peer in keys.unusable() {
        tracing::warn!(peer = %peer, "authnKeyPub is not an Ed25519 public key; its tokens will be refused");
    }
    Ok(keys)
}

/// The bearer check of SPEC §6.1 on a request's headers; logs refusals (never the token).
pub fn check(
    headers: &HeaderMap,
    own_uuid: &str,
    scope: Scope,
    peers: &PeerKeys,
) -> Result<(), jwt::AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    match jwt::authenticate_with_keys(value, own_uuid, scope, peers, chrono::Utc::now()) {
        Ok(c) => {
            tracing::debug!(peer = %c.sub, scope = scope.as_str(), "authenticated");
            Ok(())
        }
        Err(e) => {
            // Header-less or unparsable requests are mostly scanners: keep them out of info logs.
            use jwt::AuthError::{Malformed, MissingBearer, TooLarge};
            if matches!(e, MissingBearer | Malformed | TooLarge) {
                tracing::debug!(scope = scope.as_str(), reason = %e, "authentication failed");
            } else {
                tracing::info!(scope = scope.as_str(), reason = %e, "authentication failed");
            }
            Err(e)
        }
    }
}
