//! `fetch-remote-metadata`: fetches every peer's public and private metadata (SPEC §5.2) and
//! writes the result to the peer CR's status.
//!
//! All peers are fetched concurrently on a runtime built for the run; each request carries the
//! configured deadline and size limit, so one dead peer costs only its own deadline. Every
//! remote document is validated (SPEC §5.3) before it is cached; on any failure the last good
//! cache stays untouched. `RemoteAPIServerReady` (multicluster kinds) is `Unknown/AwaitingPrivate`
//! until the private exchange succeeds, then the result of `GET https://<apiHost>/version` with
//! the token stored in the peer's remote secret (the one istiod uses; a fresh 60-second `api`
//! token before that secret exists): 200 → `True/RemoteAPIReachable`; 401/403 →
//! `RemoteAPIUnauthorized`; other codes → `RemoteAPIBadResponse`; no answer →
//! `RemoteAPIUnreachable`.

mod exchange;
mod metrics;
mod status;

use crate::domain::crd::{LenientPeer, PeerKind, PeerSpec, API_VERSION, PEER_JQ_FILTER};
use crate::domain::jwt;
use crate::domain::pki::rfc3339;
use crate::domain::settings::Settings;
use crate::domain::validate::is_cluster_uuid;
use crate::runtime::config::{Events, HookConfig, Schedule};
use crate::runtime::{Hook, HookInput, HookOutput, Metrics, ObjectOp, Snapshots};
use anyhow::anyhow;
use chrono::{DateTime, Utc};
use exchange::{Cached, Ctx, Report, Target};
use serde_json::Value;

pub struct FetchRemoteMetadata;

/// Dropped remote items logged one by one per peer and run; the rest are only counted, so a
/// hostile peer cannot flood the log.
const MAX_DROPPED_LOGGED: usize = 10;

impl Hook for FetchRemoteMetadata {
    fn name(&self) -> &'static str {
        "fetch-remote-metadata"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: None,
            after_helm: None,
            schedule: vec![Schedule {
                name: "poll",
                crontab: "*/15 * * * * *",
            }],
            kubernetes: {
                let mut k = super::peer_bindings(&PeerKind::ALL, PEER_JQ_FILTER, Events::Added);
                // the api tokens istiod uses, so RemoteAPIServerReady probes with them
                k.push(super::multicluster_remote_secrets::remote_secrets_binding(
                    Events::Added,
                ));
                k
            },
        }
    }

    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        let settings = Settings::from_values(input.values).map_err(|e| anyhow!(e))?;
        let mut out = HookOutput {
            metrics: Some(Metrics::new(metrics::GROUP)),
            ..HookOutput::default()
        };
        let kinds = enabled_kinds(&settings);
        if kinds.is_empty() {
            return Ok(out);
        }
        let Some(keypair) = &settings.keypair else {
            tracing::warn!("authn keypair for signing requests to remote metadata endpoints isn't generated yet, retrying later");
            return Ok(out);
        };
        settings.require_identity().map_err(|e| anyhow!(e))?;
        let mut peers = peer_items(input.snapshots, &kinds, &settings.cluster_domain);
        let stored = super::multicluster_remote_secrets::remote_secret_tokens(input.snapshots);
        for p in peers.iter_mut().filter(|p| p.target.kind.is_multicluster()) {
            p.target.stored_api_token = stored
                .get(&p.target.name)
                .and_then(|t| t.as_ref().ok())
                .cloned();
        }
        if peers.is_empty() {
            return Ok(out);
        }
        let signer = jwt::Signer::from_pem(&keypair.private).map_err(|e| format!("{e:#}"));
        let ctx = Ctx {
            http: input.http,
            now: input.now,
            own_uuid: &settings.cluster_uuid,
            signer: &signer,
            timeout: settings.fetch_timeout,
            max_bytes: settings.max_response_bytes,
        };
        let reports = fetch_all(&ctx, &peers)?;
        let now = rfc3339(input.now);
        // Unchanged statuses are refreshed every HEARTBEAT, and often enough for
        // render-service-entries never to see a fetched peer as stale (staleEndpointsTTL).
        let heartbeat = match settings.stale_endpoints_ttl {
            ttl if ttl.is_zero() => status::HEARTBEAT,
            ttl => status::HEARTBEAT.min(ttl / 3),
        };
        let m = out
            .metrics
            .get_or_insert_with(|| Metrics::new(metrics::GROUP));
        for (peer, report) in peers.iter().zip(&reports) {
            log(&peer.target, report, &settings.cluster_domain);
            let status = status::status(&peer.status, report, &now);
            if status::needs_write(&peer.status, &status, input.now, heartbeat) {
                out.object_ops.push(ObjectOp::status_merge_patch(
                    API_VERSION,
                    peer.target.kind.kind(),
                    &peer.target.name,
                    status,
                ));
            }
            metrics::record(
                m,
                &peer.target,
                report,
                last_success(peer, report, input.now),
                input.now,
            );
        }
        Ok(out)
    }
}

/// Kinds whose feature is on, in processing order.
fn enabled_kinds(s: &Settings) -> Vec<PeerKind> {
    let mut kinds = Vec::with_capacity(3);
    if s.federation_enabled {
        kinds.push(PeerKind::Federation);
    }
    if s.multicluster_enabled {
        kinds.extend([PeerKind::Multicluster, PeerKind::Multicloud]);
    }
    kinds
}

