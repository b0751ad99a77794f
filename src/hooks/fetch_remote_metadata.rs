//! `fetch-remote-metadata`: fetches every peer's public and private metadata (SPEC §5.2) and
//! writes the result to the peer CR's status.

use crate::domain::crd::{PeerKind, PEER_JQ_FILTER};
use crate::runtime::config::{Events, HookConfig, Schedule};
use crate::runtime::{Hook, HookInput, HookOutput};

pub struct FetchRemoteMetadata;

impl Hook for FetchRemoteMetadata {
    fn name(&self) -> &'static str {
        "fetch-remote-metadata"
    }

    fn config(&self) -> HookConfig {
        HookConfig {
            before_helm: None,
            schedule: vec![Schedule {
                name: "poll",
                crontab: "*/15 * * * * *",
            }],
            kubernetes: super::peer_bindings(&PeerKind::ALL, PEER_JQ_FILTER, Events::Added),
        }
    }

    fn run(&self, _input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        Ok(HookOutput::default())
    }
}
