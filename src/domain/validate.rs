//! Validation of remote data (SPEC §5.3) — the security boundary. Everything a peer sends, and
//! everything read back from a CR's status (editable by anyone with access to the CR), passes
//! through here before it is cached, rendered or trusted. Invalid *items* are dropped and
//! reported as [`Dropped`]; an invalid *document* is an error naming the field.

use crate::domain::metadata::{
    FederationPrivate, Gateway, MulticlusterPrivate, PublicMetadata, PublicService, ServicePort,
};
use crate::domain::pki::{self, CertInfo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// At most this many gateways are accepted from one peer.
pub const MAX_GATEWAYS: usize = 64;
/// At most this many public services are accepted from one peer.
pub const MAX_SERVICES: usize = 20_000;
/// At most this many ports per service.
pub const MAX_PORTS: usize = 256;

/// One remote item left out, with a metric-friendly reason and a human detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub reason: &'static str,
    pub detail: String,
}

/// A validated document with the items validation left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated<T> {
    pub value: T,
    pub dropped: Vec<Dropped>,
}

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, ≤ 253 characters, no trailing dot.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Kubernetes label value, non-empty: ≤ 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn is_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Cluster UUID: 1–64 of `[A-Za-z0-9-]`.
pub fn is_cluster_uuid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A DNS name with an optional `:port` (the api-proxy host).
pub fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => is_dns_name(host) && parse_port_str(port).is_some(),
        None => is_dns_name(s),
    }
}

fn parse_port_str(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

fn port_of(v: &Value) -> Option<u16> {
    v.as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn str_field<'a>(obj: &'a Value, key: &str, doc: &str) -> Result<&'a str, String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(format!("{doc}: {key} must be a non-empty string"))
        }
        Some(other) => Err(format!(
            "{doc}: {key} must be a string, got {}",
            short(other)
        )),
    }
}

fn array_field<'a>(obj: &'a Value, key: &str, doc: &str) -> Result<&'a Vec<Value>, String> {
    match obj.get(key) {
        Some(Value::Array(a)) => Ok(a),
        None | Some(Value::Null) => Err(format!(
            "{doc}: {key} must be set (an array, possibly empty)"
        )),
        Some(other) => Err(format!(
            "{doc}: {key} must be an array, got {}",
            short(other)
        )),
    }
}

/// Public metadata with its parsed root certificates. Structure only: the roots' validity in
/// time and CA-ness are judged by the caller ([`root_problems`]).
pub fn public_metadata_structure(v: &Value) -> Result<(PublicMetadata, Vec<CertInfo>), String> {
    const DOC: &str = "public metadata";
    if !v.is_object() {
        return Err(format!("{DOC}: expected a JSON object, got {}", short(v)));
    }
    let uuid = str_field(v, "clusterUUID", DOC)?;
    if !is_cluster_uuid(uuid) {
        return Err(format!(
            "{DOC}: clusterUUID {} is not 1-64 characters of [A-Za-z0-9-]",
            short(&Value::from(uuid))
        ));
    }
    let key = str_field(v, "authnKeyPub", DOC)?;
    pki::ed25519_public_key(key).map_err(|e| format!("{DOC}: authnKeyPub: {e}"))?;
    let root = str_field(v, "rootCA", DOC)?;
    let certs = pki::parse_certificates(root).map_err(|e| format!("{DOC}: rootCA: {e}"))?;
    Ok((
        PublicMetadata {
            cluster_uuid: uuid.to_owned(),
            authn_key_pub: key.to_owned(),
            root_ca: root.to_owned(),
        },
        certs,
    ))
}

/// Problems that forbid trusting the given roots at `now`.
pub fn root_problems(certs: &[CertInfo], now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    certs.iter().filter_map(|c| c.root_problem(now)).collect()
}

/// Public metadata as fetched: the structure and every root valid now (SPEC §5.3).
pub fn public_metadata(
    v: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PublicMetadata, String> {
    let (public, certs) = public_metadata_structure(v)?;
    match root_problems(&certs, now).first() {
        Some(p) => Err(format!("public metadata: rootCA: {p}")),
        None => Ok(public),
    }
}

/// One gateway item.
pub fn gateway(v: &Value) -> Result<Gateway, String> {
    let address = v.get("address").and_then(Value::as_str).unwrap_or_default();
    let port = v.get("port").and_then(port_of);
    let address_ok = address.parse::<IpAddr>().is_ok() || is_dns_name(address);
    match (address_ok, port) {
        (true, Some(port)) => Ok(Gateway {
            address: address.to_owned(),
            port,
        }),
        (false, _) => Err(format!(
            "gateway {}: address is neither an IP literal nor a DNS name",
            short(v)
        )),
        (_, None) => Err(format!("gateway {}: port must be 1-65535", short(v))),
    }
}

fn gateways(items: &[Value], dropped: &mut Vec<Dropped>) -> Vec<Gateway> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        match gateway(item) {
            Ok(g) if out.len() >= MAX_GATEWAYS => {
                dropped.push(Dropped {
                    reason: "TooManyGateways",
                    detail: format!(
                        "gateway {}:{} beyond the limit of {MAX_GATEWAYS}",
                        g.address, g.port
                    ),
                });
            }
            Ok(g) => {
                if seen.insert(g.clone()) {
                    out.push(g);
                }
            }
            Err(detail) => dropped.push(Dropped {
                reason: "InvalidGateway",
                detail,
            }),
        }
    }
    out.sort();
    out
}