/// A peer to fetch: what the exchange needs and the prior status it is compared with.
struct PeerItem {
    target: Target,
    status: Value,
}

/// The peers of `kinds` to fetch, in snapshot order: read leniently (a malformed, hand-edited
/// status never hides a peer; see [`super::read_peers`]), without federations of the local
/// trust domain (silently) and federations without one (with a warning).
fn peer_items(snapshots: &Snapshots, kinds: &[PeerKind], cluster_domain: &str) -> Vec<PeerItem> {
    super::read_peers::<Value>(snapshots, kinds)
        .into_iter()
        .filter_map(|peer: LenientPeer| {
            let trust_domain = peer.spec.trust_domain.clone().unwrap_or_default();
            if peer.kind == PeerKind::Federation {
                if trust_domain == cluster_domain {
                    return None;
                }
                if trust_domain.is_empty() {
                    tracing::warn!(
                        kind = peer.kind.kind(),
                        name = peer.name,
                        "skipping federation without spec.trustDomain"
                    );
                    return None;
                }
            }
            Some(PeerItem {
                target: target(peer.kind, peer.name, &peer.spec, &peer.status, trust_domain),
                status: peer.status,
            })
        })
        .collect()
}

fn target(
    kind: PeerKind,
    name: String,
    spec: &PeerSpec,
    status: &Value,
    trust_domain: String,
) -> Target {
    let pinned_uuid = status
        .pointer("/metadataCache/public/clusterUUID")
        .and_then(Value::as_str)
        .filter(|u| is_cluster_uuid(u))
        .map(str::to_owned);
    let cached = |doc: &str, tag: &str| {
        let cache = status.get("metadataCache");
        let etag = cache
            .and_then(|c| c.get(tag))
            .and_then(Value::as_str)
            .and_then(exchange::entity_tag)
            .map(str::to_owned);
        // The document is only needed (and cloned) when there is a tag to send with it.
        let doc = etag
            .as_ref()
            .and_then(|_| cache.and_then(|c| c.get(doc)).cloned());
        Cached { doc, etag }
    };
    Target {
        kind,
        name,
        base: spec.metadata_endpoint.trim_end_matches('/').to_owned(),
        trust_domain,
        ca_pem: spec.metadata.ca.clone().filter(|ca| !ca.trim().is_empty()),
        insecure_skip_verify: spec.metadata.insecure_skip_verify,
        enable_ingress_gateway: spec.enable_ingress_gateway.unwrap_or(true),
        pinned_uuid,
        cached_public: cached("public", status::PUBLIC_ETAG),
        cached_private: cached("private", status::PRIVATE_ETAG),
        stored_api_token: None,
    }
}

/// Runs every exchange concurrently on a fresh runtime (on a helper thread when the caller is
/// itself inside a runtime, where blocking is not allowed).
fn fetch_all(ctx: &Ctx<'_>, peers: &[PeerItem]) -> anyhow::Result<Vec<Report>> {
    let work = || -> anyhow::Result<Vec<Report>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow!("cannot start the fetch runtime: {e}"))?;
        let all = futures_util::future::join_all(
            peers.iter().map(|p| exchange::exchange(ctx, &p.target)),
        );
        Ok(rt.block_on(all))
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(work).join())
            .map_err(|_| anyhow!("the fetch thread panicked"))?
    } else {
        work()
    }
}

/// Times of the last successful fetches after this run: now, or the prior (valid) timestamp.
fn last_success(
    peer: &PeerItem,
    r: &Report,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let prior = |key: &str| {
        peer.status
            .get("metadataCache")
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let public = if r.public_doc.is_some() {
        Some(now)
    } else {
        prior("publicLastFetchTimestamp")
    };
    let private = if r.private_doc.is_some() {
        Some(now)
    } else {
        prior("privateLastFetchTimestamp")
    };
    (public, private)
}

fn log(t: &Target, r: &Report, cluster_domain: &str) {
    let kind = t.kind.kind();
    for (part, cond) in [("public", &r.public), ("private", &r.private)] {
        if cond.status == exchange::CondStatus::False {
            tracing::warn!(
                kind,
                name = t.name,
                part,
                reason = cond.reason,
                "{}",
                cond.message
            );
        }
    }
    if let Some(api) = r
        .api
        .as_ref()
        .filter(|c| c.status == exchange::CondStatus::False)
    {
        tracing::warn!(kind, name = t.name, reason = api.reason, "{}", api.message);
    }
    for d in r.dropped.iter().take(MAX_DROPPED_LOGGED) {
        tracing::warn!(
            kind,
            name = t.name,
            reason = d.reason,
            "dropped remote item: {}",
            d.detail
        );
    }
    if let Some(more) = r
        .dropped
        .len()
        .checked_sub(MAX_DROPPED_LOGGED)
        .filter(|n| *n > 0)
    {
        tracing::warn!(
            kind,
            name = t.name,
            "dropped {more} more remote items (counted in {})",
            metrics::DROPPED
        );
    }
    if r.private_doc.is_some() {
        if t.kind.is_multicluster() {
            tracing::info!(
                kind,
                name = t.name,
                "Cluster name: {cluster_domain} connected successfully"
            );
        } else {
            tracing::info!(
                kind,
                name = t.name,
                "Cluster name: {cluster_domain} connected successfully, published services: {}",
                r.services
            );
        }
    }
}
