//! [`HttpsClient`], the real [`HttpGet`]: hyper-util's pooling client (HTTP/1.1) over the
//! OpenSSL [`HttpsConnector`], one pool per TLS setting, no redirects, every answer bounded in
//! time and size.

use super::connector::HttpsConnector;
use super::{Failure, GetFuture, HttpGet, Request, Response};
use crate::tls::TlsSetting;
use bytes::Bytes;
use http::{header, HeaderValue};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// One pool per (extra CA, insecure, timeout).
type PoolKey = (Option<String>, bool, Duration);

type Pool = hyper_util::client::legacy::Client<HttpsConnector, Empty<Bytes>>;

/// The real client: hyper 1 (hyper-util's pooling client, HTTP/1.1) over OpenSSL, no redirects,
/// one pool of kept-alive connections per distinct TLS setting. A setting's OpenSSL context is
/// cheap to build (see [`crate::tls`]: the system roots are looked up lazily or parsed once per
/// process), so pools are built inline on first use.
#[derive(Default)]
pub struct HttpsClient {
    pools: Mutex<BTreeMap<PoolKey, Pool>>,
}

const USER_AGENT: &str = concat!("istio-hooks/", env!("CARGO_PKG_VERSION"));

impl HttpsClient {
    /// The pooled client for `req`'s TLS setting.
    fn pool(&self, req: &Request) -> Result<Pool, Failure> {
        let insecure = req.ca_pem.is_none() && req.insecure_skip_verify;
        let key = (req.ca_pem.clone(), insecure, req.timeout);
        let lock = || self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = lock().get(&key) {
            return Ok(pool.clone());
        }
        // Built outside the lock (the first one may parse a system bundle); a concurrent
        // build of the same setting loses the race and is dropped.
        let tls = TlsSetting::new(req.ca_pem.as_deref(), insecure).map_err(Failure::Transport)?;
        let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(HttpsConnector::new(tls, req.timeout));
        Ok(lock().entry(key).or_insert(pool).clone())
    }

    fn request(req: &Request) -> Result<http::Request<Empty<Bytes>>, Failure> {
        let bad = |e: &dyn std::fmt::Display| {
            Failure::Transport(format!("invalid request for url ({}): {e}", req.url))
        };
        let url = url::Url::parse(&req.url).map_err(|e| bad(&e))?;
        if url.scheme() != "https" {
            return Err(bad(&"only https URLs are fetched"));
        }
        let uri: http::Uri = url.as_str().parse().map_err(|e| bad(&e))?;
        let mut b = http::Request::get(uri)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "*/*");
        if let Some(t) = &req.bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|e| bad(&e))?;
            v.set_sensitive(true);
            b = b.header(header::AUTHORIZATION, v);
        }
        if let Some(tag) = &req.if_none_match {
            b = b.header(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(tag).map_err(|e| bad(&e))?,
            );
        }
        b.body(Empty::new()).map_err(|e| bad(&e))
    }

    async fn fetch(&self, req: Request) -> Result<Response, Failure> {
        let pool = self.pool(&req)?;
        let request = Self::request(&req)?;
        let deadline = req.timeout;
        let sending = |e: &dyn std::error::Error| {
            Failure::Transport(format!(
                "error sending request for url ({}): {}",
                req.url,
                error_chain(e)
            ))
        };
        let work = async {
            let resp = pool.request(request).await.map_err(|e| sending(&e))?;
            let status = resp.status().as_u16();
            let etag = resp
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut body = resp.into_body();
            if hyper::body::Body::size_hint(&body)
                .exact()
                .is_some_and(|n| n > req.max_bytes)
            {
                return Err(Failure::TooLarge(req.max_bytes));
            }
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Failure::Transport(format!(
                        "error decoding response body from url ({}): {}",
                        req.url,
                        error_chain(&e)
                    ))
                })?;
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                if bytes.len() as u64 + chunk.len() as u64 > req.max_bytes {
                    return Err(Failure::TooLarge(req.max_bytes));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                body: bytes,
                etag,
            })
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

impl HttpGet for HttpsClient {
    fn get(&self, req: Request) -> GetFuture<'_> {
        Box::pin(self.fetch(req))
    }
}
