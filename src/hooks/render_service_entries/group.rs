//! Grouping of merged ServiceEntries for scale (SPEC §7.1, "Grouping"): hostnames of one trust
//! domain whose ports, resolution and endpoint set are identical share one item with `hosts`.
//!
//! One ServiceEntry per hostname cannot carry 100,000 imported hostnames: the Helm release that
//! addon-operator stores is limited to 1 MiB, and istiod holds one config object per entry.
//! Here a group is keyed by (trust domain, resolution, ports, endpoints) and split into `n`
//! buckets by a hash of each hostname, about [`TARGET_HOSTS`] per bucket and never more than
//! Istio's limit of [`MAX_HOSTS`] hosts per ServiceEntry. A hostname's bucket depends only on
//! itself and the bucket count, so adding or removing a service rewrites one object and leaves
//! every other name and content alone; the names change only when a group's bucket count does
//! (every ~224 hostnames added or removed).
//!
//! The meaning is the one of the ungrouped list: every (hostname, port) is in exactly one item
//! (the merge gave each hostname's ports to one entry per endpoint set, and a hostname's entries
//! differ in ports), with the same ports, resolution and endpoints.

use super::{ServiceEntry, MAX_NAME};
use crate::domain::metadata::{Gateway, ServicePort};
use crate::domain::names;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Most hostnames one ServiceEntry may list: Istio's CRD schema (`spec.hosts`, `maxItems: 256`),
/// enforced by the apiserver. A ServiceEntry of 256 hostnames is ~15 KB.
pub const MAX_HOSTS: usize = 256;

/// Hostnames per bucket aimed at when a group is split (headroom under [`MAX_HOSTS`] for the
/// hash's spread): 1,000 hostnames of one peer are 5 objects. Fewer, larger objects matter when
/// the hook applies them (`objects`): each is a request through addon-operator's object patcher.
const TARGET_HOSTS: usize = 224;

/// One item of `istio.internal.federationServiceEntries` in its grouped form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEntryGroup {
    pub name: String,
    pub hosts: Vec<String>,
    pub resolution: &'static str,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<Gateway>,
}

/// What hostnames must share to share an item.
type Key<'a> = (&'a str, &'static str, &'a [ServicePort], &'a [Gateway]);

/// The trust domain part of `<name>.<namespace>.svc.<domain>` (the whole hostname when it has
/// no `.svc.`; only names and groups depend on it, never what is routed).
fn domain(hostname: &str) -> &str {
    hostname
        .rfind(".svc.")
        .map_or(hostname, |i| &hostname[i + 5..])
}

