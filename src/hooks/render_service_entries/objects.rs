//! The imported ServiceEntries and DestinationRules as objects of this hook, outside the Helm
//! release (`istio.federation.serviceEntriesManagedBy: Hook`).
//!
//! The Helm release that addon-operator stores is limited to 1 MiB, and every imported hostname
//! is in it up to three times (values twice, the manifest once): about 50,000 imported hostnames
//! fit. In this mode the values carry no hostname at all; the hook applies the grouped objects
//! itself and keeps them as a controller does: it watches the objects it owns (label
//! [`OWNER_LABEL`]), writes only those whose labels or spec differ from what they should be,
//! and deletes the ones no longer wanted (also all of them when the mode or federation is
//! switched off). Names carry [`NAME_PREFIX`], so that they never meet the Helm-rendered objects
//! of the other mode: on a switch, Helm deletes its own objects while the hook creates its own.
//!
//! The objects mean what the chart renders (SPEC §7.1 and its grouping clause): one
//! ServiceEntry per group (same hosts, ports, resolution and endpoints) and one `ISTIO_MUTUAL`
//! DestinationRule per federated trust domain (`*.svc.<trustDomain>`).

use super::ServiceEntryGroup;
use crate::runtime::config::{Events, Kubernetes};
use crate::runtime::{ObjectOp, Snapshots};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Served by every Istio release Deckhouse runs (v1 only from Istio 1.22).
pub const API_VERSION: &str = "networking.istio.io/v1beta1";
pub const NAMESPACE: &str = "d8-istio";
/// The label that marks an object as this hook's own.
pub const OWNER_LABEL: &str = "istio-hooks.deckhouse.io/imported";
const OWNER_VALUE: &str = "federation";
/// Prefix of every name in this mode (never a name the chart renders).
pub const NAME_PREFIX: &str = "imported-";

const SERVICE_ENTRIES: &str = "importedServiceEntries";
const DESTINATION_RULES: &str = "importedDestinationRules";
const KINDS: [(&str, &str); 2] = [
    (SERVICE_ENTRIES, "ServiceEntry"),
    (DESTINATION_RULES, "DestinationRule"),
];

/// What the hook compares of an owned object.
const OWNED_JQ_FILTER: &str =
    "{metadata: {name: .metadata.name, labels: .metadata.labels}, spec: .spec}";

/// Bindings on the objects this hook owns (every event: a deleted or edited object is restored).
pub fn bindings() -> Vec<Kubernetes> {
    KINDS
        .iter()
        .map(|(binding, kind)| Kubernetes {
            name: binding,
            api_version: API_VERSION,
            kind,
            namespace: Some(NAMESPACE),
            name_selector: None,
            match_labels: &[(OWNER_LABEL, OWNER_VALUE)],
            jq_filter: OWNED_JQ_FILTER,
            events: Events::All,
            on_synchronization: true,
        })
        .collect()
}

fn labels() -> Value {
    json!({"heritage": "deckhouse", "module": "istio", OWNER_LABEL: OWNER_VALUE})
}

fn object(kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels()},
        "spec": spec,
    })
}

/// `imported-federation-<trust domain with . → -, at most 200 chars>-<adler32 of it>`.
fn destination_rule_name(trust_domain: &str) -> String {
    let dashed: String = trust_domain.replace('.', "-").chars().take(200).collect();
    format!(
        "{NAME_PREFIX}federation-{}-{}",
        dashed.trim_end_matches('-'),
        adler2::adler32_slice(trust_domain.as_bytes())
    )
}

