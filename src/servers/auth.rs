//! Peer authentication shared by both servers: the `Authorization: Bearer <JWT>` check of
//! SPEC §6.1 (via `domain::jwt::authenticate`) on a request's headers, with logging.

use crate::domain::jwt::{self, Scope};
use crate::domain::metadata::RemotePublicMetadata;
use axum::http::{header, HeaderMap};

/// The bearer check of SPEC §6.1 on a request's headers; logs refusals (never the token).
pub fn check(
    headers: &HeaderMap,
    own_uuid: &str,
    scope: Scope,
    peers: &RemotePublicMetadata,
) -> Result<(), jwt::AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    match jwt::authenticate(value, own_uuid, scope, peers, chrono::Utc::now()) {
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
