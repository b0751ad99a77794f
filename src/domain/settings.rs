//! Typed view of the module values the hooks read: the three global values
//! (`global.discovery.clusterUUID`, `global.discovery.clusterDomain`,
//! `global.modules.publicDomainTemplate`) and `istio.*` (settings of SPEC §9 and internal values).
//! A value of the wrong type is an error naming its path.

use crate::domain::metadata::{AuthnKeypair, Gateway};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Ingress-gateway publication settings (`istio.alliance.ingressGateway`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressGatewaySettings {
    /// `LoadBalancer` or `NodePort`.
    pub inlet: String,
    pub advertise: Option<Vec<Gateway>>,
}

/// Everything the hooks read from values.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub cluster_uuid: String,
    pub cluster_domain: String,
    pub public_domain_template: String,
    pub federation_enabled: bool,
    /// `istio.federation.serviceEntriesManagedBy: Hook`: the imported ServiceEntries and their
    /// DestinationRules are objects of `render-service-entries`, outside the Helm release
    /// (`Helm`, the default: rendered by the chart from values, SPEC §7.1).
    pub service_entries_by_hook: bool,
    /// `istio.multicluster.enabled` or its deprecated alias `istio.multicloud.enabled`.
    pub multicluster_enabled: bool,
    pub ingress_gateway: IngressGatewaySettings,
    pub fetch_timeout: Duration,
    pub max_response_bytes: u64,
    /// Zero means never withdraw.
    pub stale_endpoints_ttl: Duration,
    pub keypair: Option<AuthnKeypair>,
}

fn get<T: DeserializeOwned>(values: &Value, pointer: &str) -> Result<Option<T>, String> {
    match values.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            format!(
                "values: {}: {e}",
                pointer.trim_start_matches('/').replace('/', ".")
            )
        }),
    }
}

fn duration(values: &Value, pointer: &str, default: Duration) -> Result<Duration, String> {
    match get::<String>(values, pointer)? {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s).map_err(|e| {
            format!(
                "values: {}: {s:?} is not a duration: {e}",
                pointer.trim_start_matches('/').replace('/', ".")
            )
        }),
    }
}

impl Settings {
    /// Reads settings from effective values (`{"global": …, "istio": …}`).
    pub fn from_values(values: &Value) -> Result<Settings, String> {
        let enabled = |p: &str| get::<bool>(values, p).map(|v| v.unwrap_or(false));
        let keypair = get::<AuthnKeypair>(values, "/istio/internal/remoteAuthnKeypair")?
            .filter(|k| !k.private.is_empty() && !k.public.is_empty());
        Ok(Settings {
            cluster_uuid: get(values, "/global/discovery/clusterUUID")?.unwrap_or_default(),
            cluster_domain: get(values, "/global/discovery/clusterDomain")?
                .unwrap_or_else(|| "cluster.local".to_owned()),
            public_domain_template: get(values, "/global/modules/publicDomainTemplate")?
                .unwrap_or_default(),
            federation_enabled: enabled("/istio/federation/enabled")?,
            service_entries_by_hook: match get::<String>(
                values,
                "/istio/federation/serviceEntriesManagedBy",
            )?
            .as_deref()
            {
                None | Some("Helm") => false,
                Some("Hook") => true,
                Some(other) => {
                    return Err(format!(
                        "values: istio.federation.serviceEntriesManagedBy: {other:?} is neither \"Helm\" nor \"Hook\""
                    ))
                }
            },
            multicluster_enabled: enabled("/istio/multicluster/enabled")?
                || enabled("/istio/multicloud/enabled")?,
            ingress_gateway: IngressGatewaySettings {
                inlet: get(values, "/istio/alliance/ingressGateway/inlet")?
                    .unwrap_or_else(|| "LoadBalancer".to_owned()),
                advertise: get::<Vec<Gateway>>(values, "/istio/alliance/ingressGateway/advertise")?
                    .filter(|a| !a.is_empty()),
            },
            fetch_timeout: duration(
                values,
                "/istio/alliance/metadataFetch/timeout",
                Duration::from_secs(5),
            )?,
            max_response_bytes: get(values, "/istio/alliance/metadataFetch/maxResponseBytes")?
                .unwrap_or(1_048_576),
            stale_endpoints_ttl: duration(
                values,
                "/istio/alliance/staleEndpointsTTL",
                Duration::ZERO,
            )?,
            keypair,
        })
    }

    /// Either alliance feature is on.
    pub fn alliance_enabled(&self) -> bool {
        self.federation_enabled || self.multicluster_enabled
    }

    /// Fails when a value every enabled hook depends on is missing.
    pub fn require_identity(&self) -> Result<(), String> {
        if self.cluster_uuid.is_empty() {
            return Err("values: global.discovery.clusterUUID is required".to_owned());
        }
        if !crate::domain::validate::is_cluster_uuid(&self.cluster_uuid) {
            return Err(format!(
                "values: global.discovery.clusterUUID {:?} is not 1-64 characters of [A-Za-z0-9-]",
                self.cluster_uuid
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_alias_and_errors() {
        let s =
            Settings::from_values(&json!({"istio": {"multicloud": {"enabled": true}}})).unwrap();
        assert!(s.multicluster_enabled && !s.federation_enabled);
        assert_eq!(s.fetch_timeout, Duration::from_secs(5));
        assert_eq!(s.cluster_domain, "cluster.local");
        let err = Settings::from_values(&json!({"istio": {"federation": {"enabled": "yes"}}}))
            .unwrap_err();
        assert!(
            err.starts_with("values: istio.federation.enabled:"),
            "{err}"
        );
        let err = Settings::from_values(
            &json!({"istio": {"alliance": {"metadataFetch": {"timeout": "soon"}}}}),
        )
        .unwrap_err();
        assert!(
            err.contains("istio.alliance.metadataFetch.timeout"),
            "{err}"
        );
        assert!(!s.service_entries_by_hook, "Helm by default");
        let by = |v: &str| {
            Settings::from_values(&json!({"istio": {"federation": {"serviceEntriesManagedBy": v}}}))
        };
        assert!(by("Hook").unwrap().service_entries_by_hook);
        assert!(!by("Helm").unwrap().service_entries_by_hook);
        let err = by("hook").unwrap_err();
        assert!(
            err.contains("istio.federation.serviceEntriesManagedBy") && err.contains("\"hook\""),
            "{err}"
        );
    }
}
