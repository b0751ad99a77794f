//! `render-service-entries`: the proper federations and the merged ServiceEntries of their
//! public services (SPEC §7.1).

use crate::domain::crd::{PeerKind, PEER_CACHE_JQ_FILTER};
use crate::runtime::config::{Events, HookConfig};
use crate::runtime::{Hook, HookInput, HookOutput};

pub struct RenderServiceEntries;

impl Hook for RenderServiceEntries {
    fn name(&self) -> &'static str {
        "render-service-entries"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: Some(10),
            schedule: vec![],
            kubernetes: super::peer_bindings(
                &[PeerKind::Federation],
                PEER_CACHE_JQ_FILTER,
                Events::All,
            ),
        }
    }

    fn run(&self, _input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        Ok(HookOutput::default())
    }
}
