//! `istio-hooks api-proxy` (SPEC §6.2): an HTTPS, read-only reverse proxy for remote istiods.
//! A request must carry a peer JWT with scope `api`; the proxy drops the caller's credentials,
//! re-authenticates to the local kube-apiserver with its own ServiceAccount token (re-read when
//! the projected token rotates) and streams the response back without buffering (watches).

use crate::domain::jwt::{PeerKeys, Scope};
use crate::domain::pki;
use crate::servers::datadir::{self, Watched};
use crate::servers::serve::{self, Limits, Running};
use crate::tls;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openssl::ssl::SslAcceptor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Names the api-proxy's self-signed certificate is valid for (the ingress does not verify it).
pub const API_PROXY_SANS: &[&str] = &[
    "api-proxy",
    "api-proxy.d8-istio",
    "api-proxy.d8-istio.svc",
    "localhost",
];

/// Flags of the api-proxy.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// remote-public-metadata.json: clusterUUID → public metadata of every known peer (whose
    /// `authnKeyPub` verifies their tokens). Re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub remote_metadata: PathBuf,
    /// Address to listen on (HTTPS).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:4443")]
    pub listen: SocketAddr,
    /// PEM certificate chain to serve; needs --tls-key. Without it a self-signed certificate
    /// is generated at start (SANs api-proxy, api-proxy.d8-istio, api-proxy.d8-istio.svc, localhost).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this PEM CA on every connection (Deckhouse's
    /// ingress-nginx presents one to its HTTPS backends). No client certificate is asked for
    /// without it.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// With --client-ca: the client certificate's first Organization must equal this
    /// (`ingress-nginx:auth` for Deckhouse's ingress).
    #[arg(long, value_name = "ORG", requires = "client_ca")]
    pub client_organization: Option<String>,
    /// This cluster's UUID: tokens must be addressed to it (`aud`).
    #[arg(long, value_name = "UUID", env = "CLUSTER_UUID")]
    pub cluster_uuid: String,
    /// Base URL of the local kube-apiserver.
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://kubernetes.default.svc"
    )]
    pub apiserver: String,
    /// ServiceAccount token sent to the apiserver (re-read when it changes).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub token_file: PathBuf,
    /// PEM CA bundle that verifies the apiserver (the only trusted roots).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    pub ca_file: PathBuf,
    /// How often --remote-metadata and --token-file are checked for changes.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// Time a client has to send its request headers (also the keep-alive idle timeout).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Time the apiserver has to answer with response headers (the body, e.g. a watch, may
    /// stream for as long as the apiserver keeps it open).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_header_timeout: Duration,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
}

/// What [`spawn`] needs (tests and the demo build it directly).
pub struct Config {
    pub remote_metadata: PathBuf,
    pub cluster_uuid: String,
    pub apiserver: url::Url,
    pub token_file: PathBuf,
    /// PEM roots trusted for the apiserver.
    pub ca_pem: Vec<u8>,
    pub tls: SslAcceptor,
    pub reload_interval: Duration,
    pub upstream_header_timeout: Duration,
    pub limits: Limits,
}

#[derive(Clone)]
struct AppState {
    /// The peers' keys, parsed once per version of remote-public-metadata.json.
    remote: Watched<PeerKeys>,
    token: Watched<String>,
    own_uuid: String,
    apiserver: url::Url,
    client: reqwest::Client,
    upstream_header_timeout: Duration,
}

fn msg(status: StatusCode, text: &str) -> Response {
    (status, format!("[api-proxy] {text}\n")).into_response()
}

fn upstream_client(ca_pem: &[u8]) -> Result<reqwest::Client, String> {
    let certs = reqwest::Certificate::from_pem_bundle(ca_pem)
        .map_err(|e| format!("invalid apiserver CA: {e}"))?;
    if certs.is_empty() {
        return Err("the apiserver CA file holds no certificate".into());
    }
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60));
    for c in certs {
        b = b.add_root_certificate(c);
    }
    b.build()
        .map_err(|e| format!("cannot build the apiserver client: {e}"))
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "Ok." }))
        .route("/ready", get(ready))
        .fallback(proxy)
        .with_state(state)
}

