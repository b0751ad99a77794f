//! `istio-hooks check`: an operator's diagnostic of a peer's metadata endpoint, in the spirit of
//! `linkerd multicluster check`. It fetches what `fetch-remote-metadata` would fetch, with the same
//! HTTP client, limits and validation (`domain::validate`), and prints a checklist of pass / warn /
//! fail items with hints. Exit code 0 when nothing failed (warnings allowed), 1 otherwise.
//!
//! One module per checklist section, each a `check` function that adds its items to the
//! [`Report`] and returns what the later sections need (`None`: they are not run), called in
//! order by [`run`]: `endpoint`, `ca`, `public`, `spiffe`, `private`, `api`. What they share:
//! `conn` (requests and their failures as checks) and `report` (the checklist and its text
//! form).

mod api;
mod ca;
mod conn;
mod endpoint;
mod private;
mod public;
mod report;
mod spiffe;

pub use report::{render_text, Check, Report, Status};

use crate::net::{HttpGet, HttpsClient};
use chrono::{DateTime, Utc};
use conn::Conn;
use std::path::PathBuf;
use std::time::Duration;

/// Which private document to fetch.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Federation,
    Multicluster,
}

/// Output format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Flags of `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The peer's metadata endpoint (`spec.metadataEndpoint`), e.g. https://istio-metadata.b.example.com/metadata/
    #[arg(value_name = "METADATA_ENDPOINT")]
    pub endpoint: String,
    /// PEM file with extra trusted roots for the endpoint's TLS (as `spec.metadata.ca`).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the endpoint's TLS certificate (ignored with --ca, as in the hooks).
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// The peer's trust domain (`spec.trustDomain` of the IstioFederation) to validate hostnames.
    #[arg(long, value_name = "DOMAIN")]
    pub trust_domain: Option<String>,
    /// Our Ed25519 private key (PKCS#8 PEM, any label), e.g. from Secret d8-istio/d8-remote-authn-keypair.
    #[arg(long, value_name = "FILE", requires = "cluster_uuid")]
    pub private_key: Option<PathBuf>,
    /// Our clusterUUID (`global.discovery.clusterUUID`), the token's `sub`.
    #[arg(long, value_name = "UUID", requires = "private_key")]
    pub cluster_uuid: Option<String>,
    /// Which private document to fetch.
    #[arg(long, value_enum, default_value = "federation")]
    pub kind: Kind,
    /// Deadline per request (connect and whole exchange).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: Format,
}

/// Runs the diagnostic, prints the report, and fails when any check failed.
pub fn main(args: Args) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("check: cannot start the async runtime: {e}"))?;
    let report = rt.block_on(run(&args, &HttpsClient::default(), Utc::now()));
    let text = match args.output {
        Format::Json => serde_json::to_string_pretty(&report)
            .map_err(|e| format!("check: cannot encode the report: {e}"))?,
        Format::Text => render_text(&report),
    };
    println!("{text}");
    match report.failed() {
        0 => Ok(()),
        n => Err(format!("check: {n} check(s) failed")),
    }
}

/// The whole diagnostic against `http` at `now`.
pub async fn run(args: &Args, http: &dyn HttpGet, now: DateTime<Utc>) -> Report {
    let mut r = Report {
        endpoint: args.endpoint.clone(),
        ..Report::default()
    };
    let Some(base) = endpoint::check(&mut r, &args.endpoint) else {
        return r;
    };
    let Some(ca_pem) = ca::check(&mut r, args) else {
        return r;
    };
    let conn = Conn {
        http,
        insecure: ca_pem.is_none() && args.insecure_skip_verify,
        ca_pem,
        timeout: args.timeout,
    };
    let public = public::check(&mut r, &conn, &base, now).await;
    // A peer that did not answer is not asked again (a hanging one would cost another deadline).
    let answered = r
        .checks
        .iter()
        .any(|c| c.name == public::NAME && c.status == Status::Pass);
    if answered {
        spiffe::check(&mut r, &conn, &base).await;
    }
    match (&args.private_key, &args.cluster_uuid, public) {
        (Some(key), Some(uuid), Some(peer_uuid)) => {
            let api = private::check(&mut r, &conn, &base, args, key, uuid, &peer_uuid, now).await;
            if let Some(api) = api {
                api::check(&mut r, &conn, &api, uuid, &peer_uuid, now).await;
            }
        }
        (Some(_), Some(_), None) => r.notes.push(
            "private metadata not checked: the public metadata (the peer's clusterUUID) is needed first"
                .into(),
        ),
        _ => r.notes.push(
            "private metadata not checked: pass --private-key and --cluster-uuid (this cluster's key and UUID)"
                .into(),
        ),
    }
    r
}
