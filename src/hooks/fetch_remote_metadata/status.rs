//! The status merge patch one exchange produces (SPEC §5.2): the parts of `metadataCache` that
//! were fetched successfully, their timestamps and entity-tags, and `conditions` with
//! Deckhouse's shape. A part answered with 304 (not modified) only refreshes its timestamp. The
//! prior status is untrusted input: it is only compared with, never copied, except for the
//! conditions of other types, which are kept as they are.

use super::exchange::{Cond, Freshness, Report};
use serde_json::{Map, Value};

pub(crate) const PUBLIC_READY: &str = "PublicMetadataExchangeReady";
pub(crate) const PRIVATE_READY: &str = "PrivateMetadataExchangeReady";
pub(crate) const API_READY: &str = "RemoteAPIServerReady";
pub(crate) const GATEWAYS_PUBLISHED: &str = "IngressGatewaysPublished";

/// Condition types this hook always writes. `IngressGatewaysPublished` is written only with a
/// fresh private document; otherwise the prior one is kept as it was.
const MANAGED: [&str; 3] = [PUBLIC_READY, PRIVATE_READY, API_READY];

/// How often an unchanged status is written anyway, to refresh its timestamps (`lastProbeTime`,
/// `*LastFetchTimestamp`): as the kubelet reports an unchanged node status
/// (`nodeStatusReportFrequency`). Every write of a CR carrying its peer's cached documents goes
/// through addon-operator's object patcher (5 requests/s by default, shared by every hook) and
/// to every watcher of the CR: one write per peer every 15 s saturates that patcher from ~75
/// peers on. A change (condition, reason, message, document, entity-tag) is written at once.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(300);

/// `metadataCache` keys of the stored entity-tags.
pub(crate) const PUBLIC_ETAG: &str = "publicETag";
pub(crate) const PRIVATE_ETAG: &str = "privateETag";

/// Whether the merge patch `status` of `prior` must be written now: it changes more than
/// timestamps, or the oldest timestamp it refreshes is `heartbeat` old (or unreadable).
pub(crate) fn needs_write(
    prior: &Value,
    status: &Value,
    now: chrono::DateTime<chrono::Utc>,
    heartbeat: std::time::Duration,
) -> bool {
    let mut after = prior.clone();
    json_patch::merge(&mut after, status);
    if without_timestamps(&after) != without_timestamps(prior) {
        return true;
    }
    let Ok(heartbeat) = chrono::Duration::from_std(heartbeat) else {
        return true;
    };
    let cache = prior.get("metadataCache");
    let mut times = Vec::new();
    for part in ["public", "private"] {
        if status
            .pointer(&format!("/metadataCache/{part}LastFetchTimestamp"))
            .is_some()
        {
            times.push(cache.and_then(|c| c.get(format!("{part}LastFetchTimestamp"))));
        }
    }
    let conditions = prior.get("conditions").and_then(Value::as_array);
    for c in status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let type_ = c.get("type");
        if c.get("lastProbeTime").is_some() {
            times.push(
                conditions
                    .into_iter()
                    .flatten()
                    .find(|p| p.get("type") == type_)
                    .and_then(|p| p.get("lastProbeTime")),
            );
        }
    }
    times.into_iter().any(|t| {
        t.and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_none_or(|t| now.signed_duration_since(t) >= heartbeat)
    })
}

/// `status` without what a poll refreshes by itself.
fn without_timestamps(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(cache) = s.get_mut("metadataCache").and_then(Value::as_object_mut) {
        cache.remove("publicLastFetchTimestamp");
        cache.remove("privateLastFetchTimestamp");
    }
    if let Some(conditions) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions.iter_mut().filter_map(Value::as_object_mut) {
            c.remove("lastProbeTime");
        }
    }
    s
}

/// The `status` object to merge-patch.
pub(crate) fn status(prior: &Value, report: &Report, now: &str) -> Value {
    let mut status = Map::new();
    let mut cache = Map::new();
    let prior_cache = prior.get("metadataCache");
    let parts = [
        (
            "public",
            &report.public_doc,
            &report.public_fresh,
            PUBLIC_ETAG,
        ),
        (
            "private",
            &report.private_doc,
            &report.private_fresh,
            PRIVATE_ETAG,
        ),
    ];
    for (part, doc, fresh, tag_key) in parts {
        let Some(doc) = doc else { continue };
        let prior_part = prior_cache.and_then(|c| c.get(part));
        if let Freshness::Sent(tag) = fresh {
            cache.insert(part.into(), replacing(doc, prior_part));
            match tag {
                Some(tag) => {
                    cache.insert(tag_key.into(), Value::from(tag.as_str()));
                }
                // A peer that stopped sending ETags (or a Deckhouse peer): drop the stale tag.
                None if prior_cache.and_then(|c| c.get(tag_key)).is_some() => {
                    cache.insert(tag_key.into(), Value::Null);
                }
                None => {}
            }
        }
        cache.insert(format!("{part}LastFetchTimestamp"), Value::from(now));
    }
    if !cache.is_empty() {
        status.insert("metadataCache".into(), Value::Object(cache));
    }
    status.insert(
        "conditions".into(),
        Value::Array(conditions(prior, report, now)),
    );
    Value::Object(status)
}

