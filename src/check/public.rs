//! Sections "public metadata reachable", "public metadata valid", "authn key is Ed25519" and
//! "root CA #N": the public document as the hooks fetch and validate it, and every root it
//! publishes.

use super::conn::{excerpt, fetch_json, json_document, Conn};
use super::Report;
use crate::domain::pki::{self, CertInfo};
use crate::domain::validate;
use chrono::{DateTime, Utc};

/// Name of the check that the peer answered the public document.
pub(super) const NAME: &str = "public metadata reachable";
/// A root CA expiring within this many days is a warning.
const WARN_DAYS: i64 = 30;

/// Public metadata: reachable, TLS, 200, JSON, valid, roots, key. Returns the peer's clusterUUID.
pub(super) async fn check(
    r: &mut Report,
    conn: &Conn<'_>,
    base: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let url = format!("{base}/public/public.json");
    let (status, parsed, body) = fetch_json(r, conn, NAME, url.clone(), None).await?;
    if status != 200 {
        r.fail(
            NAME,
            format!("GET {url}: HTTP {status}: {}", excerpt(&body)),
            "the path must serve the exporter's /metadata/public/public.json: check the endpoint (it conventionally ends in /metadata/) and the peer's exporter",
        );
        return None;
    }
    let tls = match (&conn.ca_pem, conn.insecure) {
        (Some(_), _) => "TLS verified with system roots and --ca",
        (None, true) => "TLS NOT verified",
        (None, false) => "TLS verified with system roots",
    };
    r.pass(NAME, format!("GET {url}: HTTP 200, {tls}"));
    let v = json_document(
        r,
        "public metadata valid",
        parsed,
        &body,
        "the hooks report InvalidJSON: something other than the exporter answers this URL",
    )?;
    r.public_metadata = Some(v.clone());
    let (public, certs) = r.or_fail(
        "public metadata valid",
        validate::public_metadata_structure(&v),
        |e| e,
        "the hooks report InvalidPublicMetadata: the peer's exporter publishes a broken document",
    )?;
    r.pass(
        "public metadata valid",
        format!(
            "clusterUUID {}, {} root certificate(s)",
            public.cluster_uuid,
            certs.len()
        ),
    );
    r.pass(
        "authn key is Ed25519",
        "authnKeyPub is an Ed25519 public key".into(),
    );
    for (i, c) in certs.iter().enumerate() {
        check_root(r, i, c, now);
    }
    r.root_fingerprints = certs.iter().map(|c| c.fingerprint_sha256.clone()).collect();
    if !validate::root_problems(&certs, now).is_empty() {
        return None;
    }
    Some(public.cluster_uuid)
}

/// One root certificate: CA, validity now, days left.
fn check_root(r: &mut Report, i: usize, c: &CertInfo, now: DateTime<Utc>) {
    let name = format!("root CA #{i}");
    let days = (c.not_after - now).num_days();
    let details = format!(
        "subject {}, SHA-256 {}, notAfter {}, {days} day(s) left",
        c.subject,
        c.fingerprint_sha256,
        pki::rfc3339(c.not_after)
    );
    if let Some(p) = c.root_problem(now) {
        r.fail(
            &name,
            format!("{p} ({details})"),
            "the hooks reject this public metadata (InvalidPublicMetadata) and keep the last good cache: the peer must publish a currently valid CA certificate (basicConstraints CA:TRUE)",
        );
    } else if days < WARN_DAYS {
        r.warn(
            &name,
            format!("expires soon: {details}"),
            Some("the peer should rotate its root CA before it expires; mTLS to it stops then"),
        );
    } else {
        r.pass(&name, details);
    }
}
