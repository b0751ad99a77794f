//! Validation of remote data (SPEC §5.3) — the security boundary. Everything a peer sends, and
//! everything read back from a CR's status (editable by anyone with access to the CR), passes
//! through here before it is cached, rendered or trusted. Invalid *items* are dropped and
//! reported as [`Dropped`]; an invalid *document* is an error naming the field.
//!
//! Documents come as [`Value`]s or as JSON text (`*_raw`, what the hooks read from snapshots).
//! Text is read first as a typed, borrowed view of a well-formed document; only a document that
//! does not fit that view, or one that would lose an item, is read as a [`Value`] and judged by
//! the same rules item by item, so both paths give the same result, drops and messages.

use crate::domain::metadata::{
    FederationPrivate, Gateway, MulticlusterPrivate, PublicMetadata, PublicService, ServicePort,
};
use crate::domain::pki::{self, CertInfo};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
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
    !s.is_empty() && s.len() <= 253 && s.as_bytes().split(|b| *b == b'.').all(is_dns_label_bytes)
}

/// [`is_dns_label`] of bytes (one pass, for the hot path of every published hostname).
fn is_dns_label_bytes(s: &[u8]) -> bool {
    match (s.first(), s.last()) {
        (Some(first), Some(last)) => {
            s.len() <= 63
                && *first != b'-'
                && *last != b'-'
                && s.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
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

/// A JSON object read as `T` (a derived struct): unlike `T` itself, never from an array, so
/// that a typed view accepts only what [`Value::get`] would find fields in.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Object<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Reads `raw` as the typed view `T`, or `None` when it does not fit (the caller then judges
/// the document as a [`Value`]).
fn view<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    serde_json::from_str::<Object<T>>(raw.get())
        .ok()
        .map(|o| o.0)
}

/// `raw` as a [`Value`], for the item-by-item path.
fn tree(raw: &RawValue, doc: &str) -> Result<Value, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("{doc}: {e}"))
}

/// Public metadata with its parsed root certificates. Structure only: the roots' validity in
/// time and CA-ness are judged by the caller ([`root_problems`]).
pub fn public_metadata_structure(v: &Value) -> Result<(PublicMetadata, Vec<CertInfo>), String> {
    const DOC: &str = "public metadata";
    if !v.is_object() {
        return Err(format!("{DOC}: expected a JSON object, got {}", short(v)));
    }
    let uuid = str_field(v, "clusterUUID", DOC)?;
    check_uuid(uuid)?;
    let key = str_field(v, "authnKeyPub", DOC)?;
    check_key(key)?;
    let root = str_field(v, "rootCA", DOC)?;
    let certs = parse_roots(root)?;
    Ok((public_of(uuid, key, root), certs))
}

fn check_uuid(uuid: &str) -> Result<(), String> {
    if is_cluster_uuid(uuid) {
        return Ok(());
    }
    Err(format!(
        "public metadata: clusterUUID {} is not 1-64 characters of [A-Za-z0-9-]",
        short(&Value::from(uuid))
    ))
}

fn check_key(key: &str) -> Result<(), String> {
    pki::ed25519_public_key(key)
        .map(drop)
        .map_err(|e| format!("public metadata: authnKeyPub: {e}"))
}

fn parse_roots(root: &str) -> Result<Vec<CertInfo>, String> {
    pki::parse_certificates(root).map_err(|e| format!("public metadata: rootCA: {e}"))
}

fn public_of(uuid: &str, key: &str, root: &str) -> PublicMetadata {
    PublicMetadata {
        cluster_uuid: uuid.to_owned(),
        authn_key_pub: key.to_owned(),
        root_ca: root.to_owned(),
    }
}

/// The typed view of public metadata.
#[derive(Deserialize)]
struct PublicView<'a> {
    #[serde(rename = "clusterUUID", borrow)]
    cluster_uuid: Cow<'a, str>,
    #[serde(rename = "authnKeyPub", borrow)]
    authn_key_pub: Cow<'a, str>,
    #[serde(rename = "rootCA", borrow)]
    root_ca: Cow<'a, str>,
}

