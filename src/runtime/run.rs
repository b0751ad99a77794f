//! Process-level execution: where inputs come from and outputs go in each invocation mode
//! (classic and batch runs: files named by env; standalone: binding context on stdin, values
//! patch on stdout), with errors reported as one line naming file and place.

use super::{binding, execute, Hook, Outcome};
use crate::net::HttpsClient;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where one run reads and writes. `None` input = empty; `None` output = not written.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// `None`: read the binding context from stdin (standalone mode).
    pub binding_context: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub config_values: Option<PathBuf>,
    /// `None`: print the values patch on stdout (standalone mode).
    pub values_patch: Option<PathBuf>,
    pub object_ops: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Files {
    /// The operator's environment (SPEC §3.2). Flags given by the caller override it.
    pub fn from_env() -> Files {
        Files {
            binding_context: env_path("BINDING_CONTEXT_PATH"),
            values: env_path("VALUES_PATH"),
            config_values: env_path("CONFIG_VALUES_PATH"),
            values_patch: env_path("VALUES_JSON_PATCH_PATH"),
            object_ops: env_path("KUBERNETES_PATCH_PATH"),
            metrics: env_path("METRICS_PATH"),
        }
    }
}

/// Reads a values file: missing or empty = `{}`; anything but a JSON object is an error.
pub fn read_values(path: Option<&Path>, what: &str) -> Result<Value, String> {
    let Some(path) = path else {
        return Ok(Value::Object(Default::default()));
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Value::Object(Default::default()))
        }
        Err(e) => return Err(format!("{what} {}: {e}", path.display())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{what} {}: invalid JSON: {e}", path.display()))?;
    if !v.is_object() {
        return Err(format!(
            "{what} {}: expected a JSON object at the top level",
            path.display()
        ));
    }
    Ok(v)
}

/// One whole run: read, execute, then write every output (nothing is written on failure). Meant
/// to be called once per process: its inputs and outputs are not freed (see the end).
pub fn run(hook: &dyn Hook, files: &Files) -> Result<(), String> {
    let (bc_bytes, bc_source) = match &files.binding_context {
        Some(p) => (
            std::fs::read(p).map_err(|e| format!("binding context {}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        None => (read_stdin()?, "<stdin>".to_owned()),
    };
    let contexts = binding::parse(&bc_bytes, &bc_source)?;
    drop(bc_bytes);
    let snapshots = binding::fold(contexts);
    let values = read_values(files.values.as_deref(), "values")?;
    let config_values = read_values(files.config_values.as_deref(), "config values")?;
    let http = HttpsClient::default();
    let outcome = execute(
        hook,
        &snapshots,
        &values,
        &config_values,
        chrono::Utc::now(),
        &http,
    )?;
    write(&outcome, files)?;
    // The process ends right after a run: freeing these trees one node at a time would only
    // cost time (about a tenth of a large run), so they are left to the exit.
    std::mem::forget((outcome, snapshots, values, config_values));
    Ok(())
}

/// All of stdin. Read through a duplicate of its descriptor as a [`std::fs::File`], so that a
/// redirected file is read into one buffer of its size (no doubling and copying of megabytes);
/// a pipe reads as before.
fn read_stdin() -> Result<Vec<u8>, String> {
    use std::os::fd::AsFd;
    let err = |e: std::io::Error| format!("binding context <stdin>: {e}");
    let stdin = std::io::stdin();
    let mut buf = Vec::new();
    match stdin.as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd).read_to_end(&mut buf).map_err(err)?,
        Err(_) => stdin.lock().read_to_end(&mut buf).map_err(err)?,
    };
    Ok(buf)
}

/// Stdout without its line buffering (which scans every write for a newline): a duplicate of
/// its descriptor, or stdout itself when that fails.
fn raw_stdout() -> Box<dyn std::io::Write> {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    match stdout.as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(stdout),
    }
}

fn write(outcome: &Outcome, files: &Files) -> Result<(), String> {
    use std::io::Write;
    let write_file = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    // The patch is streamed: it can be megabytes, all of it already JSON text.
    let patch = &outcome.values_patch;
    match &files.values_patch {
        Some(p) if !patch.is_empty() => {
            let err = |e: std::io::Error| format!("cannot write {}: {e}", p.display());
            let mut out = std::io::BufWriter::new(std::fs::File::create(p).map_err(err)?);
            serde_json::to_writer(&mut out, patch).map_err(|e| err(e.into()))?;
            out.flush().map_err(err)?;
        }
        Some(_) => {}
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, raw_stdout());
            serde_json::to_writer(&mut out, patch)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
                .and_then(|_| out.flush())
                .map_err(|e| format!("cannot write the values patch to stdout: {e}"))?;
        }
    }
    if let Some(p) = &files.object_ops {
        if !outcome.object_ops.is_empty() {
            write_file(p, &super::output::object_ops_to_lines(&outcome.object_ops))?;
        }
    }
    if let (Some(p), Some(m)) = (&files.metrics, &outcome.metrics) {
        write_file(p, &m.to_lines())?;
    }
    Ok(())
}
