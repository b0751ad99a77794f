//! The command line (clap, defined once): batch hook commands, one subcommand per registered hook,
//! the two servers and `check`.

use crate::hooks::{self, REGISTRY};
use crate::runtime::config::Flavor;
use crate::runtime::run::{self, Files};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "istio-hooks",
    version,
    about = "Istio federation and multicluster hooks, metadata-exporter and api-proxy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// module-sdk batch interface for addon-operator: `hook list`, `hook config`, `hook run N`.
    #[command(alias = "hooks")]
    Hook {
        #[command(subcommand)]
        cmd: Batch,
    },
    /// Serve this cluster's metadata to peers.
    MetadataExporter(crate::servers::exporter::Args),
    /// Read-only, token-authenticated proxy to the local kube-apiserver for remote istiods.
    ApiProxy(crate::servers::api_proxy::Args),
    /// Diagnose a peer's metadata endpoint the way the hooks would see it.
    Check(crate::check::Args),
    /// `<hook> [--config]`: run one hook (see the list below).
    #[command(external_subcommand)]
    Run(Vec<OsString>),
}

#[derive(Subcommand)]
enum Batch {
    /// `Found N items:` then `I - <hook>` per hook.
    List,
    /// All hook configs as one module-sdk JSON document.
    Config,
    /// Run hook N (its index in `hook config`) with the operator's env files.
    Run { index: usize },
}

/// Flags of a hook subcommand.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct HookArgs {
    /// Print the hook's shell-operator v1 config and exit.
    #[arg(long)]
    config: bool,
    /// Values JSON (default: $VALUES_PATH).
    #[arg(long, value_name = "FILE")]
    values: Option<PathBuf>,
    /// Config values JSON (default: $CONFIG_VALUES_PATH).
    #[arg(long, value_name = "FILE")]
    config_values: Option<PathBuf>,
    /// Where to write object operations (default: $KUBERNETES_PATCH_PATH).
    #[arg(long, value_name = "FILE")]
    object_patches_out: Option<PathBuf>,
    /// Where to write metric operations (default: $METRICS_PATH).
    #[arg(long, value_name = "FILE")]
    metrics_out: Option<PathBuf>,
}

fn flavor() -> Flavor {
    match std::env::var("ISTIO_HOOKS_CONFIG_FLAVOR").as_deref() {
        Ok("shell-operator") => Flavor::ShellOperator,
        _ => Flavor::AddonOperator,
    }
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Parses the command line and runs it.
pub fn main() -> Result<(), String> {
    let names: Vec<&str> = REGISTRY.iter().map(|h| h.name()).collect();
    let cmd = Cli::command().after_help(format!("Hooks: {}", names.join(", ")));
    let matches = cmd.get_matches();
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    match cli.cmd {
        Cmd::Hook { cmd: Batch::List } => {
            let mut s = format!("Found {} items:\n", REGISTRY.len());
            for (i, h) in REGISTRY.iter().enumerate() {
                s.push_str(&format!("{i} - {}\n", h.name()));
            }
            print(&s)
        }
        Cmd::Hook { cmd: Batch::Config } => {
            let hooks: Vec<_> = REGISTRY
                .iter()
                .map(|h| h.config().to_batch(h.name()))
                .collect();
            print(&(serde_json::json!({"version": "v1", "hooks": hooks}).to_string() + "\n"))
        }
        Cmd::Hook {
            cmd: Batch::Run { index },
        } => {
            let hook = REGISTRY.get(index).ok_or_else(|| {
                format!(
                    "hook run: no hook at index {index} (there are {})",
                    REGISTRY.len()
                )
            })?;
            crate::runtime::logging::init();
            run::run(*hook, &Files::from_env())
        }
        Cmd::MetadataExporter(args) => {
            crate::runtime::logging::init();
            crate::servers::exporter::main(args)
        }
        Cmd::ApiProxy(args) => {
            crate::runtime::logging::init();
            crate::servers::api_proxy::main(args)
        }
        Cmd::Check(args) => crate::check::main(args),
        Cmd::Run(argv) => {
            let name = argv
                .first()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let hook = hooks::find(&name).ok_or_else(|| {
                format!("unknown command {name:?}; hooks are: {}", names.join(", "))
            })?;
            let args = match HookArgs::try_parse_from(&argv[1..]) {
                Ok(a) => a,
                Err(e) if !e.use_stderr() => {
                    let _ = e.print();
                    return Ok(());
                }
                Err(e) => {
                    return Err(format!(
                        "{name}: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ))
                }
            };
            if args.config {
                return print(&(hook.config().to_v1(hook.name(), flavor()).to_string() + "\n"));
            }
            crate::runtime::logging::init();
            let mut files = Files::from_env();
            if files.binding_context.is_none() {
                files.values_patch = None;
            }
            files.values = args.values.or(files.values);
            files.config_values = args.config_values.or(files.config_values);
            files.object_ops = args.object_patches_out.or(files.object_ops);
            files.metrics = args.metrics_out.or(files.metrics);
            run::run(hook, &files)
        }
    }
}