async fn ready(State(s): State<AppState>) -> Response {
    let Some(token) = s.token.get() else {
        return msg(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No ServiceAccount token.",
        );
    };
    let Ok(url) = s.apiserver.join("/version") else {
        return msg(StatusCode::INTERNAL_SERVER_ERROR, "Bad apiserver URL.");
    };
    let req = s.client.get(url).bearer_auth(token.as_str()).send();
    match tokio::time::timeout(s.upstream_header_timeout, req).await {
        Ok(Ok(r)) if r.status() == reqwest::StatusCode::OK => "Ok.".into_response(),
        Ok(Ok(r)) => msg(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("apiserver answered {}", r.status().as_u16()),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "apiserver unreachable");
            msg(StatusCode::INTERNAL_SERVER_ERROR, "apiserver unreachable")
        }
        Err(_) => msg(StatusCode::INTERNAL_SERVER_ERROR, "apiserver timed out"),
    }
}

/// Request headers passed on to the apiserver; everything else (credentials, `Impersonate-*`,
/// hop-by-hop, `Host`) is dropped.
const FORWARDED_REQUEST_HEADERS: [header::HeaderName; 3] =
    [header::ACCEPT, header::USER_AGENT, header::ACCEPT_LANGUAGE];
/// Response headers passed back.
const FORWARDED_RESPONSE_HEADERS: [header::HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
];

async fn proxy(State(s): State<AppState>, req: Request) -> Response {
    if req.method() != Method::GET {
        return msg(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET requests are allowed.",
        );
    }
    let peers = s.remote.get().unwrap_or_default();
    if let Err(e) = crate::servers::auth::check(req.headers(), &s.own_uuid, Scope::Api, &peers) {
        return msg(
            StatusCode::UNAUTHORIZED,
            &format!("Authentication error: {e}"),
        );
    }
    let Some(token) = s.token.get() else {
        return msg(StatusCode::SERVICE_UNAVAILABLE, "No ServiceAccount token.");
    };
    let Some(url) = upstream_url(&s.apiserver, &req) else {
        return msg(StatusCode::BAD_REQUEST, "Bad request path.");
    };
    let mut up = s.client.get(url).bearer_auth(token.as_str());
    for name in FORWARDED_REQUEST_HEADERS {
        for v in req.headers().get_all(&name) {
            up = up.header(&name, v);
        }
    }
    let resp = match tokio::time::timeout(s.upstream_header_timeout, up.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "apiserver request failed");
            return msg(StatusCode::BAD_GATEWAY, "apiserver request failed.");
        }
        Err(_) => {
            return msg(
                StatusCode::GATEWAY_TIMEOUT,
                "apiserver did not answer in time.",
            )
        }
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(v) = resp.headers().get(&name) {
            out = out.header(&name, v);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|_| msg(StatusCode::BAD_GATEWAY, "bad apiserver response"))
}

/// The apiserver URL for the request's path and query; `None` for anything that is not an
/// origin-form path or would leave the apiserver's origin.
fn upstream_url(base: &url::Url, req: &Request) -> Option<url::Url> {
    let pq = req.uri().path_and_query()?.as_str();
    if !pq.starts_with('/') || pq.starts_with("//") {
        return None;
    }
    let mut text = base.as_str().trim_end_matches('/').to_owned();
    text.push_str(pq);
    let url = url::Url::parse(&text).ok()?;
    (url.origin() == base.origin()).then_some(url)
}

