//! One peer's metadata exchange (SPEC §5.2) as a future: GET public, validate, pin the
//! clusterUUID, sign a token, GET private, validate, and for multicluster peers probe the
//! remote API. Never fails: every problem becomes a condition in the returned [`Report`].

use crate::domain::crd::PeerKind;
use crate::domain::jwt::{self, Scope};
use crate::domain::metadata::PublicMetadata;
use crate::domain::validate::{self, Dropped};
use crate::runtime::http::{Failure, HttpGet, Request};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

/// Longest condition message we write; peer-influenced text never grows a status unboundedly.
const MAX_MESSAGE: usize = 1024;
/// Lifetime of the `api`-scope token minted for the remote API probe.
const PROBE_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Everything shared by all exchanges of one run.
pub(crate) struct Ctx<'a> {
    pub http: &'a dyn HttpGet,
    pub now: DateTime<Utc>,
    pub own_uuid: &'a str,
    pub private_key_pem: &'a str,
    pub timeout: Duration,
    pub max_bytes: u64,
}

/// What the exchange needs to know about one peer CR.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub kind: PeerKind,
    pub name: String,
    /// `spec.metadataEndpoint` without trailing slashes.
    pub base: String,
    /// Federation only.
    pub trust_domain: String,
    pub ca_pem: Option<String>,
    pub insecure_skip_verify: bool,
    /// The valid clusterUUID of the cached public metadata, if any.
    pub pinned_uuid: Option<String>,
}

impl Target {
    pub fn public_url(&self) -> String {
        format!("{}/public/public.json", self.base)
    }

    pub fn private_url(&self) -> String {
        let doc = if self.kind.is_multicluster() {
            "multicluster.json"
        } else {
            "federation.json"
        };
        format!("{}/private/{doc}", self.base)
    }

    fn scope(&self) -> Scope {
        if self.kind.is_multicluster() {
            Scope::PrivateMulticluster
        } else {
            Scope::PrivateFederation
        }
    }
}

/// Condition status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CondStatus {
    True,
    False,
    Unknown,
}

impl CondStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CondStatus::True => "True",
            CondStatus::False => "False",
            CondStatus::Unknown => "Unknown",
        }
    }
}

/// One managed condition's content (times are added when the status is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cond {
    pub status: CondStatus,
    pub reason: &'static str,
    pub message: String,
}

impl Cond {
    fn new(status: CondStatus, reason: &'static str, message: impl Into<String>) -> Cond {
        Cond {
            status,
            reason,
            message: clip(message.into()),
        }
    }

    fn failed(reason: &'static str, message: impl Into<String>) -> Cond {
        Cond::new(CondStatus::False, reason, message)
    }

    pub fn ok(&self) -> bool {
        self.status == CondStatus::True
    }
}

/// The outcome of one peer's exchange.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub public: Cond,
    pub private: Cond,
    /// Multicluster kinds only.
    pub api: Option<Cond>,
    /// Validated public document to cache (only when the public part succeeded).
    pub public_doc: Option<Value>,
    /// Validated private document to cache (only when the private part succeeded).
    pub private_doc: Option<Value>,
    /// Services (federation) published by the peer, for the log.
    pub services: usize,
    pub dropped: Vec<Dropped>,
    /// Every endpoint requested, with whether that exchange failed.
    pub endpoints: Vec<(String, bool)>,
    /// `(pinned, actual)` when the peer's clusterUUID changed.
    pub mismatch: Option<(String, String)>,
    /// `(apiHost, failed)` when the remote API was probed.
    pub api_check: Option<(String, bool)>,
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn awaiting_public() -> Cond {
    Cond::new(
        CondStatus::Unknown,
        "AwaitingPublic",
        "Public metadata exchange has not succeeded yet.",
    )
}

fn awaiting_private() -> Cond {
    Cond::new(
        CondStatus::Unknown,
        "AwaitingPrivate",
        "Private metadata exchange has not succeeded yet.",
    )
}