/// [`public_metadata_structure`] of a document given as JSON text.
pub fn public_metadata_structure_raw(
    raw: &RawValue,
) -> Result<(PublicMetadata, Vec<CertInfo>), String> {
    match view::<PublicView>(raw) {
        Some(p)
            if !p.cluster_uuid.is_empty()
                && !p.authn_key_pub.is_empty()
                && !p.root_ca.is_empty() =>
        {
            check_uuid(&p.cluster_uuid)?;
            check_key(&p.authn_key_pub)?;
            let certs = parse_roots(&p.root_ca)?;
            Ok((
                public_of(&p.cluster_uuid, &p.authn_key_pub, &p.root_ca),
                certs,
            ))
        }
        _ => public_metadata_structure(&tree(raw, "public metadata")?),
    }
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
    let address_ok = is_gateway_address(address);
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

fn is_gateway_address(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok() || is_dns_name(address)
}

/// The typed view of a gateway item.
#[derive(Deserialize)]
struct GatewayView<'a> {
    #[serde(borrow)]
    address: Cow<'a, str>,
    port: u16,
}

/// [`gateways`] of typed items, or `None` when an item would be dropped.
fn gateways_view(items: Vec<Object<GatewayView<'_>>>) -> Option<Vec<Gateway>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for Object(g) in items {
        if g.port == 0 || !is_gateway_address(&g.address) || out.len() >= MAX_GATEWAYS {
            return None;
        }
        let g = Gateway {
            address: g.address.into_owned(),
            port: g.port,
        };
        if seen.insert(g.clone()) {
            out.push(g);
        }
    }
    out.sort();
    Some(out)
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

/// The typed view of a port item.
#[derive(Deserialize)]
struct PortView<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    port: u16,
}

/// The typed view of a public service item.
#[derive(Deserialize)]
struct ServiceView<'a> {
    #[serde(borrow)]
    hostname: Cow<'a, str>,
    #[serde(borrow)]
    ports: Vec<Object<PortView<'a>>>,
}

/// The typed view of `private/federation.json`.
#[derive(Deserialize)]
struct FederationPrivateView<'a> {
    #[serde(rename = "ingressGateways", borrow)]
    ingress_gateways: Vec<Object<GatewayView<'a>>>,
    #[serde(rename = "publicServices", borrow)]
    public_services: Vec<Object<ServiceView<'a>>>,
}

/// [`service`] of a typed item, or `None` when it (or one of its ports) would be dropped.
fn service_view(s: ServiceView<'_>, suffix: &str) -> Option<PublicService> {
    let hostname = s.hostname;
    if !is_dns_name(&hostname)
        || !hostname.ends_with(suffix)
        || hostname.len() == suffix.len()
        || s.ports.is_empty()
        || s.ports.len() > MAX_PORTS
    {
        return None;
    }
    let mut out: Vec<ServicePort> = Vec::with_capacity(s.ports.len());
    for Object(p) in s.ports {
        if p.port == 0 || !is_dns_label(&p.name) || out.iter().any(|q| q.port == p.port) {
            return None;
        }
        let protocol = crate::domain::metadata::port_protocol(&p.name).to_owned();
        out.push(ServicePort {
            name: p.name.into_owned(),
            port: p.port,
            protocol: Some(protocol),
        });
    }
    out.sort_by_key(|p| p.port);
    Some(PublicService {
        hostname: hostname.into_owned(),
        ports: out,
    })
}

