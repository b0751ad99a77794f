//! Hook outputs besides values (SPEC §3.2): object operations for `KUBERNETES_PATCH_PATH` and
//! metric operations for `METRICS_PATH`, each written as a stream of JSON objects, one per line.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One object operation. Only what our hooks emit: status merge patches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectOp {
    pub operation: &'static str,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subresource: Option<&'static str>,
    pub merge_patch: Value,
}

impl ObjectOp {
    /// A merge patch of a cluster-scoped object's `status` subresource.
    pub fn status_merge_patch(
        api_version: &str,
        kind: &str,
        name: &str,
        status: Value,
    ) -> ObjectOp {
        ObjectOp {
            operation: "MergePatch",
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: None,
            subresource: Some("status"),
            merge_patch: serde_json::json!({ "status": status }),
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
            "{\"operation\":\"MergePatch\",\"apiVersion\":\"deckhouse.io/v1alpha1\",\"kind\":\"IstioFederation\",\"name\":\"b\",\"subresource\":\"status\",\"mergePatch\":{\"status\":{}}}\n"
        );
    }
}
