//! `render-service-entries`: the proper federations (`istio.internal.federations`) and the
//! ServiceEntries of their public services merged across federations
//! (`istio.internal.federationServiceEntries`, SPEC §7.1), grouped for scale (`group`: one item
//! per trust domain, ports and endpoint set, with `hosts`). With
//! `istio.federation.serviceEntriesManagedBy: Hook` the hook applies those objects itself
//! (`objects`: outside the Helm release, for federations beyond ~50,000 imported hostnames) and
//! the values carry no hostname.
//!
//! The cache in a CR's status is editable by anyone with access to the CR, so public and private
//! metadata are validated again here (SPEC §5.3): a peer may only publish names under
//! `.svc.<its trustDomain>`. With `istio.alliance.staleEndpointsTTL` set, a peer whose private
//! metadata was not fetched successfully for that long has its endpoints withdrawn (its roots
//! stay trusted: that is `update-ca-bundle`'s business).

use crate::domain::crd::{CachedPeer, PeerKind};
use crate::domain::metadata::{
    port_protocol, FederationPrivate, Gateway, PublicMetadata, PublicService, ServicePort,
};
use crate::domain::names;
use crate::domain::settings::Settings;
use crate::domain::validate::{self, Validated};
use crate::runtime::config::{Events, HookConfig, Schedule};
use crate::runtime::{Hook, HookInput, HookOutput, Metrics};
use anyhow::anyhow;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

mod group;
pub mod objects;
pub use group::ServiceEntryGroup;

pub struct RenderServiceEntries;

/// Projection of an IstioFederation: the cache, plus the time of the last successful private
/// fetch cut to the minute (`2026-11-22T10:15`), so that the every-15-seconds fetch wakes this
/// hook at most once a minute; a non-string timestamp becomes `null`.
pub const FEDERATION_TTL_JQ_FILTER: &str = "{metadata: {name: .metadata.name}, spec: .spec, status: {metadataCache: {public: .status.metadataCache.public, private: .status.metadataCache.private, privateLastFetchTimestamp: (.status.metadataCache.privateLastFetchTimestamp | if type == \"string\" then .[0:16] else null end)}}}";

const METRIC_GROUP: &str = "render-service-entries";
/// Per federation and document (`public`/`private`): the cached document is invalid (1).
const METRIC_INVALID_CACHE: &str = "d8_istio_federation_invalid_cached_metadata";
/// Per federation and reason: items of its cached private metadata dropped by validation.
const METRIC_DROPPED: &str = "d8_istio_federation_cached_items_dropped";
/// Per federation: endpoints withdrawn because private metadata is older than the TTL (1).
const METRIC_WITHDRAWN: &str = "d8_istio_federation_endpoints_withdrawn";
/// Per federation, hostname and port: a port definition that lost to an earlier federation's (1).
const METRIC_PORT_CONFLICT: &str = "d8_istio_federation_service_port_conflicts";

/// Peers validated per worker thread at least (one peer of 100 services takes ~0.3 ms).
const PEERS_PER_THREAD: usize = 16;

/// Longest Kubernetes object name (DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// One item of `istio.internal.federations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Federation {
    pub name: String,
    pub trust_domain: String,
    #[serde(rename = "clusterUUID")]
    pub cluster_uuid: String,
    #[serde(rename = "rootCA")]
    pub root_ca: String,
    pub ingress_gateways: Vec<Gateway>,
    pub public_services: Vec<PublicService>,
    pub insecure_skip_verify: bool,
    #[serde(rename = "metadataExporterCA")]
    pub metadata_exporter_ca: String,
}

/// One ServiceEntry of the merge, per hostname (grouped into the items of
/// `istio.internal.federationServiceEntries` by `group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    pub name: String,
    pub hostname: String,
    pub resolution: &'static str,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<Gateway>,
}

/// A port definition that lost to an earlier federation's definition of the same
/// (hostname, port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConflict {
    pub hostname: String,
    pub port: u16,
    pub kept_federation: String,
    pub kept_name: String,
    pub federation: String,
    pub name: String,
}

