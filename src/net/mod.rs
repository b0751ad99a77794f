//! The outbound network client, the one kind of network access hooks and `check` have: bounded
//! HTTPS GETs. A small trait ([`HttpGet`]) so that hook logic runs against real sockets in
//! production ([`HttpsClient`]: hyper over OpenSSL, contexts from [`crate::tls`]) and against
//! canned answers in golden tests ([`CannedClient`]).

mod canned;
mod client;
mod connector;

pub use canned::CannedClient;
pub use client::HttpsClient;

use std::future::Future;
use std::pin::Pin;
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
