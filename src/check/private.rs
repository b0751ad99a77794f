//! Sections "token", "private metadata access", "private metadata valid", "ingress gateways"
//! and "dropped by validation": a token signed with our key, the private document fetched with
//! it and validated as the hooks do.

use super::conn::{excerpt, fetch_json, json_document, read_pem_file, refusal_hint, Conn};
use super::{api, Args, Kind, Report};
use crate::domain::jwt::{self, Scope};
use crate::domain::validate::{self, Dropped};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Mints a token, fetches the private document, validates it and lists its content. Returns
/// the peer's api-proxy to probe next (a valid multicluster document).
#[allow(clippy::too_many_arguments)]
pub(super) async fn check(
    r: &mut Report,
    conn: &Conn<'_>,
    base: &str,
    args: &Args,
    key_path: &std::path::Path,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) -> Option<api::Target> {
    const TOKEN: &str = "token";
    let (scope, doc) = match args.kind {
        Kind::Federation => (Scope::PrivateFederation, "federation.json"),
        Kind::Multicluster => (Scope::PrivateMulticluster, "multicluster.json"),
    };
    if !validate::is_cluster_uuid(own_uuid) {
        r.fail(
            TOKEN,
            format!("--cluster-uuid {own_uuid:?} is not 1-64 characters of [A-Za-z0-9-]"),
            "pass this cluster's global.discovery.clusterUUID",
        );
        return None;
    }
    let key = read_pem_file(r, TOKEN, key_path)?;
    let token = r.or_fail(
        TOKEN,
        jwt::sign(&key, own_uuid, peer_uuid, scope, now),
        |e| format!("cannot sign a token with {}: {e:#}", key_path.display()),
        "the hooks report TokenGenerationFailed: the key must be our PKCS#8 Ed25519 private key (Secret d8-istio/d8-remote-authn-keypair, key priv)",
    )?;
    r.pass(
        TOKEN,
        format!(
            "signed {} token sub={own_uuid} aud={peer_uuid}",
            scope.as_str()
        ),
    );
    let name = "private metadata access";
    let url = format!("{base}/private/{doc}");
    let (status, parsed, body) = fetch_json(r, conn, name, url.clone(), Some(token)).await?;
    match status {
        200 => r.pass(name, format!("GET {url}: HTTP 200 (allowed)")),
        401 | 403 => {
            let reason = excerpt(&body);
            let hint = refusal_hint(&reason);
            r.fail(name, format!("GET {url}: HTTP {status}: {reason}"), hint);
            return None;
        }
        404 => {
            r.fail(
                name,
                format!("GET {url}: HTTP 404"),
                "the peer does not publish this document: enable the feature (istio.federation.enabled / istio.multicluster.enabled) on the peer, or check --kind",
            );
            return None;
        }
        other => {
            r.fail(
                name,
                format!("GET {url}: HTTP {other}: {}", excerpt(&body)),
                "the hooks report NonOKResponse: check the peer's metadata-exporter logs",
            );
            return None;
        }
    }
    let v = json_document(
        r,
        "private metadata valid",
        parsed,
        &body,
        "the hooks report InvalidJSON",
    )?;
    match args.kind {
        Kind::Federation => {
            check_federation(r, &v, args.trust_domain.as_deref());
            None
        }
        Kind::Multicluster => check_multicluster(r, &v).map(|host| api::Target { host, key }),
    }
}

const INVALID_PRIVATE: &str =
    "the hooks report InvalidPrivateMetadata and keep the last good cache: the peer's exporter publishes a broken document";

fn record_dropped(r: &mut Report, dropped: &[Dropped]) {
    if dropped.is_empty() {
        return;
    }
    r.dropped.extend(
        dropped
            .iter()
            .map(|d| json!({"reason": d.reason, "detail": d.detail})),
    );
    let mut reasons: Vec<&str> = dropped.iter().map(|d| d.reason).collect();
    reasons.dedup();
    r.warn(
        "dropped by validation",
        format!(
            "{} item(s) would be dropped ({})",
            dropped.len(),
            reasons.join(", ")
        ),
        Some("the peer publishes items it may not (e.g. hostnames outside .svc.<its trust domain>); the hooks ignore them and count them in d8_istio_alliance_remote_items_dropped{kind,name,reason}"),
    );
}

fn check_gateways(r: &mut Report, n: usize) {
    if n == 0 {
        r.warn(
            "ingress gateways",
            "the peer publishes no valid ingress gateway: it is unreachable across networks (a federation peer's services are not rendered; a multicluster peer needs one unless spec.enableIngressGateway is false)".into(),
            Some("on the peer: check the ingress gateway Service (LoadBalancer address / NodePort nodes) or istio.alliance.ingressGateway.advertise"),
        );
    } else {
        r.pass("ingress gateways", format!("{n} gateway(s)"));
    }
}

fn check_federation(r: &mut Report, v: &Value, trust_domain: Option<&str>) {
    const NAME: &str = "private metadata valid";
    let Some(td) = trust_domain else {
        // Structure and gateways only; hostnames need the trust domain.
        match validate::federation_private(v, "") {
            Err(e) => r.fail(NAME, e, INVALID_PRIVATE),
            Ok(val) => {
                r.warn(
                    NAME,
                    "structure valid; hostnames not validated".into(),
                    Some("pass --trust-domain (the IstioFederation's spec.trustDomain) to validate publicServices hostnames"),
                );
                let gws = val.value.ingress_gateways;
                check_gateways(r, gws.len());
                let dropped: Vec<Dropped> = val
                    .dropped
                    .into_iter()
                    .filter(|d| d.reason != "ForeignHostname")
                    .collect();
                record_dropped(r, &dropped);
                let services: Vec<Value> = v
                    .get("publicServices")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.get("hostname").and_then(Value::as_str))
                            .map(|h| Value::from(excerpt(h.as_bytes())))
                            .collect()
                    })
                    .unwrap_or_default();
                r.private_metadata = Some(json!({
                    "ingressGateways": gws,
                    "unvalidatedHostnames": services,
                }));
            }
        }
        return;
    };
    match validate::federation_private(v, td) {
        Err(e) => r.fail(NAME, e, INVALID_PRIVATE),
        Ok(val) => {
            r.pass(
                NAME,
                format!(
                    "{} gateway(s), {} public service(s) under .svc.{td}",
                    val.value.ingress_gateways.len(),
                    val.value.public_services.len()
                ),
            );
            check_gateways(r, val.value.ingress_gateways.len());
            record_dropped(r, &val.dropped);
            r.private_metadata = serde_json::to_value(&val.value).ok();
        }
    }
}

/// Validates the multicluster document; returns its `apiHost` when valid.
fn check_multicluster(r: &mut Report, v: &Value) -> Option<String> {
    const NAME: &str = "private metadata valid";
    match validate::multicluster_private(v) {
        Err(e) => {
            r.fail(NAME, e, INVALID_PRIVATE);
            None
        }
        Ok(val) => {
            let m = &val.value;
            r.pass(
                NAME,
                format!(
                    "apiHost {}, networkName {}, clusterID {}",
                    m.api_host,
                    m.network_name,
                    if m.cluster_id.is_empty() {
                        "(not published)"
                    } else {
                        &m.cluster_id
                    }
                ),
            );
            check_gateways(r, m.ingress_gateways.len());
            record_dropped(r, &val.dropped);
            r.private_metadata = serde_json::to_value(m).ok();
            Some(m.api_host.clone())
        }
    }
}