/// Starts the proxy on `listener` (inside a tokio runtime).
pub fn spawn(listener: tokio::net::TcpListener, config: Config) -> Result<Running, String> {
    let client = upstream_client(&config.ca_pem)?;
    let (tx, rx) = serve::shutdown_channel();
    let remote = Watched::spawn(
        config.remote_metadata,
        config.reload_interval,
        crate::servers::auth::parse_peers,
        rx.clone(),
    );
    let token = Watched::spawn(
        config.token_file,
        config.reload_interval,
        datadir::token,
        rx,
    );
    let state = AppState {
        remote,
        token,
        own_uuid: config.cluster_uuid,
        apiserver: config.apiserver,
        client,
        upstream_header_timeout: config.upstream_header_timeout,
    };
    serve::serve(listener, router(state), Some(config.tls), config.limits, tx)
        .map_err(|e| e.to_string())
}

/// The listener's TLS: certificate from files or self-signed, client certificates when asked.
fn server_tls(args: &Args) -> Result<SslAcceptor, String> {
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => (read(c)?, read(k)?),
        _ => {
            let (c, k) = pki::self_signed_server_cert("istio-api-proxy", API_PROXY_SANS)
                .map_err(|e| format!("{e:#}"))?;
            (c.into_bytes(), k.into_bytes())
        }
    };
    let built = match &args.client_ca {
        Some(ca) => tls::acceptor_requiring_client_certs(
            &cert,
            &key,
            &read(ca)?,
            args.client_organization.clone(),
        ),
        None => tls::acceptor_from_pem(&cert, &key),
    };
    built.map_err(|e| format!("TLS setup: {e:#}"))
}

pub fn main(args: Args) -> Result<(), String> {
    let fail = |e: String| format!("api-proxy: {e}");
    if args.cluster_uuid.is_empty() {
        return Err(fail("--cluster-uuid (or CLUSTER_UUID) is required".into()));
    }
    let apiserver = url::Url::parse(&args.apiserver)
        .map_err(|e| fail(format!("--apiserver {}: {e}", args.apiserver)))?;
    let ca_pem = std::fs::read(&args.ca_file)
        .map_err(|e| fail(format!("cannot read {}: {e}", args.ca_file.display())))?;
    let tls = server_tls(&args).map_err(fail)?;
    let config = Config {
        remote_metadata: args.remote_metadata,
        cluster_uuid: args.cluster_uuid,
        apiserver,
        token_file: args.token_file,
        ca_pem,
        tls,
        reload_interval: args.reload_interval,
        upstream_header_timeout: args.upstream_header_timeout,
        limits: Limits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections,
            ..Limits::default()
        },
    };
    let listen = args.listen;
    serve::run_blocking("api-proxy", async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| fail(format!("cannot bind {listen}: {e}")))?;
        let running = spawn(listener, config).map_err(fail)?;
        tracing::info!(listen = %running.addr, "api-proxy started");
        serve::termination().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_for(base: &str, target: &str) -> Option<String> {
        let req = Request::builder().uri(target).body(Body::empty()).ok()?;
        upstream_url(&url::Url::parse(base).ok()?, &req).map(|u| u.to_string())
    }

    #[test]
    fn upstream_urls_stay_on_the_apiserver() {
        let base = "https://kubernetes.default.svc";
        assert_eq!(
            url_for(base, "/api/v1/pods?watch=true&resourceVersion=5").as_deref(),
            Some("https://kubernetes.default.svc/api/v1/pods?watch=true&resourceVersion=5")
        );
        assert_eq!(
            url_for("https://k:6443/", "/version").as_deref(),
            Some("https://k:6443/version")
        );
        assert_eq!(url_for(base, "//evil.example.com/x"), None);
        // Absolute-form targets keep only their path: still the apiserver.
        assert_eq!(
            url_for(base, "http://evil.example.com/api").as_deref(),
            Some("https://kubernetes.default.svc/api")
        );
        assert_eq!(url_for(base, "*"), None);
        let odd = url_for(base, "/@evil.example.com/api").unwrap();
        assert!(odd.starts_with("https://kubernetes.default.svc/"), "{odd}");
    }
}
