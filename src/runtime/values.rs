//! Values patches under addon-operator's rules (SPEC §3.2): the JSON Patch crate's diff of the
//! values before and after the hook, adapted so that addon-operator applies it in strict mode —
//! only `add` and `remove`, whole arrays replaced by one `add` (index ops would be reordered by
//! addon-operator's path-sorting compaction), parents always exist, nothing for unchanged values,
//! every path under the module root.

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use serde_json::Value;

/// The module's values root key.
pub const MODULE_ROOT: &str = "istio";

/// Sets `value` at the dotted path under the module root in `values`, creating objects on the way.
pub fn set_path(values: &mut Value, dotted: &str, value: Value) -> Result<(), String> {
    let mut cur = values;
    let keys: Vec<&str> = std::iter::once(MODULE_ROOT)
        .chain(dotted.split('.'))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        if !cur.is_object() {
            if cur.is_null() {
                *cur = Value::Object(Default::default());
            } else {
                return Err(format!("values: {} is not an object", keys[..i].join(".")));
            }
        }
        let map = cur.as_object_mut().expect("object ensured above");
        if i == keys.len() - 1 {
            map.insert((*key).to_owned(), value);
            return Ok(());
        }
        cur = map.entry((*key).to_owned()).or_insert(Value::Null);
    }
    Ok(())
}

/// Sets `istio.<dotted>` to `value` only when nothing is there yet.
pub fn set_path_default(values: &mut Value, dotted: &str, value: Value) -> Result<(), String> {
    let pointer = format!("/{MODULE_ROOT}/{}", dotted.replace('.', "/"));
    if values.pointer(&pointer).is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    set_path(values, dotted, value)
}

/// The patch that turns `before` into `after`, addon-operator style.
pub fn diff(before: &Value, after: &Value) -> Result<Vec<PatchOperation>, String> {
    let raw: Patch = json_patch::diff(before, after);
    let mut out: Vec<PatchOperation> = Vec::new();
    let mut anchors: Vec<PointerBuf> = Vec::new();
    for op in raw.0 {
        let path = match &op {
            PatchOperation::Add(o) => o.path.clone(),
            PatchOperation::Remove(o) => o.path.clone(),
            PatchOperation::Replace(o) => o.path.clone(),
            other => return Err(format!("values diff produced an unexpected {other:?}")),
        };
        let anchor = array_anchor(before, after, &path);
        check_root(&anchor)?;
        if anchors.iter().any(|a| a == &anchor) {
            continue;
        }
        anchors.push(anchor.clone());
        match anchor.resolve(after) {
            Ok(v) => out.push(PatchOperation::Add(AddOperation {
                path: anchor,
                value: v.clone(),
            })),
            Err(_) => out.push(PatchOperation::Remove(RemoveOperation { path: anchor })),
        }
    }
    out.sort_by(|a, b| op_path(a).cmp(op_path(b)));
    Ok(out)
}

fn op_path(op: &PatchOperation) -> &str {
    match op {
        PatchOperation::Add(o) => o.path.as_str(),
        PatchOperation::Remove(o) => o.path.as_str(),
        _ => "",
    }
}

/// The shortest prefix of `path` that is an array in either document, or `path` itself.
fn array_anchor(before: &Value, after: &Value, path: &Pointer) -> PointerBuf {
    let mut prefix = PointerBuf::new();
    for token in path.tokens() {
        prefix.push_back(token);
        let is_array = |doc: &Value| prefix.resolve(doc).is_ok_and(Value::is_array);
        if is_array(before) || is_array(after) {
            return prefix;
        }
    }
    path.to_buf()
}

fn check_root(path: &Pointer) -> Result<(), String> {
    match path.tokens().next() {
        Some(t) if t.decoded() == MODULE_ROOT && path.tokens().count() > 1 => Ok(()),
        _ => Err(format!(
            "values patch path {path} is outside /{MODULE_ROOT}/"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(before: Value, after: Value) -> Value {
        serde_json::to_value(diff(&before, &after).unwrap()).unwrap()
    }

    #[test]
    fn unchanged_values_emit_nothing() {
        let v = json!({"istio": {"internal": {"a": [1, 2], "b": {"c": 1}}}});
        assert_eq!(ops(v.clone(), v), json!([]));
    }

    #[test]
    fn replace_becomes_add_and_arrays_are_whole() {
        let before = json!({"istio": {"internal": {"a": [1, 2, 3], "s": "x", "gone": 1, "m": {"k": [{"x": 1}]}}}});
        let after = json!({"istio": {"internal": {"a": [1, 3], "s": "y", "new": {"deep": true}, "m": {"k": [{"x": 2}]}}}});
        assert_eq!(
            ops(before, after),
            json!([
                {"op": "add", "path": "/istio/internal/a", "value": [1, 3]},
                {"op": "remove", "path": "/istio/internal/gone"},
                {"op": "add", "path": "/istio/internal/m/k", "value": [{"x": 2}]},
                {"op": "add", "path": "/istio/internal/new", "value": {"deep": true}},
                {"op": "add", "path": "/istio/internal/s", "value": "y"}
            ])
        );
    }

    #[test]
    fn missing_parents_are_added_whole() {
        let mut after = json!({"istio": {}});
        set_path(&mut after, "internal.federations", json!([])).unwrap();
        assert_eq!(
            ops(json!({"istio": {}}), after),
            json!([{"op": "add", "path": "/istio/internal", "value": {"federations": []}}])
        );
    }

    #[test]
    fn paths_outside_the_module_are_refused() {
        assert!(
            diff(&json!({"global": {"a": 1}}), &json!({"global": {"a": 2}}))
                .unwrap_err()
                .contains("outside /istio/")
        );
        let mut v = json!({"istio": {"internal": 5}});
        assert!(set_path(&mut v, "internal.x", json!(1))
            .unwrap_err()
            .contains("istio.internal is not an object"));
    }
}
