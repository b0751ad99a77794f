//! Section "spiffe bundle endpoint": the SPIFFE bundle answers and carries the published roots.
//! The hooks do not read it, so its problems are warnings.

use super::conn::{excerpt, Conn};
use super::Report;
use serde_json::Value;

/// The SPIFFE bundle: not used by the hooks, so problems are warnings.
pub(super) async fn check(r: &mut Report, conn: &Conn<'_>, base: &str) {
    const NAME: &str = "spiffe bundle endpoint";
    const HINT: &str = "the hooks do not read it, but a SPIFFE-bundle consumer (istiod caCertificates.spiffeBundleUrl) would fail";
    let url = format!("{base}/public/spiffe-bundle-endpoint");
    let resp = match conn.get(url.clone(), None).await {
        Ok(resp) => resp,
        Err(f) => {
            r.warn(NAME, format!("GET {url}: {f}"), Some(HINT));
            return;
        }
    };
    if resp.status != 200 {
        r.warn(
            NAME,
            format!("GET {url}: HTTP {}: {}", resp.status, excerpt(&resp.body)),
            Some(HINT),
        );
        return;
    }
    let keys = serde_json::from_slice::<Value>(&resp.body)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|v| match v.get("keys") {
            Some(Value::Array(k)) if !k.is_empty() => Ok(k.clone()),
            Some(Value::Array(_)) => Err("\"keys\" is empty".into()),
            _ => Err("no \"keys\" array".into()),
        });
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            r.warn(NAME, format!("GET {url}: {e}"), Some(HINT));
            return;
        }
    };
    let bundle: Vec<String> = keys.iter().filter_map(x5c_fingerprint).collect();
    let matching = bundle
        .iter()
        .filter(|f| r.root_fingerprints.contains(f))
        .count();
    if r.root_fingerprints.is_empty() || matching > 0 {
        r.pass(
            NAME,
            format!(
                "JSON bundle with {} key(s), {matching} matching the published rootCA",
                keys.len()
            ),
        );
    } else {
        r.warn(
            NAME,
            format!(
                "none of the bundle's {} key(s) carries a certificate of the published rootCA",
                keys.len()
            ),
            Some("the peer's exporter serves a bundle of another root than public.json: check its root CA files"),
        );
    }
}

/// SHA-256 (lowercase hex) of a JWK's first `x5c` certificate (standard base64 DER).
fn x5c_fingerprint(key: &Value) -> Option<String> {
    use base64::Engine;
    let first = key.get("x5c")?.as_array()?.first()?.as_str()?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first)
        .ok()?;
    let cert = openssl::x509::X509::from_der(&der).ok()?;
    let digest = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}
