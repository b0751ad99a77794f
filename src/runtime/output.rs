//! Hook outputs besides values (SPEC §3.2): object operations for `KUBERNETES_PATCH_PATH` and
//! metric operations for `METRICS_PATH`, each written as a stream of JSON objects, one per line.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One object operation: the status merge patches of `fetch-remote-metadata`, and the objects
/// a hook owns outside the Helm release (created or replaced whole, deleted in the background
/// so that the queue never waits for a finalizer).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "operation")]
pub enum ObjectOp {
    #[serde(rename_all = "camelCase")]
    MergePatch {
        api_version: String,
        kind: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subresource: Option<&'static str>,
        merge_patch: Value,
        /// An object deleted since the snapshot is no error (the patch has nothing to do).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ignore_missing_object: bool,
    },
    /// Create, or replace the whole object when it exists (shell-operator: POST, then GET + PUT).
    CreateOrUpdate { object: Value },
    /// Create unless the object exists (one POST; "already exists" is success).
    CreateIfNotExists { object: Value },
    #[serde(rename_all = "camelCase")]
    DeleteInBackground {
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    },
}

impl ObjectOp {
    /// A merge patch of a cluster-scoped object's `status` subresource; an object deleted since
    /// the snapshot is skipped (a peer removed while its fetch ran).
    pub fn status_merge_patch(
        api_version: &str,
        kind: &str,
        name: &str,
        status: Value,
    ) -> ObjectOp {
        ObjectOp::MergePatch {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: None,
            subresource: Some("status"),
            merge_patch: serde_json::json!({ "status": status }),
            ignore_missing_object: true,
        }
    }

    /// The name of the object operated on (`metadata.name` for a create).
    pub fn name(&self) -> &str {
        match self {
            ObjectOp::MergePatch { name, .. } | ObjectOp::DeleteInBackground { name, .. } => name,
            ObjectOp::CreateOrUpdate { object } | ObjectOp::CreateIfNotExists { object } => {
                object["metadata"]["name"].as_str().unwrap_or_default()
            }
        }
    }

    /// The patch of a merge patch.
    pub fn merge_patch(&self) -> Option<&Value> {
        match self {
            ObjectOp::MergePatch { merge_patch, .. } => Some(merge_patch),
            _ => None,
        }
    }
}

/// One gauge sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub name: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
}

/// The metrics of one run: the group is expired first, then every gauge is set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    pub group: String,
    pub gauges: Vec<Gauge>,
}

impl Metrics {
    pub fn new(group: &str) -> Metrics {
        Metrics {
            group: group.to_owned(),
            gauges: Vec::new(),
        }
    }

    pub fn set(&mut self, name: &str, value: f64, labels: &[(&str, &str)]) {
        self.gauges.push(Gauge {
            name: name.to_owned(),
            value,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
    }

    /// JSON lines: `{"action":"expire","group":g}` then one `set` per gauge.
    pub fn to_lines(&self) -> String {
        let mut out = serde_json::json!({"action": "expire", "group": self.group}).to_string();
        out.push('\n');
        for g in &self.gauges {
            let line = serde_json::json!({
                "name": g.name, "group": self.group, "action": "set", "value": g.value, "labels": g.labels,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }
}

/// Object operations as JSON lines.
pub fn object_ops_to_lines(ops: &[ObjectOp]) -> String {
    ops.iter()
        .map(|op| serde_json::to_string(op).expect("object ops serialize") + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut m = Metrics::new("g");
        m.set("m", 1.0, &[("k", "v")]);
        assert_eq!(
            m.to_lines(),
            "{\"action\":\"expire\",\"group\":\"g\"}\n{\"name\":\"m\",\"group\":\"g\",\"action\":\"set\",\"value\":1.0,\"labels\":{\"k\":\"v\"}}\n"
        );
        let op = ObjectOp::status_merge_patch(
            "deckhouse.io/v1alpha1",
            "IstioFederation",
            "b",
            serde_json::json!({}),
        );
        assert_eq!(
            object_ops_to_lines(&[op]),
            "{\"operation\":\"MergePatch\",\"apiVersion\":\"deckhouse.io/v1alpha1\",\"kind\":\"IstioFederation\",\"name\":\"b\",\"subresource\":\"status\",\"mergePatch\":{\"status\":{}},\"ignoreMissingObject\":true}\n"
        );
        let create = ObjectOp::CreateOrUpdate {
            object: serde_json::json!({"kind": "ServiceEntry"}),
        };
        let delete = ObjectOp::DeleteInBackground {
            api_version: "networking.istio.io/v1beta1".into(),
            kind: "ServiceEntry".into(),
            namespace: "d8-istio".into(),
            name: "x".into(),
        };
        assert_eq!(
            object_ops_to_lines(&[create, delete]),
            "{\"operation\":\"CreateOrUpdate\",\"object\":{\"kind\":\"ServiceEntry\"}}\n{\"operation\":\"DeleteInBackground\",\"apiVersion\":\"networking.istio.io/v1beta1\",\"kind\":\"ServiceEntry\",\"namespace\":\"d8-istio\",\"name\":\"x\"}\n"
        );
    }
}
