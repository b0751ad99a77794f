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

/// `metadataCache` keys of the stored entity-tags.
pub(crate) const PUBLIC_ETAG: &str = "publicETag";
pub(crate) const PRIVATE_ETAG: &str = "privateETag";

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
