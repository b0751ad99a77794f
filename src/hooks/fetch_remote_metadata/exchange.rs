//! One peer's metadata exchange (SPEC §5.2) as a future: GET public, validate, pin the
//! clusterUUID, sign a token, GET private, validate, and for multicluster peers probe the
//! remote API. Never fails: every problem becomes a condition in the returned [`Report`].
//!
//! Conditional requests: each document's entity-tag is stored next to it in the CR status. A
//! tag is sent as `If-None-Match` only when it is well-formed ([`entity_tag`]) and the cached
//! document it belongs to re-validates now to exactly itself, so a 304 can always be answered
//! with a document that the same validation would have produced from a fresh body. A private
//! document whose validation dropped items gets no stored tag (a later change of
//! `spec.trustDomain` must see the full body again).

use crate::domain::crd::PeerKind;
use crate::domain::jwt::{self, Scope};
use crate::domain::metadata::PublicMetadata;
use crate::domain::validate::{self, Dropped};
use crate::net::{Failure, HttpGet, Request, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

/// Longest condition message we write; peer-influenced text never grows a status unboundedly.
const MAX_MESSAGE: usize = 1024;
/// Lifetime of the `api`-scope token minted for the remote API probe.
const PROBE_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Longest entity-tag stored or sent, quotes included (the exporter's are 34 bytes).
pub(crate) const MAX_ENTITY_TAG: usize = 130;

/// `tag` when it is a strong entity-tag of visible ASCII within [`MAX_ENTITY_TAG`] bytes
/// (RFC 9110 §8.8.3 without obs-text): `"` then `%x21 / %x23-7E`* then `"`. Anything else is
/// ignored, whether it comes from a peer or from the (editable) CR status.
pub(crate) fn entity_tag(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    let ok = tag.len() <= MAX_ENTITY_TAG
        && inner
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b));
    ok.then_some(tag)
}

/// A cached document and its stored entity-tag, as read from the CR status (both untrusted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cached {
    pub doc: Option<Value>,
    /// Well-formed tags only ([`entity_tag`]).
    pub etag: Option<String>,
}

/// How a part that succeeded got its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// A 200: the document is new; the entity-tag to store with it, if any is usable.
    Sent(Option<String>),
    /// A 304 to our `If-None-Match`: the cached document stays as it is.
    NotModified,
}