/// `new` as a merge-patch value that also removes keys of `prior` that `new` lacks (e.g. a
/// `clusterID` the peer stopped publishing), so the cache equals the validated document.
fn replacing(new: &Value, prior: Option<&Value>) -> Value {
    let (Value::Object(n), Some(Value::Object(p))) = (new, prior) else {
        return new.clone();
    };
    let mut out = n.clone();
    for k in p.keys() {
        if !out.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// Our conditions first (fixed order), then every prior condition of another type as it was
/// (the merge patch replaces the whole array); items without a type are not written back.
fn conditions(prior: &Value, report: &Report, now: &str) -> Vec<Value> {
    let prior: &[Value] = prior
        .get("conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(3 + prior.len());
    out.push(condition(PUBLIC_READY, &report.public, prior, now));
    out.push(condition(PRIVATE_READY, &report.private, prior, now));
    if let Some(api) = &report.api {
        out.push(condition(API_READY, api, prior, now));
    }
    if let Some(gateways) = &report.gateways {
        out.push(condition(GATEWAYS_PUBLISHED, gateways, prior, now));
    }
    let written =
        |t: &str| MANAGED.contains(&t) || (t == GATEWAYS_PUBLISHED && report.gateways.is_some());
    out.extend(
        prior
            .iter()
            .filter(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty() && !written(t))
            })
            .cloned(),
    );
    out
}

/// One managed condition; `lastTransitionTime` survives from the prior condition of the same
/// type when status and reason are unchanged and the prior time is a valid RFC 3339 time.
fn condition(type_: &str, cond: &Cond, prior: &[Value], now: &str) -> Value {
    let prev = prior
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_));
    let field = |k: &str| prev.and_then(|c| c.get(k)).and_then(Value::as_str);
    let unchanged =
        field("status") == Some(cond.status.as_str()) && field("reason") == Some(cond.reason);
    let since = field("lastTransitionTime")
        .filter(|t| unchanged && chrono::DateTime::parse_from_rfc3339(t).is_ok())
        .unwrap_or(now);
    serde_json::json!({
        "type": type_,
        "status": cond.status.as_str(),
        "reason": cond.reason,
        "message": cond.message,
        "lastTransitionTime": since,
        "lastProbeTime": now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(t: &str) -> chrono::DateTime<chrono::Utc> {
        t.parse().unwrap()
    }

    fn status(probe: &str, message: &str) -> Value {
        json!({
            "metadataCache": {"public": {"clusterUUID": "u"}, "publicLastFetchTimestamp": probe},
            "conditions": [{"type": PUBLIC_READY, "status": "True", "reason": "Succeeded", "message": message,
                            "lastTransitionTime": "2026-01-01T00:00:00Z", "lastProbeTime": probe}],
        })
    }

    #[test]
    fn timestamps_alone_are_written_once_a_heartbeat() {
        let prior = status("2026-01-01T00:10:00Z", "ok");
        let patch = json!({"metadataCache": {"publicLastFetchTimestamp": "2026-01-01T00:14:00Z"},
                           "conditions": status("2026-01-01T00:14:00Z", "ok")["conditions"]});
        let now = at("2026-01-01T00:14:00Z");
        assert!(
            !needs_write(&prior, &patch, now, HEARTBEAT),
            "4 min old: skipped"
        );
        assert!(
            needs_write(&prior, &patch, at("2026-01-01T00:15:00Z"), HEARTBEAT),
            "5 min: due"
        );
        assert!(
            needs_write(&prior, &patch, now, std::time::Duration::from_secs(60)),
            "shorter heartbeat (staleEndpointsTTL)"
        );
        let changed = json!({"conditions": status("2026-01-01T00:14:00Z", "other")["conditions"]});
        assert!(
            needs_write(&prior, &changed, now, HEARTBEAT),
            "a message change is written at once"
        );
        let doc = json!({"metadataCache": {"public": {"clusterUUID": "v"}}});
        assert!(
            needs_write(&prior, &doc, now, HEARTBEAT),
            "a new document is written at once"
        );
        let mut unreadable = prior.clone();
        unreadable["conditions"][0]["lastProbeTime"] = json!("yesterday");
        assert!(
            needs_write(&unreadable, &patch, now, HEARTBEAT),
            "an unreadable time is refreshed"
        );
    }
}
