//! The binary as operators call it: every invocation mode (classic `--config` and run, batch
//! `hook list|config|run N`, standalone), the `hooks/*.sh` wrappers, configs checked against
//! shell-operator's and addon-operator's schemas, and failures (exit code, one stderr line,
//! no output written), panics included.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_istio-hooks");
const HOOKS: [&str; 5] = [
    "discovery",
    "fetch-remote-metadata",
    "update-ca-bundle",
    "render-service-entries",
    "multicluster-remote-secrets",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn istio-hooks");
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("testdata/schemas").join(name)).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{doc}");
}

#[test]
fn hook_list_works_with_an_empty_environment() {
    let out = run(Command::new(BIN).env_clear().args(["hook", "list"]), None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut expected = "Found 5 items:\n".to_owned();
    for (i, h) in HOOKS.iter().enumerate() {
        expected.push_str(&format!("{i} - {h}\n"));
    }
    assert_eq!(text, expected);
    assert!(
        out.stderr.is_empty(),
        "nothing but payload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alias = run(Command::new(BIN).env_clear().args(["hooks", "list"]), None);
    assert_eq!(String::from_utf8(alias.stdout).unwrap(), expected);
}

#[test]
fn hook_config_is_the_module_sdk_wire_format() {
    let out = run(Command::new(BIN).env_clear().args(["hook", "config"]), None);
    assert!(out.status.success() && out.stderr.is_empty());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], "v1");
    let hooks = doc["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 5);
    for (i, h) in hooks.iter().enumerate() {
        assert_eq!(h["configVersion"], "v1");
        assert_eq!(h["metadata"]["name"], HOOKS[i]);
        for k in h["kubernetes"].as_array().into_iter().flatten() {
            assert!(
                k["executeHookOnEvent"].is_boolean(),
                "batch executeHookOnEvent is a bool: {k}"
            );
            assert_eq!(k["keepFullObjectsInMemory"], false);
            assert!(k["jqFilter"].as_str().is_some_and(|s| !s.is_empty()));
        }
        for s in h["schedule"].as_array().into_iter().flatten() {
            assert!(s["crontab"].is_string() && s.get("allowFailure").is_none());
        }
    }
    // Same bytes every call: `hook run N` relies on the order.
    let again = run(Command::new(BIN).args(["hook", "config"]), None);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn every_wrapper_prints_a_config_the_operators_accept() {
    let ao = schema("addon-operator-module-hook.json");
    let so = schema("shell-operator-v1.json");
    for hook in HOOKS {
        let script = root().join("hooks").join(format!("{hook}.sh"));
        let out = run(
            Command::new(&script)
                .arg("--config")
                .env("ISTIO_HOOKS_BIN", BIN),
            None,
        );
        assert!(
            out.status.success(),
            "{hook}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty());
        let cfg: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_valid(&ao, &cfg, hook);
        let plain = run(
            Command::new(&script)
                .arg("--config")
                .env("ISTIO_HOOKS_BIN", BIN)
                .env("ISTIO_HOOKS_CONFIG_FLAVOR", "shell-operator"),
            None,
        );
        let cfg: Value = serde_json::from_slice(&plain.stdout).unwrap();
        assert_valid(&so, &cfg, hook);
        assert!(cfg.get("beforeHelm").is_none());
    }
    let fetch: Value = serde_json::from_slice(
        &run(
            Command::new(BIN).args(["fetch-remote-metadata", "--config"]),
            None,
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(fetch["schedule"][0]["crontab"], "*/15 * * * * *");
    assert!(fetch["kubernetes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["executeHookOnEvent"]
            .as_array()
            .unwrap()
            .contains(&json!("Added"))));
}

fn discovery_case(dir: &Path) -> (String, String) {
    (
        std::fs::read_to_string(dir.join("binding-context.json")).unwrap(),
        std::fs::read_to_string(dir.join("values.json")).unwrap(),
    )
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(bc: &str, values: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bc.json"), bc).unwrap();
        std::fs::write(dir.path().join("values.json"), values).unwrap();
        for f in [
            "values-patch.json",
            "config-values-patch.json",
            "kube.json",
            "metrics.json",
        ] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        Env { dir }
    }

    fn apply(&self, cmd: &mut Command) {
        let p = |f: &str| self.dir.path().join(f);
        cmd.env("BINDING_CONTEXT_PATH", p("bc.json"))
            .env("VALUES_PATH", p("values.json"))
            .env("CONFIG_VALUES_PATH", p("missing-config-values.json"))
            .env("VALUES_JSON_PATCH_PATH", p("values-patch.json"))
            .env(
                "CONFIG_VALUES_JSON_PATCH_PATH",
                p("config-values-patch.json"),
            )
            .env("KUBERNETES_PATCH_PATH", p("kube.json"))
            .env("METRICS_PATH", p("metrics.json"));
    }

    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(f)).unwrap()
    }
}

fn expected_patch(case: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(
            root()
                .join("testdata/discovery")
                .join(case)
                .join("values-patch.json"),
        )
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn classic_batch_and_standalone_runs_agree() {
    let case = root().join("testdata/discovery/existing-keypair");
    let (bc, values) = discovery_case(&case);
    let want = expected_patch("existing-keypair");

    let classic = Env::new(&bc, &values);
    let out = run(
        {
            let mut c = Command::new(root().join("hooks/discovery.sh"));
            c.env("ISTIO_HOOKS_BIN", BIN);
            classic.apply(&mut c);
            c
        }
        .env("LOG_LEVEL", "debug"),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "classic run writes files, not stdout"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&classic.read("values-patch.json")).unwrap(),
        want
    );
    assert_eq!(classic.read("config-values-patch.json"), "");
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let log: Value = serde_json::from_str(line).expect("logs are JSON lines");
        assert!(log["level"].is_string() && log["msg"].is_string(), "{line}");
    }

    let batch = Env::new(&bc, &values);
    let out = run(
        &mut {
            let mut c = Command::new(BIN);
            c.args(["hook", "run", "0"]);
            batch.apply(&mut c);
            c
        },
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&batch.read("values-patch.json")).unwrap(),
        want
    );

    let vals = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(vals.path(), &values).unwrap();
    let out = run(
        Command::new(BIN)
            .arg("discovery")
            .arg("--values")
            .arg(vals.path())
            .env_remove("BINDING_CONTEXT_PATH"),
        Some(&bc),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), want);

    // A second standalone run on an unchanged state prints an empty patch.
    let mut patched: Value = serde_json::from_str(&values).unwrap();
    let patch: json_patch::Patch = serde_json::from_value(want).unwrap();
    json_patch::patch(&mut patched, &patch).unwrap();
    std::fs::write(vals.path(), patched.to_string()).unwrap();
    let out = run(
        Command::new(BIN)
            .arg("discovery")
            .arg("--values")
            .arg(vals.path()),
        Some(&bc),
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "[]");
}

