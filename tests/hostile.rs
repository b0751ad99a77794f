//! Hostile inputs (`testdata/hostile/`, built by `make.py` there, plus a few generated here because
//! they are too big to commit): every one must end in a clear verdict — never a panic, an abort, a
//! signal, unbounded memory, rendered output from invalid data, or a lost cache.
//!
//! - binding contexts and values run the real binary as a process under `prlimit` (address space
//!   and CPU bounded): exit 0 or 1, one stderr line on failure, no output files on failure, and
//!   none of the sidecar's `absent` strings in what was rendered;
//! - remote documents go through `domain::validate`, then through `fetch-remote-metadata` (via
//!   `runtime::execute` and a `CannedClient`) for a CR with a good cache: a refused document never
//!   touches `status.metadataCache`;
//! - tokens go through `domain::jwt::authenticate_with_keys` and must be refused with the sidecar's reason;
//! - `fuzz-regressions/<target>/*` replays what the fuzzers found through the same functions.

use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::domain::metadata::{PublicMetadata, RemotePublicMetadata};
use istio_hooks::domain::{pki, validate};
use istio_hooks::net::{CannedClient, Response};
use istio_hooks::runtime::{binding, execute, values};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_istio-hooks");
/// Address space of one hook process (the 10 MB cases need well under this).
const AS_LIMIT: u64 = 2 << 30;
const CPU_LIMIT_SECS: u64 = 60;
/// Peak RSS any single hook process may reach, checked after the fact.
const RSS_LIMIT_KB: i64 = 512 * 1024;

fn hostile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/hostile")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(input, sidecar)` pairs of a corpus directory, sorted.
fn cases(dir: &str) -> Vec<(PathBuf, Value)> {
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(hostile().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expect.json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let sidecar = p.with_file_name(format!("{stem}.expect.json"));
            let expect = read_json(&sidecar);
            (p, expect)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no cases in {dir}");
    out
}

// ---------------------------------------------------------------------------------------------
// Processes

struct Run {
    out: Output,
    values_patch: String,
    object_ops: String,
}

/// Peak RSS (KB) of the largest child waited for so far.
fn children_max_rss_kb() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

fn run_hook(hook: &str, bc: &Path, values: &Path, config_values: &Path) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    for f in ["values-patch.json", "kube.json", "metrics.json"] {
        std::fs::write(p(f), "").unwrap();
    }
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={AS_LIMIT}"))
            .arg(format!("--cpu={CPU_LIMIT_SECS}"))
            .arg("--")
            .arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.arg(hook)
        .env("BINDING_CONTEXT_PATH", bc)
        .env("VALUES_PATH", values)
        .env("CONFIG_VALUES_PATH", config_values)
        .env("VALUES_JSON_PATCH_PATH", p("values-patch.json"))
        .env("KUBERNETES_PATCH_PATH", p("kube.json"))
        .env("METRICS_PATH", p("metrics.json"))
        .env_remove("LOG_LEVEL")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("spawn istio-hooks");
    Run {
        out,
        values_patch: std::fs::read_to_string(p("values-patch.json")).unwrap(),
        object_ops: std::fs::read_to_string(p("kube.json")).unwrap(),
    }
}

/// Checks a process run against its sidecar; `what` names the case in failures.
fn check_run(what: &str, run: &Run, expect: &Value) {
    let code = run.out.status.code();
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{what}: exit {:?} (a panic is 101, an abort a signal): {stderr}",
        run.out.status
    );
    let rendered = format!("{}\n{}\n{stdout}", run.values_patch, run.object_ops);
    if code == Some(1) {
        // Structured log lines (JSON) may precede it; the error itself is one plain line.
        let plain = stderr
            .lines()
            .filter(|l| !l.starts_with("{\"level\""))
            .count();
        assert_eq!(plain, 1, "{what}: one error line: {stderr}");
        assert_eq!(run.values_patch, "", "{what}: nothing written on failure");
        assert_eq!(run.object_ops, "", "{what}: nothing written on failure");
    }
    match &expect["exit"] {
        Value::Number(n) => assert_eq!(
            code.map(i64::from),
            n.as_i64(),
            "{what}: exit code; stderr: {stderr}"
        ),
        Value::String(s) if s == "any-clean" => {}
        other => panic!("{what}: bad sidecar exit {other}"),
    }
    if let Some(needle) = expect["stderr"].as_str() {
        assert!(
            stderr.contains(needle),
            "{what}: {stderr:?} lacks {needle:?}"
        );
    }
    for key in ["absent", "absent_stdout"] {
        for needle in expect[key].as_array().into_iter().flatten() {
            let needle = needle.as_str().unwrap();
            assert!(
                !rendered.contains(needle),
                "{what}: rendered output contains {needle:?}"
            );
        }
    }
    for needle in expect["present"].as_array().into_iter().flatten() {
        let needle = needle.as_str().unwrap();
        assert!(rendered.contains(needle), "{what}: {needle:?} not rendered");
    }
    let rss = children_max_rss_kb();
    assert!(rss < RSS_LIMIT_KB, "{what}: peak RSS {rss} KB");
}