/// Checks the endpoint is an absolute `https://` URL: metadata carries trust roots and must
/// never travel in clear text.
fn check_base(base: &str) -> Result<(), String> {
    let url = url::Url::parse(base)
        .map_err(|e| format!("spec.metadataEndpoint {base:?} is not a URL: {e}"))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "spec.metadataEndpoint {base:?} must be an https:// URL"
        ));
    }
    Ok(())
}

/// One bounded GET, its failure mapped to a condition reason and message.
async fn get(
    ctx: &Ctx<'_>,
    t: &Target,
    url: &str,
    bearer: Option<String>,
) -> Result<(u16, Vec<u8>), (&'static str, String)> {
    let req = Request {
        url: url.to_owned(),
        bearer,
        ca_pem: t.ca_pem.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        timeout: ctx.timeout,
        max_bytes: ctx.max_bytes,
    };
    // The deadline is the client's (HttpGet contract): it starts once the request is sent, so
    // local work such as building a TLS client for a new CA never counts against the peer.
    match ctx.http.get(req).await {
        Ok(r) => Ok((r.status, r.body)),
        Err(Failure::TooLarge(n)) => Err((
            "ResponseTooLarge",
            format!("GET {url}: response larger than {n} bytes"),
        )),
        Err(f) => {
            // reqwest's messages already name the URL; say it once.
            let f = f.to_string();
            let msg = if f.contains(url) {
                f
            } else {
                format!("GET {url}: {f}")
            };
            Err(("FetchFailed", msg))
        }
    }
}

