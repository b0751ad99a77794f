//! What the sections share to get their inputs: the connection settings of the run ([`Conn`]),
//! one JSON GET and its document, transport failures and refusals as checks with hints, bounded
//! and printable excerpts of remote bodies, and the PEM files the flags name.

use super::Report;
use crate::net::{Failure, HttpGet, Request, Response};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Response size limit, as the hooks' default (`alliance.metadataFetch.maxResponseBytes`).
const MAX_BYTES: u64 = 1024 * 1024;

/// Connection settings shared by every request of one run.
pub(super) struct Conn<'a> {
    pub http: &'a dyn HttpGet,
    pub ca_pem: Option<String>,
    pub insecure: bool,
    pub timeout: Duration,
}

impl Conn<'_> {
    pub async fn get(&self, url: String, bearer: Option<String>) -> Result<Response, Failure> {
        self.http
            .get(Request {
                url,
                bearer,
                ca_pem: self.ca_pem.clone(),
                insecure_skip_verify: self.insecure,
                timeout: self.timeout,
                max_bytes: MAX_BYTES,
                if_none_match: None,
            })
            .await
    }
}

/// A transport failure as a failed check with a hint fitting its cause.
pub(super) fn transport_failure(r: &mut Report, name: &str, url: &str, f: &Failure) {
    let message = format!("GET {url}: {f}");
    let hint = match f {
        Failure::Timeout(_) => "the peer did not answer in time: check DNS, the address, firewalls and the peer's Ingress for istio-metadata (or raise --timeout)",
        Failure::TooLarge(_) => "the answer exceeds 1 MiB: this is not a metadata exporter (or it is broken); the hooks report ResponseTooLarge",
        Failure::Transport(m) if is_tls_error(m) => "TLS verification failed: pass the CA that signed the peer's ingress certificate with --ca (set it as spec.metadata.ca), or --insecure-skip-verify to look further (spec.metadata.insecureSkipVerify)",
        Failure::Transport(_) => "the endpoint is unreachable: check DNS, the address, firewalls and that the peer's istio-metadata Ingress exists",
    };
    r.fail(name, message, hint);
}

pub(super) fn is_tls_error(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    ["certificate", "ssl", "tls", "handshake", "verify"]
        .iter()
        .any(|w| m.contains(w))
}

/// Printable, bounded excerpt of a remote body (never trusted, never long).
pub(super) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    out = out.trim().to_owned();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// GET and parse one JSON document; failures become checks. `None` when it failed.
pub(super) async fn fetch_json(
    r: &mut Report,
    conn: &Conn<'_>,
    name: &str,
    url: String,
    bearer: Option<String>,
) -> Option<(u16, Result<Value, String>, Vec<u8>)> {
    match conn.get(url.clone(), bearer).await {
        Err(f) => {
            transport_failure(r, name, &url, &f);
            None
        }
        Ok(resp) => {
            let parsed = serde_json::from_slice::<Value>(&resp.body).map_err(|e| e.to_string());
            Some((resp.status, parsed, resp.body))
        }
    }
}

/// The document [`fetch_json`] parsed, or a failed `name` check quoting the body, with `hint`.
pub(super) fn json_document(
    r: &mut Report,
    name: &str,
    parsed: Result<Value, String>,
    body: &[u8],
    hint: &str,
) -> Option<Value> {
    r.or_fail(
        name,
        parsed,
        |e| format!("not JSON ({e}): {}", excerpt(body)),
        hint,
    )
}

/// The PEM file at `path` (a flag's), or a failed `name` check when it cannot be read.
pub(super) fn read_pem_file(r: &mut Report, name: &str, path: &Path) -> Option<String> {
    r.or_fail(
        name,
        std::fs::read_to_string(path),
        |e| format!("cannot read {}: {e}", path.display()),
        "pass a readable PEM file",
    )
}

/// Hint for a 401 from the peer's exporter, by its reason text.
pub(super) fn refusal_hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("unknown source cluster") {
        "the peer does not know this cluster yet: create the peer's CR for this cluster on the remote side (IstioFederation/IstioMulticluster pointing at our metadata endpoint) and wait for its next fetch (every 15 s)"
    } else if r.contains("expired") || r.contains("not yet valid") {
        "clock skew between this machine and the peer: check NTP on both sides"
    } else if r.contains("cannot verify") {
        "the peer knows a different public key for this clusterUUID: use the key of Secret d8-istio/d8-remote-authn-keypair; if it changed, wait for the peer to refetch our public metadata"
    } else if r.contains("destination") {
        "the token's aud does not match the peer's clusterUUID: the endpoint serves another cluster than its public.json says"
    } else if r.contains("bearer") {
        "the Authorization header did not reach the peer's exporter: something in front of it (ingress, proxy) strips it"
    } else if r.contains("scope") {
        "the peer refused the scope: check --kind (federation or multicluster) against the CR kind"
    } else {
        "the peer's exporter refused the token; see the reason above"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::clean;

    #[test]
    fn remote_text_is_bounded_and_printable() {
        let body = format!("\u{1b}[31mred{}", "x".repeat(500));
        let e = excerpt(body.as_bytes());
        assert!(!e.contains('\u{1b}'));
        assert!(e.chars().count() <= 201);
        assert_eq!(clean("CN=\u{1b}]0;pwned\u{7}"), "CN=?]0;pwned?");
        assert_eq!(excerpt(&[0xff, 0xfe, b'a']), "\u{fffd}\u{fffd}a");
    }

    #[test]
    fn refusal_hints_follow_the_exporter_reasons() {
        use crate::domain::jwt::AuthError;
        let hint = |e: AuthError| refusal_hint(&e.to_string());
        assert!(hint(AuthError::UnknownSubject).contains("create the peer's CR"));
        assert!(hint(AuthError::Expired).contains("clock skew"));
        assert!(hint(AuthError::NotYetValid).contains("clock skew"));
        assert!(hint(AuthError::Signature).contains("different public key"));
        assert!(hint(AuthError::Audience).contains("aud"));
        assert!(hint(AuthError::Scope).contains("--kind"));
        assert!(hint(AuthError::MissingBearer).contains("Authorization"));
    }

    #[test]
    fn tls_errors_are_told_apart() {
        assert!(is_tls_error(
            "error trying to connect: error:0A000086:SSL routines::certificate verify failed"
        ));
        assert!(!is_tls_error(
            "error trying to connect: tcp connect error: Connection refused (os error 111)"
        ));
    }
}