/// Everything shared by all exchanges of one run.
pub(crate) struct Ctx<'a> {
    pub http: &'a dyn HttpGet,
    pub now: DateTime<Utc>,
    pub own_uuid: &'a str,
    /// The run's signing key, loaded once (loading costs far more than signing), or why it
    /// cannot be loaded (every private exchange then fails with `TokenGenerationFailed`).
    pub signer: &'a Result<jwt::Signer, String>,
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
    /// Multicluster: `spec.enableIngressGateway` (federations always need gateways).
    pub enable_ingress_gateway: bool,
    /// The valid clusterUUID of the cached public metadata, if any.
    pub pinned_uuid: Option<String>,
    /// Cached documents with their stored tags (documents read only when a tag is present).
    pub cached_public: Cached,
    pub cached_private: Cached,
    /// Multicluster kinds: the api token of the peer's remote secret, when it exists.
    pub stored_api_token: Option<String>,
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
    /// Whether `public_doc` / `private_doc` came in a 200 (and their tags) or a 304.
    pub public_fresh: Freshness,
    pub private_fresh: Freshness,
    /// Services (federation) published by the peer, for the log.
    pub services: usize,
    pub dropped: Vec<Dropped>,
    /// Every endpoint requested, with whether that exchange failed.
    pub endpoints: Vec<(String, bool)>,
    /// `(pinned, actual)` when the peer's clusterUUID changed.
    pub mismatch: Option<(String, String)>,
    /// `(apiHost, failed)` when the remote API was probed.
    pub api_check: Option<(String, bool)>,
    /// `IngressGatewaysPublished`, from the private document of this run (None when the private
    /// part failed: the prior condition is then kept as it was).
    pub gateways: Option<Cond>,
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
    if_none_match: Option<&str>,
) -> Result<Response, (&'static str, String)> {
    let req = Request {
        url: url.to_owned(),
        bearer,
        ca_pem: t.ca_pem.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        timeout: ctx.timeout,
        max_bytes: ctx.max_bytes,
        if_none_match: if_none_match.map(str::to_owned),
    };
    // The deadline is the client's (HttpGet contract): it starts once the request is sent, so
    // local work such as building a TLS client for a new CA never counts against the peer.
    match ctx.http.get(req).await {
        Ok(r) => Ok(r),
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

/// What a (conditional) metadata GET yielded.
enum Got {
    /// A 200: the parsed body and its usable entity-tag.
    Body(Value, Option<String>),
    /// A 304 to the tag we sent.
    NotModified,
}

/// A GET whose answer must be a 200 with a JSON body, or a 304 when `if_none_match` was sent.
/// A 304 that names another entity-tag than ours is not trusted: the document is then fetched
/// once more without `If-None-Match`. A 304 to a request without a tag is a `NonOKResponse`.
async fn get_json(
    ctx: &Ctx<'_>,
    t: &Target,
    url: &str,
    bearer: Option<String>,
    what: &str,
    if_none_match: Option<&str>,
) -> Result<Got, Cond> {
    let failed = |(reason, msg)| Cond::failed(reason, msg);
    let mut r = get(ctx, t, url, bearer.clone(), if_none_match)
        .await
        .map_err(failed)?;
    if let (304, Some(sent)) = (r.status, if_none_match) {
        if r.etag.as_deref().is_none_or(|e| e == sent) {
            return Ok(Got::NotModified);
        }
        r = get(ctx, t, url, bearer, None).await.map_err(failed)?;
    }
    if r.status != 200 {
        return Err(Cond::failed(
            "NonOKResponse",
            format!(
                "HTTP status {} when fetching {what} metadata from {url}",
                r.status
            ),
        ));
    }
    let etag = r.etag.as_deref().and_then(entity_tag).map(str::to_owned);
    serde_json::from_slice(&r.body)
        .map(|v| Got::Body(v, etag))
        .map_err(|e| {
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
        public_fresh: Freshness::Sent(None),
        private_fresh: Freshness::Sent(None),
        services: 0,
        dropped: Vec::new(),
        endpoints: Vec::with_capacity(2),
        mismatch: None,
        api_check: None,
        gateways: None,
    };
    let (public, public_fresh) = match fetch_public(ctx, t, &public_url).await {
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
    r.public_fresh = public_fresh;

    let private_url = t.private_url();
    let token = match sign(ctx, |s| {
        s.sign(ctx.own_uuid, &public.cluster_uuid, t.scope(), ctx.now)
    }) {
        Ok(tok) => tok,
        Err(e) => {
            r.private = Cond::failed(
                "TokenGenerationFailed",
                format!("cannot sign a token for {private_url}: {e}"),
            );
            r.endpoints.push((private_url, true));
            return r;
        }
    };
    match fetch_private(t, ctx, &private_url, token).await {
        Ok(((doc, services, dropped), fresh)) => {
            r.private_fresh = fresh;
            r.private = Cond::new(
                CondStatus::True,
                "Succeeded",
                "Private metadata exchange succeeded.",
            );
            r.endpoints.push((private_url, false));
            r.services = services;
            r.dropped = dropped;
            let published = doc
                .get("ingressGateways")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            r.gateways = Some(gateways_condition(t, published, services));
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

/// `IngressGatewaysPublished` for a peer whose valid private document lists `published`
/// gateways (and `services` public services, federation). A peer without gateways is kept —
/// its roots stay trusted, its status and cache stay — and this condition says why nothing of
/// it is reachable.
fn gateways_condition(t: &Target, published: usize, services: usize) -> Cond {
    const FIX: &str = "On the peer: its ingress gateway Service in d8-istio needs a load-balancer \
                       address (inlet LoadBalancer) or Ready nodes running gateway Pods (inlet \
                       NodePort), or set istio.alliance.ingressGateway.advertise there.";
    if published > 0 {
        return Cond::new(
            CondStatus::True,
            "Published",
            format!("The peer publishes {published} ingress gateway(s)."),
        );
    }
    if t.kind.is_multicluster() && !t.enable_ingress_gateway {
        return Cond::new(
            CondStatus::True,
            "NotRequired",
            "The peer publishes no ingress gateways; none is needed with spec.enableIngressGateway: false (flat network).",
        );
    }
    let what = if t.kind.is_multicluster() {
        "its remote secret and root CA are kept, but istiod cannot route to its endpoints from \
         this network until it publishes one"
            .to_owned()
    } else {
        format!(
            "none of its {services} public service(s) are imported (no ServiceEntries) until it \
             publishes one; its root CA stays trusted"
        )
    };
    Cond::failed(
        "NoIngressGateways",
        format!("The peer publishes no ingress gateways: {what}. {FIX}"),
    )
}

/// The stored tag of `cached` with the validated cached document, when the document
/// re-validates to exactly itself (so a 304 means the same as a fresh 200 would).
fn usable<T>(
    cached: &Cached,
    validate: impl FnOnce(&Value) -> Option<(Value, T)>,
) -> Option<(&str, T)> {
    let tag = cached.etag.as_deref()?;
    let doc = cached.doc.as_ref()?;
    let (again, validated) = validate(doc)?;
    (again == *doc).then_some((tag, validated))
}

async fn fetch_public(
    ctx: &Ctx<'_>,
    t: &Target,
    url: &str,
) -> Result<(PublicMetadata, Freshness), Cond> {
    check_base(&t.base).map_err(|m| Cond::failed("FetchFailed", m))?;
    let cached = usable(&t.cached_public, |v| {
        let p = validate::public_metadata(v, ctx.now).ok()?;
        Some((serde_json::to_value(&p).ok()?, p))
    });
    let tag = cached.as_ref().map(|(tag, _)| *tag);
    match (get_json(ctx, t, url, None, "public", tag).await?, cached) {
        (Got::NotModified, Some((_, doc))) => Ok((doc, Freshness::NotModified)),
        (Got::NotModified, None) => Err(not_modified_unasked(url, "public")),
        (Got::Body(v, etag), _) => validate::public_metadata(&v, ctx.now)
            .map(|p| (p, Freshness::Sent(etag)))
            .map_err(|m| Cond::failed("InvalidPublicMetadata", format!("{url}: {m}"))),
    }
}

/// Unreachable in practice ([`get_json`] only reports a 304 to a sent tag); kept total.
fn not_modified_unasked(url: &str, what: &str) -> Cond {
    Cond::failed(
        "NonOKResponse",
        format!("HTTP status 304 when fetching {what} metadata from {url}"),
    )
}

type PrivateDoc = (Value, usize, Vec<Dropped>);

/// GET the private document (conditionally when the cached one is usable) and validate it. A
/// document whose validation dropped items is stored without an entity-tag.
async fn fetch_private(
    t: &Target,
    ctx: &Ctx<'_>,
    url: &str,
    token: String,
) -> Result<(PrivateDoc, Freshness), Cond> {
    let cached = usable(&t.cached_private, |v| {
        let ok = validate_private(t, v)
            .ok()
            .filter(|(_, _, d)| d.is_empty())?;
        Some((ok.0.clone(), ok))
    });
    let tag = cached.as_ref().map(|(tag, _)| *tag);
    match (
        get_json(ctx, t, url, Some(token), "private", tag).await?,
        cached,
    ) {
        (Got::NotModified, Some((_, doc))) => Ok((doc, Freshness::NotModified)),
        (Got::NotModified, None) => Err(not_modified_unasked(url, "private")),
        (Got::Body(v, etag), _) => {
            let doc = validate_private(t, &v)?;
            let etag = etag.filter(|_| doc.2.is_empty());
            Ok((doc, Freshness::Sent(etag)))
        }
    }
}

/// The validated private document as cached JSON, the number of services, dropped items.
fn validate_private(t: &Target, v: &Value) -> Result<PrivateDoc, Cond> {
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

/// A token from the run's signer, or the error (`{:#}`-formatted) of loading or signing.
fn sign(
    ctx: &Ctx<'_>,
    f: impl FnOnce(&jwt::Signer) -> anyhow::Result<String>,
) -> Result<String, String> {
    match ctx.signer {
        Ok(s) => f(s).map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.clone()),
    }
}

/// `RemoteAPIServerReady`: `GET https://<apiHost>/version` through the peer's api-proxy with the
/// token stored in the peer's remote secret, which is what istiod uses, so a broken or revoked
/// stored token is noticed; before that secret exists, with a short-lived `api` token (same TLS
/// settings, deadline and size limit as the metadata).
async fn probe_api(ctx: &Ctx<'_>, t: &Target, api_host: &str, peer_uuid: &str) -> Cond {
    let url = format!("https://{api_host}/version");
    let (token, which) = match &t.stored_api_token {
        Some(stored) => (
            stored.clone(),
            format!("the token stored in istio-remote-secret-{}", t.name),
        ),
        None => match sign(ctx, |s| {
            s.sign_with_ttl(
                ctx.own_uuid,
                peer_uuid,
                Scope::Api.as_str(),
                ctx.now,
                PROBE_TOKEN_TTL,
            )
        }) {
            Ok(tok) => (tok, "a fresh api token (no remote secret yet)".to_owned()),
            Err(e) => {
                return Cond::failed(
                    "TokenGenerationFailed",
                    format!("cannot sign a token for {url}: {e}"),
                )
            }
        },
    };
    match get(ctx, t, &url, Some(token), None).await.map(|r| r.status) {
        Ok(200) => Cond::new(
            CondStatus::True,
            "RemoteAPIReachable",
            format!("GET {url} with {which} returned HTTP 200"),
        ),
        Ok(code @ (401 | 403)) if t.stored_api_token.is_some() => Cond::failed(
            "RemoteAPIUnauthorized",
            format!("GET {url} with {which} returned HTTP {code}: the peer refuses the token istiod uses (it does not know this cluster's current key, or the token was altered or issued for another cluster)"),
        ),
        Ok(code @ (401 | 403)) => Cond::failed(
            "RemoteAPIUnauthorized",
            format!("GET {url} returned HTTP {code}: the peer does not accept this cluster's token (yet)"),
        ),
        Ok(code) => Cond::failed("RemoteAPIBadResponse", format!("GET {url} returned HTTP {code}")),
        Err((_, msg)) => Cond::failed("RemoteAPIUnreachable", msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_are_quoted_strong_visible_ascii_within_the_limit() {
        let max = format!("\"{}\"", "a".repeat(MAX_ENTITY_TAG - 2));
        for ok in ["\"\"", "\"abc\"", "\"!#~\"", max.as_str()] {
            assert_eq!(entity_tag(ok), Some(ok), "{ok:?}");
        }
        let over = format!("\"{}\"", "a".repeat(MAX_ENTITY_TAG - 1));
        for bad in [
            "",
            "\"",
            "abc",
            "W/\"abc\"",
            "\"a\"b\"",
            "\"a b\"",
            "\"a\tb\"",
            "\"é\"",
            "\"a\u{7f}\"",
            over.as_str(),
        ] {
            assert_eq!(entity_tag(bad), None, "{bad:?}");
        }
    }
}