impl Hook for RenderServiceEntries {
    fn name(&self) -> &'static str {
        "render-service-entries"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: Some(10),
            // Removes this hook's own objects once Helm has applied the chart's (objects::reconcile).
            after_helm: Some(10),
            // Re-evaluates istio.alliance.staleEndpointsTTL when no CR changes.
            schedule: vec![Schedule {
                name: "staleEndpoints",
                crontab: "* * * * *",
            }],
            kubernetes: super::peer_bindings(
                &[PeerKind::Federation],
                FEDERATION_TTL_JQ_FILTER,
                Events::All,
            )
            .into_iter()
            .chain(objects::bindings())
            .collect(),
        }
    }

    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        let settings = Settings::from_values(input.values).map_err(|e| anyhow!(e))?;
        let mut out = HookOutput::default();
        let mut metrics = Metrics::new(METRIC_GROUP);
        let by_hook = settings.federation_enabled && settings.service_entries_by_hook;
        let (federations, entries) = if settings.federation_enabled {
            // By name; each peer's cached documents are read straight from the snapshot text and
            // validated on all cores, then judged (logs, metrics) one peer at a time, in order.
            let peers = super::cached_peers_by_name(input.snapshots, &[PeerKind::Federation]);
            let checked = crate::par::map(&peers, PEERS_PER_THREAD, |p| {
                p.as_ref().ok().map(|p| check_cache(p, &settings))
            })
            .ok_or_else(|| anyhow!("a worker thread panicked"))?;
            let mut federations: Vec<Federation> = Vec::with_capacity(peers.len());
            for (peer, checked) in peers.iter().zip(checked) {
                match (peer, checked) {
                    (Ok(peer), Some(checked)) => federations.extend(proper_federation(
                        peer,
                        checked,
                        &settings,
                        input.now,
                        &mut metrics,
                    )),
                    (Err(e), _) => tracing::warn!(error = %e, "skipping unreadable peer object"),
                    (Ok(_), None) => {}
                }
            }
            let (entries, conflicts) = merge_service_entries(&federations);
            for c in &conflicts {
                tracing::warn!(
                    hostname = %c.hostname, port = c.port, kept_federation = %c.kept_federation, kept_name = %c.kept_name,
                    federation = %c.federation, name = %c.name,
                    "port collision: same hostname and port number with different name/protocol across federations, keeping first definition"
                );
                let port = c.port.to_string();
                metrics.set(
                    METRIC_PORT_CONFLICT,
                    1.0,
                    &[
                        ("federation_name", &c.federation),
                        ("hostname", &c.hostname),
                        ("port", &port),
                    ],
                );
            }
            let prefix = if by_hook { objects::NAME_PREFIX } else { "" };
            (federations, group::group(entries, prefix))
        } else {
            (Vec::new(), Vec::new())
        };
        // With the objects outside the Helm release, the values carry no hostname: the chart
        // renders none of them, and addon-operator's cost per hook run grows with the values.
        let desired = if by_hook {
            let domains: BTreeSet<&str> = federations
                .iter()
                .map(|f| f.trust_domain.as_str())
                .collect();
            objects::desired(&entries, &domains)
        } else {
            Vec::new()
        };
        // Objects of ours no longer wanted because the chart renders the imports again (or
        // federation is off) go only after Helm has applied the chart's: no gap in between.
        let deletes_now = by_hook || input.snapshots.fired("afterHelm");
        out.object_ops = objects::reconcile(desired, input.snapshots, deletes_now);
        if by_hook {
            let federations: Vec<Federation> = federations
                .into_iter()
                .map(|f| Federation {
                    public_services: Vec::new(),
                    ..f
                })
                .collect();
            out.set("internal.federations", &federations);
            out.set(
                "internal.federationServiceEntries",
                Vec::<ServiceEntryGroup>::new(),
            );
        } else {
            out.set("internal.federations", &federations);
            out.set("internal.federationServiceEntries", &entries);
        }
        out.metrics = Some(metrics);
        Ok(out)
    }
}

/// The validation of a peer's cached documents, done ahead (see [`check_cache`]): `None` where
/// [`proper_federation`] stops before it would validate that document.
struct CheckedCache {
    public: Option<Result<PublicMetadata, String>>,
    private: Option<Result<Validated<FederationPrivate>, String>>,
}

/// The trust domain a federation's services must be named under, if it is usable.
fn usable_trust_domain<'p>(peer: &'p CachedPeer<'_>, settings: &Settings) -> Option<&'p str> {
    peer.spec
        .trust_domain
        .as_deref()
        .filter(|td| *td != settings.cluster_domain && validate::is_dns_name(td))
}

