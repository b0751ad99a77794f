//! `multicluster-remote-secrets`: the multicluster peers istiod connects to, each with the
//! long-lived api token of its remote secret (SPEC §7.3).

use crate::domain::crd::{PeerKind, PEER_CACHE_JQ_FILTER};
use crate::runtime::config::{Events, HookConfig, Kubernetes, Schedule};
use crate::runtime::{Hook, HookInput, HookOutput};

pub struct MulticlusterRemoteSecrets;

impl Hook for MulticlusterRemoteSecrets {
    fn name(&self) -> &'static str {
        "multicluster-remote-secrets"
    }

    fn config(&self) -> HookConfig {
        let mut kubernetes = super::peer_bindings(
            &[PeerKind::Multicluster, PeerKind::Multicloud],
            PEER_CACHE_JQ_FILTER,
            Events::All,
        );
        kubernetes.push(Kubernetes {
            name: "remoteSecrets",
            api_version: "v1",
            kind: "Secret",
            namespace: Some("d8-istio"),
            name_selector: None,
            match_labels: &[("istio/multiCluster", "true")],
            jq_filter: "{metadata: {name: .metadata.name, annotations: {\"networking.istio.io/cluster\": .metadata.annotations[\"networking.istio.io/cluster\"]}}, data: .data}",
            events: Events::All,
            on_synchronization: true,
        });
        HookConfig {
            before_helm: Some(10),
            schedule: vec![Schedule {
                name: "daily",
                crontab: "0 3 * * *",
            }],
            kubernetes,
        }
    }

    fn run(&self, _input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        Ok(HookOutput::default())
    }
}
