//! `update-ca-bundle`: the remote roots every peer published, as the trust bundle istiod reads
//! (`istio.internal.trustBundle`, SPEC §7.2) and the peer keys the servers verify tokens with
//! (`istio.internal.remotePublicMetadata`).
//!
//! The cached public metadata in a CR's status is editable by anyone with access to the CR, so it
//! is validated again here (SPEC §5.3): a broken document is ignored, and a root that is not a CA
//! or not valid now is never trusted. The local root is never part of the remote bundle.

use crate::domain::crd::{CachedPeer, PeerKind};
use crate::domain::metadata::RemotePublicMetadata;
use crate::domain::pki::{self, CertInfo};
use crate::domain::settings::Settings;
use crate::domain::validate;
use crate::runtime::config::{Events, HookConfig};
use crate::runtime::{Hook, HookInput, HookOutput, Metrics};
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub struct UpdateCaBundle;

/// Projection of a peer CR: only the cached public metadata is read here, so a change of the
/// private part or of a fetch timestamp never wakes this hook.
pub const PUBLIC_CACHE_JQ_FILTER: &str =
    "{metadata: {name: .metadata.name}, spec: .spec, status: {metadataCache: {public: .status.metadataCache.public}}}";

const METRIC_GROUP: &str = "update-ca-bundle";
/// Per peer and reason: how many of its published root certificates are not trusted.
const METRIC_UNTRUSTED_ROOTS: &str = "d8_istio_alliance_untrusted_root_certificates";
/// Per peer: its cached public metadata is ignored (1), with the reason.
const METRIC_IGNORED_PUBLIC: &str = "d8_istio_alliance_ignored_public_metadata";
/// Per peer and trusted root: its `notAfter` as a Unix timestamp (alerts compare it with
/// `time()`, so the value never goes stale between runs).
const METRIC_ROOT_NOT_AFTER: &str = "d8_istio_alliance_root_certificate_not_after_seconds";

/// One item of `istio.internal.trustBundle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustBundleEntry {
    pub pem: String,
    #[serde(rename = "trustDomains")]
    pub trust_domains: Vec<String>,
    #[serde(rename = "fingerprintSHA256")]
    pub fingerprint_sha256: String,
    #[serde(rename = "notAfter")]
    pub not_after: String,
}

impl Hook for UpdateCaBundle {
    fn name(&self) -> &'static str {
        "update-ca-bundle"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: Some(10),
            after_helm: None,
            schedule: vec![],
            kubernetes: super::peer_bindings(&PeerKind::ALL, PUBLIC_CACHE_JQ_FILTER, Events::All),
        }
    }

    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        let settings = Settings::from_values(input.values).map_err(|e| anyhow!(e))?;
        let mut kinds = Vec::new();
        if settings.federation_enabled {
            kinds.push(PeerKind::Federation);
        }
        if settings.multicluster_enabled {
            kinds.extend([PeerKind::Multicluster, PeerKind::Multicloud]);
        }
        let peers = super::cached_peers(input.snapshots, &kinds);
        let local = LocalIdentity {
            cluster_uuid: &settings.cluster_uuid,
            cluster_domain: &settings.cluster_domain,
            root_fingerprints: if peers.is_empty() {
                BTreeSet::new()
            } else {
                local_root_fingerprints(input.values)
            },
        };
        let mut metrics = Metrics::new(METRIC_GROUP);
        let (remote, bundle) = collect(&peers, &local, input.now, &mut metrics);
        let mut out = HookOutput::default();
        out.set("internal.remotePublicMetadata", &remote);
        out.set("internal.trustBundle", &bundle);
        out.metrics = Some(metrics);
        Ok(out)
    }
}

/// What the hook needs to know about this cluster.
struct LocalIdentity<'a> {
    cluster_uuid: &'a str,
    cluster_domain: &'a str,
    /// SHA-256 fingerprints of the local root(s), never trusted as remote roots.
    root_fingerprints: BTreeSet<String>,
}

/// Fingerprints of the certificates of `istio.internal.localMetadata.public.rootCA`.
fn local_root_fingerprints(values: &Value) -> BTreeSet<String> {
    let Some(pem) = values
        .pointer("/istio/internal/localMetadata/public/rootCA")
        .and_then(Value::as_str)
    else {
        tracing::warn!("istio.internal.localMetadata.public.rootCA is not set yet; cannot exclude the local root by fingerprint");
        return BTreeSet::new();
    };
    match pki::parse_certificates(pem) {
        Ok(certs) => certs.into_iter().map(|c| c.fingerprint_sha256).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "istio.internal.localMetadata.public.rootCA is not a certificate bundle; cannot exclude the local root by fingerprint");
            BTreeSet::new()
        }
    }
}

/// The trust domain a peer's roots are trusted for, or why the peer is skipped.
fn trust_domain<'a>(
    peer: &'a CachedPeer<'_>,
    local_domain: &'a str,
) -> Result<&'a str, &'static str> {
    if peer.kind.is_multicluster() {
        return Ok(local_domain);
    }
    match peer.spec.trust_domain.as_deref() {
        Some(td) if td == local_domain => {
            Err("skipping IstioFederation with trustDomain equals to ours")
        }
        Some(td) if validate::is_dns_name(td) => Ok(td),
        _ => Err("skipping IstioFederation whose spec.trustDomain is missing or not a DNS name"),
    }
}