/// [`federation_private`] of a typed document, or `None` when an item would be dropped.
fn federation_private_view(
    v: FederationPrivateView<'_>,
    trust_domain: &str,
) -> Option<FederationPrivate> {
    if v.public_services.len() > MAX_SERVICES {
        return None;
    }
    let ingress_gateways = gateways_view(v.ingress_gateways)?;
    let suffix = format!(".svc.{trust_domain}");
    let mut public_services = Vec::with_capacity(v.public_services.len());
    for Object(s) in v.public_services {
        public_services.push(service_view(s, &suffix)?);
    }
    public_services.sort();
    // A hostname published twice loses its second definition: the item-by-item path says so.
    if public_services
        .windows(2)
        .any(|w| w[0].hostname == w[1].hostname)
    {
        return None;
    }
    Some(FederationPrivate {
        ingress_gateways,
        public_services,
    })
}

/// [`federation_private`] of a document given as JSON text.
pub fn federation_private_raw(
    raw: &RawValue,
    trust_domain: &str,
) -> Result<Validated<FederationPrivate>, String> {
    if let Some(value) =
        view::<FederationPrivateView>(raw).and_then(|v| federation_private_view(v, trust_domain))
    {
        return Ok(Validated {
            value,
            dropped: Vec::new(),
        });
    }
    federation_private(&tree(raw, "private federation metadata")?, trust_domain)
}

/// The typed view of `private/multicluster.json`.
#[derive(Deserialize)]
struct MulticlusterPrivateView<'a> {
    #[serde(rename = "ingressGateways", borrow)]
    ingress_gateways: Vec<Object<GatewayView<'a>>>,
    #[serde(rename = "apiHost", borrow)]
    api_host: Cow<'a, str>,
    #[serde(rename = "networkName", borrow)]
    network_name: Cow<'a, str>,
    #[serde(rename = "clusterID", default, borrow)]
    cluster_id: Option<Cow<'a, str>>,
}

