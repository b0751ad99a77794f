//! Hook binding configuration, declared once per hook and emitted in both wire formats:
//! shell-operator/addon-operator v1 (`<hook> --config`) and module-sdk batch (`hook config`).
//!
//! All kubernetes and schedule bindings share group `main`, as addon-operator forces for batch
//! hooks: every run then carries the snapshots of all the hook's kubernetes bindings, in either
//! mode, and hooks read state from snapshots only.

use serde_json::{json, Map, Value};

/// The queue every binding of this module's hooks runs in (per hook, so a slow fetch never
/// blocks the values hooks).
fn queue(hook: &str) -> String {
    format!("/modules/istio/{hook}")
}

/// Events that run the hook for a kubernetes binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// Added, Modified, Deleted.
    All,
    /// Only Added (batch format: all, as it only has a boolean).
    Added,
    /// Never: the binding only feeds snapshots.
    None,
}

/// A kubernetes binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubernetes {
    pub name: &'static str,
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: Option<&'static str>,
    pub name_selector: Option<&'static str>,
    pub match_labels: &'static [(&'static str, &'static str)],
    pub jq_filter: &'static str,
    pub events: Events,
    pub on_synchronization: bool,
}

/// A schedule binding (6-field crontabs carry seconds first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: &'static str,
    pub crontab: &'static str,
}

/// Which operator reads `--config`: addon-operator (module hook, default) or plain shell-operator,
/// which has no `beforeHelm` (it is mapped to `onStartup` with the same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    AddonOperator,
    ShellOperator,
}

/// Everything a hook binds to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookConfig {
    pub before_helm: Option<u32>,
    /// addon-operator only (plain shell-operator has no Helm step, and no such binding).
    pub after_helm: Option<u32>,
    pub schedule: Vec<Schedule>,
    pub kubernetes: Vec<Kubernetes>,
}

const GROUP: &str = "main";

impl HookConfig {
    /// shell-operator v1 config (`--config`).
    pub fn to_v1(&self, hook: &str, flavor: Flavor) -> Value {
        let mut m = Map::new();
        m.insert("configVersion".into(), json!("v1"));
        if let Some(order) = self.before_helm {
            let key = match flavor {
                Flavor::AddonOperator => "beforeHelm",
                Flavor::ShellOperator => "onStartup",
            };
            m.insert(key.into(), json!(order));
        }
        if let (Some(order), Flavor::AddonOperator) = (self.after_helm, flavor) {
            m.insert("afterHelm".into(), json!(order));
        }
        if !self.schedule.is_empty() {
            let s: Vec<Value> = self
                .schedule
                .iter()
                .map(|s| json!({"name": s.name, "crontab": s.crontab, "queue": queue(hook), "group": GROUP}))
                .collect();
            m.insert("schedule".into(), Value::Array(s));
        }
        if !self.kubernetes.is_empty() {
            let k: Vec<Value> = self
                .kubernetes
                .iter()
                .map(|k| {
                    let mut b = k.common();
                    let events: &[&str] = match k.events {
                        Events::All => &["Added", "Modified", "Deleted"],
                        Events::Added => &["Added"],
                        Events::None => &[],
                    };
                    b.insert("executeHookOnEvent".into(), json!(events));
                    b.insert("queue".into(), json!(queue(hook)));
                    b.insert("group".into(), json!(GROUP));
                    Value::Object(b)
                })
                .collect();
            m.insert("kubernetes".into(), Value::Array(k));
        }
        Value::Object(m)
    }

    /// module-sdk batch config item (`hook config`).
    pub fn to_batch(&self, hook: &str) -> Value {
        let mut m = Map::new();
        m.insert("configVersion".into(), json!("v1"));
        m.insert(
            "metadata".into(),
            json!({"name": hook, "path": format!("istio-hooks/{hook}")}),
        );
        if !self.schedule.is_empty() {
            let s: Vec<Value> = self
                .schedule
                .iter()
                .map(|s| json!({"name": s.name, "crontab": s.crontab, "queue": queue(hook)}))
                .collect();
            m.insert("schedule".into(), Value::Array(s));
        }
        if !self.kubernetes.is_empty() {
            let k: Vec<Value> = self
                .kubernetes
                .iter()
                .map(|k| {
                    let mut b = k.common();
                    b.insert("executeHookOnEvent".into(), json!(k.events != Events::None));
                    b.insert("waitForSynchronization".into(), json!(true));
                    b.insert("queue".into(), json!(queue(hook)));
                    Value::Object(b)
                })
                .collect();
            m.insert("kubernetes".into(), Value::Array(k));
        }
        if let Some(order) = self.before_helm {
            m.insert("beforeHelm".into(), json!(order));
        }
        if let Some(order) = self.after_helm {
            m.insert("afterHelm".into(), json!(order));
        }
        Value::Object(m)
    }
}

impl Kubernetes {
    fn common(&self) -> Map<String, Value> {
        let mut b = Map::new();
        b.insert("name".into(), json!(self.name));
        b.insert("apiVersion".into(), json!(self.api_version));
        b.insert("kind".into(), json!(self.kind));
        if let Some(ns) = self.namespace {
            b.insert(
                "namespace".into(),
                json!({"nameSelector": {"matchNames": [ns]}}),
            );
        }
        if let Some(n) = self.name_selector {
            b.insert("nameSelector".into(), json!({"matchNames": [n]}));
        }
        if !self.match_labels.is_empty() {
            let labels: Map<String, Value> = self
                .match_labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            b.insert("labelSelector".into(), json!({"matchLabels": labels}));
        }
        b.insert("jqFilter".into(), json!(self.jq_filter));
        b.insert("keepFullObjectsInMemory".into(), json!(false));
        b.insert(
            "executeHookOnSynchronization".into(),
            json!(self.on_synchronization),
        );
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_helm_is_an_addon_operator_binding_only() {
        let c = HookConfig {
            before_helm: Some(10),
            after_helm: Some(10),
            ..HookConfig::default()
        };
        assert_eq!(c.to_v1("h", Flavor::AddonOperator)["afterHelm"], json!(10));
        assert!(c
            .to_v1("h", Flavor::ShellOperator)
            .get("afterHelm")
            .is_none());
        assert_eq!(c.to_batch("h")["afterHelm"], json!(10));
        assert!(HookConfig::default()
            .to_batch("h")
            .get("afterHelm")
            .is_none());
    }
}
