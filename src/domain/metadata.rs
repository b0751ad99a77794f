//! The metadata documents exchanged between clusters (SPEC §5.1) and the internal values built
//! from them. Field names are Deckhouse's wire names; empty lists serialize as `[]`, never `null`.
//!
//! These are the *validated* shapes: remote JSON is turned into them only through
//! [`crate::domain::validate`], which drops what a peer may not publish.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `public/public.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMetadata {
    #[serde(rename = "clusterUUID")]
    pub cluster_uuid: String,
    #[serde(rename = "authnKeyPub")]
    pub authn_key_pub: String,
    #[serde(rename = "rootCA")]
    pub root_ca: String,
}

/// One ingress-gateway address a peer can be reached at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gateway {
    pub address: String,
    pub port: u16,
}

/// A named service port; `protocol` is present in cached/internal data, absent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// A service one cluster shares with its federation peers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicService {
    pub hostname: String,
    pub ports: Vec<ServicePort>,
}

/// `private/federation.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FederationPrivate {
    #[serde(rename = "ingressGateways")]
    pub ingress_gateways: Vec<Gateway>,
    #[serde(rename = "publicServices")]
    pub public_services: Vec<PublicService>,
}

/// `private/multicluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulticlusterPrivate {
    #[serde(rename = "ingressGateways")]
    pub ingress_gateways: Vec<Gateway>,
    #[serde(rename = "apiHost")]
    pub api_host: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(
        rename = "clusterID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_id: String,
}

/// `istio.internal.localMetadata`: everything the local metadata-exporter publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalMetadata {
    pub public: PublicMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationPrivate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multicluster: Option<MulticlusterPrivate>,
}

/// `istio.internal.remotePublicMetadata`: clusterUUID → public metadata of every known peer.
pub type RemotePublicMetadata = BTreeMap<String, PublicMetadata>;

/// `istio.internal.remoteAuthnKeypair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthnKeypair {
    #[serde(rename = "pub", default)]
    pub public: String,
    #[serde(rename = "priv", default)]
    pub private: String,
}

/// Istio port protocol from a port name (SPEC §7.1): the part before the first `-` containing
/// `https`/`tls` → TLS, `http2`/`grpc` → HTTP2, `http` → HTTP, anything else TCP.
pub fn port_protocol(port_name: &str) -> &'static str {
    let base = port_name.split('-').next().unwrap_or_default().as_bytes();
    // Substrings of a short name: a window scan, cheaper than `str::contains`'s searcher.
    let has = |needle: &[u8]| base.windows(needle.len()).any(|w| w == needle);
    if has(b"https") || has(b"tls") {
        "TLS"
    } else if has(b"http2") || has(b"grpc") {
        "HTTP2"
    } else if has(b"http") {
        "HTTP"
    } else {
        "TCP"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_follow_the_port_name_prefix() {
        for (name, want) in [
            ("http", "HTTP"),
            ("http-web", "HTTP"),
            ("https-x", "TLS"),
            ("tls", "TLS"),
            ("http2", "HTTP2"),
            ("grpc-web", "HTTP2"),
            ("grps-ppp", "TCP"),
            ("ppp", "TCP"),
            ("tcp-http", "TCP"),
            ("", "TCP"),
        ] {
            assert_eq!(port_protocol(name), want, "{name}");
        }
    }

    #[test]
    fn empty_lists_are_arrays_and_names_are_wire_names() {
        let doc = serde_json::to_string(&FederationPrivate::default()).unwrap();
        assert_eq!(doc, r#"{"ingressGateways":[],"publicServices":[]}"#);
        let p = PublicMetadata {
            cluster_uuid: "u".into(),
            authn_key_pub: "k".into(),
            root_ca: "c".into(),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"clusterUUID":"u","authnKeyPub":"k","rootCA":"c"}"#
        );
    }
}
