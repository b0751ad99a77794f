//! Values patches under addon-operator's rules (SPEC §3.2): the JSON Patch crate's diff of the
//! values before and after the hook, adapted so that addon-operator applies it in strict mode —
//! only `add` and `remove`, whole arrays replaced by one `add` (index ops would be reordered by
//! addon-operator's path-sorting compaction), parents always exist, nothing for unchanged values,
//! every path under the module root.

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use serde::Serialize;
use serde_json::value::RawValue;
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

/// One operation of a values patch: either from the JSON Patch diff, or an `add` whose value is
/// already JSON text (a hook's output serialized once, never built as a [`Value`] tree).
/// Serializes exactly as [`PatchOperation`] does (`{"op":"add","path":…,"value":…}`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ValuesOp {
    Op(PatchOperation),
    RawAdd(RawAdd),
}

/// An `add` of a value given as JSON text.
#[derive(Debug, Clone, Serialize)]
pub struct RawAdd {
    op: AddTag,
    pub path: PointerBuf,
    pub value: Box<RawValue>,
}

/// Serializes as `"add"`.
#[derive(Debug, Clone, Copy)]
struct AddTag;

impl Serialize for AddTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("add")
    }
}

impl ValuesOp {
    /// The op's JSON pointer.
    pub fn path(&self) -> &str {
        match self {
            ValuesOp::Op(op) => op_path(op),
            ValuesOp::RawAdd(a) => a.path.as_str(),
        }
    }
}

/// The patch that sets each `(dotted path, value)` of `sets` (under the module root) in
/// `before`, addon-operator style, for values given as JSON text (what
/// [`crate::runtime::HookOutput::set`] keeps). Computed per set path rather than by diffing whole
/// documents: only objects present on both sides are diffed (their subtree only); overlapping
/// paths (one a prefix of another) fall back to the whole-document [`diff`], which gives the
/// same result. A value that is new or replaced whole goes into the patch as the text it is, and an unchanged one is recognised by comparing the old value's serialization
/// with the text, without building either as a tree. Only when that fails (the old value's keys
/// are in another order, or an object changed and must be diffed key by key) is the text parsed.
pub fn patch_raw(
    before: &Value,
    sets: Vec<(String, Box<RawValue>)>,
) -> Result<Vec<ValuesOp>, String> {
    let overlapping = sets.iter().enumerate().any(|(i, (a, _))| {
        sets.iter()
            .skip(i + 1)
            .any(|(b, _)| is_key_prefix(a, b) || is_key_prefix(b, a))
    });
    if overlapping {
        let parsed = sets
            .into_iter()
            .map(|(p, raw)| Ok((p, parse_raw(&raw)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut after = before.clone();
        for (path, v) in parsed {
            set_path(&mut after, &path, v)?;
        }
        return Ok(diff(before, &after)?
            .into_iter()
            .map(ValuesOp::Op)
            .collect());
    }
    let mut out = Vec::new();
    for (dotted, raw) in sets {
        raw_set_ops(before, &dotted, raw, &mut out)?;
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

fn parse_raw(raw: &RawValue) -> Result<Value, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("values: hook output is not JSON: {e}"))
}

/// The ops [`set_path`]`(before, dotted, value)` followed by [`diff`] would give, pushed on `out`.
fn raw_set_ops(
    before: &Value,
    dotted: &str,
    raw: Box<RawValue>,
    out: &mut Vec<ValuesOp>,
) -> Result<(), String> {
    let keys: Vec<&str> = std::iter::once(MODULE_ROOT)
        .chain(dotted.split('.'))
        .collect();
    let mut path = PointerBuf::new();
    let mut node = before;
    for (i, key) in keys.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!("values: {} is not an object", keys[..i].join(".")));
        };
        path.push_back(*key);
        let last = i == keys.len() - 1;
        match map.get(*key) {
            // A missing (or null) parent is created whole, holding the rest of the path.
            Some(Value::Null) | None if !last => {
                let mut text = String::new();
                for k in &keys[i + 1..] {
                    text.push('{');
                    text.push_str(&serde_json::to_string(k).map_err(|e| e.to_string())?);
                    text.push(':');
                }
                text.push_str(raw.get());
                text.push_str(&"}".repeat(keys.len() - i - 1));
                let nested = RawValue::from_string(text).map_err(|e| e.to_string())?;
                return push_raw_add(out, path, nested);
            }
            None => return push_raw_add(out, path, raw),
            Some(old) if last => {
                if serializes_to(old, raw.get()) {
                    return Ok(());
                }
                let value = parse_raw(&raw)?;
                if *old == value {
                    return Ok(());
                }
                if old.is_object() && value.is_object() {
                    out.extend(
                        diff_under(&path, old, &value)?
                            .into_iter()
                            .map(ValuesOp::Op),
                    );
                    return Ok(());
                }
                return push_raw_add(out, path, raw);
            }
            Some(next) => node = next,
        }
    }
    Ok(())
}

fn push_raw_add(
    out: &mut Vec<ValuesOp>,
    path: PointerBuf,
    value: Box<RawValue>,
) -> Result<(), String> {
    check_root(&path)?;
    out.push(ValuesOp::RawAdd(RawAdd {
        op: AddTag,
        path,
        value,
    }));
    Ok(())
}

