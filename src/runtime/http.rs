//! The one kind of network access a hook may have: bounded HTTPS GETs. A small trait so hook
//! logic runs against real sockets in production and against canned answers in golden tests.

use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub bearer: Option<String>,
    /// Extra trusted roots (PEM), added to the system roots.
    pub ca_pem: Option<String>,
    /// Only honoured when `ca_pem` is `None`.
    pub insecure_skip_verify: bool,
    /// Deadline for connect and the whole exchange.
    pub timeout: Duration,
    pub max_bytes: u64,
    /// Sent as `If-None-Match` (one entity-tag, already checked by the caller).
    pub if_none_match: Option<String>,
}

/// A complete answer. Every status is passed through (a 304 is not an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `ETag` header as sent, when it is a visible-ASCII string (untrusted: check it).
    pub etag: Option<String>,
}

impl Response {
    /// A response without an `ETag`.
    pub fn new(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            body,
            etag: None,
        }
    }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Transport(String),
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
}

pub type GetFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Failure>> + Send + 'a>>;

/// Bounded GETs.
pub trait HttpGet: Send + Sync {
    fn get(&self, req: Request) -> GetFuture<'_>;
}

/// The real client: reqwest over native TLS (openssl), no redirects, one connection pool per
/// distinct TLS setting.
/// One pool per (extra CA, insecure, timeout).
type PoolKey = (Option<String>, bool, Duration);

pub struct ReqwestClient {
    pools: Mutex<BTreeMap<PoolKey, Arc<tokio::sync::OnceCell<reqwest::Client>>>>,
    /// Client builds are CPU-bound: at most one per spare core, so that they never starve the
    /// requests in flight.
    builders: tokio::sync::Semaphore,
}

impl Default for ReqwestClient {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ReqwestClient {
            pools: Mutex::default(),
            builders: tokio::sync::Semaphore::new(cores.saturating_sub(1).max(1)),
        }
    }
}

impl ReqwestClient {
    /// The pooled client for `req`'s TLS setting. Building one loads the system roots (tens of
    /// milliseconds of blocking work), so it runs on the blocking pool, once per setting, and
    /// never stalls the requests already in flight on the caller's runtime.
    async fn client(&self, req: &Request) -> Result<reqwest::Client, Failure> {
        let insecure = req.ca_pem.is_none() && req.insecure_skip_verify;
        let key = (req.ca_pem.clone(), insecure, req.timeout);
        let cell = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            pools.entry(key.clone()).or_default().clone()
        };
        let client = cell
            .get_or_try_init(|| async move {
                let _building = self.builders.acquire().await.map_err(|e| {
                    Failure::Transport(format!("cannot build the HTTP client: {e}"))
                })?;
                tokio::task::spawn_blocking(move || build_client(key))
                    .await
                    .map_err(|e| Failure::Transport(format!("cannot build the HTTP client: {e}")))?
            })
            .await?;
        Ok(client.clone())
    }

    async fn fetch(&self, req: Request) -> Result<Response, Failure> {
        let client = self.client(&req).await?;
        let mut rb = client.get(&req.url);
        if let Some(t) = &req.bearer {
            rb = rb.bearer_auth(t);
        }
        if let Some(tag) = &req.if_none_match {
            rb = rb.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let deadline = req.timeout;
        let work = async {
            let resp = rb
                .send()
                .await
                .map_err(|e| Failure::Transport(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if resp.content_length().is_some_and(|n| n > req.max_bytes) {
                return Err(Failure::TooLarge(req.max_bytes));
            }
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Failure::Transport(error_chain(&e)))?;
                if body.len() as u64 + chunk.len() as u64 > req.max_bytes {
                    return Err(Failure::TooLarge(req.max_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response { status, body, etag })
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r.map_err(|e| match e {
                Failure::Transport(m)
                    if m.contains("operation timed out") || m.contains("timed out") =>
                {
                    Failure::Timeout(deadline)
                }
                other => other,
            }),
            Err(_) => Err(Failure::Timeout(deadline)),
        }
    }
}

fn build_client((ca_pem, insecure, timeout): PoolKey) -> Result<reqwest::Client, Failure> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("istio-hooks/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
            .map_err(|e| Failure::Transport(format!("spec.metadata.ca: {e}")))?;
        if certs.is_empty() {
            return Err(Failure::Transport(
                "spec.metadata.ca: no PEM certificate".into(),
            ));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    } else if insecure {
        b = b
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| Failure::Transport(e.to_string()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

impl HttpGet for ReqwestClient {
    fn get(&self, req: Request) -> GetFuture<'_> {
        Box::pin(self.fetch(req))
    }
}

/// Canned answers by URL, for golden tests: `status`+`body` (+`etag`), or a failure. A request
/// whose `If-None-Match` equals the canned answer's `etag` gets a 304 with that `etag` and no
/// body, as the metadata-exporter answers. Records requests.
#[derive(Default)]
pub struct CannedClient {
    pub answers: BTreeMap<String, Result<Response, Failure>>,
    pub seen: Mutex<Vec<Request>>,
}

impl HttpGet for CannedClient {
    fn get(&self, req: Request) -> GetFuture<'_> {
        let answer = self.answers.get(&req.url).cloned().unwrap_or_else(|| {
            Err(Failure::Transport(format!(
                "dial {}: connection refused",
                req.url
            )))
        });
        let answer = match answer {
            Ok(r) if r.etag.is_some() && r.etag == req.if_none_match => Ok(Response {
                status: 304,
                body: Vec::new(),
                etag: r.etag,
            }),
            Ok(r) if r.body.len() as u64 > req.max_bytes => Err(Failure::TooLarge(req.max_bytes)),
            other => other,
        };
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req);
        Box::pin(async move { answer })
    }
}
