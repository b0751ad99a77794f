//! `istio-hooks check`: an operator's diagnostic of a peer's metadata endpoint, in the spirit of
//! `linkerd multicluster check`. It fetches what `fetch-remote-metadata` would fetch, with the same
//! HTTP client, limits and validation (`domain::validate`), and prints a checklist of pass / warn /
//! fail items with hints. Exit code 0 when nothing failed (warnings allowed), 1 otherwise.

use crate::domain::jwt::{self, Scope};
use crate::domain::pki::{self, CertInfo};
use crate::domain::validate::{self, Dropped};
use crate::net::{Failure, HttpGet, HttpsClient, Request, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Response size limit, as the hooks' default (`alliance.metadataFetch.maxResponseBytes`).
const MAX_BYTES: u64 = 1024 * 1024;
/// Name of the check that the peer answered the public document.
const PUBLIC_REACHABLE: &str = "public metadata reachable";
/// A root CA expiring within this many days is a warning.
const WARN_DAYS: i64 = 30;

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

/// One checklist item.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

/// Everything `check` found, as printed by `-o json`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub endpoint: String,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<Value>,
    pub dropped: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// SHA-256 fingerprints of the published roots, to compare with the SPIFFE bundle.
    #[serde(skip)]
    root_fingerprints: Vec<String>,
}

impl Report {
    fn add(&mut self, name: &str, status: Status, message: String, hint: Option<&str>) {
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            message,
            hint: hint.map(str::to_owned),
        });
    }
    fn pass(&mut self, name: &str, message: String) {
        self.add(name, Status::Pass, message, None);
    }
    fn warn(&mut self, name: &str, message: String, hint: Option<&str>) {
        self.add(name, Status::Warn, message, hint);
    }
    fn fail(&mut self, name: &str, message: String, hint: &str) {
        self.add(name, Status::Fail, message, Some(hint));
    }
    fn failed(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }
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

/// Connection settings shared by every request of one run.
struct Conn<'a> {
    http: &'a dyn HttpGet,
    ca_pem: Option<String>,
    insecure: bool,
    timeout: Duration,
}

impl Conn<'_> {
    async fn get(&self, url: String, bearer: Option<String>) -> Result<Response, Failure> {
        self.http
            .get(Request {
                url,
                bearer,
                ca_pem: self.ca_pem.clone(),
                insecure_skip_verify: self.insecure,
                timeout: self.timeout,
                max_bytes: MAX_BYTES,
                if_none_match: None,
            })
            .await
    }
}

