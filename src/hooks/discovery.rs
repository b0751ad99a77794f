//! `discovery`: what this cluster publishes (SPEC §4) — the Ed25519 keypair peers verify our
//! tokens with, the local root CA, ingress-gateway addresses, public services and the derived
//! multicluster identity — as `istio.internal.remoteAuthnKeypair` and
//! `istio.internal.localMetadata`.

use crate::domain::metadata::{
    AuthnKeypair, FederationPrivate, Gateway, LocalMetadata, MulticlusterPrivate, PublicMetadata,
    PublicService, ServicePort,
};
use crate::domain::settings::Settings;
use crate::domain::{names, pki};
use crate::runtime::config::{Events, HookConfig, Kubernetes};
use crate::runtime::{Hook, HookInput, HookOutput, Snapshots};
use anyhow::anyhow;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub struct Discovery;

const NS: &str = "d8-istio";
const GATEWAY_LABELS: &[(&str, &str)] = &[("app", "ingressgateway")];
const PUBLIC_SERVICE_LABEL: &[(&str, &str)] =
    &[("federation.istio.deckhouse.io/public-service", "")];

fn binding(name: &'static str, kind: &'static str, jq_filter: &'static str) -> Kubernetes {
    Kubernetes {
        name,
        api_version: "v1",
        kind,
        namespace: Some(NS),
        name_selector: None,
        match_labels: &[],
        jq_filter,
        events: Events::All,
        on_synchronization: true,
    }
}

impl Hook for Discovery {
    fn name(&self) -> &'static str {
        "discovery"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: Some(5),
            after_helm: None,
            schedule: vec![],
            kubernetes: vec![
                Kubernetes {
                    name_selector: Some("d8-remote-authn-keypair"),
                    ..binding("keypair", "Secret", "{metadata: {name: .metadata.name}, data: {\"pub.pem\": .data[\"pub.pem\"], \"priv.pem\": .data[\"priv.pem\"]}}")
                },
                Kubernetes {
                    name_selector: Some("istio-ca-root-cert"),
                    ..binding("rootCA", "ConfigMap", "{metadata: {name: .metadata.name}, data: {\"root-cert.pem\": .data[\"root-cert.pem\"]}}")
                },
                Kubernetes {
                    match_labels: GATEWAY_LABELS,
                    ..binding("gatewayServices", "Service", "{metadata: {name: .metadata.name, namespace: .metadata.namespace}, spec: {type: .spec.type, ports: [(.spec.ports // [])[] | {name, port, nodePort}]}, status: {loadBalancer: {ingress: [(.status.loadBalancer.ingress // [])[] | {ip, hostname}]}}}")
                },
                Kubernetes {
                    match_labels: GATEWAY_LABELS,
                    ..binding("gatewayPods", "Pod", "{metadata: {name: .metadata.name, namespace: .metadata.namespace}, spec: {nodeName: .spec.nodeName}, status: {phase: .status.phase}}")
                },
                Kubernetes {
                    namespace: None,
                    ..binding("nodes", "Node", "{metadata: {name: .metadata.name}, spec: {unschedulable: (.spec.unschedulable // false), taints: [(.spec.taints // [])[] | {key, effect}]}, status: {conditions: [(.status.conditions // [])[] | select(.type == \"Ready\") | {type, status}], addresses: [(.status.addresses // [])[] | {type, address}]}}")
                },
                Kubernetes {
                    namespace: None,
                    match_labels: PUBLIC_SERVICE_LABEL,
                    ..binding("publicServices", "Service", "{metadata: {name: .metadata.name, namespace: .metadata.namespace}, spec: {type: .spec.type, ports: [(.spec.ports // [])[] | {name, port}]}}")
                },
            ],
        }
    }

    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        let settings = Settings::from_values(input.values).map_err(|e| anyhow!(e))?;
        let mut out = HookOutput::default();
        let keypair = keypair(input.snapshots, settings.keypair.as_ref())?;
        out.set("internal.remoteAuthnKeypair", &keypair);
        if !settings.alliance_enabled() {
            out.set("internal.localMetadata", serde_json::json!({}));
            return Ok(out);
        }
        settings.require_identity().map_err(|e| anyhow!(e))?;
        let root_ca = local_root(input.snapshots, input.values);
        let gateways = ingress_gateways(input.snapshots, &settings);
        let cluster_id = names::cluster_id(&settings.cluster_domain, &settings.cluster_uuid);
        let local = LocalMetadata {
            public: PublicMetadata {
                cluster_uuid: settings.cluster_uuid.clone(),
                authn_key_pub: keypair.public.clone(),
                root_ca,
            },
            federation: settings.federation_enabled.then(|| FederationPrivate {
                ingress_gateways: gateways.clone(),
                public_services: public_services(input.snapshots, &settings.cluster_domain),
            }),
            multicluster: settings.multicluster_enabled.then(|| MulticlusterPrivate {
                ingress_gateways: gateways.clone(),
                api_host: names::public_host(&settings.public_domain_template, "istio-api-proxy"),
                network_name: names::network_name(&cluster_id),
                cluster_id: cluster_id.clone(),
            }),
        };
        out.set("internal.localMetadata", &local);
        Ok(out)
    }
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

