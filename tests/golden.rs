//! Golden-file tests for every hook: one runner walks `testdata/<hook>/<case>/`.
//!
//! A case holds `binding-context.json` and optionally `values.json`, `config-values.json`,
//! `http.json` (canned answers by URL: `{"status": 200, "body": …, "etag": "\"…\""}` (a request
//! with that `If-None-Match` gets a 304) or `{"error": "timeout" |
//! "too-large" | "<transport message>"}`), `now.txt` (RFC 3339) and `mask.json` (JSON pointers
//! into the values patch whose generated values are masked). Expected outputs:
//! `values-patch.json`, `object-patches.jsonl`, `metrics.jsonl`, `http-requests.json`, or
//! `error.txt` for a run that must fail. `UPDATE_GOLDEN=1` rewrites the expectations.
//!
//! Every passing case is also checked the way addon-operator would: the values patch is applied
//! in strict mode and the result validated against `openapi/`, and a second run on the patched
//! values must emit no values ops (idempotency).

use istio_hooks::hooks::REGISTRY;
use istio_hooks::net::{CannedClient, Failure, Response};
use istio_hooks::runtime::{binding, execute, output, Hook};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_NOW: &str = "2026-11-22T00:00:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_opt(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_json(p: &Path) -> Value {
    read_opt(p)
        .map(|s| serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|| json!({}))
}

fn canned(case: &Path) -> CannedClient {
    let mut client = CannedClient::default();
    let spec = read_json(&case.join("http.json"));
    for (url, answer) in spec.as_object().into_iter().flatten() {
        let result = match answer.get("error").and_then(Value::as_str) {
            Some("timeout") => Err(Failure::Timeout(Duration::from_secs(5))),
            Some("too-large") => Err(Failure::TooLarge(1_048_576)),
            Some(msg) => Err(Failure::Transport(msg.to_owned())),
            None => {
                let status = answer.get("status").and_then(Value::as_u64).unwrap_or(200) as u16;
                let body = match answer.get("body") {
                    Some(Value::String(s)) => s.clone().into_bytes(),
                    Some(v) => serde_json::to_vec(v).unwrap(),
                    None => Vec::new(),
                };
                let etag = answer
                    .get("etag")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(Response { status, body, etag })
            }
        };
        client.answers.insert(url.clone(), result);
        if let Some(want) = answer.get("requireBearer").and_then(Value::as_str) {
            client.required_bearer.insert(url.clone(), want.to_owned());
        }
    }
    client
}

/// addon-operator's view of the module's values schema: config-values.yaml's properties plus
/// values.yaml's, `additionalProperties: false` wherever unspecified.
pub fn values_schema() -> Option<Value> {
    let load = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(root().join("openapi").join(name)).ok()?;
        Some(serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("openapi/{name}: {e}")))
    };
    let config = load("config-values.yaml")?;
    let values = load("values.yaml")?;
    let mut merged = config.clone();
    let props = merged["properties"]
        .as_object_mut()
        .expect("config-values.yaml has properties");
    for (k, v) in values["properties"].as_object().into_iter().flatten() {
        props.insert(k.clone(), v.clone());
    }
    fn close(v: &mut Value) {
        if let Value::Object(m) = v {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), json!(false));
            }
            for (k, child) in m.iter_mut() {
                if k != "default" && k != "x-examples" && k != "example" {
                    close(child);
                }
            }
        } else if let Value::Array(a) = v {
            a.iter_mut().for_each(close);
        }
    }
    close(&mut merged);
    if let Value::Object(m) = &mut merged {
        m.retain(|k, _| !k.starts_with("x-"));
    }
    Some(merged)
}

fn apply_strict(values: &Value, patch_json: &Value) -> Result<Value, String> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch_json.clone()).map_err(|e| e.to_string())?;
    let mut doc = values.clone();
    if doc.pointer("/istio/internal").is_none() {
        doc["istio"]["internal"] = json!({});
    }
    json_patch::patch(&mut doc, &patch).map_err(|e| format!("strict apply failed: {e}"))?;
    Ok(doc)
}

fn mask(patch: &mut Value, masks: &Value) {
    for m in masks.as_array().into_iter().flatten() {
        let ptr = m.as_str().expect("mask entries are JSON pointers");
        let v = patch
            .pointer_mut(ptr)
            .unwrap_or_else(|| panic!("mask {ptr} matches nothing in the values patch"));
        assert!(
            v.as_str().is_some_and(|s| !s.is_empty()),
            "masked value at {ptr} must be a non-empty string"
        );
        *v = json!("<masked>");
    }
}

struct Golden {
    update: bool,
    failures: Vec<String>,
}