/// [`multicluster_private`] of a document given as JSON text.
pub fn multicluster_private_raw(raw: &RawValue) -> Result<Validated<MulticlusterPrivate>, String> {
    let fast = view::<MulticlusterPrivateView>(raw).and_then(|v| {
        if !is_host_port(&v.api_host)
            || !is_label_value(&v.network_name)
            || v.cluster_id.as_deref().is_some_and(|c| !is_label_value(c))
        {
            return None;
        }
        Some(MulticlusterPrivate {
            ingress_gateways: gateways_view(v.ingress_gateways)?,
            api_host: v.api_host.into_owned(),
            network_name: v.network_name.into_owned(),
            cluster_id: v.cluster_id.map(Cow::into_owned).unwrap_or_default(),
        })
    });
    match fast {
        Some(value) => Ok(Validated {
            value,
            dropped: Vec::new(),
        }),
        None => multicluster_private(&tree(raw, "private multicluster metadata")?),
    }
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

    /// The text readers give exactly what the tree readers give, drops and errors included:
    /// well-formed documents through the typed view, the others item by item.
    #[test]
    fn raw_readers_equal_tree_readers() {
        let raw = |v: &Value| serde_json::value::to_raw_value(v).unwrap();
        let svc = |host: &str, ports: Value| json!({"hostname": host, "ports": ports});
        let ok_ports = json!([{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "grpc-a", "port": 81}]);
        let gw = json!({"address": "1.2.3.4", "port": 15443});
        let host = "a.x.svc.cluster-b.local";
        let feds = vec![
            json!({"ingressGateways": [gw, {"address": "gw.b.example.com", "port": 1}, gw], "publicServices": [svc("b.x.svc.cluster-b.local", ok_ports.clone()), svc(host, json!([{"name": "tcp", "port": 2}, {"name": "tls", "port": 1}]))]}),
            json!({"ingressGateways": [], "publicServices": []}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, ok_ports.clone()), svc(host, ok_ports.clone())]}),
            json!({"ingressGateways": [gw], "publicServices": [svc("a.x.svc.cluster-c.local", ok_ports.clone())]}),
            json!({"ingressGateways": [gw], "publicServices": [svc("A.x.svc.cluster-b.local", ok_ports.clone())]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([]))]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([{"name": "a", "port": 1}, {"name": "b", "port": 1}]))]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([{"name": "a", "port": 0}]))]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([{"name": "a", "port": 70000}]))]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([{"name": "a", "port": 1.0}]))]}),
            json!({"ingressGateways": [gw], "publicServices": [svc(host, json!([["a", 1]]))]}),
            json!({"ingressGateways": [["1.2.3.4", 1]], "publicServices": []}),
            json!({"ingressGateways": [{"address": "x y", "port": 1}], "publicServices": []}),
            json!({"ingressGateways": [{"address": "1.1.1.1", "port": 0}], "publicServices": []}),
            json!({"ingressGateways": [gw], "publicServices": [{"hostname": 5, "ports": []}]}),
            json!({"ingressGateways": [gw], "publicServices": null}),
            json!({"ingressGateways": [gw]}),
            json!([1]),
            json!(null),
        ];
        for doc in &feds {
            let want = federation_private(doc, "cluster-b.local");
            assert_eq!(
                federation_private_raw(&raw(doc), "cluster-b.local"),
                want,
                "{doc}"
            );
        }
        let many: Vec<Value> = (0..=MAX_GATEWAYS)
            .map(|i| json!({"address": format!("10.0.0.{i}"), "port": 1}))
            .collect();
        let doc = json!({"ingressGateways": many, "publicServices": []});
        assert_eq!(
            federation_private_raw(&raw(&doc), "b"),
            federation_private(&doc, "b")
        );
        // Escapes in names are read as the tree reads them.
        let text = r#"{"ingressGateways":[],"publicServices":[{"hostname":"a\u002ex.svc.b","ports":[{"name":"h","port":1}]}]}"#;
        let doc: Value = serde_json::from_str(text).unwrap();
        let raw_doc = RawValue::from_string(text.to_owned()).unwrap();
        let got = federation_private_raw(&raw_doc, "b").unwrap();
        assert_eq!(got.value.public_services[0].hostname, "a.x.svc.b");
        assert_eq!(Ok(got), federation_private(&doc, "b"));

        let mcs = vec![
            json!({"ingressGateways": [gw], "apiHost": "api.b.example.com:443", "networkName": "n-1", "clusterID": "c"}),
            json!({"ingressGateways": [gw], "apiHost": "api.b.example.com", "networkName": "n-1", "clusterID": null}),
            json!({"ingressGateways": [gw], "apiHost": "api.b.example.com", "networkName": "n-1", "clusterID": ""}),
            json!({"ingressGateways": [gw], "apiHost": "", "networkName": "n-1"}),
            json!({"ingressGateways": [{"address": "x y", "port": 1}], "apiHost": "a.b", "networkName": "n"}),
            json!({"ingressGateways": [gw], "apiHost": "a.b", "networkName": 5}),
            json!({"apiHost": "a.b", "networkName": "n"}),
        ];
        for doc in &mcs {
            assert_eq!(
                multicluster_private_raw(&raw(doc)),
                multicluster_private(doc),
                "{doc}"
            );
        }

        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fixtures");
        let read = |f: &str| std::fs::read_to_string(fixtures.join(f)).unwrap();
        let (key, root) = (read("ed25519-a.pub"), read("root-a.pem"));
        let publics = vec![
            json!({"clusterUUID": "u-1", "authnKeyPub": key, "rootCA": root}),
            json!({"clusterUUID": "u 1", "authnKeyPub": key, "rootCA": root}),
            json!({"clusterUUID": "", "authnKeyPub": key, "rootCA": root}),
            json!({"clusterUUID": "u", "authnKeyPub": "x", "rootCA": root}),
            json!({"clusterUUID": "u", "authnKeyPub": key, "rootCA": "x"}),
            json!({"clusterUUID": "u", "authnKeyPub": key}),
            json!({"clusterUUID": 1, "authnKeyPub": key, "rootCA": root}),
            json!("x"),
        ];
        for doc in &publics {
            assert_eq!(
                public_metadata_structure_raw(&raw(doc)),
                public_metadata_structure(doc),
                "{doc}"
            );
        }
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