/// Validates the cached documents of `peer` as [`proper_federation`] would, in its order, but
/// purely (no logs, no metrics), so that peers can be checked in parallel.
fn check_cache(peer: &CachedPeer<'_>, settings: &Settings) -> CheckedCache {
    let mut out = CheckedCache {
        public: None,
        private: None,
    };
    let Some(trust_domain) = usable_trust_domain(peer, settings) else {
        return out;
    };
    let cache = &peer.status.metadata_cache;
    let Some(public) = cache.public else {
        return out;
    };
    let public = validate::public_metadata_structure_raw(public).map(|(p, _certs)| p);
    let public_ok = public.is_ok();
    out.public = Some(public);
    if public_ok {
        out.private = cache
            .private
            .map(|private| validate::federation_private_raw(private, trust_domain));
    }
    out
}

/// The federation item of `peer` when it is proper: valid public and private metadata and (with
/// a TTL) private metadata fresh enough. Logs why otherwise. A peer without gateways is kept;
/// [`merge_service_entries`] imports none of its services.
fn proper_federation(
    peer: &CachedPeer<'_>,
    checked: CheckedCache,
    settings: &Settings,
    now: DateTime<Utc>,
    metrics: &mut Metrics,
) -> Option<Federation> {
    let name = peer.name.as_str();
    let trust_domain = match peer.spec.trust_domain.as_deref() {
        Some(td) if td == settings.cluster_domain => {
            tracing::warn!(
                name,
                "skipping IstioFederation with trustDomain equals to ours"
            );
            return None;
        }
        Some(td) if validate::is_dns_name(td) => td,
        _ => {
            tracing::warn!(
                name,
                "skipping IstioFederation whose spec.trustDomain is missing or not a DNS name"
            );
            return None;
        }
    };
    let cache = &peer.status.metadata_cache;
    let Some(public) = checked.public else {
        tracing::warn!(
            name,
            "public metadata for IstioFederation wasn't fetched yet"
        );
        return None;
    };
    let public = match public {
        Ok(public) => public,
        Err(e) => {
            tracing::warn!(name, error = %e, "ignoring invalid cached public metadata");
            metrics.set(
                METRIC_INVALID_CACHE,
                1.0,
                &[("federation_name", name), ("document", "public")],
            );
            return None;
        }
    };
    let Some(private) = checked.private else {
        tracing::warn!(
            name,
            "private metadata for IstioFederation wasn't fetched yet"
        );
        return None;
    };
    let private = match private {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(name, error = %e, "ignoring invalid cached private metadata");
            metrics.set(
                METRIC_INVALID_CACHE,
                1.0,
                &[("federation_name", name), ("document", "private")],
            );
            return None;
        }
    };
    let mut dropped: BTreeMap<&'static str, u32> = BTreeMap::new();
    for d in &private.dropped {
        tracing::warn!(
            name,
            reason = d.reason,
            "dropping an item of cached private metadata: {}",
            d.detail
        );
        *dropped.entry(d.reason).or_default() += 1;
    }
    for (reason, count) in dropped {
        metrics.set(
            METRIC_DROPPED,
            f64::from(count),
            &[("federation_name", name), ("reason", reason)],
        );
    }
    let private = private.value;
    if private.ingress_gateways.is_empty() {
        // Kept (its trust and status stay), but nothing can reach its services: none imported.
        tracing::warn!(
            name,
            services = private.public_services.len(),
            "IstioFederation publishes no ingress gateways; its services are not imported"
        );
    }
    if is_stale(
        cache.private_last_fetch_timestamp.as_deref(),
        settings.stale_endpoints_ttl,
        now,
    ) {
        tracing::warn!(
            name,
            last_fetch = cache.private_last_fetch_timestamp.as_deref().unwrap_or("never"),
            ttl = %humantime::format_duration(settings.stale_endpoints_ttl),
            "withdrawing the endpoints of IstioFederation: private metadata is older than staleEndpointsTTL"
        );
        metrics.set(METRIC_WITHDRAWN, 1.0, &[("federation_name", name)]);
        return None;
    }
    Some(Federation {
        name: peer.name.clone(),
        trust_domain: trust_domain.to_owned(),
        cluster_uuid: public.cluster_uuid,
        root_ca: public.root_ca,
        ingress_gateways: private.ingress_gateways,
        public_services: private.public_services,
        insecure_skip_verify: peer.spec.metadata.insecure_skip_verify,
        metadata_exporter_ca: peer.spec.metadata.ca.clone().unwrap_or_default(),
    })
}