/// The whole diagnostic against `http` at `now`.
pub async fn run(args: &Args, http: &dyn HttpGet, now: DateTime<Utc>) -> Report {
    let mut r = Report {
        endpoint: args.endpoint.clone(),
        ..Report::default()
    };
    let Some(base) = check_endpoint(&mut r, &args.endpoint) else {
        return r;
    };
    let Some(ca_pem) = check_ca_file(&mut r, args) else {
        return r;
    };
    let conn = Conn {
        http,
        insecure: ca_pem.is_none() && args.insecure_skip_verify,
        ca_pem,
        timeout: args.timeout,
    };
    let public = check_public(&mut r, &conn, &base, now).await;
    // A peer that did not answer is not asked again (a hanging one would cost another deadline).
    let answered = r
        .checks
        .iter()
        .any(|c| c.name == PUBLIC_REACHABLE && c.status == Status::Pass);
    if answered {
        check_spiffe(&mut r, &conn, &base).await;
    }
    match (&args.private_key, &args.cluster_uuid, public) {
        (Some(key), Some(uuid), Some(peer_uuid)) => {
            check_private(&mut r, &conn, &base, args, key, uuid, &peer_uuid, now).await
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

/// Endpoint URL: https (as the hooks require), a host, no query. Returns the base
/// without trailing `/`.
fn check_endpoint(r: &mut Report, endpoint: &str) -> Option<String> {
    const NAME: &str = "endpoint URL";
    const HINT: &str = "use the peer's spec.metadataEndpoint, e.g. https://istio-metadata.<peer public domain>/metadata/";
    let url = match url::Url::parse(endpoint) {
        Ok(u) => u,
        Err(e) => {
            r.fail(NAME, format!("{endpoint:?} is not a URL: {e}"), HINT);
            return None;
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        r.fail(NAME, format!("{endpoint:?} has no host"), HINT);
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        r.fail(NAME, format!("{endpoint:?} has a query or fragment"), HINT);
        return None;
    }
    let base = endpoint.trim_end_matches('/').to_owned();
    match url.scheme() {
        "https" => r.pass(NAME, format!("{base} (https)")),
        "http" => {
            r.fail(
                NAME,
                format!("{base} is plain http: metadata carries trust roots and must not travel in clear text"),
                "the hooks refuse non-https endpoints (FetchFailed): publish the exporter through an HTTPS ingress and use its https:// URL",
            );
            return None;
        }
        other => {
            r.fail(NAME, format!("scheme {other:?} is not https"), HINT);
            return None;
        }
    }
    if !base.ends_with("/metadata") {
        r.warn(
            NAME,
            format!("{base} does not end in /metadata"),
            Some("the exporter serves under /metadata/; a different path works only behind a rewriting ingress"),
        );
    }
    Some(base)
}

/// `--ca`: readable and holding at least one certificate. `Some(None)` = no CA given.
fn check_ca_file(r: &mut Report, args: &Args) -> Option<Option<String>> {
    const NAME: &str = "CA file";
    let Some(path) = &args.ca else {
        if args.insecure_skip_verify {
            r.warn(
                "TLS verification",
                "disabled by --insecure-skip-verify: the peer is not authenticated".into(),
                Some("give the CA of the peer's ingress certificate with --ca (spec.metadata.ca)"),
            );
        }
        return Some(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.fail(
                NAME,
                format!("cannot read {}: {e}", path.display()),
                "pass a readable PEM file",
            );
            return None;
        }
    };
    match pki::parse_certificates(&text) {
        Ok(certs) => r.pass(
            NAME,
            format!("{}: {} certificate(s)", path.display(), certs.len()),
        ),
        Err(e) => {
            r.fail(
                NAME,
                format!("{}: {e}", path.display()),
                "the file must hold PEM CERTIFICATE blocks",
            );
            return None;
        }
    }
    if args.insecure_skip_verify {
        r.warn(
            NAME,
            "--insecure-skip-verify is ignored because --ca is given (as in the hooks)".into(),
            None,
        );
    }
    Some(Some(text))
}

/// A transport failure as a failed check with a hint fitting its cause.
fn transport_failure(r: &mut Report, name: &str, url: &str, f: &Failure) {
    let message = format!("GET {url}: {f}");
    let hint = match f {
        Failure::Timeout(_) => "the peer did not answer in time: check DNS, the address, firewalls and the peer's Ingress for istio-metadata (or raise --timeout)",
        Failure::TooLarge(_) => "the answer exceeds 1 MiB: this is not a metadata exporter (or it is broken); the hooks report ResponseTooLarge",
        Failure::Transport(m) if is_tls_error(m) => "TLS verification failed: pass the CA that signed the peer's ingress certificate with --ca (set it as spec.metadata.ca), or --insecure-skip-verify to look further (spec.metadata.insecureSkipVerify)",
        Failure::Transport(_) => "the endpoint is unreachable: check DNS, the address, firewalls and that the peer's istio-metadata Ingress exists",
    };
    r.fail(name, message, hint);
}

fn is_tls_error(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    ["certificate", "ssl", "tls", "handshake", "verify"]
        .iter()
        .any(|w| m.contains(w))
}

/// Printable, bounded excerpt of a remote body (never trusted, never long).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    out = out.trim().to_owned();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// GET and parse one JSON document; failures become checks. `None` when it failed.
async fn fetch_json(
    r: &mut Report,
    conn: &Conn<'_>,
    name: &str,
    url: String,
    bearer: Option<String>,
) -> Option<(u16, Result<Value, String>, Vec<u8>)> {
    match conn.get(url.clone(), bearer).await {
        Err(f) => {
            transport_failure(r, name, &url, &f);
            None
        }
        Ok(resp) => {
            let parsed = serde_json::from_slice::<Value>(&resp.body).map_err(|e| e.to_string());
            Some((resp.status, parsed, resp.body))
        }
    }
}

/// Public metadata: reachable, TLS, 200, JSON, valid, roots, key. Returns the peer's clusterUUID.
async fn check_public(
    r: &mut Report,
    conn: &Conn<'_>,
    base: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    const NAME: &str = PUBLIC_REACHABLE;
    let url = format!("{base}/public/public.json");
    let (status, parsed, body) = fetch_json(r, conn, NAME, url.clone(), None).await?;
    if status != 200 {
        r.fail(
            NAME,
            format!("GET {url}: HTTP {status}: {}", excerpt(&body)),
            "the path must serve the exporter's /metadata/public/public.json: check the endpoint (it conventionally ends in /metadata/) and the peer's exporter",
        );
        return None;
    }
    let tls = match (&conn.ca_pem, conn.insecure) {
        (Some(_), _) => "TLS verified with system roots and --ca",
        (None, true) => "TLS NOT verified",
        (None, false) => "TLS verified with system roots",
    };
    r.pass(NAME, format!("GET {url}: HTTP 200, {tls}"));
    let v = match parsed {
        Ok(v) => v,
        Err(e) => {
            r.fail(
                "public metadata valid",
                format!("not JSON ({e}): {}", excerpt(&body)),
                "the hooks report InvalidJSON: something other than the exporter answers this URL",
            );
            return None;
        }
    };
    r.public_metadata = Some(v.clone());
    let (public, certs) = match validate::public_metadata_structure(&v) {
        Ok(x) => x,
        Err(e) => {
            r.fail(
                "public metadata valid",
                e,
                "the hooks report InvalidPublicMetadata: the peer's exporter publishes a broken document",
            );
            return None;
        }
    };
    r.pass(
        "public metadata valid",
        format!(
            "clusterUUID {}, {} root certificate(s)",
            public.cluster_uuid,
            certs.len()
        ),
    );
    r.pass(
        "authn key is Ed25519",
        "authnKeyPub is an Ed25519 public key".into(),
    );
    for (i, c) in certs.iter().enumerate() {
        check_root(r, i, c, now);
    }
    r.root_fingerprints = certs.iter().map(|c| c.fingerprint_sha256.clone()).collect();
    if !validate::root_problems(&certs, now).is_empty() {
        return None;
    }
    Some(public.cluster_uuid)
}

/// One root certificate: CA, validity now, days left.
fn check_root(r: &mut Report, i: usize, c: &CertInfo, now: DateTime<Utc>) {
    let name = format!("root CA #{i}");
    let days = (c.not_after - now).num_days();
    let details = format!(
        "subject {}, SHA-256 {}, notAfter {}, {days} day(s) left",
        c.subject,
        c.fingerprint_sha256,
        pki::rfc3339(c.not_after)
    );
    if let Some(p) = c.root_problem(now) {
        r.fail(
            &name,
            format!("{p} ({details})"),
            "the hooks reject this public metadata (InvalidPublicMetadata) and keep the last good cache: the peer must publish a currently valid CA certificate (basicConstraints CA:TRUE)",
        );
    } else if days < WARN_DAYS {
        r.warn(
            &name,
            format!("expires soon: {details}"),
            Some("the peer should rotate its root CA before it expires; mTLS to it stops then"),
        );
    } else {
        r.pass(&name, details);
    }
}

/// The SPIFFE bundle: not used by the hooks, so problems are warnings.
async fn check_spiffe(r: &mut Report, conn: &Conn<'_>, base: &str) {
    const NAME: &str = "spiffe bundle endpoint";
    const HINT: &str = "the hooks do not read it, but a SPIFFE-bundle consumer (istiod caCertificates.spiffeBundleUrl) would fail";
    let url = format!("{base}/public/spiffe-bundle-endpoint");
    let resp = match conn.get(url.clone(), None).await {
        Ok(resp) => resp,
        Err(f) => {
            r.warn(NAME, format!("GET {url}: {f}"), Some(HINT));
            return;
        }
    };
    if resp.status != 200 {
        r.warn(
            NAME,
            format!("GET {url}: HTTP {}: {}", resp.status, excerpt(&resp.body)),
            Some(HINT),
        );
        return;
    }
    let keys = serde_json::from_slice::<Value>(&resp.body)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(|v| match v.get("keys") {
            Some(Value::Array(k)) if !k.is_empty() => Ok(k.clone()),
            Some(Value::Array(_)) => Err("\"keys\" is empty".into()),
            _ => Err("no \"keys\" array".into()),
        });
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            r.warn(NAME, format!("GET {url}: {e}"), Some(HINT));
            return;
        }
    };
    let bundle: Vec<String> = keys.iter().filter_map(x5c_fingerprint).collect();
    let matching = bundle
        .iter()
        .filter(|f| r.root_fingerprints.contains(f))
        .count();
    if r.root_fingerprints.is_empty() || matching > 0 {
        r.pass(
            NAME,
            format!(
                "JSON bundle with {} key(s), {matching} matching the published rootCA",
                keys.len()
            ),
        );
    } else {
        r.warn(
            NAME,
            format!(
                "none of the bundle's {} key(s) carries a certificate of the published rootCA",
                keys.len()
            ),
            Some("the peer's exporter serves a bundle of another root than public.json: check its root CA files"),
        );
    }
}

/// SHA-256 (lowercase hex) of a JWK's first `x5c` certificate (standard base64 DER).
fn x5c_fingerprint(key: &Value) -> Option<String> {
    use base64::Engine;
    let first = key.get("x5c")?.as_array()?.first()?.as_str()?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first)
        .ok()?;
    let cert = openssl::x509::X509::from_der(&der).ok()?;
    let digest = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Hint for a 401 from the peer's exporter, by its reason text.
fn refusal_hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("unknown source cluster") {
        "the peer does not know this cluster yet: create the peer's CR for this cluster on the remote side (IstioFederation/IstioMulticluster pointing at our metadata endpoint) and wait for its next fetch (every 15 s)"
    } else if r.contains("expired") || r.contains("not yet valid") {
        "clock skew between this machine and the peer: check NTP on both sides"
    } else if r.contains("cannot verify") {
        "the peer knows a different public key for this clusterUUID: use the key of Secret d8-istio/d8-remote-authn-keypair; if it changed, wait for the peer to refetch our public metadata"
    } else if r.contains("destination") {
        "the token's aud does not match the peer's clusterUUID: the endpoint serves another cluster than its public.json says"
    } else if r.contains("bearer") {
        "the Authorization header did not reach the peer's exporter: something in front of it (ingress, proxy) strips it"
    } else if r.contains("scope") {
        "the peer refused the scope: check --kind (federation or multicluster) against the CR kind"
    } else {
        "the peer's exporter refused the token; see the reason above"
    }
}

/// Mint a token, fetch the private document, validate it and list its content.
#[allow(clippy::too_many_arguments)]
async fn check_private(
    r: &mut Report,
    conn: &Conn<'_>,
    base: &str,
    args: &Args,
    key_path: &std::path::Path,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) {
    const TOKEN: &str = "token";
    let (scope, doc) = match args.kind {
        Kind::Federation => (Scope::PrivateFederation, "federation.json"),
        Kind::Multicluster => (Scope::PrivateMulticluster, "multicluster.json"),
    };
    if !validate::is_cluster_uuid(own_uuid) {
        r.fail(
            TOKEN,
            format!("--cluster-uuid {own_uuid:?} is not 1-64 characters of [A-Za-z0-9-]"),
            "pass this cluster's global.discovery.clusterUUID",
        );
        return;
    }
    let key = match std::fs::read_to_string(key_path) {
        Ok(k) => k,
        Err(e) => {
            r.fail(
                TOKEN,
                format!("cannot read {}: {e}", key_path.display()),
                "pass a readable PEM file",
            );
            return;
        }
    };
    let token = match jwt::sign(&key, own_uuid, peer_uuid, scope, now) {
        Ok(t) => t,
        Err(e) => {
            r.fail(
                TOKEN,
                format!("cannot sign a token with {}: {e:#}", key_path.display()),
                "the hooks report TokenGenerationFailed: the key must be our PKCS#8 Ed25519 private key (Secret d8-istio/d8-remote-authn-keypair, key priv)",
            );
            return;
        }
    };
    r.pass(
        TOKEN,
        format!(
            "signed {} token sub={own_uuid} aud={peer_uuid}",
            scope.as_str()
        ),
    );
    let name = "private metadata access";
    let url = format!("{base}/private/{doc}");
    let Some((status, parsed, body)) = fetch_json(r, conn, name, url.clone(), Some(token)).await
    else {
        return;
    };
    match status {
        200 => r.pass(name, format!("GET {url}: HTTP 200 (allowed)")),
        401 | 403 => {
            let reason = excerpt(&body);
            let hint = refusal_hint(&reason);
            r.fail(name, format!("GET {url}: HTTP {status}: {reason}"), hint);
            return;
        }
        404 => {
            r.fail(
                name,
                format!("GET {url}: HTTP 404"),
                "the peer does not publish this document: enable the feature (istio.federation.enabled / istio.multicluster.enabled) on the peer, or check --kind",
            );
            return;
        }
        other => {
            r.fail(
                name,
                format!("GET {url}: HTTP {other}: {}", excerpt(&body)),
                "the hooks report NonOKResponse: check the peer's metadata-exporter logs",
            );
            return;
        }
    }
    let v = match parsed {
        Ok(v) => v,
        Err(e) => {
            r.fail(
                "private metadata valid",
                format!("not JSON ({e}): {}", excerpt(&body)),
                "the hooks report InvalidJSON",
            );
            return;
        }
    };
    match args.kind {
        Kind::Federation => check_federation(r, &v, args.trust_domain.as_deref()),
        Kind::Multicluster => {
            if let Some(api_host) = check_multicluster(r, &v) {
                check_api(r, conn, &api_host, &key, own_uuid, peer_uuid, now).await;
            }
        }
    }
}

/// `RemoteAPIServerReady` as the hook probes it: `GET https://<apiHost>/version` through the
/// peer's api-proxy with a short-lived `api` token, same TLS settings and limits.
async fn check_api(
    r: &mut Report,
    conn: &Conn<'_>,
    api_host: &str,
    key: &str,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) {
    const NAME: &str = "remote API (api-proxy)";
    let url = format!("https://{api_host}/version");
    let token = match jwt::sign_with_ttl(
        key,
        own_uuid,
        peer_uuid,
        Scope::Api.as_str(),
        now,
        Duration::from_secs(60),
    ) {
        Ok(t) => t,
        Err(e) => {
            r.fail(
                NAME,
                format!("cannot sign an api token: {e:#}"),
                "the hooks report TokenGenerationFailed",
            );
            return;
        }
    };
    match conn.get(url.clone(), Some(token)).await {
        Err(f) => {
            let mut hint = "the peer's api-proxy is unreachable (RemoteAPIUnreachable): check its Ingress (host = apiHost), DNS and TLS (spec.metadata.ca is used for it too)";
            if matches!(&f, Failure::Transport(m) if is_tls_error(m)) {
                hint = "TLS verification of the api-proxy failed (RemoteAPIUnreachable): the CA in --ca / spec.metadata.ca must also cover the api-proxy's certificate";
            }
            r.fail(NAME, format!("GET {url}: {f}"), hint);
        }
        Ok(resp) if resp.status == 200 => {
            r.pass(NAME, format!("GET {url}: HTTP 200 with an api token"))
        }
        Ok(resp) if matches!(resp.status, 401 | 403) => {
            let reason = excerpt(&resp.body);
            r.fail(
                NAME,
                format!("GET {url}: HTTP {}: {reason}", resp.status),
                refusal_hint(&reason),
            );
        }
        Ok(resp) => r.fail(
            NAME,
            format!("GET {url}: HTTP {}: {}", resp.status, excerpt(&resp.body)),
            "the api-proxy answered but not 200 (RemoteAPIBadResponse): check its logs and RBAC on the peer",
        ),
    }
}

const INVALID_PRIVATE: &str =
    "the hooks report InvalidPrivateMetadata and keep the last good cache: the peer's exporter publishes a broken document";

fn record_dropped(r: &mut Report, dropped: &[Dropped]) {
    if dropped.is_empty() {
        return;
    }
    r.dropped.extend(
        dropped
            .iter()
            .map(|d| json!({"reason": d.reason, "detail": d.detail})),
    );
    let mut reasons: Vec<&str> = dropped.iter().map(|d| d.reason).collect();
    reasons.dedup();
    r.warn(
        "dropped by validation",
        format!(
            "{} item(s) would be dropped ({})",
            dropped.len(),
            reasons.join(", ")
        ),
        Some("the peer publishes items it may not (e.g. hostnames outside .svc.<its trust domain>); the hooks ignore them and count them in d8_istio_alliance_remote_items_dropped{kind,name,reason}"),
    );
}

fn check_gateways(r: &mut Report, n: usize) {
    if n == 0 {
        r.warn(
            "ingress gateways",
            "the peer publishes no valid ingress gateway: it is unreachable across networks (a federation peer's services are not rendered; a multicluster peer needs one unless spec.enableIngressGateway is false)".into(),
            Some("on the peer: check the ingress gateway Service (LoadBalancer address / NodePort nodes) or istio.alliance.ingressGateway.advertise"),
        );
    } else {
        r.pass("ingress gateways", format!("{n} gateway(s)"));
    }
}

fn check_federation(r: &mut Report, v: &Value, trust_domain: Option<&str>) {
    const NAME: &str = "private metadata valid";
    let Some(td) = trust_domain else {
        // Structure and gateways only; hostnames need the trust domain.
        match validate::federation_private(v, "") {
            Err(e) => r.fail(NAME, e, INVALID_PRIVATE),
            Ok(val) => {
                r.warn(
                    NAME,
                    "structure valid; hostnames not validated".into(),
                    Some("pass --trust-domain (the IstioFederation's spec.trustDomain) to validate publicServices hostnames"),
                );
                let gws = val.value.ingress_gateways;
                check_gateways(r, gws.len());
                let dropped: Vec<Dropped> = val
                    .dropped
                    .into_iter()
                    .filter(|d| d.reason != "ForeignHostname")
                    .collect();
                record_dropped(r, &dropped);
                let services: Vec<Value> = v
                    .get("publicServices")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.get("hostname").and_then(Value::as_str))
                            .map(|h| Value::from(excerpt(h.as_bytes())))
                            .collect()
                    })
                    .unwrap_or_default();
                r.private_metadata = Some(json!({
                    "ingressGateways": gws,
                    "unvalidatedHostnames": services,
                }));
            }
        }
        return;
    };
    match validate::federation_private(v, td) {
        Err(e) => r.fail(NAME, e, INVALID_PRIVATE),
        Ok(val) => {
            r.pass(
                NAME,
                format!(
                    "{} gateway(s), {} public service(s) under .svc.{td}",
                    val.value.ingress_gateways.len(),
                    val.value.public_services.len()
                ),
            );
            check_gateways(r, val.value.ingress_gateways.len());
            record_dropped(r, &val.dropped);
            r.private_metadata = serde_json::to_value(&val.value).ok();
        }
    }
}

