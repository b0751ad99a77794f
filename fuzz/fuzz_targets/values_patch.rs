//! Fuzz target: two JSON documents (concatenated in the input) as the `/istio` subtree before and
//! after a hook. The runtime's values diff must contain only `add`/`remove` operations under
//! `/istio/`, and applying it strictly to the first document must give the second.
#![no_main]
use istio_hooks::runtime::values;
use json_patch::PatchOperation;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let mut docs = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
    let (Some(Ok(a)), Some(Ok(b))) = (docs.next(), docs.next()) else {
        return;
    };
    let before = json!({"global": {"x": 1}, "istio": a});
    let after = json!({"global": {"x": 1}, "istio": b});
    let ops = match values::diff(&before, &after) {
        Ok(ops) => ops,
        Err(e) => {
            // Only a change of the module root itself (not an object on both sides) may fail.
            assert!(
                !(before["istio"].is_object() && after["istio"].is_object()),
                "diff refused object roots: {e}"
            );
            return;
        }
    };
    for op in &ops {
        let path = match op {
            PatchOperation::Add(o) => o.path.as_str(),
            PatchOperation::Remove(o) => o.path.as_str(),
            other => panic!("unexpected op {other:?}"),
        };
        assert!(path.starts_with("/istio/"), "path outside /istio: {path}");
    }
    let mut doc = before.clone();
    json_patch::patch(&mut doc, &ops).expect("patch applies strictly");
    assert_eq!(doc, after, "patched document differs");
    if before == after {
        assert!(ops.is_empty(), "ops for unchanged values");
    }
});