/// A GET whose answer must be a 200 with a JSON body.
async fn get_json(
    ctx: &Ctx<'_>,
    t: &Target,
    url: &str,
    bearer: Option<String>,
    what: &str,
) -> Result<Value, Cond> {
    let (status, body) = get(ctx, t, url, bearer)
        .await
        .map_err(|(reason, msg)| Cond::failed(reason, msg))?;
    if status != 200 {
        return Err(Cond::failed(
            "NonOKResponse",
            format!("HTTP status {status} when fetching {what} metadata from {url}"),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        Cond::failed(
            "InvalidJSON",
            format!("cannot parse {what} metadata from {url}: {e}"),
        )
    })
}

/// Runs the whole exchange with one peer.
pub(crate) async fn exchange(ctx: &Ctx<'_>, t: &Target) -> Report {
    let public_url = t.public_url();
    let mut r = Report {
        public: awaiting_public(),
        private: awaiting_public(),
        api: t.kind.is_multicluster().then(awaiting_private),
        public_doc: None,
        private_doc: None,
        services: 0,
        dropped: Vec::new(),
        endpoints: Vec::with_capacity(2),
        mismatch: None,
        api_check: None,
    };
    let public = match fetch_public(ctx, t, &public_url).await {
        Ok(p) => p,
        Err(cond) => {
            r.public = cond;
            r.endpoints.push((public_url, true));
            return r;
        }
    };
    r.endpoints.push((public_url, false));
    if let Some(pinned) = t
        .pinned_uuid
        .as_deref()
        .filter(|p| *p != public.cluster_uuid)
    {
        r.public = Cond::failed(
            "ClusterUUIDMismatch",
            format!(
                "the peer now reports clusterUUID {:?} but {pinned:?} is pinned by the cached public metadata; \
                 the peer is not trusted until the {} is recreated",
                public.cluster_uuid,
                t.kind.kind()
            ),
        );
        r.private = Cond::new(
            CondStatus::Unknown,
            "AwaitingPublic",
            "Public metadata is not trusted (clusterUUID mismatch).",
        );
        r.mismatch = Some((pinned.to_owned(), public.cluster_uuid));
        return r;
    }
    r.public = Cond::new(
        CondStatus::True,
        "Succeeded",
        "Public metadata exchange succeeded.",
    );
    r.public_doc = serde_json::to_value(&public).ok();

    let private_url = t.private_url();
    let token = match jwt::sign(
        ctx.private_key_pem,
        ctx.own_uuid,
        &public.cluster_uuid,
        t.scope(),
        ctx.now,
    ) {
        Ok(tok) => tok,
        Err(e) => {
            r.private = Cond::failed(
                "TokenGenerationFailed",
                format!("cannot sign a token for {private_url}: {e:#}"),
            );
            r.endpoints.push((private_url, true));
            return r;
        }
    };
    let private = get_json(ctx, t, &private_url, Some(token), "private")
        .await
        .and_then(|v| validate_private(t, &v));
    match private {
        Ok((doc, services, dropped)) => {
            r.private = Cond::new(
                CondStatus::True,
                "Succeeded",
                "Private metadata exchange succeeded.",
            );
            r.endpoints.push((private_url, false));
            r.services = services;
            r.dropped = dropped;
            if t.kind.is_multicluster() {
                let api_host = doc
                    .get("apiHost")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let cond = probe_api(ctx, t, &api_host, &public.cluster_uuid).await;
                r.api_check = Some((api_host, !cond.ok()));
                r.api = Some(cond);
            }
            r.private_doc = Some(doc);
        }
        Err(cond) => {
            r.private = cond;
            r.endpoints.push((private_url, true));
        }
    }
    r
}

async fn fetch_public(ctx: &Ctx<'_>, t: &Target, url: &str) -> Result<PublicMetadata, Cond> {
    check_base(&t.base).map_err(|m| Cond::failed("FetchFailed", m))?;
    let v = get_json(ctx, t, url, None, "public").await?;
    validate::public_metadata(&v, ctx.now)
        .map_err(|m| Cond::failed("InvalidPublicMetadata", format!("{url}: {m}")))
}

/// The validated private document as cached JSON, the number of services, dropped items.
fn validate_private(t: &Target, v: &Value) -> Result<(Value, usize, Vec<Dropped>), Cond> {
    let invalid = |m: String| {
        Cond::failed(
            "InvalidPrivateMetadata",
            format!("{}: {m}", t.private_url()),
        )
    };
    let (doc, services, dropped) = if t.kind.is_multicluster() {
        let ok = validate::multicluster_private(v).map_err(invalid)?;
        (serde_json::to_value(&ok.value), 0, ok.dropped)
    } else {
        let ok = validate::federation_private(v, &t.trust_domain).map_err(invalid)?;
        (
            serde_json::to_value(&ok.value),
            ok.value.public_services.len(),
            ok.dropped,
        )
    };
    let doc = doc.map_err(|e| invalid(format!("cannot serialize: {e}")))?;
    Ok((doc, services, dropped))
}

/// `RemoteAPIServerReady`: `GET https://<apiHost>/version` through the peer's api-proxy with a
/// short-lived `api` token (same TLS settings, deadline and size limit as the metadata).
async fn probe_api(ctx: &Ctx<'_>, t: &Target, api_host: &str, peer_uuid: &str) -> Cond {
    let url = format!("https://{api_host}/version");
    let token = match jwt::sign_with_ttl(
        ctx.private_key_pem,
        ctx.own_uuid,
        peer_uuid,
        Scope::Api.as_str(),
        ctx.now,
        PROBE_TOKEN_TTL,
    ) {
        Ok(tok) => tok,
        Err(e) => {
            return Cond::failed(
                "TokenGenerationFailed",
                format!("cannot sign a token for {url}: {e:#}"),
            )
        }
    };
    match get(ctx, t, &url, Some(token)).await {
        Ok((200, _)) => Cond::new(CondStatus::True, "RemoteAPIReachable", format!("GET {url} returned HTTP 200")),
        Ok((code @ (401 | 403), _)) => Cond::failed(
            "RemoteAPIUnauthorized",
            format!("GET {url} returned HTTP {code}: the peer does not accept this cluster's token (yet)"),
        ),
        Ok((code, _)) => Cond::failed("RemoteAPIBadResponse", format!("GET {url} returned HTTP {code}")),
        Err((_, msg)) => Cond::failed("RemoteAPIUnreachable", msg),
    }
}
