//! `istio-hooks metadata-exporter` (SPEC §6.1): serves this cluster's public metadata, SPIFFE
//! bundle and (JWT-protected) private metadata to peers from a data dir that Helm renders and
//! kubelet updates in place. Documents are rendered once per file change, with a strong ETag.

use crate::domain::jwt::{PeerKeys, Scope};
use crate::domain::metadata::LocalMetadata;
use crate::domain::spiffe;
use crate::servers::auth;
use crate::servers::datadir::{self, Watched};
use crate::servers::serve::{self, Limits, Running};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use openssl::ssl::SslAcceptor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// File in the data dir holding `istio.internal.localMetadata`.
pub const LOCAL_FILE: &str = "local-metadata.json";
/// File in the data dir holding `istio.internal.remotePublicMetadata`.
pub const REMOTE_FILE: &str = "remote-public-metadata.json";

/// Flags of the metadata-exporter.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory holding local-metadata.json and remote-public-metadata.json (a mounted Secret;
    /// the files may sit behind a `..data` symlink that is swapped on update).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key. Plain HTTP
    /// otherwise (TLS is normally terminated by the ingress).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often the data dir files are checked for changes.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// Time a client has to send its request headers (also the keep-alive idle timeout).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Time a request may take from headers to response.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
}

/// What [`spawn`] needs (tests and the demo build it directly).
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub reload_interval: Duration,
    pub request_timeout: Duration,
    pub limits: Limits,
    pub tls: Option<SslAcceptor>,
}

impl Config {
    /// Defaults for `data_dir`: plain HTTP, 2 s reload.
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            data_dir,
            reload_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// A rendered document and its strong ETag.
struct Doc {
    body: Bytes,
    etag: HeaderValue,
}

impl Doc {
    fn json<T: serde::Serialize>(value: &T) -> Result<Doc, String> {
        let body = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        let digest = openssl::sha::sha256(&body);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\"")).map_err(|e| e.to_string())?;
        Ok(Doc {
            body: Bytes::from(body),
            etag,
        })
    }

    /// 200 with the body, or 304 when the client already holds this version. Private
    /// documents are marked `no-store` so no shared cache on the way keeps them.
    fn respond(&self, headers: &HeaderMap, private: bool) -> Response {
        let etag = (header::ETAG, self.etag.clone());
        let policy = if private { "no-store" } else { "no-cache" };
        let cache = (header::CACHE_CONTROL, HeaderValue::from_static(policy));
        if if_none_match(headers, &self.etag) {
            return (StatusCode::NOT_MODIFIED, [etag, cache]).into_response();
        }
        let ct = (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        (StatusCode::OK, [ct, etag, cache], self.body.clone()).into_response()
    }
}

fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(Ok(v)) = headers.get(header::IF_NONE_MATCH).map(|v| v.to_str()) else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    v.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == ours)
}

/// Everything served, rendered from one version of local-metadata.json.
struct Local {
    uuid: String,
    public: Doc,
    spiffe: Result<Doc, String>,
    federation: Option<Doc>,
    multicluster: Option<Doc>,
}

fn parse_local(bytes: &[u8]) -> Result<Local, String> {
    let m: LocalMetadata = datadir::json(bytes)?;
    if m.public.cluster_uuid.is_empty() {
        return Err("public.clusterUUID is empty".into());
    }
    let spiffe = spiffe::bundle(&m.public.root_ca)
        .map_err(|e| format!("{e:#}"))
        .and_then(|b| Doc::json(&b));
    if let Err(e) = &spiffe {
        tracing::warn!(error = %e, "cannot build the SPIFFE bundle from public.rootCA");
    }
    Ok(Local {
        uuid: m.public.cluster_uuid.clone(),
        public: Doc::json(&m.public)?,
        spiffe,
        federation: m.federation.as_ref().map(Doc::json).transpose()?,
        multicluster: m.multicluster.as_ref().map(Doc::json).transpose()?,
    })
}