/// Validates the multicluster document; returns its `apiHost` when valid.
fn check_multicluster(r: &mut Report, v: &Value) -> Option<String> {
    const NAME: &str = "private metadata valid";
    match validate::multicluster_private(v) {
        Err(e) => {
            r.fail(NAME, e, INVALID_PRIVATE);
            None
        }
        Ok(val) => {
            let m = &val.value;
            r.pass(
                NAME,
                format!(
                    "apiHost {}, networkName {}, clusterID {}",
                    m.api_host,
                    m.network_name,
                    if m.cluster_id.is_empty() {
                        "(not published)"
                    } else {
                        &m.cluster_id
                    }
                ),
            );
            check_gateways(r, m.ingress_gateways.len());
            record_dropped(r, &val.dropped);
            r.private_metadata = serde_json::to_value(m).ok();
            Some(m.api_host.clone())
        }
    }
}

/// A string safe for a terminal: control characters (e.g. escape sequences a hostile peer put
/// into a certificate subject) become `?`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The human checklist. Every remote-derived string goes through [`clean`].
pub fn render_text(r: &Report) -> String {
    let mut s = format!("istio-hooks check {}\n\n", clean(&r.endpoint));
    for c in &r.checks {
        let mark = match c.status {
            Status::Pass => "✔",
            Status::Warn => "⚠",
            Status::Fail => "✘",
        };
        s.push_str(&format!("{mark} {}: {}\n", c.name, clean(&c.message)));
        if let Some(h) = &c.hint {
            s.push_str(&format!("    hint: {}\n", clean(h)));
        }
    }
    if let Some(p) = &r.private_metadata {
        s.push_str("\nPrivate metadata (after validation):\n");
        if let Some(gws) = p.get("ingressGateways").and_then(Value::as_array) {
            for g in gws {
                let addr = g.get("address").and_then(Value::as_str).unwrap_or("?");
                let port = g.get("port").and_then(Value::as_u64).unwrap_or(0);
                s.push_str(&format!("  gateway {}:{port}\n", clean(addr)));
            }
        }
        if let Some(svcs) = p.get("publicServices").and_then(Value::as_array) {
            for svc in svcs {
                let host = svc.get("hostname").and_then(Value::as_str).unwrap_or("?");
                let ports: Vec<String> = svc
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}({})",
                                    p.get("name").and_then(Value::as_str).unwrap_or("?"),
                                    p.get("port").and_then(Value::as_u64).unwrap_or(0),
                                    p.get("protocol").and_then(Value::as_str).unwrap_or("?")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  service {} ports {}\n",
                    clean(host),
                    clean(&ports.join(", "))
                ));
            }
        }
        if let Some(hosts) = p.get("unvalidatedHostnames").and_then(Value::as_array) {
            for h in hosts.iter().filter_map(Value::as_str) {
                s.push_str(&format!(
                    "  service {} (hostname not validated)\n",
                    clean(h)
                ));
            }
        }
        for key in ["apiHost", "networkName", "clusterID"] {
            if let Some(v) = p.get(key).and_then(Value::as_str) {
                s.push_str(&format!("  {key} {}\n", clean(v)));
            }
        }
    }
    if !r.dropped.is_empty() {
        s.push_str("\nDropped by validation:\n");
        for d in &r.dropped {
            s.push_str(&format!(
                "  - {}: {}\n",
                d.get("reason").and_then(Value::as_str).unwrap_or("?"),
                clean(d.get("detail").and_then(Value::as_str).unwrap_or("?"))
            ));
        }
    }
    for n in &r.notes {
        s.push_str(&format!("\nnote: {}\n", clean(n)));
    }
    let count = |st: Status| r.checks.iter().filter(|c| c.status == st).count();
    s.push_str(&format!(
        "\n{} passed, {} warning(s), {} failed",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_text_is_bounded_and_printable() {
        let body = format!("\u{1b}[31mred{}", "x".repeat(500));
        let e = excerpt(body.as_bytes());
        assert!(!e.contains('\u{1b}'));
        assert!(e.chars().count() <= 201);
        assert_eq!(clean("CN=\u{1b}]0;pwned\u{7}"), "CN=?]0;pwned?");
        assert_eq!(excerpt(&[0xff, 0xfe, b'a']), "\u{fffd}\u{fffd}a");
    }

    #[test]
    fn refusal_hints_follow_the_exporter_reasons() {
        use crate::domain::jwt::AuthError;
        let hint = |e: AuthError| refusal_hint(&e.to_string());
        assert!(hint(AuthError::UnknownSubject).contains("create the peer's CR"));
        assert!(hint(AuthError::Expired).contains("clock skew"));
        assert!(hint(AuthError::NotYetValid).contains("clock skew"));
        assert!(hint(AuthError::Signature).contains("different public key"));
        assert!(hint(AuthError::Audience).contains("aud"));
        assert!(hint(AuthError::Scope).contains("--kind"));
        assert!(hint(AuthError::MissingBearer).contains("Authorization"));
    }

    #[test]
    fn tls_errors_are_told_apart() {
        assert!(is_tls_error(
            "error trying to connect: error:0A000086:SSL routines::certificate verify failed"
        ));
        assert!(!is_tls_error(
            "error trying to connect: tcp connect error: Connection refused (os error 111)"
        ));
    }
}