/// True when `v` serializes (compactly) to exactly `text`; compared as it is written, no copy.
fn serializes_to(v: &Value, text: &str) -> bool {
    /// Consumes the expected bytes; fails on the first difference.
    struct Expect<'a>(&'a [u8]);
    impl std::io::Write for Expect<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.0.strip_prefix(buf) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(buf.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut expect = Expect(text.as_bytes());
    serde_json::to_writer(&mut expect, v).is_ok() && expect.0.is_empty()
}

/// True when the dotted path `a` equals `b` or names one of its parents.
fn is_key_prefix(a: &str, b: &str) -> bool {
    b.strip_prefix(a)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The patch that turns `before` into `after`, addon-operator style.
pub fn diff(before: &Value, after: &Value) -> Result<Vec<PatchOperation>, String> {
    let mut out = diff_under(&PointerBuf::new(), before, after)?;
    out.sort_by(|a, b| op_path(a).cmp(op_path(b)));
    Ok(out)
}

/// [`diff`] of two subtrees found at `prefix` (unsorted), with paths made absolute. Every proper
/// prefix of `prefix` must be an object on both sides.
fn diff_under(
    prefix: &Pointer,
    before: &Value,
    after: &Value,
) -> Result<Vec<PatchOperation>, String> {
    let raw: Patch = json_patch::diff(before, after);
    let mut out: Vec<PatchOperation> = Vec::new();
    let mut anchors: Vec<PointerBuf> = Vec::new();
    for op in raw.0 {
        let path = match &op {
            PatchOperation::Add(o) => &o.path,
            PatchOperation::Remove(o) => &o.path,
            PatchOperation::Replace(o) => &o.path,
            other => return Err(format!("values diff produced an unexpected {other:?}")),
        };
        let anchor = array_anchor(before, after, path);
        if anchors.iter().any(|a| a == &anchor) {
            continue;
        }
        let resolved = anchor.resolve(after).ok().cloned();
        let mut full = prefix.to_buf();
        for token in anchor.tokens() {
            full.push_back(token);
        }
        check_root(&full)?;
        anchors.push(anchor);
        match resolved {
            Some(value) => out.push(PatchOperation::Add(AddOperation { path: full, value })),
            None => out.push(PatchOperation::Remove(RemoveOperation { path: full })),
        }
    }
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

    /// `patch_raw` gives exactly what setting every path and diffing the whole documents gives.
    #[test]
    fn per_path_patch_equals_whole_document_diff() {
        let before = json!({"istio": {"internal": {
            "arr": [1, {"a": 2}], "obj": {"k": [1], "s": "x", "gone": 1, "deep": {"x": {"y": 1}}},
            "same": {"a": [1, 2]}, "nul": null, "num": 1, "objarr": {"a": 1}
        }}});
        let cases: Vec<Vec<(&str, Value)>> = vec![
            vec![("internal.arr", json!([1, {"a": 3}]))],
            vec![("internal.arr", json!([1, {"a": 2}]))],
            vec![(
                "internal.obj",
                json!({"k": [2], "s": "x", "new": {"n": 1}, "deep": {"x": {"y": 2}}}),
            )],
            vec![
                ("internal.same", json!({"a": [1, 2]})),
                ("internal.num", json!(2)),
            ],
            vec![("internal.nul", json!({"a": 1}))],
            vec![("internal.nul.x.y", json!([]))],
            vec![("internal.missing.x.y", json!({"z": 1}))],
            vec![("internal.objarr", json!([1]))],
            vec![("internal.arr", json!({"a": 1}))],
            vec![("internal.num", json!(null))],
            vec![("other", json!(1)), ("internal.new", json!([]))],
            vec![("internal.obj", json!({})), ("internal.obj.k", json!([3]))],
        ];
        for sets in cases {
            let mut after = before.clone();
            for (p, v) in &sets {
                set_path(&mut after, p, v.clone()).unwrap();
            }
            let want = serde_json::to_value(diff(&before, &after).unwrap()).unwrap();
            let raw = sets
                .iter()
                .map(|(p, v)| ((*p).to_owned(), serde_json::value::to_raw_value(v).unwrap()))
                .collect();
            let got_raw = patch_raw(&before, raw).unwrap();
            assert_eq!(
                serde_json::to_string(&got_raw).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "raw {sets:?}"
            );
        }
        // The same value with its keys in another order is unchanged (compared as a tree once the
        // text differs); a changed object is diffed key by key.
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        let sets = vec![("internal.same".to_owned(), raw(r#"{ "a" : [1,2] }"#))];
        assert!(patch_raw(&before, sets).unwrap().is_empty());
        let reordered = json!({"istio": {"internal": {"o": {"b": 1, "a": [1]}}}});
        let sets = vec![("internal.o".to_owned(), raw(r#"{"a":[1],"b":1}"#))];
        assert!(patch_raw(&reordered, sets).unwrap().is_empty());
        let sets = vec![("internal.o".to_owned(), raw(r#"{"a":[1],"b":2}"#))];
        assert_eq!(
            serde_json::to_string(&patch_raw(&reordered, sets).unwrap()).unwrap(),
            r#"[{"op":"add","path":"/istio/internal/o/b","value":2}]"#
        );
        let err = patch_raw(&before, vec![("internal.num.x".to_owned(), raw("1"))]).unwrap_err();
        assert!(err.contains("istio.internal.num is not an object"), "{err}");
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