#[derive(Clone)]
struct AppState {
    local: Watched<Local>,
    /// The peers' keys, parsed once per version of remote-public-metadata.json.
    remote: Watched<PeerKeys>,
}

/// The exporter's routes over `state`, each request bounded by `request_timeout`.
fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { "Ok." }))
        .route("/metadata/public/public.json", get(public_json))
        .route(
            "/metadata/public/spiffe-bundle-endpoint",
            get(spiffe_bundle),
        )
        .route("/metadata/private/federation.json", get(federation))
        .route("/metadata/private/multicluster.json", get(multicluster))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

const NO_DATA: (StatusCode, &str) = (
    StatusCode::SERVICE_UNAVAILABLE,
    "No valid local metadata yet.\n",
);

async fn healthz(State(s): State<AppState>) -> Response {
    match s.local.get() {
        Some(_) => "Ok.".into_response(),
        None => NO_DATA.into_response(),
    }
}

async fn public_json(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match s.local.get() {
        Some(l) => l.public.respond(&headers, false),
        None => NO_DATA.into_response(),
    }
}

async fn spiffe_bundle(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match s.local.get() {
        Some(l) => match &l.spiffe {
            Ok(doc) => doc.respond(&headers, false),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot build the SPIFFE bundle from the root CA.\n",
            )
                .into_response(),
        },
        None => NO_DATA.into_response(),
    }
}

async fn federation(State(s): State<AppState>, headers: HeaderMap) -> Response {
    private(&s, &headers, Scope::PrivateFederation, |l| {
        l.federation.as_ref()
    })
}

async fn multicluster(State(s): State<AppState>, headers: HeaderMap) -> Response {
    private(&s, &headers, Scope::PrivateMulticluster, |l| {
        l.multicluster.as_ref()
    })
}

fn private(
    s: &AppState,
    headers: &HeaderMap,
    scope: Scope,
    pick: fn(&Local) -> Option<&Doc>,
) -> Response {
    let Some(local) = s.local.get() else {
        return NO_DATA.into_response();
    };
    let Some(doc) = pick(&local) else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    let peers = s.remote.get().unwrap_or_default();
    match auth::check(headers, &local.uuid, scope, &peers) {
        Ok(()) => doc.respond(headers, true),
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            format!("Authentication error: {e}\n"),
        )
            .into_response(),
    }
}

/// Starts the exporter on `listener` (inside a tokio runtime): loads and watches the data dir,
/// serves until the returned handle is shut down.
pub fn spawn(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<Running> {
    let (tx, rx) = serve::shutdown_channel();
    let watch = |name: &str| config.data_dir.join(name);
    let state = AppState {
        local: Watched::spawn(
            watch(LOCAL_FILE),
            config.reload_interval,
            parse_local,
            rx.clone(),
        ),
        remote: Watched::spawn(
            watch(REMOTE_FILE),
            config.reload_interval,
            auth::parse_peers,
            rx,
        ),
    };
    serve::serve(
        listener,
        router(state, config.request_timeout),
        config.tls,
        config.limits,
        tx,
    )
}

pub fn main(args: Args) -> Result<(), String> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(
            crate::tls::acceptor_from_files(c, k).map_err(|e| format!("metadata-exporter: {e}"))?,
        ),
        _ => None,
    };
    let config = Config {
        data_dir: args.data_dir,
        reload_interval: args.reload_interval,
        request_timeout: args.request_timeout,
        limits: Limits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections,
            ..Limits::default()
        },
        tls,
    };
    let listen = args.listen;
    serve::run_blocking("metadata-exporter", async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("metadata-exporter: cannot bind {listen}: {e}"))?;
        let https = config.tls.is_some();
        let running = spawn(listener, config).map_err(|e| format!("metadata-exporter: {e}"))?;
        tracing::info!(listen = %running.addr, https, "metadata-exporter started");
        serve::termination().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}