/// The time of the last successful private fetch: RFC 3339, or the projection's minute
/// (`YYYY-MM-DDTHH:MM`, UTC), read as the end of that minute so that endpoints are never
/// withdrawn early.
fn last_private_fetch(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let minute = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").ok()?;
    Some(minute.and_utc() + chrono::Duration::seconds(60))
}

/// With a non-zero TTL: private metadata never fetched, unreadable time, or older than the TTL.
fn is_stale(last_fetch: Option<&str>, ttl: Duration, now: DateTime<Utc>) -> bool {
    if ttl.is_zero() {
        return false;
    }
    let Some(at) = last_fetch.and_then(last_private_fetch) else {
        return true;
    };
    match chrono::Duration::from_std(ttl) {
        Ok(ttl) => now.signed_duration_since(at) > ttl,
        Err(_) => false, // a TTL beyond chrono's range is "never"
    }
}

/// The first definition of one (hostname, port) and the federations publishing it.
struct PortDef<'a> {
    name: &'a str,
    federation: &'a str,
    /// Indices of the publishing federations, ascending.
    feds: Vec<usize>,
}

/// One distinct endpoint set: its gateways sorted by (address, port), the hash suffix of its
/// name key and the resolution it implies.
struct EndpointSet {
    endpoints: Vec<Gateway>,
    key: String,
    suffix: String,
    resolution: &'static str,
}

/// Interns endpoint sets: many hostnames share the gateways of the same federations, so each
/// distinct set is built, keyed and hashed once.
#[derive(Default)]
struct EndpointSets {
    by_feds: HashMap<Vec<usize>, usize>,
    by_gateways: HashMap<Vec<Gateway>, usize>,
    sets: Vec<EndpointSet>,
}

impl EndpointSets {
    /// The id of the union of the gateways of `feds`.
    fn id(&mut self, feds: &[usize], federations: &[Federation]) -> usize {
        if let Some(id) = self.by_feds.get(feds) {
            return *id;
        }
        let union: BTreeSet<&Gateway> = feds
            .iter()
            .filter_map(|i| federations.get(*i))
            .flat_map(|f| f.ingress_gateways.iter())
            .collect();
        let endpoints: Vec<Gateway> = union.into_iter().cloned().collect();
        let next = self.sets.len();
        let id = *self.by_gateways.entry(endpoints.clone()).or_insert(next);
        if id == next {
            let key = endpoints_key(&endpoints);
            let all_ip = endpoints
                .iter()
                .all(|g| g.address.parse::<IpAddr>().is_ok());
            self.sets.push(EndpointSet {
                suffix: names::safe_encode(names::fnv32a(key.as_bytes())),
                key,
                endpoints,
                resolution: if all_ip { "STATIC" } else { "DNS" },
            });
        }
        self.by_feds.insert(feds.to_vec(), id);
        id
    }
}

