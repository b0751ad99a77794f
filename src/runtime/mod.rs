//! The hook runtime: the shell-operator/addon-operator protocol and nothing else. It knows
//! binding contexts, values files and patches, object and metric streams, modes and exit codes;
//! it knows nothing of federation. Hooks implement [`Hook`]: a binding config plus a function
//! from [`HookInput`] (snapshots, values, clock, HTTP client) to [`HookOutput`]. The HTTP
//! client is only handed through: it is [`crate::net`]'s.

pub mod binding;
pub mod config;
pub mod logging;
pub mod output;
pub mod run;
pub mod values;

pub use binding::Snapshots;
pub use config::HookConfig;
pub use output::{Metrics, ObjectOp};

use crate::net::HttpGet;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One hook: its bindings and its handler.
pub trait Hook: Sync {
    /// Subcommand and `hook list` name.
    fn name(&self) -> &'static str;
    fn config(&self) -> HookConfig;
    /// The handler. An error fails the run: nothing is written, the operator retries.
    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput>;
}

/// What a handler sees.
pub struct HookInput<'a> {
    pub snapshots: &'a Snapshots,
    /// Effective values `{"global": …, "istio": …}` (config values overlaid by values).
    pub values: &'a Value,
    pub now: DateTime<Utc>,
    pub http: &'a dyn HttpGet,
}

/// What a handler produces.
#[derive(Debug, Default)]
pub struct HookOutput {
    /// Values to set, by dotted path under `istio.` (e.g. `internal.trustBundle`), as JSON text:
    /// serialized once, straight from the hook's types (no [`Value`] tree).
    pub values: Vec<(String, Box<serde_json::value::RawValue>)>,
    pub object_ops: Vec<ObjectOp>,
    pub metrics: Option<Metrics>,
}

impl HookOutput {
    /// Sets `istio.<path>` to `value`.
    pub fn set(&mut self, path: &str, value: impl Serialize) {
        let v = serde_json::value::to_raw_value(&value).expect("hook values serialize to JSON");
        self.values.push((path.to_owned(), v));
    }
}

/// The protocol-level result of one run, ready to be written.
#[derive(Debug, Default)]
pub struct Outcome {
    pub values_patch: Vec<values::ValuesOp>,
    pub object_ops: Vec<ObjectOp>,
    pub metrics: Option<Metrics>,
}

/// Deep merge: `over` wins, objects merge recursively.
pub fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                overlay(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Runs `hook` on parsed inputs and turns its output into protocol outputs. Pure but for the
/// hook's own HTTP calls.
pub fn execute(
    hook: &dyn Hook,
    snapshots: &Snapshots,
    values: &Value,
    config_values: &Value,
    now: DateTime<Utc>,
    http: &dyn HttpGet,
) -> Result<Outcome, String> {
    let mut effective = config_values.clone();
    overlay(&mut effective, values);
    let input = HookInput {
        snapshots,
        values: &effective,
        now,
        http,
    };
    let out = hook
        .run(&input)
        .map_err(|e| format!("{}: {e:#}", hook.name()))?;
    // addon-operator always holds `istio.internal` (openapi defaults `{}`); so do we, so that
    // patches never need to create the module root.
    let internal = format!("/{}/internal", values::MODULE_ROOT);
    let before = if values.pointer(&internal).is_some_and(|v| !v.is_null()) {
        std::borrow::Cow::Borrowed(values)
    } else {
        let mut v = values.clone();
        values::set_path_default(&mut v, "internal", Value::Object(Default::default()))
            .map_err(|e| format!("{}: {e}", hook.name()))?;
        std::borrow::Cow::Owned(v)
    };
    let values_patch =
        values::patch_raw(&before, out.values).map_err(|e| format!("{}: {e}", hook.name()))?;
    Ok(Outcome {
        values_patch,
        object_ops: out.object_ops,
        metrics: out.metrics,
    })
}