#[test]
fn failures_exit_non_zero_with_one_line_and_no_outputs() {
    let cases = [
        ("[{\"binding\":", "{}", "invalid JSON"),
        ("{\"binding\":\"beforeHelm\"}", "{}", "expected a sequence"),
        (
            "[{\"binding\":\"beforeHelm\",\"snapshots\":{\"nodes\":[5]}}]",
            "{}",
            "[0].snapshots.nodes[0]",
        ),
        ("[]", "[1,2]", "expected a JSON object"),
        (
            "[]",
            "{\"istio\":{\"federation\":{\"enabled\":1}}}",
            "istio.federation.enabled",
        ),
    ];
    for (bc, values, needle) in cases {
        let env = Env::new(bc, values);
        let out = run(
            &mut {
                let mut c = Command::new(BIN);
                c.arg("discovery");
                env.apply(&mut c);
                c
            },
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{needle}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{err:?} should mention {needle}");
        for f in ["values-patch.json", "kube.json", "metrics.json"] {
            assert_eq!(env.read(f), "", "{f} untouched on failure");
        }
    }
    let out = run(Command::new(BIN).args(["hook", "run", "9"]), None);
    assert_eq!(out.status.code(), Some(1));
    let out = run(Command::new(BIN).arg("no-such-hook"), None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("hooks are: discovery"));
}

/// A panic under the command line exits 2 with one stderr line naming the place and nothing on
/// stdout. The trigger, `ISTIO_HOOKS_TEST_PANIC`, exists in debug builds only (see `main.rs`),
/// which is what `cargo test` builds.
#[cfg(debug_assertions)]
#[test]
fn a_panic_exits_2_with_one_line() {
    let out = run(
        Command::new(BIN)
            .args(["hook", "list"])
            .env("ISTIO_HOOKS_TEST_PANIC", "boom"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("istio-hooks: internal error at src/main.rs:"),
        "{err:?}"
    );
    assert!(err.trim_end().ends_with(": boom"), "{err:?}");
    // Without the trigger the same command succeeds.
    let out = run(Command::new(BIN).args(["hook", "list"]), None);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_binding_context_type_is_accepted() {
    let contexts = [
        r#"[{"binding":"onStartup"}]"#,
        r#"[{"binding":"poll","type":"Schedule"}]"#,
        r#"[{"binding":"nodes","type":"Synchronization","objects":[{"filterResult":{"metadata":{"name":"n1"}}},{"object":null,"filterResult":null}]}]"#,
        r#"[{"binding":"nodes","type":"Event","watchEvent":"Deleted","object":{"metadata":{"name":"n1"}},"filterResult":null}]"#,
        r#"[{"binding":"nodes","type":"Group","groupName":"main","snapshots":{"nodes":[],"keypair":[]}},{"binding":"poll","type":"Group","groupName":"main","snapshots":{"nodes":[]}}]"#,
        r#"[{"binding":"beforeHelm","snapshots":{"nodes":[{"object":{"metadata":{"name":"n"}}}]},"unknownField":{"x":1}}]"#,
        r#"[{"binding":"x","type":"Validating","review":{"request":{}}}]"#,
    ];
    for bc in contexts {
        let out = run(Command::new(BIN).arg("discovery"), Some(bc));
        assert!(
            out.status.success(),
            "{bc}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let patch: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(patch
            .as_array()
            .unwrap()
            .iter()
            .all(|op| op["path"].as_str().unwrap().starts_with("/istio/")));
    }
}
