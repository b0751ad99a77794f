//! The checklist: its items ([`Check`], [`Status`]), everything found ([`Report`], printed as
//! is by `-o json`) and the human text form ([`render_text`]).

use serde::Serialize;
use serde_json::Value;

/// One checklist item.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// Everything `check` found, as printed by `-o json`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub endpoint: String,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<Value>,
    pub dropped: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// SHA-256 fingerprints of the published roots, to compare with the SPIFFE bundle.
    #[serde(skip)]
    pub(super) root_fingerprints: Vec<String>,
}

impl Report {
    fn add(&mut self, name: &str, status: Status, message: String, hint: Option<&str>) {
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            message,
            hint: hint.map(str::to_owned),
        });
    }
    pub(super) fn pass(&mut self, name: &str, message: String) {
        self.add(name, Status::Pass, message, None);
    }
    pub(super) fn warn(&mut self, name: &str, message: String, hint: Option<&str>) {
        self.add(name, Status::Warn, message, hint);
    }
    pub(super) fn fail(&mut self, name: &str, message: String, hint: &str) {
        self.add(name, Status::Fail, message, Some(hint));
    }
    /// `result`'s value; for an error, a failed `name` check with the message `message` makes
    /// of it and `hint`, and `None`.
    pub(super) fn or_fail<T, E>(
        &mut self,
        name: &str,
        result: Result<T, E>,
        message: impl FnOnce(E) -> String,
        hint: &str,
    ) -> Option<T> {
        result.map_err(|e| self.fail(name, message(e), hint)).ok()
    }
    pub(super) fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }
}

/// A string safe for a terminal: control characters (e.g. escape sequences a hostile peer put
/// into a certificate subject) become `?`.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The human checklist. Every remote-derived string goes through [`clean`].
pub fn render_text(r: &Report) -> String {
    let mut s = format!("istio-hooks check {}\n\n", clean(&r.endpoint));
    for c in &r.checks {
        let mark = match c.status {
            Status::Pass => "✔",
            Status::Warn => "⚠",
            Status::Fail => "✘",
        };
        s.push_str(&format!("{mark} {}: {}\n", c.name, clean(&c.message)));
        if let Some(h) = &c.hint {
            s.push_str(&format!("    hint: {}\n", clean(h)));
        }
    }
    if let Some(p) = &r.private_metadata {
        s.push_str("\nPrivate metadata (after validation):\n");
        if let Some(gws) = p.get("ingressGateways").and_then(Value::as_array) {
            for g in gws {
                let addr = g.get("address").and_then(Value::as_str).unwrap_or("?");
                let port = g.get("port").and_then(Value::as_u64).unwrap_or(0);
                s.push_str(&format!("  gateway {}:{port}\n", clean(addr)));
            }
        }
        if let Some(svcs) = p.get("publicServices").and_then(Value::as_array) {
            for svc in svcs {
                let host = svc.get("hostname").and_then(Value::as_str).unwrap_or("?");
                let ports: Vec<String> = svc
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}({})",
                                    p.get("name").and_then(Value::as_str).unwrap_or("?"),
                                    p.get("port").and_then(Value::as_u64).unwrap_or(0),
                                    p.get("protocol").and_then(Value::as_str).unwrap_or("?")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  service {} ports {}\n",
                    clean(host),
                    clean(&ports.join(", "))
                ));
            }
        }
        if let Some(hosts) = p.get("unvalidatedHostnames").and_then(Value::as_array) {
            for h in hosts.iter().filter_map(Value::as_str) {
                s.push_str(&format!(
                    "  service {} (hostname not validated)\n",
                    clean(h)
                ));
            }
        }
        for key in ["apiHost", "networkName", "clusterID"] {
            if let Some(v) = p.get(key).and_then(Value::as_str) {
                s.push_str(&format!("  {key} {}\n", clean(v)));
            }
        }
    }
    if !r.dropped.is_empty() {
        s.push_str("\nDropped by validation:\n");
        for d in &r.dropped {
            s.push_str(&format!(
                "  - {}: {}\n",
                d.get("reason").and_then(Value::as_str).unwrap_or("?"),
                clean(d.get("detail").and_then(Value::as_str).unwrap_or("?"))
            ));
        }
    }
    for n in &r.notes {
        s.push_str(&format!("\nnote: {}\n", clean(n)));
    }
    let count = |st: Status| r.checks.iter().filter(|c| c.status == st).count();
    s.push_str(&format!(
        "\n{} passed, {} warning(s), {} failed",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    s
}
