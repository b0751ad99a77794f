//! `update-ca-bundle`: the remote roots every peer published, as the trust bundle istiod reads
//! and the peer keys the servers verify tokens with.

use crate::domain::crd::{PeerKind, PEER_CACHE_JQ_FILTER};
use crate::runtime::config::{Events, HookConfig};
use crate::runtime::{Hook, HookInput, HookOutput};

pub struct UpdateCaBundle;

impl Hook for UpdateCaBundle {
    fn name(&self) -> &'static str {
        "update-ca-bundle"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: Some(10),
            schedule: vec![],
            kubernetes: super::peer_bindings(&PeerKind::ALL, PEER_CACHE_JQ_FILTER, Events::All),
        }
    }

    fn run(&self, _input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        Ok(HookOutput::default())
    }
}
