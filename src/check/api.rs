//! Section "remote API (api-proxy)": the peer's api-proxy answers `/version` to an `api` token,
//! as the hook's `RemoteAPIServerReady` probe.

use super::conn::{excerpt, is_tls_error, refusal_hint, Conn};
use super::Report;
use crate::domain::jwt::{self, Scope};
use crate::net::Failure;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The peer's api-proxy, as the private section found it.
pub(super) struct Target {
    /// `apiHost` of the validated multicluster document.
    pub host: String,
    /// Our Ed25519 private key (PEM), to sign the `api` token.
    pub key: String,
}

/// `RemoteAPIServerReady` as the hook probes it: `GET https://<apiHost>/version` through the
/// peer's api-proxy with a short-lived `api` token, same TLS settings and limits.
pub(super) async fn check(
    r: &mut Report,
    conn: &Conn<'_>,
    target: &Target,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) {
    const NAME: &str = "remote API (api-proxy)";
    let (api_host, key) = (target.host.as_str(), target.key.as_str());
    let url = format!("https://{api_host}/version");
    let signed = jwt::sign_with_ttl(
        key,
        own_uuid,
        peer_uuid,
        Scope::Api.as_str(),
        now,
        Duration::from_secs(60),
    );
    let Some(token) = r.or_fail(
        NAME,
        signed,
        |e| format!("cannot sign an api token: {e:#}"),
        "the hooks report TokenGenerationFailed",
    ) else {
        return;
    };
    match conn.get(url.clone(), Some(token)).await {
        Err(f) => {
            let mut hint = "the peer's api-proxy is unreachable (RemoteAPIUnreachable): check its Ingress (host = apiHost), DNS and TLS (spec.metadata.ca is used for it too)";
            if matches!(&f, Failure::Transport(m) if is_tls_error(m)) {
                hint = "TLS verification of the api-proxy failed (RemoteAPIUnreachable): the CA in --ca / spec.metadata.ca must also cover the api-proxy's certificate";
            }
            r.fail(NAME, format!("GET {url}: {f}"), hint);
        }
        Ok(resp) if resp.status == 200 => {
            r.pass(NAME, format!("GET {url}: HTTP 200 with an api token"))
        }
        Ok(resp) if matches!(resp.status, 401 | 403) => {
            let reason = excerpt(&resp.body);
            r.fail(
                NAME,
                format!("GET {url}: HTTP {}: {reason}", resp.status),
                refusal_hint(&reason),
            );
        }
        Ok(resp) => r.fail(
            NAME,
            format!("GET {url}: HTTP {}: {}", resp.status, excerpt(&resp.body)),
            "the api-proxy answered but not 200 (RemoteAPIBadResponse): check its logs and RBAC on the peer",
        ),
    }
}