fn service(v: &Value, suffix: &str, dropped: &mut Vec<Dropped>) -> Option<PublicService> {
    let Some(hostname) = v.get("hostname").and_then(Value::as_str) else {
        dropped.push(Dropped {
            reason: "InvalidHostname",
            detail: format!("service {}: hostname must be a string", short(v)),
        });
        return None;
    };
    if !is_dns_name(hostname) {
        dropped.push(Dropped {
            reason: "InvalidHostname",
            detail: format!(
                "service {}: hostname is not a DNS name",
                short(&Value::from(hostname))
            ),
        });
        return None;
    }
    if !hostname.ends_with(suffix) || hostname.len() == suffix.len() {
        dropped.push(Dropped {
            reason: "ForeignHostname",
            detail: format!("service {hostname}: outside the peer's domain *{suffix}"),
        });
        return None;
    }
    let Some(ports) = v.get("ports").and_then(Value::as_array) else {
        dropped.push(Dropped {
            reason: "InvalidPort",
            detail: format!("service {hostname}: ports must be an array"),
        });
        return None;
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in ports.iter().take(MAX_PORTS) {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        match (is_dns_label(name), p.get("port").and_then(port_of)) {
            (true, Some(port)) if seen.insert(port) => out.push(ServicePort {
                name: name.to_owned(),
                port,
                protocol: Some(crate::domain::metadata::port_protocol(name).to_owned()),
            }),
            (true, Some(port)) => dropped.push(Dropped {
                reason: "InvalidPort",
                detail: format!("service {hostname}: duplicate port {port}"),
            }),
            _ => dropped.push(Dropped {
                reason: "InvalidPort",
                detail: format!(
                    "service {hostname}: port {} needs a DNS-label name and a number 1-65535",
                    short(p)
                ),
            }),
        }
    }
    if ports.len() > MAX_PORTS {
        dropped.push(Dropped {
            reason: "InvalidPort",
            detail: format!(
                "service {hostname}: {} ports beyond the limit of {MAX_PORTS}",
                ports.len() - MAX_PORTS
            ),
        });
    }
    if out.is_empty() {
        dropped.push(Dropped {
            reason: "NoValidPorts",
            detail: format!("service {hostname}: no valid port"),
        });
        return None;
    }
    out.sort_by_key(|p| p.port);
    Some(PublicService {
        hostname: hostname.to_owned(),
        ports: out,
    })
}

/// `private/federation.json` of the peer of an IstioFederation with `trust_domain`: services
/// may only be named under `.svc.<trust_domain>`.
pub fn federation_private(
    v: &Value,
    trust_domain: &str,
) -> Result<Validated<FederationPrivate>, String> {
    const DOC: &str = "private federation metadata";
    if !v.is_object() {
        return Err(format!("{DOC}: expected a JSON object, got {}", short(v)));
    }
    let gws = array_field(v, "ingressGateways", DOC)?;
    let svcs = array_field(v, "publicServices", DOC)?;
    let mut dropped = Vec::new();
    let ingress_gateways = gateways(gws, &mut dropped);
    let suffix = format!(".svc.{trust_domain}");
    let mut seen = BTreeSet::new();
    let mut public_services = Vec::new();
    for s in svcs {
        if public_services.len() >= MAX_SERVICES {
            dropped.push(Dropped {
                reason: "TooManyServices",
                detail: format!("services beyond the limit of {MAX_SERVICES}"),
            });
            break;
        }
        if let Some(s) = service(s, &suffix, &mut dropped) {
            if seen.insert(s.hostname.clone()) {
                public_services.push(s);
            } else {
                dropped.push(Dropped {
                    reason: "DuplicateHostname",
                    detail: format!("service {}: published twice, keeping the first", s.hostname),
                });
            }
        }
    }
    public_services.sort();
    Ok(Validated {
        value: FederationPrivate {
            ingress_gateways,
            public_services,
        },
        dropped,
    })
}

/// `private/multicluster.json`.
pub fn multicluster_private(v: &Value) -> Result<Validated<MulticlusterPrivate>, String> {
    const DOC: &str = "private multicluster metadata";
    if !v.is_object() {
        return Err(format!("{DOC}: expected a JSON object, got {}", short(v)));
    }
    let gws = array_field(v, "ingressGateways", DOC)?;
    let api_host = str_field(v, "apiHost", DOC)?;
    if !is_host_port(api_host) {
        return Err(format!(
            "{DOC}: apiHost {} is not a DNS name with an optional :port",
            short(&Value::from(api_host))
        ));
    }
    let network_name = str_field(v, "networkName", DOC)?;
    if !is_label_value(network_name) {
        return Err(format!(
            "{DOC}: networkName {} is not a label value (≤ 63 characters)",
            short(&Value::from(network_name))
        ));
    }
    let cluster_id = match v.get("clusterID") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if is_label_value(s) => s.clone(),
        Some(other) => {
            return Err(format!(
                "{DOC}: clusterID {} is not a label value (≤ 63 characters)",
                short(other)
            ))
        }
    };
    let mut dropped = Vec::new();
    let ingress_gateways = gateways(gws, &mut dropped);
    Ok(Validated {
        value: MulticlusterPrivate {
            ingress_gateways,
            api_host: api_host.to_owned(),
            network_name: network_name.to_owned(),
            cluster_id,
        },
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(is_dns_name("bar.xyz.svc.cluster-b.local"));
        assert!(!is_dns_name("Bar.xyz"));
        assert!(!is_dns_name("bar..xyz"));
        assert!(!is_dns_name("bar.xyz."));
        assert!(!is_dns_name("bаr.xyz")); // Cyrillic а
        assert!(!is_dns_name(&"a".repeat(64)));
        assert!(is_host_port("istio-api-proxy.example.com:8443"));
        assert!(!is_host_port("istio-api-proxy.example.com:0"));
        assert!(!is_host_port("a.b:99999"));
        assert!(is_label_value("network-cluster-local-1"));
        assert!(!is_label_value(&"n".repeat(64)));
        assert!(is_cluster_uuid("3b3c8a2e-1f00-4c1a-9e8f-0a0b0c0d0e0f"));
        assert!(!is_cluster_uuid("a b"));
    }

    #[test]
    fn federation_private_drops_foreign_and_bad_items() {
        let doc = json!({
            "ingressGateways": [{"address": "1.2.3.4", "port": 15443}, {"address": "x y", "port": 1}, {"address": "gw.b.example.com", "port": 70000}],
            "publicServices": [
                {"hostname": "bar.xyz.svc.cluster-b.local", "ports": [{"name": "http", "port": 8080}, {"name": "Bad Name", "port": 1}]},
                {"hostname": "kubernetes.default.svc.cluster.local", "ports": [{"name": "https", "port": 443}]},
                {"hostname": "evil.svc.cluster-b.local.attacker.io", "ports": [{"name": "http", "port": 80}]},
                {"hostname": "noports.svc.cluster-b.local", "ports": []}
            ]
        });
        let v = federation_private(&doc, "cluster-b.local").unwrap();
        assert_eq!(
            v.value.ingress_gateways,
            vec![Gateway {
                address: "1.2.3.4".into(),
                port: 15443
            }]
        );
        assert_eq!(v.value.public_services.len(), 1);
        assert_eq!(
            v.value.public_services[0].ports[0].protocol.as_deref(),
            Some("HTTP")
        );
        let reasons: Vec<_> = v.dropped.iter().map(|d| d.reason).collect();
        assert_eq!(
            reasons,
            [
                "InvalidGateway",
                "InvalidGateway",
                "InvalidPort",
                "ForeignHostname",
                "ForeignHostname",
                "NoValidPorts"
            ]
        );
        assert!(federation_private(&json!({"ingressGateways": []}), "x")
            .unwrap_err()
            .contains("publicServices must be set"));
        assert!(federation_private(&json!([1]), "x").is_err());
    }

    #[test]
    fn multicluster_private_rules() {
        let ok = json!({"ingressGateways": [], "apiHost": "istio-api-proxy.b.example.com", "networkName": "network-b-1", "clusterID": "b-1"});
        assert_eq!(multicluster_private(&ok).unwrap().value.cluster_id, "b-1");
        let long = json!({"ingressGateways": [], "apiHost": "a.b", "networkName": "n".repeat(70)});
        assert!(multicluster_private(&long)
            .unwrap_err()
            .contains("networkName"));
        let bad_host = json!({"ingressGateways": [], "apiHost": "a b", "networkName": "n"});
        assert!(multicluster_private(&bad_host)
            .unwrap_err()
            .contains("apiHost"));
    }
}