/// Merges the public services of `federations` (in order) into ServiceEntries (SPEC §7.1):
/// the first definition of (hostname, port) wins, its endpoints are the union of the gateways
/// of every federation publishing it, and ports of a hostname with identical endpoint sets share
/// one entry. Output sorted by hostname, then first port; names are unique.
pub fn merge_service_entries(federations: &[Federation]) -> (Vec<ServiceEntry>, Vec<PortConflict>) {
    // Per hostname its ports, kept sorted by number (a handful each: a sorted vector is the
    // cheapest map).
    let mut hosts: BTreeMap<&str, Vec<(u16, PortDef<'_>)>> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (index, fed) in federations.iter().enumerate() {
        // A federation without gateways imports nothing and claims no (hostname, port).
        if fed.ingress_gateways.is_empty() {
            continue;
        }
        for svc in &fed.public_services {
            let ports = hosts.entry(svc.hostname.as_str()).or_default();
            for p in &svc.ports {
                let at = match ports.binary_search_by_key(&p.port, |(port, _)| *port) {
                    Ok(at) => at,
                    Err(at) => {
                        let def = PortDef {
                            name: p.name.as_str(),
                            federation: fed.name.as_str(),
                            feds: Vec::new(),
                        };
                        ports.insert(at, (p.port, def));
                        at
                    }
                };
                let Some((_, def)) = ports.get_mut(at) else {
                    continue;
                };
                if def.name != p.name {
                    conflicts.push(PortConflict {
                        hostname: svc.hostname.clone(),
                        port: p.port,
                        kept_federation: def.federation.to_owned(),
                        kept_name: def.name.to_owned(),
                        federation: fed.name.clone(),
                        name: p.name.clone(),
                    });
                }
                if def.feds.last() != Some(&index) {
                    def.feds.push(index);
                }
            }
        }
    }
    let mut sets = EndpointSets::default();
    let mut entries: Vec<(ServiceEntry, usize)> = Vec::new();
    for (hostname, ports) in hosts {
        // Ports grouped by endpoint set; BTreeMap keeps the grouping deterministic.
        let mut groups: BTreeMap<usize, Vec<ServicePort>> = BTreeMap::new();
        for (port, def) in &ports {
            groups
                .entry(sets.id(&def.feds, federations))
                .or_default()
                .push(ServicePort {
                    name: def.name.to_owned(),
                    port: *port,
                    protocol: Some(port_protocol(def.name).to_owned()),
                });
        }
        for (id, ports) in groups {
            let Some(set) = sets.sets.get(id) else {
                continue;
            };
            let entry = ServiceEntry {
                name: String::new(),
                hostname: hostname.to_owned(),
                resolution: set.resolution,
                ports,
                endpoints: set.endpoints.clone(),
            };
            entries.push((entry, id));
        }
    }
    entries.sort_by(|(a, _), (b, _)| {
        (&a.hostname, a.ports.first().map(|p| p.port))
            .cmp(&(&b.hostname, b.ports.first().map(|p| p.port)))
    });
    assign_names(&mut entries, &sets.sets);
    (entries.into_iter().map(|(e, _)| e).collect(), conflicts)
}

