//! The peer custom resources (`IstioFederation`, `IstioMulticluster`, `IstioMulticloud`), typed
//! through serde. Hooks receive them as snapshot items whose `filterResult` is a projection of
//! the object in the object's own shape, so the same types read a full object or a projection.
//! `status.metadataCache` stays raw JSON here: it is untrusted and validated by its consumers,
//! either as a [`Value`] ([`PeerStatus`]) or as the text it came as, borrowed from the snapshot
//! item ([`CachedPeer`]), from which the validators read their typed views directly.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// API group/version of the three CRDs.
pub const API_VERSION: &str = "deckhouse.io/v1alpha1";

/// jqFilter projecting a peer CR onto what the hooks read (name, spec, cache, conditions).
pub const PEER_JQ_FILTER: &str = "{metadata: {name: .metadata.name}, spec: .spec, status: {metadataCache: (.status.metadataCache // {}), conditions: (.status.conditions // [])}}";

/// jqFilter for the consumers of the cache: without conditions and fetch timestamps, so that a
/// fetch that changed nothing does not wake them.
pub const PEER_CACHE_JQ_FILTER: &str = "{metadata: {name: .metadata.name}, spec: .spec, status: {metadataCache: {public: .status.metadataCache.public, private: .status.metadataCache.private}}}";

/// The three peer kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKind {
    Federation,
    Multicluster,
    /// Seed 002's name for a multicluster peer; same schema and behaviour.
    Multicloud,
}

impl PeerKind {
    pub const ALL: [PeerKind; 3] = [
        PeerKind::Federation,
        PeerKind::Multicluster,
        PeerKind::Multicloud,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            PeerKind::Federation => "IstioFederation",
            PeerKind::Multicluster => "IstioMulticluster",
            PeerKind::Multicloud => "IstioMulticloud",
        }
    }

    /// Snapshot (binding) name used for this kind.
    pub fn binding(self) -> &'static str {
        match self {
            PeerKind::Federation => "federations",
            PeerKind::Multicluster => "multiclusters",
            PeerKind::Multicloud => "multiclouds",
        }
    }

    pub fn is_multicluster(self) -> bool {
        !matches!(self, PeerKind::Federation)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataAccess {
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerSpec {
    /// Federation only: the peer's cluster domain.
    #[serde(default)]
    pub trust_domain: Option<String>,
    pub metadata_endpoint: String,
    #[serde(default)]
    pub metadata: MetadataAccess,
    /// Multicluster only (default true).
    #[serde(default)]
    pub enable_ingress_gateway: Option<bool>,
}

/// One status condition (as metav1.Condition plus Deckhouse's `lastProbeTime`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub last_transition_time: String,
    #[serde(default)]
    pub last_probe_time: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataCache {
    #[serde(default)]
    pub public: Option<Value>,
    #[serde(default)]
    pub private: Option<Value>,
    #[serde(default)]
    pub public_last_fetch_timestamp: Option<String>,
    #[serde(default)]
    pub private_last_fetch_timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    #[serde(default)]
    pub metadata_cache: MetadataCache,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// [`MetadataCache`] with both documents kept as the JSON text they came as (`null` = absent),
/// borrowed from the snapshot item: no tree is built before validation reads its typed view.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMetadataCache<'a> {
    #[serde(default, borrow)]
    pub public: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub private: Option<&'a RawValue>,
    #[serde(default)]
    pub public_last_fetch_timestamp: Option<String>,
    #[serde(default)]
    pub private_last_fetch_timestamp: Option<String>,
}

/// [`PeerStatus`] over a [`RawMetadataCache`]: accepts exactly the statuses [`PeerStatus`] does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPeerStatus<'a> {
    #[serde(default, borrow)]
    pub metadata_cache: RawMetadataCache<'a>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A peer whose cached documents are borrowed JSON text (see [`RawMetadataCache`]): how the
/// consumers of the cache read peers.
pub type CachedPeer<'a> = Peer<RawPeerStatus<'a>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
}

/// A peer CR of any of the three kinds, its status typed ([`PeerStatus`]) or, for a
/// [`LenientPeer`], kept as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer<S = PeerStatus> {
    pub kind: PeerKind,
    pub name: String,
    pub spec: PeerSpec,
    pub status: S,
}