/// Reads snapshot items of one binding as `T`, skipping (with a warning) any that do not fit.
fn items<T: for<'de> Deserialize<'de>>(snapshots: &Snapshots, binding: &str) -> Vec<T> {
    snapshots
        .get(binding)
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let name = v
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                tracing::warn!(binding, index = i, name, error = %e, "skipping malformed object");
                None
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct SecretObj {
    #[serde(default)]
    data: BTreeMap<String, Option<String>>,
}

/// The keypair: the Secret's when it holds a valid matching Ed25519 pair, else the one already
/// in values (Helm has not written the Secret yet), else a new one.
fn keypair(snapshots: &Snapshots, current: Option<&AuthnKeypair>) -> anyhow::Result<AuthnKeypair> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let decode = |s: &Option<String>| {
        s.as_deref()
            .and_then(|s| b64.decode(s.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
    };
    for secret in items::<SecretObj>(snapshots, "keypair") {
        let (Some(public), Some(private)) = (
            decode(secret.data.get("pub.pem").unwrap_or(&None)),
            decode(secret.data.get("priv.pem").unwrap_or(&None)),
        ) else {
            tracing::warn!(
                "secret d8-istio/d8-remote-authn-keypair lacks pub.pem or priv.pem; not reusing it"
            );
            continue;
        };
        if pki::keypair_matches(&private, &public) {
            return Ok(AuthnKeypair { public, private });
        }
        tracing::warn!("secret d8-istio/d8-remote-authn-keypair does not hold a matching Ed25519 keypair; not reusing it");
    }
    if let Some(k) = current {
        if pki::keypair_matches(&k.private, &k.public) {
            return Ok(k.clone());
        }
        tracing::warn!("istio.internal.remoteAuthnKeypair is not a matching Ed25519 keypair; generating a new one");
    }
    let (private, public) = pki::generate_ed25519_keypair()?;
    tracing::info!("generated a new Ed25519 authn keypair");
    Ok(AuthnKeypair { public, private })
}

#[derive(Deserialize)]
struct ConfigMapObj {
    #[serde(default)]
    data: BTreeMap<String, Option<String>>,
}

/// The local root CA from `istio-ca-root-cert`, without any remote root we trust (istiod may
/// merge them into that ConfigMap; re-publishing them would leak trust transitively). When the
/// ConfigMap is absent or broken the previously published root is kept.
fn local_root(snapshots: &Snapshots, values: &Value) -> String {
    let previous = values
        .pointer("/istio/internal/localMetadata/public/rootCA")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let remote: BTreeSet<&str> = values
        .pointer("/istio/internal/trustBundle")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("fingerprintSHA256").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let Some(pem) = items::<ConfigMapObj>(snapshots, "rootCA")
        .into_iter()
        .find_map(|cm| cm.data.get("root-cert.pem").cloned().flatten())
    else {
        tracing::warn!("configmap d8-istio/istio-ca-root-cert not found; keeping the previously published root CA");
        return previous;
    };
    match pki::parse_certificates(&pem) {
        Ok(certs) => {
            let local: String = certs
                .iter()
                .filter(|c| !remote.contains(c.fingerprint_sha256.as_str()))
                .map(|c| c.pem.as_str())
                .collect();
            if local.is_empty() {
                tracing::warn!("istio-ca-root-cert holds only remote roots; keeping the previously published root CA");
                return previous;
            }
            local
        }
        Err(e) => {
            tracing::warn!(error = %e, "istio-ca-root-cert root-cert.pem is not a certificate bundle; keeping the previously published root CA");
            previous
        }
    }
}

#[derive(Deserialize)]
struct PortObj {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default, rename = "nodePort")]
    node_port: Option<u16>,
}

#[derive(Deserialize, Default)]
struct ServiceSpec {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    ports: Vec<PortObj>,
}

#[derive(Deserialize, Default)]
struct LbIngress {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
}

#[derive(Deserialize, Default)]
struct LbStatus {
    #[serde(default)]
    ingress: Option<Vec<LbIngress>>,
}

#[derive(Deserialize, Default)]
struct ServiceStatus {
    #[serde(default, rename = "loadBalancer")]
    load_balancer: LbStatus,
}

#[derive(Deserialize)]
struct ServiceObj {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: ServiceSpec,
    #[serde(default)]
    status: ServiceStatus,
}

#[derive(Deserialize, Default)]
struct PodSpec {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct PodStatus {
    #[serde(default)]
    phase: Option<String>,
}

#[derive(Deserialize)]
struct PodObj {
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize)]
struct Taint {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize, Default)]
struct NodeSpec {
    #[serde(default)]
    unschedulable: Option<bool>,
    #[serde(default)]
    taints: Option<Vec<Taint>>,
}

#[derive(Deserialize)]
struct NodeCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Deserialize)]
struct NodeAddress {
    #[serde(rename = "type")]
    type_: String,
    address: String,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    conditions: Option<Vec<NodeCondition>>,
    #[serde(default)]
    addresses: Option<Vec<NodeAddress>>,
}

