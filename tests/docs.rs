//! Keeps `docs/` from drifting: every setting of `openapi/config-values.yaml` must be named in
//! `docs/SETTINGS.md`, and every spec/status field of the three CRDs in `docs/CRDS.md`, each as
//! a backquoted dotted path (arrays as `[]`, e.g. `alliance.ingressGateway.advertise[].port`).

use serde_yaml::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every dotted path under an OpenAPI schema's `properties`, recursing into objects and arrays.
fn paths(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_mapping) {
        for (k, v) in props {
            let Some(k) = k.as_str() else { continue };
            let path = if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(path.clone());
            paths(v, &path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        paths(items, &format!("{prefix}[]"), out);
    }
}

fn missing(doc: &str, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .cloned()
        .collect()
}

#[test]
fn every_setting_is_documented() {
    let mut wanted = Vec::new();
    paths(&yaml("openapi/config-values.yaml"), "", &mut wanted);
    assert!(wanted.len() > 10, "parsed too few settings: {wanted:?}");
    assert!(wanted.contains(&"alliance.metadataFetch.timeout".to_owned()));
    let doc = read("docs/SETTINGS.md");
    let gaps = missing(&doc, &wanted);
    assert!(
        gaps.is_empty(),
        "docs/SETTINGS.md does not mention: {gaps:?}"
    );
}

#[test]
fn every_crd_field_is_documented() {
    let doc = read("docs/CRDS.md");
    for file in [
        "crds/istiofederation.yaml",
        "crds/istiomulticluster.yaml",
        "crds/istiomulticloud.yaml",
    ] {
        let crd = yaml(file);
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
        assert!(doc.contains(&format!("## {kind}")), "no section for {kind}");
        let versions = crd["spec"]["versions"].as_sequence().unwrap();
        for v in versions {
            let schema = &v["schema"]["openAPIV3Schema"]["properties"];
            let mut wanted = Vec::new();
            for top in ["spec", "status"] {
                paths(&schema[top], top, &mut wanted);
            }
            let gaps = missing(&doc, &wanted);
            assert!(
                gaps.is_empty(),
                "docs/CRDS.md ({kind}) does not mention: {gaps:?}"
            );
        }
    }
}
