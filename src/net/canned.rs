//! [`CannedClient`], the [`HttpGet`] of golden and hostile-input tests: answers looked up by
//! URL, no sockets.

use super::{Failure, GetFuture, HttpGet, Request, Response};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Canned answers by URL, for golden tests: `status`+`body` (+`etag`), or a failure. A request
/// whose `If-None-Match` equals the canned answer's `etag` gets a 304 with that `etag` and no
/// body, as the metadata-exporter answers. Records requests.
#[derive(Default)]
pub struct CannedClient {
    pub answers: BTreeMap<String, Result<Response, Failure>>,
    pub seen: Mutex<Vec<Request>>,
    /// URLs that answer 401 unless the request carries exactly this bearer token.
    pub required_bearer: BTreeMap<String, String>,
}

impl HttpGet for CannedClient {
    fn get(&self, req: Request) -> GetFuture<'_> {
        let answer = self.answers.get(&req.url).cloned().unwrap_or_else(|| {
            Err(Failure::Transport(format!(
                "dial {}: connection refused",
                req.url
            )))
        });
        let refused = self
            .required_bearer
            .get(&req.url)
            .is_some_and(|want| req.bearer.as_deref() != Some(want.as_str()));
        let answer = match answer {
            Ok(_) if refused => Ok(Response {
                status: 401,
                body: b"token refused".to_vec(),
                etag: None,
            }),
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
