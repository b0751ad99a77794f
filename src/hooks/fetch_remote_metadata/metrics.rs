//! The hook's gauges (SPEC §8), group `fetch-remote-metadata`, expired at the start of every run.
//! Fetch-error, UUID-mismatch and API-host names and labels follow Deckhouse's so its alerts keep
//! working; `IstioMulticloud` peers report under the multicluster names.
//!
//! - `d8_istio_{federation,multicluster}_metadata_endpoints_fetch_error_count{<kind>_name, endpoint}`:
//!   1/0 per endpoint URL requested in this run (the private one only once it was attempted).
//! - `d8_istio_{federation,multicluster}_remote_cluster_uuid_mismatch{<kind>_name, endpoint,
//!   pinned_uuid, actual_uuid}` = 1 while a peer reports another clusterUUID than the cached one.
//! - `d8_istio_multicluster_api_host_check_error_count{multicluster_name, api_host}`: 1/0 of the
//!   remote API probe.
//! - `d8_istio_alliance_metadata_last_success_seconds{kind, name, part=public|private}`: seconds
//!   since the last successful fetch; absent until a part has succeeded once.
//! - `d8_istio_alliance_remote_items_dropped{kind, name, reason}`: items validation dropped from
//!   the last private document, per reason (only reasons that occurred).
//! - `d8_istio_alliance_metadata_not_modified{kind, name, part=public|private}`: 1 when the part
//!   was answered 304 to our `If-None-Match` in this run (cache reused), 0 when a 200 brought
//!   the document; absent when the part failed or was not fetched.
//! - `d8_istio_alliance_peer_without_ingress_gateways{kind, name}` = 1 when this run's private
//!   document lists no gateway although the peer needs one (condition
//!   `IngressGatewaysPublished=False`); absent otherwise.

use super::exchange::{Freshness, Report, Target};
use crate::runtime::Metrics;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub(crate) const GROUP: &str = "fetch-remote-metadata";
pub(crate) const FEDERATION_FETCH_ERROR: &str =
    "d8_istio_federation_metadata_endpoints_fetch_error_count";
pub(crate) const MULTICLUSTER_FETCH_ERROR: &str =
    "d8_istio_multicluster_metadata_endpoints_fetch_error_count";
pub(crate) const FEDERATION_UUID_MISMATCH: &str =
    "d8_istio_federation_remote_cluster_uuid_mismatch";
pub(crate) const MULTICLUSTER_UUID_MISMATCH: &str =
    "d8_istio_multicluster_remote_cluster_uuid_mismatch";
pub(crate) const API_HOST_CHECK_ERROR: &str = "d8_istio_multicluster_api_host_check_error_count";
pub(crate) const LAST_SUCCESS: &str = "d8_istio_alliance_metadata_last_success_seconds";
pub(crate) const DROPPED: &str = "d8_istio_alliance_remote_items_dropped";
pub(crate) const NOT_MODIFIED: &str = "d8_istio_alliance_metadata_not_modified";
pub(crate) const NO_GATEWAYS: &str = "d8_istio_alliance_peer_without_ingress_gateways";

/// Records one peer's gauges. `last_success` are the `(public, private)` times of the last
/// successful fetches after this run, when known.
pub(crate) fn record(
    m: &mut Metrics,
    t: &Target,
    r: &Report,
    last_success: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) {
    let multi = t.kind.is_multicluster();
    let (fetch_error, name_label, mismatch) = if multi {
        (
            MULTICLUSTER_FETCH_ERROR,
            "multicluster_name",
            MULTICLUSTER_UUID_MISMATCH,
        )
    } else {
        (
            FEDERATION_FETCH_ERROR,
            "federation_name",
            FEDERATION_UUID_MISMATCH,
        )
    };
    for (endpoint, failed) in &r.endpoints {
        m.set(
            fetch_error,
            f64::from(u8::from(*failed)),
            &[(name_label, &t.name), ("endpoint", endpoint)],
        );
    }
    if let Some((pinned, actual)) = &r.mismatch {
        let endpoint = t.public_url();
        let labels = [
            (name_label, t.name.as_str()),
            ("endpoint", &endpoint),
            ("pinned_uuid", pinned),
            ("actual_uuid", actual),
        ];
        m.set(mismatch, 1.0, &labels);
    }
    if let Some((api_host, failed)) = &r.api_check {
        m.set(
            API_HOST_CHECK_ERROR,
            f64::from(u8::from(*failed)),
            &[("multicluster_name", &t.name), ("api_host", api_host)],
        );
    }
    let kind = t.kind.kind();
    let mut dropped: BTreeMap<&str, u32> = BTreeMap::new();
    for d in &r.dropped {
        *dropped.entry(d.reason).or_default() += 1;
    }
    for (reason, n) in dropped {
        m.set(
            DROPPED,
            f64::from(n),
            &[("kind", kind), ("name", &t.name), ("reason", reason)],
        );
    }
    if r.gateways.as_ref().is_some_and(|g| !g.ok()) {
        m.set(NO_GATEWAYS, 1.0, &[("kind", kind), ("name", &t.name)]);
    }
    let parts = [
        ("public", r.public_doc.is_some(), &r.public_fresh),
        ("private", r.private_doc.is_some(), &r.private_fresh),
    ];
    for (part, ok, fresh) in parts {
        if ok {
            let not_modified = *fresh == Freshness::NotModified;
            m.set(
                NOT_MODIFIED,
                f64::from(u8::from(not_modified)),
                &[("kind", kind), ("name", &t.name), ("part", part)],
            );
        }
    }
    for (part, at) in [("public", last_success.0), ("private", last_success.1)] {
        if let Some(at) = at {
            let age = (now - at).num_seconds().max(0);
            m.set(
                LAST_SUCCESS,
                age as f64,
                &[("kind", kind), ("name", &t.name), ("part", part)],
            );
        }
    }
}