/// `addr1:port1,addr2:port2,…` over the (sorted) endpoints: what the name hash covers.
fn endpoints_key(endpoints: &[Gateway]) -> String {
    endpoints
        .iter()
        .map(|g| format!("{}:{}", g.address, g.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// `<hostname with . → ->-<suffix>`, the hostname part shortened (and made unique by a hash of
/// the hostname) when the whole would exceed 253 characters.
fn entry_name(hostname: &str, suffix: &str) -> String {
    if hostname.len() + 1 + suffix.len() <= MAX_NAME {
        let mut name = String::with_capacity(hostname.len() + 1 + suffix.len());
        name.extend(hostname.chars().map(|c| if c == '.' { '-' } else { c }));
        name.push('-');
        name.push_str(suffix);
        return name;
    }
    let base = hostname.replace('.', "-");
    let host_hash = names::safe_encode(names::fnv32a(hostname.as_bytes()));
    let keep = MAX_NAME.saturating_sub(2 + suffix.len() + host_hash.len());
    let cut: String = base.chars().take(keep).collect();
    format!("{}-{host_hash}-{suffix}", cut.trim_end_matches('-'))
}

/// Names every entry `<hostname with . → ->-<safe_encode(fnv32a(endpoints key))>`. Hostnames
/// differing only in `.` vs `-` (`a-b.ns…` and `a.b-ns…`) would share a name: the later entry
/// (in output order) then hashes its hostname into the suffix.
fn assign_names(entries: &mut [(ServiceEntry, usize)], sets: &[EndpointSet]) {
    let mut used: HashSet<String> = HashSet::with_capacity(entries.len());
    for (e, id) in entries.iter_mut() {
        let Some(set) = sets.get(*id) else { continue };
        let mut name = entry_name(&e.hostname, &set.suffix);
        let mut attempt = 0u32;
        while used.contains(&name) {
            let key = format!("{}#{attempt}|{}", e.hostname, set.key);
            name = entry_name(
                &e.hostname,
                &names::safe_encode(names::fnv32a(key.as_bytes())),
            );
            attempt += 1;
        }
        used.insert(name.clone());
        e.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(address: &str, port: u16) -> Gateway {
        Gateway {
            address: address.to_owned(),
            port,
        }
    }

    fn svc(hostname: &str, ports: &[(&str, u16)]) -> PublicService {
        PublicService {
            hostname: hostname.to_owned(),
            ports: ports
                .iter()
                .map(|(n, p)| ServicePort {
                    name: (*n).to_owned(),
                    port: *p,
                    protocol: Some(port_protocol(n).to_owned()),
                })
                .collect(),
        }
    }

    fn fed(name: &str, gateways: Vec<Gateway>, services: Vec<PublicService>) -> Federation {
        Federation {
            name: name.to_owned(),
            trust_domain: "cluster-b.local".to_owned(),
            cluster_uuid: format!("uuid-{name}"),
            root_ca: String::new(),
            ingress_gateways: gateways,
            public_services: services,
            insecure_skip_verify: false,
            metadata_exporter_ca: String::new(),
        }
    }

    fn ports(e: &ServiceEntry) -> Vec<u16> {
        e.ports.iter().map(|p| p.port).collect()
    }

    #[test]
    fn single_federation_one_entry_per_hostname() {
        let f = fed(
            "b",
            vec![gw("10.0.0.2", 15443), gw("10.0.0.1", 15443)],
            vec![svc(
                "bar.xyz.svc.cluster-b.local",
                &[("http", 8080), ("grpc-api", 9090)],
            )],
        );
        let (entries, conflicts) = merge_service_entries(&[f]);
        assert!(conflicts.is_empty());
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.hostname, "bar.xyz.svc.cluster-b.local");
        assert_eq!(e.resolution, "STATIC");
        assert_eq!(ports(e), [8080, 9090]);
        assert_eq!(e.ports[1].protocol.as_deref(), Some("HTTP2"));
        assert_eq!(e.endpoints, [gw("10.0.0.1", 15443), gw("10.0.0.2", 15443)]);
        let hash = names::safe_encode(names::fnv32a(b"10.0.0.1:15443,10.0.0.2:15443"));
        assert_eq!(e.name, format!("bar-xyz-svc-cluster-b-local-{hash}"));
    }

    #[test]
    fn same_hostname_same_ports_merges_endpoints() {
        let s = svc("bar.xyz.svc.cluster-b.local", &[("http", 8080)]);
        let a = fed("a", vec![gw("1.1.1.1", 15443)], vec![s.clone()]);
        let b = fed("b", vec![gw("2.2.2.2", 15443)], vec![s]);
        let (entries, conflicts) = merge_service_entries(&[a, b]);
        assert!(conflicts.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].endpoints,
            [gw("1.1.1.1", 15443), gw("2.2.2.2", 15443)]
        );
    }

    #[test]
    fn same_hostname_different_ports_split_by_endpoint_set() {
        let a = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![svc(
                "bar.xyz.svc.cluster-b.local",
                &[("http", 8080), ("tcp-db", 5432)],
            )],
        );
        let b = fed(
            "b",
            vec![gw("2.2.2.2", 15443)],
            vec![svc(
                "bar.xyz.svc.cluster-b.local",
                &[("http", 8080), ("https", 8443)],
            )],
        );
        let (entries, _) = merge_service_entries(&[a, b]);
        // 5432: {a}; 8080: {a, b}; 8443: {b} → three endpoint sets, sorted by first port.
        assert_eq!(
            entries.iter().map(ports).collect::<Vec<_>>(),
            [vec![5432], vec![8080], vec![8443]]
        );
        assert_eq!(entries[1].endpoints.len(), 2);
        assert_eq!(entries[2].ports[0].protocol.as_deref(), Some("TLS"));
        let names: HashSet<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn grouping_is_by_gateway_set_not_by_federation_set() {
        // a and b advertise the same gateway: 80 (a only) and 81 (a and b) share one endpoint set.
        let a = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![svc("x.y.svc.cluster-b.local", &[("http", 80), ("tcp", 81)])],
        );
        let b = fed(
            "b",
            vec![gw("1.1.1.1", 15443)],
            vec![svc("x.y.svc.cluster-b.local", &[("tcp", 81)])],
        );
        let (entries, _) = merge_service_entries(&[a, b]);
        assert_eq!(entries.len(), 1);
        assert_eq!(ports(&entries[0]), [80, 81]);
        assert_eq!(entries[0].endpoints, [gw("1.1.1.1", 15443)]);
    }

    #[test]
    fn merge_is_deterministic_and_independent_of_service_order() {
        let s1 = svc("p.q.svc.cluster-b.local", &[("http", 80)]);
        let s2 = svc("a.q.svc.cluster-b.local", &[("http", 80)]);
        let a = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![s1.clone(), s2.clone()],
        );
        let a_rev = fed("a", vec![gw("1.1.1.1", 15443)], vec![s2, s1]);
        assert_eq!(
            merge_service_entries(&[a]).0,
            merge_service_entries(&[a_rev]).0
        );
        assert_eq!(merge_service_entries(&[]), (vec![], vec![]));
    }

    #[test]
    fn first_definition_wins_on_conflict() {
        let a = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![svc("bar.xyz.svc.cluster-b.local", &[("http", 8080)])],
        );
        let b = fed(
            "b",
            vec![gw("2.2.2.2", 15443)],
            vec![svc("bar.xyz.svc.cluster-b.local", &[("tcp-x", 8080)])],
        );
        let (entries, conflicts) = merge_service_entries(&[a, b]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].ports[0].name, "http");
        assert_eq!(entries[0].ports[0].protocol.as_deref(), Some("HTTP"));
        assert_eq!(entries[0].endpoints.len(), 2);
        assert_eq!(
            conflicts,
            [PortConflict {
                hostname: "bar.xyz.svc.cluster-b.local".into(),
                port: 8080,
                kept_federation: "a".into(),
                kept_name: "http".into(),
                federation: "b".into(),
                name: "tcp-x".into(),
            }]
        );
    }

    #[test]
    fn dns_gateways_resolve_by_dns() {
        let f = fed(
            "a",
            vec![gw("gw.b.example.com", 15443), gw("1.1.1.1", 15443)],
            vec![svc("x.y.svc.cluster-b.local", &[("tcp", 1)])],
        );
        let (entries, _) = merge_service_entries(&[f]);
        assert_eq!(entries[0].resolution, "DNS");
        let v6 = fed(
            "a",
            vec![gw("2001:db8::1", 15443)],
            vec![svc("x.y.svc.cluster-b.local", &[("tcp", 1)])],
        );
        assert_eq!(merge_service_entries(&[v6]).0[0].resolution, "STATIC");
    }

    #[test]
    fn sorted_by_hostname_then_port_and_names_unique() {
        let f = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![
                svc("z.ns.svc.cluster-b.local", &[("tcp", 1)]),
                svc("a-b.ns.svc.cluster-b.local", &[("tcp", 1)]),
                svc("a.b-ns.svc.cluster-b.local", &[("tcp", 1)]),
            ],
        );
        let (entries, _) = merge_service_entries(&[f]);
        let hosts: Vec<_> = entries.iter().map(|e| e.hostname.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "a-b.ns.svc.cluster-b.local",
                "a.b-ns.svc.cluster-b.local",
                "z.ns.svc.cluster-b.local"
            ]
        );
        assert_ne!(entries[0].name, entries[1].name);
        assert!(entries[0].name.starts_with("a-b-ns-svc-cluster-b-local-"));
        assert!(entries[1].name.starts_with("a-b-ns-svc-cluster-b-local-"));
    }

    #[test]
    fn long_names_stay_valid() {
        let label = "a".repeat(63);
        let host = format!("{label}.{label}.{label}.svc.cluster-b.local");
        assert!(validate::is_dns_name(&host));
        let f = fed(
            "a",
            vec![gw("1.1.1.1", 15443)],
            vec![svc(&host, &[("tcp", 1)])],
        );
        let name = &merge_service_entries(&[f]).0[0].name;
        assert!(name.len() <= MAX_NAME, "{}", name.len());
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert!(!name.ends_with('-') && !name.starts_with('-'));
    }

    #[test]
    fn ttl() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let hour = Duration::from_secs(3600);
        assert!(!is_stale(None, Duration::ZERO, now));
        assert!(is_stale(None, hour, now));
        assert!(is_stale(Some("garbage"), hour, now));
        assert!(!is_stale(Some("2026-11-22T00:30:00Z"), hour, now));
        assert!(is_stale(Some("2026-11-21T23:59:59Z"), hour, now));
        // Minute precision from the projection counts as the end of that minute.
        assert!(!is_stale(Some("2026-11-21T23:59"), hour, now));
        assert!(is_stale(Some("2026-11-21T23:58"), hour, now));
    }
}