/// The objects that should exist: a ServiceEntry per group (named by the group, which carries
/// [`NAME_PREFIX`]) and, when anything is imported, a DestinationRule per trust domain.
pub fn desired(groups: &[ServiceEntryGroup], trust_domains: &BTreeSet<&str>) -> Vec<Value> {
    let mut out = Vec::with_capacity(groups.len() + trust_domains.len());
    for g in groups {
        let endpoints: Vec<Value> = g
            .endpoints
            .iter()
            .map(|e| {
                let ports: serde_json::Map<String, Value> = g
                    .ports
                    .iter()
                    .map(|p| (p.name.clone(), json!(e.port)))
                    .collect();
                json!({"address": e.address, "ports": ports})
            })
            .collect();
        let ports: Vec<Value> = g
            .ports
            .iter()
            .map(|p| json!({"name": p.name, "number": p.port, "protocol": p.protocol}))
            .collect();
        out.push(object(
            "ServiceEntry",
            &g.name,
            json!({
                "hosts": g.hosts,
                "location": "MESH_INTERNAL",
                "resolution": g.resolution,
                "ports": ports,
                "endpoints": endpoints,
            }),
        ));
    }
    if !groups.is_empty() {
        for td in trust_domains {
            out.push(object(
                "DestinationRule",
                &destination_rule_name(td),
                json!({"host": format!("*.svc.{td}"), "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ));
        }
    }
    out
}

#[derive(Deserialize)]
struct OwnedMeta {
    name: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Owned {
    metadata: OwnedMeta,
    #[serde(default)]
    spec: Value,
}

/// The operations that turn the owned objects of `snapshots` into `desired`, one request each
/// through addon-operator's object patcher where it can: a wanted object the snapshot lacks is
/// created unless it exists (the snapshot may lag behind objects created by the previous run;
/// when one does exist, its event runs the hook again and it is compared then); one that differs
/// (in its spec or in one of our labels) or cannot be read is replaced whole; then each owned
/// object no longer wanted is deleted in the background. Unchanged objects cost nothing.
/// Without `deletes`, unwanted objects stay (for a later run).
pub fn reconcile(desired: Vec<Value>, snapshots: &Snapshots, deletes: bool) -> Vec<ObjectOp> {
    // None: an owned object whose name is readable but not the rest.
    let mut observed: BTreeMap<(&str, String), Option<Owned>> = BTreeMap::new();
    for (binding, kind) in KINDS {
        for item in snapshots.get_raw(binding) {
            match serde_json::from_str::<Owned>(item.get()) {
                Ok(o) => {
                    observed.insert((kind, o.metadata.name.clone()), Some(o));
                }
                Err(e) => {
                    tracing::warn!(kind, error = %e, "replacing an unreadable owned object");
                    if let Some(name) = crate::hooks::object_name(item) {
                        observed.insert((kind, name), None);
                    }
                }
            }
        }
    }
    let want_labels = labels();
    let ours = |have: &Owned| {
        want_labels.as_object().is_some_and(|want| {
            want.iter().all(|(k, v)| {
                have.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .is_some_and(|have| v.as_str() == Some(have.as_str()))
            })
        })
    };
    let mut ops = Vec::new();
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for obj in desired {
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match observed.get(&(kind.as_str(), name.clone())) {
            None => ops.push(ObjectOp::CreateIfNotExists { object: obj }),
            Some(Some(have)) if have.spec == obj["spec"] && ours(have) => {}
            Some(_) => ops.push(ObjectOp::CreateOrUpdate { object: obj }),
        }
        wanted.insert((kind, name));
    }
    for (kind, name) in observed.keys().filter(|_| deletes) {
        if !wanted.contains(&((*kind).to_owned(), name.clone())) {
            ops.push(ObjectOp::DeleteInBackground {
                api_version: API_VERSION.to_owned(),
                kind: (*kind).to_owned(),
                namespace: NAMESPACE.to_owned(),
                name: name.clone(),
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_rule_names_are_valid_and_distinct_from_the_charts() {
        let n = destination_rule_name("cluster-b.local");
        assert!(n.starts_with("imported-federation-cluster-b-local-"), "{n}");
        let long = format!("{}.local", "a.".repeat(120));
        let n = destination_rule_name(&long);
        assert!(n.len() <= 253, "{}", n.len());
        assert!(!n.contains("--"), "{n}");
    }

    fn snapshots(items: &[Value]) -> Snapshots {
        let raw = items
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).unwrap())
            .collect();
        Snapshots::from_raw([(SERVICE_ENTRIES.to_owned(), raw)].into_iter().collect())
    }

    fn entry(name: &str) -> Value {
        object("ServiceEntry", name, json!({"hosts": ["a.n.svc.b.local"]}))
    }

    fn observed(name: &str, labels: Value, spec: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": spec})
    }

    fn ops(desired: Vec<Value>, seen: &[Value], deletes: bool) -> Vec<(String, String)> {
        reconcile(desired, &snapshots(seen), deletes)
            .iter()
            .map(|op| {
                let kind = serde_json::to_value(op).unwrap()["operation"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (kind, op.name().to_owned())
            })
            .collect()
    }

    #[test]
    fn unchanged_missing_drifted_unreadable_and_unwanted_objects() {
        let spec = entry("x")["spec"].clone();
        let same = observed("imported-same", labels(), spec.clone());
        let relabelled = observed(
            "imported-relabelled",
            json!({"heritage": "deckhouse"}),
            spec.clone(),
        );
        let edited = observed("imported-edited", labels(), json!({"hosts": []}));
        let unreadable = json!({"metadata": {"name": "imported-unreadable", "labels": 7}});
        let stale = observed("imported-stale", labels(), spec);
        let desired = [
            "imported-same",
            "imported-missing",
            "imported-relabelled",
            "imported-edited",
            "imported-unreadable",
        ]
        .map(entry)
        .to_vec();
        let seen = [same, relabelled, edited, unreadable, stale];
        let op = |k: &str, n: &str| (k.to_owned(), n.to_owned());
        assert_eq!(
            ops(desired.clone(), &seen, true),
            [
                op("CreateIfNotExists", "imported-missing"),
                op("CreateOrUpdate", "imported-relabelled"),
                op("CreateOrUpdate", "imported-edited"),
                op("CreateOrUpdate", "imported-unreadable"),
                op("DeleteInBackground", "imported-stale"),
            ]
        );
        assert!(
            !ops(desired, &seen, false)
                .iter()
                .any(|(k, _)| k == "DeleteInBackground"),
            "without deletes, unwanted objects stay"
        );
    }
}
