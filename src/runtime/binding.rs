//! Binding contexts as shell-operator and addon-operator write them (SPEC §3.4): every context
//! type, items with `object` and/or `filterResult`. The runtime folds a file of contexts into
//! [`Snapshots`]: the current state of each kubernetes binding, which is all hooks read. Items are
//! kept as the JSON text they were sent as (read once, never built as a tree up front): a hook
//! deserializes its typed view straight from the text, or asks for [`Value`]s, parsed on demand.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One snapshot / `objects[]` item. Either key may be absent or `null`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default)]
    pub object: Option<Box<RawValue>>,
    #[serde(default)]
    pub filter_result: Option<Box<RawValue>>,
}

/// True unless the JSON text is `null` or an empty object.
fn useful(raw: &RawValue) -> bool {
    let t = raw.get().trim();
    if t == "null" {
        return false;
    }
    !(t.starts_with('{') && t.ends_with('}') && t[1..t.len() - 1].trim().is_empty())
}

impl Item {
    /// What a hook reads: the jq projection when present and non-null, else the object
    /// (module-sdk's rule). `{}` counts as nothing, as module-sdk's transport drops it.
    pub fn into_content(self) -> Option<Box<RawValue>> {
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
    pub object: Option<Box<RawValue>>,
    #[serde(default)]
    pub filter_result: Option<Box<RawValue>>,
}

/// Current state per kubernetes binding name: the content of every item, in snapshot order
/// (namespace, then name), as JSON text; the [`Value`] view of a binding is parsed on first use.
///
/// Also which bindings fired (the `binding` of each context), for a hook that must act only
/// after a given step (e.g. `afterHelm`); equality compares the state only.
#[derive(Debug, Clone, Default)]
pub struct Snapshots {
    raw: BTreeMap<String, Vec<Box<RawValue>>>,
    parsed: BTreeMap<String, OnceLock<Vec<Value>>>,
    fired: Vec<String>,
}

impl PartialEq for Snapshots {
    fn eq(&self, other: &Snapshots) -> bool {
        self.raw.len() == other.raw.len()
            && self.raw.iter().zip(&other.raw).all(|((a, x), (b, y))| {
                a == b && x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.get() == y.get())
            })
    }
}

impl Snapshots {
    /// Snapshots holding these items (JSON text), by binding name.
    pub fn from_raw(raw: BTreeMap<String, Vec<Box<RawValue>>>) -> Snapshots {
        let parsed = raw.keys().map(|k| (k.clone(), OnceLock::new())).collect();
        Snapshots {
            raw,
            parsed,
            fired: Vec::new(),
        }
    }

    /// These snapshots, as delivered by contexts of the bindings `fired`.
    pub fn fired_by(mut self, fired: Vec<String>) -> Snapshots {
        self.fired = fired;
        self
    }

    /// Whether one of the run's binding contexts is of `binding` (e.g. `afterHelm`).
    pub fn fired(&self, binding: &str) -> bool {
        self.fired.iter().any(|b| b == binding)
    }

    /// Items of `binding` as [`Value`]s (empty when the binding sent none), parsed on first use.
    pub fn get(&self, binding: &str) -> &[Value] {
        let (Some(raw), Some(cell)) = (self.raw.get(binding), self.parsed.get(binding)) else {
            return &[];
        };
        cell.get_or_init(|| {
            // Every item was checked by `parse` to read as a `Value`; one that still does not
            // (impossible) is skipped rather than failing the run.
            raw.iter()
                .filter_map(|r| serde_json::from_str(r.get()).ok())
                .collect()
        })
    }

    /// Items of `binding` as JSON text (empty when the binding sent none), to deserialize typed
    /// views from without building a [`Value`] first.
    pub fn get_raw(&self, binding: &str) -> &[Box<RawValue>] {
        self.raw.get(binding).map(Vec::as_slice).unwrap_or_default()
    }

    /// The binding names that sent items (possibly none).
    pub fn bindings(&self) -> impl Iterator<Item = &str> {
        self.raw.keys().map(String::as_str)
    }
}

/// Reads any JSON value as [`Value`] would, allocating nothing: numbers out of range and nesting
/// beyond serde_json's recursion limit fail here, exactly as they would when parsed as a tree.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_none<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// Checks that every item of every context reads as a [`Value`] (see [`Checked`]).
fn check_items(contexts: &[BindingContext], source: &str) -> Result<(), String> {
    for (i, ctx) in contexts.iter().enumerate() {
        let snaps = ctx.snapshots.iter().flatten().flat_map(|(name, items)| {
            items
                .iter()
                .enumerate()
                .map(move |(j, item)| (format!("[{i}].snapshots.{name}[{j}]"), item))
        });
        let objects = ctx
            .objects
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, item)| (format!("[{i}].objects[{j}]"), item));
        for (place, item) in snaps.chain(objects) {
            for (key, raw) in [
                ("object", &item.object),
                ("filterResult", &item.filter_result),
            ] {
                if let Some(raw) = raw {
                    serde_json::from_str::<Checked>(raw.get())
                        .map_err(|e| format!("binding context {source}: at {place}.{key}: {e}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Parses a binding-context file. `source` names the file in errors.
pub fn parse(bytes: &[u8], source: &str) -> Result<Vec<BindingContext>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    // Fast path without path tracking; a failure is parsed again to name the place.
    if let Ok(contexts) = serde_json::from_slice::<Vec<BindingContext>>(bytes) {
        check_items(&contexts, source)?;
        return Ok(contexts);
    }
    // Items are captured as text without a depth limit: a file nested too deep must fail as it
    // would when read as a tree, with the recursion limit, not at its end.
    if let Err(e) = serde_json::from_slice::<Checked>(bytes) {
        if e.is_syntax() {
            return Err(format!("binding context {source}: invalid JSON: {e}"));
        }
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
    check_items(&contexts, source)?;
    Ok(contexts)
}

/// Folds all contexts of one run into the current state. Snapshots are refreshed before each run,
/// so every context carries the same state for a binding: the last one wins. A binding that sent
/// only a Synchronization (ungrouped) contributes its `objects`.
pub fn fold(contexts: Vec<BindingContext>) -> Snapshots {
    let mut out: BTreeMap<String, Vec<Box<RawValue>>> = BTreeMap::new();
    let mut from_sync: BTreeMap<String, Vec<Box<RawValue>>> = BTreeMap::new();
    let mut fired = Vec::with_capacity(contexts.len());
    for ctx in contexts {
        fired.push(ctx.binding.clone());
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
    Snapshots::from_raw(out).fired_by(fired)
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
