//! The hook registry. Each hook is one module exposing a unit struct that implements
//! [`crate::runtime::Hook`]; its position here is its `hook run N` index and never changes.

pub mod discovery;
pub mod fetch_remote_metadata;
pub mod multicluster_remote_secrets;
pub mod render_service_entries;
pub mod update_ca_bundle;

use crate::runtime::Hook;

/// Every hook, in fixed order.
pub static REGISTRY: &[&dyn Hook] = &[
    &discovery::Discovery,
    &fetch_remote_metadata::FetchRemoteMetadata,
    &update_ca_bundle::UpdateCaBundle,
    &render_service_entries::RenderServiceEntries,
    &multicluster_remote_secrets::MulticlusterRemoteSecrets,
];

/// Looks a hook up by name.
pub fn find(name: &str) -> Option<&'static dyn Hook> {
    REGISTRY.iter().copied().find(|h| h.name() == name)
}

/// Kubernetes bindings for the three peer kinds with the given projection.
pub(crate) fn peer_bindings(
    kinds: &[crate::domain::crd::PeerKind],
    jq_filter: &'static str,
    events: crate::runtime::config::Events,
) -> Vec<crate::runtime::config::Kubernetes> {
    kinds
        .iter()
        .map(|k| crate::runtime::config::Kubernetes {
            name: k.binding(),
            api_version: crate::domain::crd::API_VERSION,
            kind: k.kind(),
            namespace: None,
            name_selector: None,
            match_labels: &[],
            jq_filter,
            events,
            on_synchronization: true,
        })
        .collect()
}

/// Reads the peers of `kinds` from snapshots, in snapshot (name) order; unreadable CRs are
/// skipped with a warning so one broken object never blocks the others. The status is read as
/// `S`: typed ([`crate::domain::crd::PeerStatus`], the default), or raw JSON in lenient mode
/// ([`crate::domain::crd::LenientPeer`]), where only the name and spec can make a peer
/// unreadable.
pub(crate) fn read_peers<S: serde::de::DeserializeOwned + Default>(
    snapshots: &crate::runtime::Snapshots,
    kinds: &[crate::domain::crd::PeerKind],
) -> Vec<crate::domain::crd::Peer<S>> {
    each_peer(snapshots, kinds, crate::domain::crd::Peer::from_raw)
}

/// The peers of `kinds` with their cached documents borrowed from the snapshot text
/// ([`crate::domain::crd::CachedPeer`]), in snapshot (name) order; what the consumers of the
/// cache read. Unreadable CRs are skipped with a warning, as in [`read_peers`].
pub(crate) fn cached_peers<'a>(
    snapshots: &'a crate::runtime::Snapshots,
    kinds: &[crate::domain::crd::PeerKind],
) -> Vec<crate::domain::crd::CachedPeer<'a>> {
    each_peer(
        snapshots,
        kinds,
        crate::domain::crd::CachedPeer::from_cached,
    )
}

/// `read` of every snapshot item of the bindings of `kinds`, in order; an item it cannot read
/// is skipped with a warning, so one broken object never blocks the others.
fn each_peer<'a, P, E: std::fmt::Display>(
    snapshots: &'a crate::runtime::Snapshots,
    kinds: &[crate::domain::crd::PeerKind],
    read: impl Fn(crate::domain::crd::PeerKind, &'a serde_json::value::RawValue) -> Result<P, E>,
) -> Vec<P> {
    let mut out = Vec::new();
    for kind in kinds {
        for item in snapshots.get_raw(kind.binding()) {
            match read(*kind, item) {
                Ok(p) => out.push(p),
                Err(e) => tracing::warn!(error = %e, "skipping unreadable peer object"),
            }
        }
    }
    out
}

/// [`cached_peers`] sorted by name (stable: snapshot order among equal names), unreadable CRs
/// included as the warning to log (`skipping unreadable peer object`) when the caller reaches
/// them, so that warnings come in the same order as the peers they sit between. An unreadable
/// CR sorts by the name it has, if any.
pub(crate) fn cached_peers_by_name<'a>(
    snapshots: &'a crate::runtime::Snapshots,
    kinds: &[crate::domain::crd::PeerKind],
) -> Vec<Result<crate::domain::crd::CachedPeer<'a>, String>> {
    type Read<'a> = Result<crate::domain::crd::CachedPeer<'a>, String>;
    let mut items: Vec<(String, Read<'a>)> = Vec::new();
    for kind in kinds {
        for item in snapshots.get_raw(kind.binding()) {
            let peer = crate::domain::crd::CachedPeer::from_cached(*kind, item);
            let name = match &peer {
                Ok(p) => p.name.clone(),
                // An item without a readable name sorts first.
                Err(_) => object_name(item).unwrap_or_default(),
            };
            items.push((name, peer));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.into_iter().map(|(_, peer)| peer).collect()
}

/// The `metadata.name` of a snapshot item whose other fields may not be readable.
pub(crate) fn object_name(item: &serde_json::value::RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct NameOnly {
        metadata: Meta,
    }
    serde_json::from_str::<NameOnly>(item.get())
        .ok()
        .map(|n| n.metadata.name)
}