impl Golden {
    fn compare(&mut self, case: &Path, file: &str, actual: &str) {
        let path = case.join(file);
        if self.update {
            if actual.is_empty() {
                let _ = std::fs::remove_file(&path);
            } else {
                std::fs::write(&path, actual).unwrap();
            }
            return;
        }
        let expected = read_opt(&path).unwrap_or_default();
        if expected != actual {
            let diff =
                similar_asserts::SimpleDiff::from_str(&expected, actual, "expected", "actual");
            self.failures
                .push(format!("{}: {file} differs:\n{diff}", case.display()));
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

fn run_case(hook: &dyn Hook, case: &Path, g: &mut Golden) {
    let now = read_opt(&case.join("now.txt")).unwrap_or_else(|| DEFAULT_NOW.to_owned());
    let now = chrono::DateTime::parse_from_rfc3339(now.trim())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let bc_path = case.join("binding-context.json");
    let bc = std::fs::read(&bc_path).unwrap_or_else(|e| panic!("{}: {e}", bc_path.display()));
    let values = read_json(&case.join("values.json"));
    let config_values = read_json(&case.join("config-values.json"));
    let http = canned(case);
    let result = binding::parse(&bc, "binding-context.json")
        .map(binding::fold)
        .and_then(|snaps| {
            execute(hook, &snaps, &values, &config_values, now, &http).map(|o| (snaps, o))
        });
    let (snaps, outcome) = match result {
        Err(e) => {
            g.compare(case, "error.txt", &(e + "\n"));
            for f in ["values-patch.json", "object-patches.jsonl", "metrics.jsonl"] {
                g.compare(case, f, "");
            }
            return;
        }
        Ok(r) => r,
    };
    g.compare(case, "error.txt", "");
    let patch = serde_json::to_value(&outcome.values_patch).unwrap();
    let mut shown = patch.clone();
    mask(&mut shown, &read_json(&case.join("mask.json")));
    g.compare(case, "values-patch.json", &pretty(&shown));
    g.compare(
        case,
        "object-patches.jsonl",
        &output::object_ops_to_lines(&outcome.object_ops),
    );
    g.compare(
        case,
        "metrics.jsonl",
        &outcome
            .metrics
            .as_ref()
            .map(|m| m.to_lines())
            .unwrap_or_default(),
    );
    for failure in istio_object_errors(&outcome.object_ops) {
        g.failures.push(format!("{}: {failure}", case.display()));
    }
    let seen = http.seen.lock().unwrap();
    if !seen.is_empty() || case.join("http.json").exists() {
        let reqs: Vec<Value> = seen
            .iter()
            .map(|r| {
                let mut v = json!({"url": r.url, "bearer": r.bearer.is_some()});
                if let Some(tag) = &r.if_none_match {
                    v["ifNoneMatch"] = json!(tag);
                }
                v
            })
            .collect();
        g.compare(case, "http-requests.json", &pretty(&Value::Array(reqs)));
    }
    drop(seen);

    let applied = match apply_strict(&values, &patch) {
        Ok(v) => v,
        Err(e) => {
            g.failures.push(format!("{}: {e}", case.display()));
            return;
        }
    };
    if let Some(schema) = values_schema() {
        let validator = jsonschema::validator_for(&schema).expect("openapi schema compiles");
        let istio = applied.get("istio").cloned().unwrap_or(json!({}));
        let errors: Vec<String> = validator
            .iter_errors(&istio)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if !errors.is_empty() {
            g.failures.push(format!(
                "{}: patched values fail openapi/: {}",
                case.display(),
                errors.join("; ")
            ));
        }
    }
    let again = execute(hook, &snaps, &applied, &config_values, now, &canned(case))
        .expect("second run succeeds");
    if !again.values_patch.is_empty() {
        g.failures.push(format!(
            "{}: not idempotent, second run emitted {}",
            case.display(),
            serde_json::to_string(&again.values_patch).unwrap()
        ));
    }
}

/// Every Istio object a hook creates, checked against Istio's CRD schema of its version
/// (testdata/schemas/istio-crds.yaml, as the chart's renders are in tests/helm/render.py).
fn istio_object_errors(ops: &[output::ObjectOp]) -> Vec<String> {
    static SCHEMAS: std::sync::OnceLock<std::collections::BTreeMap<(String, String), Value>> =
        std::sync::OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("testdata/schemas/istio-crds.yaml"))
            .expect("testdata/schemas/istio-crds.yaml");
        let mut out = std::collections::BTreeMap::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let crd: Value = serde::Deserialize::deserialize(doc).expect("CRD YAML");
            let (Some(group), Some(kind)) = (
                crd.pointer("/spec/group").and_then(Value::as_str),
                crd.pointer("/spec/names/kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let api = format!("{group}/{}", v["name"].as_str().unwrap_or_default());
                out.insert(
                    (api, kind.to_owned()),
                    v["schema"]["openAPIV3Schema"].clone(),
                );
            }
        }
        out
    });
    let mut errors = Vec::new();
    for op in ops {
        let (output::ObjectOp::CreateOrUpdate { object }
        | output::ObjectOp::CreateIfNotExists { object }) = op
        else {
            continue;
        };
        let api = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        if !api.contains(".istio.io/") {
            continue;
        }
        let Some(schema) = schemas.get(&(api.to_owned(), kind.to_owned())) else {
            errors.push(format!("{kind} {api}: no such Istio CRD version"));
            continue;
        };
        let validator = jsonschema::validator_for(schema).expect("CRD schema compiles");
        for e in validator.iter_errors(object) {
            errors.push(format!("{kind} {}: {e} at {}", op.name(), e.instance_path));
        }
    }
    errors
}

#[test]
fn golden_cases() {
    let mut g = Golden {
        update: std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1"),
        failures: Vec::new(),
    };
    let mut count = 0;
    for hook in REGISTRY {
        let dir = root().join("testdata").join(hook.name());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut cases: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        cases.sort();
        for case in cases {
            run_case(*hook, &case, &mut g);
            count += 1;
        }
    }
    eprintln!("golden: {count} cases");
    assert!(count > 0, "no golden cases found");
    assert!(
        g.failures.is_empty(),
        "{} golden failures:\n{}",
        g.failures.len(),
        g.failures.join("\n\n")
    );
}