/// The grouped items of `entries` (the output of the merge), sorted by name; every name starts
/// with `prefix` (empty for the chart's items).
pub fn group(entries: Vec<ServiceEntry>, prefix: &str) -> Vec<ServiceEntryGroup> {
    let mut groups: BTreeMap<Key<'_>, Vec<&str>> = BTreeMap::new();
    for e in &entries {
        groups
            .entry((
                domain(&e.hostname),
                e.resolution,
                e.ports.as_slice(),
                e.endpoints.as_slice(),
            ))
            .or_default()
            .push(e.hostname.as_str());
    }
    let mut out = Vec::new();
    let mut used: HashSet<String> = HashSet::new();
    for ((domain, resolution, ports, endpoints), hosts) in groups {
        let split = split(&hosts);
        let buckets = split.len();
        let suffix = names::safe_encode(names::fnv32a(
            key_text(resolution, ports, endpoints).as_bytes(),
        ));
        for (b, mut hosts) in split.into_iter().enumerate() {
            if hosts.is_empty() {
                continue;
            }
            hosts.sort_unstable();
            let bucket = (buckets > 1).then(|| format!("{b}-of-{buckets}"));
            let mut name = group_name(prefix, domain, &suffix, bucket.as_deref(), 0);
            let mut attempt = 1;
            while used.contains(&name) {
                name = group_name(prefix, domain, &suffix, bucket.as_deref(), attempt);
                attempt += 1;
            }
            used.insert(name.clone());
            out.push(ServiceEntryGroup {
                name,
                hosts,
                resolution,
                ports: ports.to_vec(),
                endpoints: endpoints.to_vec(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `hosts` in `n` buckets by fnv32a(hostname) mod `n`: `n` the bucket count for
/// [`TARGET_HOSTS`] per bucket, raised until no bucket holds more than [`MAX_HOSTS`]. A
/// hostname's bucket depends only on itself and `n`.
fn split(hosts: &[&str]) -> Vec<Vec<String>> {
    let hashes: Vec<u32> = hosts.iter().map(|h| names::fnv32a(h.as_bytes())).collect();
    let mut n = hosts.len().div_ceil(TARGET_HOSTS).max(1);
    loop {
        let mut counts = vec![0usize; n];
        for h in &hashes {
            counts[*h as usize % n] += 1;
        }
        if counts.iter().all(|c| *c <= MAX_HOSTS) {
            let mut out: Vec<Vec<String>> = counts.iter().map(|c| Vec::with_capacity(*c)).collect();
            for (h, hash) in hosts.iter().zip(&hashes) {
                out[*hash as usize % n].push((*h).to_owned());
            }
            return out;
        }
        n += 1;
    }
}

/// `resolution|name:port:protocol,…|address:port,…`: what the name hash covers.
fn key_text(resolution: &str, ports: &[ServicePort], endpoints: &[Gateway]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}",
                p.name,
                p.port,
                p.protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|g| format!("{}:{}", g.address, g.port))
        .collect();
    format!("{resolution}|{}|{}", ports.join(","), endpoints.join(","))
}

/// `<prefix><domain with . → ->-<suffix>[-<bucket>-of-<buckets>][-<attempt>]`, the domain part
/// cut so that the whole stays a valid object name of at most 253 characters.
fn group_name(
    prefix: &str,
    domain: &str,
    suffix: &str,
    bucket: Option<&str>,
    attempt: u32,
) -> String {
    let mut tail = format!("-{suffix}");
    if let Some(b) = bucket {
        tail.push('-');
        tail.push_str(b);
    }
    if attempt > 0 {
        tail.push_str(&format!("-{attempt}"));
    }
    let base = domain.replace('.', "-");
    let keep = MAX_NAME.saturating_sub(prefix.len() + tail.len());
    let cut: String = base.chars().take(keep).collect();
    format!("{prefix}{}{tail}", cut.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hostname: &str, ports: &[(&str, u16)], gws: &[&str]) -> ServiceEntry {
        ServiceEntry {
            name: String::new(),
            hostname: hostname.to_owned(),
            resolution: "STATIC",
            ports: ports
                .iter()
                .map(|(n, p)| ServicePort {
                    name: (*n).to_owned(),
                    port: *p,
                    protocol: Some("HTTP".to_owned()),
                })
                .collect(),
            endpoints: gws
                .iter()
                .map(|a| Gateway {
                    address: (*a).to_owned(),
                    port: 15443,
                })
                .collect(),
        }
    }

    /// Every (hostname, port) of the input in exactly one group, with its endpoints.
    fn pairs(groups: &[ServiceEntryGroup]) -> Vec<(String, u16, Vec<Gateway>)> {
        let mut v: Vec<_> = groups
            .iter()
            .flat_map(|g| {
                g.hosts.iter().flat_map(move |h| {
                    g.ports
                        .iter()
                        .map(move |p| (h.clone(), p.port, g.endpoints.clone()))
                })
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn same_ports_and_endpoints_share_one_item_per_domain() {
        let g = group(
            vec![
                entry("a.x.svc.b.local", &[("http", 80)], &["10.0.0.1"]),
                entry("c.x.svc.b.local", &[("http", 80)], &["10.0.0.1"]),
                entry("c.x.svc.b.local", &[("tcp", 81)], &["10.0.0.1", "10.0.0.2"]),
                entry("d.x.svc.c.local", &[("http", 80)], &["10.0.0.1"]),
            ],
            "",
        );
        assert_eq!(g.len(), 3, "{g:#?}");
        let ab = g.iter().find(|i| i.hosts.len() == 2).unwrap();
        assert_eq!(ab.hosts, ["a.x.svc.b.local", "c.x.svc.b.local"]);
        assert!(ab.name.starts_with("b-local-"), "{}", ab.name);
        assert_eq!(
            pairs(&g).len(),
            4,
            "every (hostname, port) exactly once: {g:#?}"
        );
    }

    #[test]
    fn large_groups_split_by_hostname_hash_and_names_stay_when_one_service_changes() {
        let hosts: Vec<String> = (0..5000).map(|i| format!("s{i}.n.svc.b.local")).collect();
        let before = group(
            hosts
                .iter()
                .map(|h| entry(h, &[("http", 80)], &["10.0.0.1"]))
                .collect(),
            "",
        );
        assert!(
            (23..=26).contains(&before.len()),
            "5000 hosts, about 224 per bucket: {}",
            before.len()
        );
        assert!(before.iter().all(|g| g.name.len() <= MAX_NAME));
        assert!(
            before.iter().all(|g| g.hosts.len() <= MAX_HOSTS),
            "Istio's limit of 256 hosts per ServiceEntry"
        );
        let mut more = hosts.clone();
        more.push("new.n.svc.b.local".to_owned());
        assert_eq!(
            5001usize.div_ceil(TARGET_HOSTS),
            5000usize.div_ceil(TARGET_HOSTS)
        );
        let after = group(
            more.iter()
                .map(|h| entry(h, &[("http", 80)], &["10.0.0.1"]))
                .collect(),
            "",
        );
        let changed: Vec<_> = after.iter().filter(|g| !before.contains(g)).collect();
        assert_eq!(changed.len(), 1, "one service added rewrites one object");
        let names = |v: &[ServiceEntryGroup]| v.iter().map(|g| g.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&before), names(&after));
        assert_eq!(pairs(&after).len(), 5001);
    }

    #[test]
    fn long_domains_give_valid_unique_names() {
        let d = format!("{}.local", "a".repeat(60));
        let d = format!("{d}.{d}.{d}");
        for prefix in ["", super::super::objects::NAME_PREFIX] {
            let g = group(
                vec![
                    entry(&format!("x.n.svc.{d}"), &[("http", 80)], &["10.0.0.1"]),
                    entry(&format!("y.n.svc.{d}"), &[("http", 81)], &["10.0.0.1"]),
                ],
                prefix,
            );
            assert_eq!(g.len(), 2);
            assert_ne!(g[0].name, g[1].name);
            for i in &g {
                assert!(i.name.len() <= MAX_NAME, "{}", i.name);
                assert!(i.name.starts_with(prefix), "{}", i.name);
            }
        }
    }
}