#[derive(Deserialize)]
struct NodeObj {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    status: NodeStatus,
}

impl NodeObj {
    fn active(&self) -> bool {
        let ready = self
            .status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let cordoned = self.spec.unschedulable.unwrap_or(false)
            || self
                .spec
                .taints
                .iter()
                .flatten()
                .any(|t| t.key == "node.kubernetes.io/unschedulable");
        ready && !cordoned
    }

    fn address(&self) -> Option<&str> {
        let addrs = self.status.addresses.as_deref().unwrap_or_default();
        let find = |t: &str| {
            addrs
                .iter()
                .find(|a| a.type_ == t && !a.address.is_empty())
                .map(|a| a.address.as_str())
        };
        find("ExternalIP").or_else(|| find("InternalIP"))
    }
}

fn tls_port(svc: &ServiceObj) -> Option<&PortObj> {
    svc.spec
        .ports
        .iter()
        .find(|p| p.name.as_deref() == Some("tls"))
}

/// Gateway addresses peers reach this cluster at (SPEC §4), sorted and deduplicated unless
/// advertised verbatim by the operator.
fn ingress_gateways(snapshots: &Snapshots, settings: &Settings) -> Vec<Gateway> {
    if let Some(advertised) = &settings.ingress_gateway.advertise {
        return advertised.clone();
    }
    let services = items::<ServiceObj>(snapshots, "gatewayServices");
    let mut out = BTreeSet::new();
    match settings.ingress_gateway.inlet.as_str() {
        "NodePort" => {
            let Some(node_port) = services
                .iter()
                .find_map(|s| tls_port(s).and_then(|p| p.node_port))
            else {
                tracing::warn!("no ingress-gateway Service in d8-istio has a nodePort on its port named tls; publishing no gateways");
                return Vec::new();
            };
            let gateway_nodes: BTreeSet<String> = items::<PodObj>(snapshots, "gatewayPods")
                .into_iter()
                .filter(|p| !matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed")))
                .filter_map(|p| p.spec.node_name)
                .collect();
            for node in items::<NodeObj>(snapshots, "nodes") {
                if !gateway_nodes.contains(&node.metadata.name) {
                    continue;
                }
                if !node.active() {
                    tracing::debug!(node = %node.metadata.name, "skipping ingress-gateway node that is not Ready or is unschedulable");
                    continue;
                }
                match node.address() {
                    Some(a) => {
                        out.insert(Gateway {
                            address: a.to_owned(),
                            port: node_port,
                        });
                    }
                    None => {
                        tracing::warn!(node = %node.metadata.name, "ingress-gateway node has no ExternalIP or InternalIP")
                    }
                }
            }
        }
        inlet => {
            if inlet != "LoadBalancer" {
                tracing::warn!(
                    inlet,
                    "unknown ingress-gateway inlet; treating it as LoadBalancer"
                );
            }
            for svc in &services {
                let Some(port) = tls_port(svc).and_then(|p| p.port) else {
                    continue;
                };
                let first = svc
                    .status
                    .load_balancer
                    .ingress
                    .as_deref()
                    .unwrap_or_default()
                    .first();
                let address = first.and_then(|i| {
                    i.ip.clone()
                        .filter(|s| !s.is_empty())
                        .or_else(|| i.hostname.clone().filter(|s| !s.is_empty()))
                });
                match address {
                    Some(address) => {
                        out.insert(Gateway { address, port });
                    }
                    None => {
                        tracing::info!(service = %svc.metadata.name, "ingress-gateway LoadBalancer has no address yet")
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Services labelled `federation.istio.deckhouse.io/public-service=""`, sorted by hostname.
fn public_services(snapshots: &Snapshots, cluster_domain: &str) -> Vec<PublicService> {
    let mut out = Vec::new();
    for svc in items::<ServiceObj>(snapshots, "publicServices") {
        let hostname = format!(
            "{}.{}.svc.{cluster_domain}",
            svc.metadata.name, svc.metadata.namespace
        );
        if svc.spec.type_.as_deref() == Some("ExternalName") {
            tracing::warn!(service = %hostname, "skipping public service of type ExternalName");
            continue;
        }
        let mut ports: Vec<ServicePort> = svc
            .spec
            .ports
            .iter()
            .filter_map(
                |p| match (p.name.as_deref().filter(|n| !n.is_empty()), p.port) {
                    (Some(name), Some(port)) => Some(ServicePort {
                        name: name.to_owned(),
                        port,
                        protocol: None,
                    }),
                    _ => None,
                },
            )
            .collect();
        if ports.is_empty() {
            tracing::warn!(service = %hostname, "skipping public service without named ports");
            continue;
        }
        ports.sort_by_key(|p| p.port);
        ports.dedup_by_key(|p| p.port);
        out.push(PublicService { hostname, ports });
    }
    out.sort();
    out.dedup_by(|a, b| a.hostname == b.hostname);
    out
}