#[test]
fn hostile_binding_contexts_end_in_a_clear_verdict() {
    let common = hostile().join("common");
    for (input, expect) in cases("binding-context") {
        let hook = expect["hook"].as_str().unwrap();
        let run = run_hook(
            hook,
            &input,
            &common.join("values.json"),
            &common.join("config-values.json"),
        );
        check_run(&input.display().to_string(), &run, &expect);
    }
}

#[test]
fn hostile_values_end_in_a_clear_verdict() {
    let common = hostile().join("common");
    let bc = hostile().join("binding-context/homoglyph-hostname.json");
    for (input, expect) in cases("values") {
        let hook = expect["hook"].as_str().unwrap();
        let run = run_hook(hook, &bc, &input, &common.join("config-values.json"));
        check_run(&input.display().to_string(), &run, &expect);
    }
}

/// Inputs too big to commit, generated into a temp dir: 100k nested arrays (serde_json's recursion
/// limit must refuse them, not overflow the stack) and a 10 MB hostname (dropped, bounded memory).
#[test]
fn generated_giants_are_refused_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let common = hostile().join("common");
    let values = common.join("values.json");
    let config = common.join("config-values.json");
    let deep = "[".repeat(100_000);
    let nested_in_item = format!(
        r#"[{{"binding":"beforeHelm","snapshots":{{"federations":[{{"filterResult":{deep}"#
    );
    for (name, text, needle) in [
        ("deep.json", deep.clone(), "binding context"),
        ("deep-item.json", nested_in_item.clone(), "recursion limit"),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let run = run_hook("render-service-entries", &p, &values, &config);
        check_run(name, &run, &json!({"exit": 1, "stderr": needle}));
    }
    let deep_values = dir.path().join("deep-values.json");
    std::fs::write(&deep_values, format!(r#"{{"istio":{deep}"#)).unwrap();
    let bc = hostile().join("binding-context/homoglyph-hostname.json");
    let run = run_hook("render-service-entries", &bc, &deep_values, &config);
    check_run(
        "deep values",
        &run,
        &json!({"exit": 1, "stderr": "recursion limit"}),
    );

    let template = std::fs::read_to_string(&bc).unwrap();
    let huge = format!("{}.svc.cluster-b.local", "a".repeat(10 << 20));
    let huge_bc = dir.path().join("huge-hostname.json");
    std::fs::write(&huge_bc, template.replace("b\u{430}r", &huge)).unwrap();
    let run = run_hook("render-service-entries", &huge_bc, &values, &config);
    check_run(
        "10 MB hostname",
        &run,
        &json!({"exit": 0, "absent": ["a".repeat(1000)]}),
    );
    // The same through the in-process parser: a clear error, not a stack overflow.
    let e = binding::parse(nested_in_item.as_bytes(), "deep.json").unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Remote documents

fn assert_absent(what: &str, v: &impl serde::Serialize, expect: &Value) {
    let text = serde_json::to_string(v).unwrap();
    for needle in expect["absent"].as_array().into_iter().flatten() {
        let needle = needle.as_str().unwrap();
        assert!(
            !text.contains(needle),
            "{what}: validated value keeps {needle:?}"
        );
    }
}

fn check_err(what: &str, r: Result<(), String>, expect: &Value) {
    match (&expect["error"], r) {
        (Value::Null, Ok(())) => {}
        (Value::Null, Err(e)) => panic!("{what}: refused: {e}"),
        (Value::String(needle), Err(e)) => {
            assert!(
                e.contains(needle.as_str()),
                "{what}: {e:?} lacks {needle:?}"
            )
        }
        (Value::String(_), Ok(())) => panic!("{what}: accepted"),
        (other, _) => panic!("{what}: bad sidecar error {other}"),
    }
}

#[test]
fn hostile_remote_documents_are_refused_or_cleaned() {
    for (input, expect) in cases("remote") {
        let what = input.display().to_string();
        let parsed = serde_json::from_slice::<Value>(&std::fs::read(&input).unwrap());
        if let Some(needle) = expect["json_error"].as_str() {
            let e = parsed.expect_err(&what).to_string();
            assert!(e.contains(needle), "{what}: {e}");
            continue;
        }
        let v = parsed.unwrap_or_else(|e| panic!("{what}: {e}"));
        match expect["kind"].as_str().unwrap() {
            "public" => {
                let r = validate::public_metadata_structure(&v).map(|(m, _)| {
                    assert_absent(&what, &m, &expect);
                });
                check_err(&what, r, &expect);
            }
            "federation" => match validate::federation_private(&v, "p.f0") {
                Ok(ok) => {
                    let dropped = expect["dropped"].as_u64().unwrap_or(0) as usize;
                    assert!(expect["error"].is_null(), "{what}: accepted");
                    assert!(
                        ok.dropped.len() >= dropped,
                        "{what}: dropped {:?}",
                        ok.dropped
                    );
                    assert_absent(&what, &ok.value, &expect);
                }
                Err(e) => check_err(&what, Err(e), &expect),
            },
            "multicluster" => match validate::multicluster_private(&v) {
                Ok(ok) => {
                    assert!(expect["error"].is_null(), "{what}: accepted {:?}", ok.value);
                    if expect["error_or_dropped"] == json!(true) {
                        assert!(!ok.dropped.is_empty(), "{what}: nothing dropped");
                    }
                    assert_absent(&what, &ok.value, &expect);
                }
                Err(e) => {
                    if expect["error_or_dropped"] != json!(true) {
                        check_err(&what, Err(e), &expect);
                    }
                }
            },
            other => panic!("{what}: kind {other}"),
        }
    }
}

/// The good-cache federation (`proper-federation-1` of the fetch golden case) is served each hostile
/// document; a refused document must leave `status.metadataCache` out of the status patch.
#[test]
fn hostile_remote_documents_never_replace_a_good_cache() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fetch-remote-metadata/federations-proper");
    let contexts = binding::parse(
        &std::fs::read(case.join("binding-context.json")).unwrap(),
        "bc",
    )
    .unwrap();
    let snapshots = binding::fold(contexts);
    let values = read_json(&case.join("values.json"));
    let config = read_json(&case.join("config-values.json"));
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let hook = istio_hooks::hooks::find("fetch-remote-metadata").unwrap();
    let base = "https://proper-federation-1/metadata/";
    let cached_public = snapshots
        .get("federations")
        .iter()
        .find(|f| f["metadata"]["name"] == "proper-federation-1")
        .map(|f| f["status"]["metadataCache"]["public"].clone())
        .unwrap();
    assert!(cached_public.is_object());
    let mut checked = 0;
    for (input, expect) in cases("remote") {
        let what = input.display().to_string();
        let refused_public = expect["kind"] != json!("federation")
            && (expect.get("json_error").is_some() || !expect["error"].is_null());
        let refused_private = expect["kind"] == json!("federation") && !expect["error"].is_null();
        if !refused_public && !refused_private {
            continue;
        }
        let body = std::fs::read(&input).unwrap();
        let mut client = CannedClient::default();
        // A refused private document comes with the peer's unchanged public one.
        let public = if refused_private {
            serde_json::to_vec(&cached_public).unwrap()
        } else {
            body.clone()
        };
        for (leaf, body) in [
            ("public/public.json", public),
            ("private/federation.json", body),
        ] {
            client
                .answers
                .insert(format!("{base}{leaf}"), Ok(Response::new(200, body)));
        }
        let out = execute(hook, &snapshots, &values, &config, now, &client)
            .unwrap_or_else(|e| panic!("{what}: the hook fails as a whole: {e}"));
        let ops: Vec<&Value> = out
            .object_ops
            .iter()
            .filter(|op| op.name() == "proper-federation-1")
            .filter_map(|op| op.merge_patch())
            .collect();
        assert!(
            !ops.is_empty(),
            "{what}: no status written (conditions expected)"
        );
        for patch in ops {
            let cache = &patch["status"]["metadataCache"];
            let touched = if refused_private {
                &cache["private"]
            } else {
                cache
            };
            assert!(
                touched.is_null(),
                "{what}: a refused document touched the cache: {cache}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} refused documents served");
}

// ---------------------------------------------------------------------------------------------
// Tokens

const OWN_UUID: &str = "00000000-0000-0000-0000-00000000000b";

fn peers() -> RemotePublicMetadata {
    let uuid = "00000000-0000-0000-0000-00000000000a";
    let key = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fixtures/ed25519-a.pub"),
    )
    .unwrap();
    RemotePublicMetadata::from([(
        uuid.to_owned(),
        PublicMetadata {
            cluster_uuid: uuid.to_owned(),
            authn_key_pub: key,
            root_ca: String::new(),
        },
    )])
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

#[test]
fn hostile_tokens_are_refused_with_the_right_reason() {
    // The peers' keys parsed once, as a server holds them between reloads.
    let keys = jwt::PeerKeys::new(&peers());
    let refuse = |header: &str, what: &str| {
        jwt::authenticate_with_keys(Some(header), OWN_UUID, Scope::Api, &keys, now())
            .expect_err(what)
    };
    for (input, expect) in cases("tokens") {
        let header = std::fs::read_to_string(&input).unwrap();
        let e = refuse(&header, &input.display().to_string());
        assert_eq!(
            e.to_string(),
            expect["error"].as_str().unwrap(),
            "{}",
            input.display()
        );
    }
    // Generated: a 1 MB token, and a header nested 100k deep.
    let big = format!("Bearer {}", "A".repeat(1 << 20));
    assert_eq!(refuse(&big, "1 MB token"), jwt::AuthError::TooLarge);
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let deep = format!("Bearer {}.{}.x", b64(&"[".repeat(3000)), b64("{}"));
    assert_eq!(refuse(&deep, "deep header"), jwt::AuthError::Malformed);
}

// ---------------------------------------------------------------------------------------------
// Fuzz regressions

/// Replays one fuzz input through what its target calls (see `fuzz/fuzz_targets/`).
fn replay(target: &str, data: &[u8]) {
    match target {
        "binding_context" => {
            if let Ok(c) = binding::parse(data, "fuzz.json") {
                binding::fold(c);
            }
        }
        "values_patch" => {
            let mut docs = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
            if let (Some(Ok(a)), Some(Ok(b))) = (docs.next(), docs.next()) {
                let before = json!({"istio": a});
                let after = json!({"istio": b});
                if let Ok(ops) = values::diff(&before, &after) {
                    let mut doc = before.clone();
                    json_patch::patch(&mut doc, &ops).expect("patch applies");
                    assert_eq!(doc, after);
                }
            }
        }
        "remote_metadata" => {
            if let Ok(v) = serde_json::from_slice::<Value>(data) {
                let _ = validate::public_metadata_structure(&v);
                let _ = validate::federation_private(&v, "cluster.local");
                let _ = validate::multicluster_private(&v);
            }
        }
        "jwt" => {
            if let Ok(s) = std::str::from_utf8(data) {
                let _ = jwt::peek_claims(s);
                let _ = jwt::authenticate_with_keys(
                    Some(s),
                    OWN_UUID,
                    Scope::Api,
                    &jwt::PeerKeys::new(&peers()),
                    now(),
                );
            }
        }
        "pem_cert" => {
            if let Ok(s) = std::str::from_utf8(data) {
                let _ = pki::parse_certificates(s);
                let _ = pki::ed25519_public_key(s);
            }
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

#[test]
fn fuzz_regressions_replay_without_panics() {
    let dir = hostile().join("fuzz-regressions");
    for target in std::fs::read_dir(&dir).unwrap() {
        let target = target.unwrap().path();
        if !target.is_dir() {
            continue;
        }
        let name = target.file_name().unwrap().to_string_lossy().to_string();
        for f in std::fs::read_dir(&target).unwrap() {
            let f = f.unwrap().path();
            replay(&name, &std::fs::read(&f).unwrap());
        }
    }
}