/// A peer whose status is kept as raw JSON, so that a malformed (hand-edited) status never
/// hides it: how `fetch-remote-metadata`, which rewrites that status, reads peers.
pub type LenientPeer = Peer<Value>;

#[derive(Deserialize)]
#[serde(bound = "S: Deserialize<'de>")]
struct RawPeer<S> {
    metadata: ObjectMeta,
    spec: PeerSpec,
    #[serde(default = "Option::default")]
    status: Option<S>,
}

impl<S: DeserializeOwned + Default> Peer<S> {
    /// Reads a peer from a snapshot item's content (object or projection).
    pub fn from_json(kind: PeerKind, v: &Value) -> Result<Peer<S>, String> {
        // Deserialized from the borrowed tree: no copy of the item before the typed one is built.
        let raw = RawPeer::<S>::deserialize(v).map_err(|e| {
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>");
            format!("{} {name}: {e}", kind.kind())
        })?;
        Ok(Peer {
            kind,
            name: raw.metadata.name,
            spec: raw.spec,
            status: raw.status.unwrap_or_default(),
        })
    }

    /// [`Peer::from_json`] straight from the item's JSON text: the typed peer is the only tree
    /// built. Errors read as [`Peer::from_json`]'s.
    pub fn from_raw(kind: PeerKind, raw: &serde_json::value::RawValue) -> Result<Peer<S>, String> {
        match serde_json::from_str::<RawPeer<S>>(raw.get()) {
            Ok(raw) => Ok(Peer {
                kind,
                name: raw.metadata.name,
                spec: raw.spec,
                status: raw.status.unwrap_or_default(),
            }),
            // Read again as a tree, for the same message as from a `Value` (no text position).
            Err(e) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(v) => Peer::from_json(kind, &v),
                Err(_) => Err(format!("{} <unnamed>: {e}", kind.kind())),
            },
        }
    }
}

impl<'a> CachedPeer<'a> {
    /// Reads a peer from a snapshot item's JSON text, its cached documents borrowed from it.
    /// Accepts exactly what [`Peer::from_raw`] accepts for a [`PeerStatus`], with its errors.
    pub fn from_cached(kind: PeerKind, raw: &'a RawValue) -> Result<CachedPeer<'a>, String> {
        match serde_json::from_str::<RawPeer<RawPeerStatus<'a>>>(raw.get()) {
            Ok(raw) => Ok(Peer {
                kind,
                name: raw.metadata.name,
                spec: raw.spec,
                status: raw.status.unwrap_or_default(),
            }),
            // The error as the tree-reading path words it.
            Err(e) => Err(Peer::<PeerStatus>::from_raw(kind, raw)
                .err()
                .unwrap_or_else(|| format!("{} <unnamed>: {e}", kind.kind()))),
        }
    }
}

impl<S> Peer<S> {
    /// The metadata endpoint without trailing slashes (the base of every URL, SPEC §5.1).
    pub fn base_url(&self) -> &str {
        self.spec.metadata_endpoint.trim_end_matches('/')
    }

    pub fn enable_ingress_gateway(&self) -> bool {
        self.spec.enable_ingress_gateway.unwrap_or(true)
    }
}

impl Peer {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The clusterUUID pinned by the cached public metadata, if any.
    pub fn pinned_uuid(&self) -> Option<&str> {
        self.status
            .metadata_cache
            .public
            .as_ref()
            .and_then(|p| p.get("clusterUUID"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_full_objects_and_projections() {
        let full = json!({"apiVersion": API_VERSION, "kind": "IstioFederation",
            "metadata": {"name": "b", "uid": "x"},
            "spec": {"trustDomain": "cluster-b.local", "metadataEndpoint": "https://m.b/metadata/"},
            "status": {"metadataCache": {"public": {"clusterUUID": "u"}}}});
        let p: Peer = Peer::from_json(PeerKind::Federation, &full).unwrap();
        assert_eq!(p.base_url(), "https://m.b/metadata");
        assert_eq!(p.pinned_uuid(), Some("u"));
        assert!(p.enable_ingress_gateway());
        let bad = json!({"metadata": {"name": "c"}, "spec": {"metadataEndpoint": 5}});
        assert!(Peer::<PeerStatus>::from_json(PeerKind::Multicluster, &bad)
            .unwrap_err()
            .starts_with("IstioMulticluster c:"));
    }
}
