//! Binding contexts as shell-operator and addon-operator write them (SPEC §3.4): every context
//! type, items with `object` and/or `filterResult`. The runtime folds a file of contexts into
//! [`Snapshots`]: the current state of each kubernetes binding, which is all hooks read.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One snapshot / `objects[]` item. Either key may be absent or `null`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub filter_result: Option<Value>,
}

impl Item {
    /// What a hook reads: the jq projection when present and non-null, else the object
    /// (module-sdk's rule). `{}` counts as nothing, as module-sdk's transport drops it.
    pub fn into_content(self) -> Option<Value> {
        let useful = |v: &Value| !v.is_null() && v != &Value::Object(Default::default());
        match (self.filter_result, self.object) {
            (Some(f), _) if useful(&f) => Some(f),
            (_, Some(o)) if useful(&o) => Some(o),
            _ => None,
        }
    }
}

/// One binding context. Unknown keys (webhook reviews, …) are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingContext {
    pub binding: String,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub watch_event: Option<String>,
    #[serde(default)]
    pub snapshots: Option<BTreeMap<String, Vec<Item>>>,
    #[serde(default)]
    pub objects: Option<Vec<Item>>,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub filter_result: Option<Value>,
}

/// Current state per kubernetes binding name: the content of every item, in snapshot order
/// (namespace, then name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshots(pub BTreeMap<String, Vec<Value>>);

impl Snapshots {
    /// Items of `binding` (empty when the binding sent none).
    pub fn get(&self, binding: &str) -> &[Value] {
        self.0.get(binding).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Parses a binding-context file. `source` names the file in errors.
pub fn parse(bytes: &[u8], source: &str) -> Result<Vec<BindingContext>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    // Fast path without path tracking; a failure is parsed again to name the place.
    if let Ok(contexts) = serde_json::from_slice::<Vec<BindingContext>>(bytes) {
        return Ok(contexts);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let contexts: Vec<BindingContext> =
        serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                format!("binding context {source}: invalid JSON: {inner}")
            } else {
                format!("binding context {source}: at {path}: {inner}")
            }
        })?;
    // Bytes after the array (`[]]`) make the whole file invalid, as for every other JSON reader.
    de.end()
        .map_err(|e| format!("binding context {source}: invalid JSON: {e}"))?;
    Ok(contexts)
}

/// Folds all contexts of one run into the current state. Snapshots are refreshed before each run,
/// so every context carries the same state for a binding: the last one wins. A binding that sent
/// only a Synchronization (ungrouped) contributes its `objects`.
pub fn fold(contexts: Vec<BindingContext>) -> Snapshots {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut from_sync: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ctx in contexts {
        if let Some(snaps) = ctx.snapshots {
            for (name, items) in snaps {
                out.insert(
                    name,
                    items.into_iter().filter_map(Item::into_content).collect(),
                );
            }
        }
        if ctx.type_.as_deref() == Some("Synchronization") {
            if let Some(objects) = ctx.objects {
                from_sync.insert(
                    ctx.binding,
                    objects.into_iter().filter_map(Item::into_content).collect(),
                );
            }
        }
    }
    for (name, items) in from_sync {
        out.entry(name).or_insert(items);
    }
    Snapshots(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps(text: &str) -> Snapshots {
        fold(parse(text.as_bytes(), "t.json").unwrap())
    }

    #[test]
    fn every_context_type() {
        assert_eq!(snaps(r#"[{"binding":"onStartup"}]"#), Snapshots::default());
        assert_eq!(
            snaps(r#"[{"binding":"cron","type":"Schedule"}]"#),
            Snapshots::default()
        );
        let s = snaps(
            r#"[{"binding":"beforeHelm","snapshots":{"a":[{"object":{"k":1}},{"filterResult":{"f":2},"object":{"k":2}},{"filterResult":null,"object":{"k":3}},{"filterResult":null},{}]}}]"#,
        );
        assert_eq!(
            s.get("a"),
            [
                serde_json::json!({"k":1}),
                serde_json::json!({"f":2}),
                serde_json::json!({"k":3})
            ]
        );
        let s = snaps(
            r#"[{"binding":"a","type":"Synchronization","objects":[{"object":{"k":1}}]},{"binding":"a","type":"Event","watchEvent":"Added","object":{"k":2},"filterResult":null}]"#,
        );
        assert_eq!(s.get("a").len(), 1);
        let s = snaps(
            r#"[{"binding":"a","type":"Group","groupName":"main","snapshots":{"a":[],"b":[{"filterResult":"x"}]}},{"binding":"b","type":"Group","groupName":"main","snapshots":{"a":[{"filterResult":1}],"b":[]}}]"#,
        );
        assert_eq!(s.get("a"), [serde_json::json!(1)]);
        assert!(s.get("b").is_empty());
        assert!(s.get("missing").is_empty());
        assert_eq!(snaps(""), Snapshots::default());
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse(b"[{\"binding\":", "ctx.json").unwrap_err();
        assert!(
            e.starts_with("binding context ctx.json: invalid JSON"),
            "{e}"
        );
        let e = parse(br#"{"binding":"x"}"#, "ctx.json").unwrap_err();
        assert!(e.contains("ctx.json") && e.contains("sequence"), "{e}");
        let e = parse(
            br#"[{"binding":"x","snapshots":{"a":[{"object":1},7]}}]"#,
            "ctx.json",
        )
        .unwrap_err();
        assert!(e.contains("[0].snapshots.a[1]"), "{e}");
        let e = parse(br#"[{"type":"Schedule"}]"#, "ctx.json").unwrap_err();
        assert!(e.contains("binding"), "{e}");
    }
}