/// A root being collected into the bundle.
struct BundleRoot {
    cert: CertInfo,
    trust_domains: BTreeSet<String>,
}

/// Builds `remotePublicMetadata` and `trustBundle` from the peers, in order.
fn collect(
    peers: &[CachedPeer<'_>],
    local: &LocalIdentity<'_>,
    now: DateTime<Utc>,
    metrics: &mut Metrics,
) -> (RemotePublicMetadata, Vec<TrustBundleEntry>) {
    let mut remote: RemotePublicMetadata = BTreeMap::new();
    let mut roots: BTreeMap<String, BundleRoot> = BTreeMap::new();
    // clusterUUID → the CR that claimed it first.
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for peer in peers {
        let kind = peer.kind.kind();
        let name = peer.name.as_str();
        let domain = match trust_domain(peer, local.cluster_domain) {
            Ok(d) => d,
            Err(msg) => {
                tracing::warn!(kind, name, "{msg}");
                continue;
            }
        };
        let Some(raw) = peer.status.metadata_cache.public else {
            tracing::warn!(kind, name, "public metadata for {kind} wasn't fetched yet");
            continue;
        };
        let (public, certs) = match validate::public_metadata_structure_raw(raw) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(kind, name, error = %e, "ignoring invalid cached public metadata");
                metrics.set(
                    METRIC_IGNORED_PUBLIC,
                    1.0,
                    &[
                        ("kind", kind),
                        ("name", name),
                        ("reason", "InvalidPublicMetadata"),
                    ],
                );
                continue;
            }
        };
        if public.cluster_uuid == local.cluster_uuid {
            tracing::warn!(kind, name, cluster_uuid = %public.cluster_uuid, "ignoring a peer that claims the local clusterUUID");
            metrics.set(
                METRIC_IGNORED_PUBLIC,
                1.0,
                &[
                    ("kind", kind),
                    ("name", name),
                    ("reason", "LocalClusterUUID"),
                ],
            );
            continue;
        }
        if let Some(first) = owners.get(&public.cluster_uuid) {
            tracing::warn!(kind, name, cluster_uuid = %public.cluster_uuid, first = %first, "clusterUUID already claimed by another peer; keeping the first");
            metrics.set(
                METRIC_IGNORED_PUBLIC,
                1.0,
                &[
                    ("kind", kind),
                    ("name", name),
                    ("reason", "DuplicateClusterUUID"),
                ],
            );
            continue;
        }
        owners.insert(public.cluster_uuid.clone(), format!("{kind}/{name}"));
        add_roots(&mut roots, certs, domain, peer, local, now, metrics);
        remote.insert(public.cluster_uuid.clone(), public);
    }
    let bundle = roots
        .into_values()
        .map(|r| TrustBundleEntry {
            pem: r.cert.pem,
            trust_domains: r.trust_domains.into_iter().collect(),
            fingerprint_sha256: r.cert.fingerprint_sha256,
            not_after: pki::rfc3339(r.cert.not_after),
        })
        .collect();
    (remote, bundle)
}

/// Adds the trustworthy certificates of one peer's root bundle, keyed by fingerprint.
fn add_roots(
    roots: &mut BTreeMap<String, BundleRoot>,
    certs: Vec<CertInfo>,
    domain: &str,
    peer: &CachedPeer<'_>,
    local: &LocalIdentity<'_>,
    now: DateTime<Utc>,
    metrics: &mut Metrics,
) {
    let kind = peer.kind.kind();
    let name = peer.name.as_str();
    let mut untrusted: BTreeMap<&'static str, u32> = BTreeMap::new();
    for cert in certs {
        if local.root_fingerprints.contains(&cert.fingerprint_sha256) {
            tracing::info!(kind, name, fingerprint = %cert.fingerprint_sha256, "peer publishes the local root; not adding it to the remote trust bundle");
            continue;
        }
        if let Some(problem) = cert.root_problem(now) {
            let reason = untrusted_reason(&cert, now);
            tracing::warn!(kind, name, fingerprint = %cert.fingerprint_sha256, reason, "not trusting a remote root certificate: {problem}");
            *untrusted.entry(reason).or_default() += 1;
            continue;
        }
        metrics.set(
            METRIC_ROOT_NOT_AFTER,
            cert.not_after.timestamp() as f64,
            &[
                ("kind", kind),
                ("name", name),
                ("fingerprint_sha256", &cert.fingerprint_sha256),
            ],
        );
        roots
            .entry(cert.fingerprint_sha256.clone())
            .or_insert_with(|| BundleRoot {
                cert,
                trust_domains: BTreeSet::new(),
            })
            .trust_domains
            .insert(domain.to_owned());
    }
    for (reason, count) in untrusted {
        metrics.set(
            METRIC_UNTRUSTED_ROOTS,
            f64::from(count),
            &[("kind", kind), ("name", name), ("reason", reason)],
        );
    }
}

/// Metric label for why `cert` is not trusted (consistent with [`CertInfo::root_problem`]).
fn untrusted_reason(cert: &CertInfo, now: DateTime<Utc>) -> &'static str {
    if !cert.is_ca {
        "NotCA"
    } else if now < cert.not_before {
        "NotYetValid"
    } else {
        "Expired"
    }
}
