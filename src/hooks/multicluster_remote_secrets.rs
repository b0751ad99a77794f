//! `multicluster-remote-secrets`: the multicluster peers istiod connects to, each with the
//! long-lived api token of its remote secret (SPEC §7.3).
//!
//! For every `IstioMulticluster`, then every `IstioMulticloud` (name order within a kind), the
//! cached public and private metadata are validated again (status is editable by anyone with
//! access to the CR); peers without usable metadata are left out with a warning and a metric.
//! The `apiJWT` already in the peer's remote secret (`istio-remote-secret-<name>`) is reused
//! only when it verifies with our own public key, carries exactly the claims we would issue and
//! lives more than 30 days; otherwise a new 366-day token is signed with our private key.

use crate::domain::crd::{CachedPeer, PeerKind, PEER_CACHE_JQ_FILTER};
use crate::domain::jwt::{self, AuthError, Scope};
use crate::domain::metadata::{AuthnKeypair, Gateway, MulticlusterPrivate, PublicMetadata};
use crate::domain::settings::Settings;
use crate::domain::validate;
use crate::runtime::config::{Events, HookConfig, Kubernetes, Schedule};
use crate::runtime::{Hook, HookInput, HookOutput, Metrics, Snapshots};
use anyhow::anyhow;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct MulticlusterRemoteSecrets;

/// Metrics group of this hook.
const GROUP: &str = "multicluster-remote-secrets";
/// Binding of the remote secrets.
const SECRETS: &str = "remoteSecrets";
/// Prefix of the remote secret names the chart renders (SPEC §7.3).
const SECRET_PREFIX: &str = "istio-remote-secret-";
/// An existing token is reissued when it expires within this many seconds (30 days).
pub const REISSUE_BEFORE_SECS: i64 = 30 * 24 * 3600;
/// Kubeconfigs larger than this are not parsed (a real one is ~1 KiB).
const MAX_KUBECONFIG_BYTES: usize = 256 * 1024;

impl Hook for MulticlusterRemoteSecrets {
    fn name(&self) -> &'static str {
        "multicluster-remote-secrets"
    }

    fn config(&self) -> HookConfig {
        let mut kubernetes = super::peer_bindings(
            &[PeerKind::Multicluster, PeerKind::Multicloud],
            PEER_CACHE_JQ_FILTER,
            Events::All,
        );
        kubernetes.push(remote_secrets_binding(Events::All));
        HookConfig {
            before_helm: Some(10),
            after_helm: None,
            schedule: vec![Schedule {
                name: "daily",
                crontab: "0 3 * * *",
            }],
            kubernetes,
        }
    }

    fn run(&self, input: &HookInput<'_>) -> anyhow::Result<HookOutput> {
        let settings = Settings::from_values(input.values).map_err(|e| anyhow!(e))?;
        let mut out = HookOutput::default();
        let mut metrics = Metrics::new(GROUP);
        if !settings.multicluster_enabled {
            out.set("internal.multiclusters", Vec::<Multicluster>::new());
            out.set("internal.multiclustersNeedIngressGateway", false);
            out.metrics = Some(metrics);
            return Ok(out);
        }
        settings.require_identity().map_err(|e| anyhow!(e))?;
        let ctx = Context {
            own_uuid: &settings.cluster_uuid,
            keypair: settings.keypair.as_ref(),
            secret_tokens: remote_secret_tokens(input.snapshots),
            values_tokens: values_tokens(input.values),
            now: input.now,
            signer: OnceCell::new(),
            verifier: OnceCell::new(),
            verified: OnceCell::new(),
        };
        let mut multiclusters = Vec::new();
        // Items whose new token is still to be signed (all at once, below).
        let mut unsigned = Vec::new();
        let mut need_ingress_gateway = false;
        for peer in unique_peers(input.snapshots, &mut metrics) {
            if peer.enable_ingress_gateway() {
                need_ingress_gateway = true;
            }
            match ctx.item(&peer, &mut metrics) {
                Ok(item) => {
                    if item.api_jwt.is_empty() {
                        unsigned.push(multiclusters.len());
                    }
                    multiclusters.push(item);
                }
                Err(skip) => {
                    tracing::warn!(multicluster = %peer.name, kind = peer.kind.kind(), reason = skip.reason, "{}", skip.message);
                    metrics.set(
                        "d8_istio_multicluster_peer_skipped",
                        1.0,
                        &[("multicluster_name", &peer.name), ("reason", skip.reason)],
                    );
                }
            }
        }
        ctx.sign_new_tokens(&mut multiclusters, &unsigned, &mut metrics);
        out.set("internal.multiclusters", &multiclusters);
        out.set(
            "internal.multiclustersNeedIngressGateway",
            need_ingress_gateway,
        );
        out.metrics = Some(metrics);
        Ok(out)
    }
}

/// One item of `istio.internal.multiclusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Multicluster {
    pub name: String,
    #[serde(rename = "clusterUUID")]
    pub cluster_uuid: String,
    pub api_host: String,
    pub network_name: String,
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    pub enable_ingress_gateway: bool,
    pub ingress_gateways: Vec<Gateway>,
    pub insecure_skip_verify: bool,
    #[serde(rename = "metadataExporterCA")]
    pub metadata_exporter_ca: String,
    #[serde(rename = "apiJWT")]
    pub api_jwt: String,
}

/// Why a peer was left out: a metric label and a log message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Skip {
    reason: &'static str,
    message: String,
}

fn skip(reason: &'static str, message: impl Into<String>) -> Skip {
    Skip {
        reason,
        message: message.into(),
    }
}

/// Multicluster peers of both kinds, `IstioMulticluster` first, each name once: an
/// `IstioMulticloud` named like an `IstioMulticluster` would render the same remote secret.
fn unique_peers<'a>(snapshots: &'a Snapshots, metrics: &mut Metrics) -> Vec<CachedPeer<'a>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for peer in super::cached_peers(snapshots, &[PeerKind::Multicluster, PeerKind::Multicloud]) {
        if seen.insert(peer.name.clone()) {
            out.push(peer);
        } else {
            tracing::warn!(multicluster = %peer.name, kind = peer.kind.kind(), "a multicluster peer with this name already exists; ignoring this one");
            metrics.set(
                "d8_istio_multicluster_peer_skipped",
                1.0,
                &[
                    ("multicluster_name", &peer.name),
                    ("reason", "DuplicateName"),
                ],
            );
        }
    }
    out
}

/// The peer's cached metadata, validated again (SPEC §5.3): status is editable by anyone with
/// access to the CR. Invalid gateway items are dropped with a warning.
fn validated_cache(peer: &CachedPeer<'_>) -> Result<(PublicMetadata, MulticlusterPrivate), Skip> {
    let kind = peer.kind.kind();
    let cache = &peer.status.metadata_cache;
    let Some(public) = cache.public else {
        return Err(skip(
            "NoPublicMetadata",
            format!("public metadata for {kind} wasn't fetched yet"),
        ));
    };
    let (public, _roots) = validate::public_metadata_structure_raw(public).map_err(|e| {
        skip(
            "InvalidPublicMetadata",
            format!("cached public metadata for {kind} is invalid: {e}"),
        )
    })?;
    let Some(private) = cache.private else {
        return Err(skip(
            "NoPrivateMetadata",
            format!("private metadata for {kind} wasn't fetched yet"),
        ));
    };
    let private = validate::multicluster_private_raw(private).map_err(|e| {
        skip(
            "InvalidPrivateMetadata",
            format!("cached private metadata for {kind} is invalid: {e}"),
        )
    })?;
    for d in &private.dropped {
        tracing::warn!(multicluster = %peer.name, reason = d.reason, "ignoring cached item: {}", d.detail);
    }
    Ok((public, private.value))
}

/// What every peer's item is built from.
struct Context<'a> {
    own_uuid: &'a str,
    keypair: Option<&'a AuthnKeypair>,
    /// Token of each remote secret, by multicluster name (an error when the secret exists but
    /// its token cannot be read).
    secret_tokens: BTreeMap<String, Result<String, String>>,
    /// `apiJWT` already in values, by multicluster name (the secret may not be rendered yet).
    values_tokens: BTreeMap<String, String>,
    now: DateTime<Utc>,
    /// Our signing key, loaded on first use (once per run, not once per peer).
    signer: OnceCell<Result<jwt::Signer, String>>,
    /// Our verification key, loaded on first use.
    verifier: OnceCell<Result<jwt::Verifier, AuthError>>,
    /// Signature check of every existing token (remote secrets and values, each distinct text
    /// once), done in one batch on first use.
    verified: OnceCell<HashMap<String, Result<jwt::Claims, AuthError>>>,
}

impl Context<'_> {
    /// An item for the peer; its `api_jwt` is empty when a new token is to be signed (by
    /// [`Context::sign_new_tokens`], which needs the signer this has loaded).
    fn item(&self, peer: &CachedPeer<'_>, metrics: &mut Metrics) -> Result<Multicluster, Skip> {
        let (public, private) = validated_cache(peer)?;
        let enable_ingress_gateway = peer.enable_ingress_gateway();
        if enable_ingress_gateway && private.ingress_gateways.is_empty() {
            // Kept: its remote secret and trust stay, its network gets no gateway, so istiod
            // cannot route to its endpoints until it publishes one (Deckhouse #2117).
            tracing::warn!(
                multicluster = %peer.name,
                kind = peer.kind.kind(),
                "the peer publishes no ingress gateways; its endpoints are unreachable from this network until it does"
            );
        }
        let keypair = self.keypair.ok_or_else(|| {
            skip(
                "NoKeypair",
                "istio.internal.remoteAuthnKeypair is not set yet; cannot issue an api token",
            )
        })?;
        let api_jwt = self.api_token(&peer.name, &public.cluster_uuid, keypair)?;
        let left = match &api_jwt {
            Some(token) => jwt::peek_claims(token)
                .ok()
                .map(|claims| claims.exp.saturating_sub(self.now.timestamp())),
            // What a token signed now will have left.
            None => Some(i64::try_from(Scope::Api.ttl().as_secs()).unwrap_or(i64::MAX)),
        };
        if let Some(left) = left {
            metrics.set(
                "d8_istio_multicluster_api_token_expiry_seconds",
                left as f64,
                &[("multicluster_name", &peer.name)],
            );
        }
        Ok(Multicluster {
            name: peer.name.clone(),
            cluster_uuid: public.cluster_uuid,
            api_host: private.api_host,
            network_name: private.network_name,
            cluster_id: private.cluster_id,
            enable_ingress_gateway,
            ingress_gateways: private.ingress_gateways,
            insecure_skip_verify: peer.spec.metadata.insecure_skip_verify,
            metadata_exporter_ca: peer.spec.metadata.ca.clone().unwrap_or_default(),
            api_jwt: api_jwt.unwrap_or_default(),
        })
    }

    /// Signs the new tokens of `items[unsigned]` in one batch (over the available cores: at
    /// 1000 new peers signing is most of the run). Should signing fail, those peers are left out
    /// as `TokenGenerationFailed`, as they would have been one by one.
    fn sign_new_tokens(
        &self,
        items: &mut Vec<Multicluster>,
        unsigned: &[usize],
        metrics: &mut Metrics,
    ) {
        if unsigned.is_empty() {
            return;
        }
        let signed = match self.signer.get() {
            Some(Ok(signer)) => {
                let auds: Vec<&str> = unsigned
                    .iter()
                    .map(|&i| items[i].cluster_uuid.as_str())
                    .collect();
                signer
                    .sign_all(self.own_uuid, &auds, Scope::Api, self.now)
                    .map_err(|e| format!("{e:#}"))
            }
            Some(Err(e)) => Err(e.clone()),
            None => Err("the signing key was not loaded".to_owned()),
        };
        match signed {
            Ok(tokens) => {
                for (&i, token) in unsigned.iter().zip(tokens) {
                    items[i].api_jwt = token;
                }
            }
            Err(e) => {
                let failed: BTreeSet<String> =
                    unsigned.iter().map(|&i| items[i].name.clone()).collect();
                metrics.gauges.retain(|g| {
                    g.name != "d8_istio_multicluster_api_token_expiry_seconds"
                        || !g
                            .labels
                            .get("multicluster_name")
                            .is_some_and(|n| failed.contains(n))
                });
                for name in &failed {
                    tracing::warn!(multicluster = %name, reason = "TokenGenerationFailed", "cannot sign an api token: {e}");
                    metrics.set(
                        "d8_istio_multicluster_peer_skipped",
                        1.0,
                        &[
                            ("multicluster_name", name),
                            ("reason", "TokenGenerationFailed"),
                        ],
                    );
                }
                items.retain(|m| !m.api_jwt.is_empty());
            }
        }
    }

    /// [`jwt::Verifier::verify`] of every existing token that reads as one, by text.
    fn verified_tokens(
        &self,
        keypair: &AuthnKeypair,
    ) -> &HashMap<String, Result<jwt::Claims, AuthError>> {
        self.verified.get_or_init(|| {
            let tokens: BTreeSet<&str> = self
                .secret_tokens
                .values()
                .filter_map(|t| t.as_ref().ok())
                .chain(self.values_tokens.values())
                .map(String::as_str)
                .filter(|t| jwt::peek_claims(t).is_ok())
                .collect();
            let tokens: Vec<&str> = tokens.into_iter().collect();
            let verifier = self
                .verifier
                .get_or_init(|| jwt::Verifier::from_pem(&keypair.public));
            let results = match verifier {
                Ok(verifier) => verifier.verify_all(&tokens),
                Err(e) => vec![Err(e.clone()); tokens.len()],
            };
            tokens.into_iter().map(str::to_owned).zip(results).collect()
        })
    }

    /// The token of the remote secret if it may be reused; when no remote secret exists yet,
    /// the one in values if it may; else `None`: a new one is to be signed, with the signer
    /// this loads. A remote secret whose token is broken (altered, unreadable, foreign) gets a
    /// new token even when values still hold a good one: only a change of values makes Helm
    /// rewrite the Secret, and istiod uses the Secret.
    fn api_token(
        &self,
        name: &str,
        peer_uuid: &str,
        keypair: &AuthnKeypair,
    ) -> Result<Option<String>, Skip> {
        let candidate = match self.secret_tokens.get(name) {
            Some(stored) => Some(("remote secret", stored.as_ref())),
            None => self.values_tokens.get(name).map(|t| ("values", Ok(t))),
        };
        let mut reasons = Vec::new();
        if let Some((source, token)) = candidate {
            match token {
                Err(e) => reasons.push(format!("token from {source}: {e}")),
                Ok(token) => {
                    let verified = jwt::peek_claims(token).and_then(|_| {
                        self.verified_tokens(keypair)
                            .get(token.as_str())
                            .cloned()
                            .unwrap_or(Err(AuthError::Signature))
                    });
                    match claims_reuse_problem(verified, self.own_uuid, peer_uuid, self.now) {
                        None => {
                            tracing::info!(
                                multicluster = name,
                                source,
                                "reusing existing valid token for multicluster"
                            );
                            return Ok(Some(token.clone()));
                        }
                        Some(why) => reasons.push(format!("token from {source}: {why}")),
                    }
                }
            }
        }
        let reason = if reasons.is_empty() {
            "no existing token".to_owned()
        } else {
            reasons.join("; ")
        };
        tracing::info!(multicluster = name, reason = %reason, "regenerating token for multicluster");
        match self
            .signer
            .get_or_init(|| jwt::Signer::from_pem(&keypair.private).map_err(|e| format!("{e:#}")))
        {
            Ok(_) => Ok(None),
            Err(e) => Err(skip(
                "TokenGenerationFailed",
                format!("cannot sign an api token: {e}"),
            )),
        }
    }
}

/// Why `token` may not be reused for the peer `peer_uuid`, or `None` when it may: it must verify
/// with our public key and carry exactly the claims we issue (`iss`, `sub` = us, `aud` = the
/// peer, scope `api`), be valid now, and expire more than 30 days after `now`.
pub fn reuse_problem(
    token: &str,
    own_public: &str,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    claims_reuse_problem(
        jwt::verify_signature(token, own_public),
        own_uuid,
        peer_uuid,
        now,
    )
}

/// [`reuse_problem`] given the outcome of the signature check.
fn claims_reuse_problem(
    verified: Result<jwt::Claims, AuthError>,
    own_uuid: &str,
    peer_uuid: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let claims = match verified {
        Ok(c) => c,
        Err(e) => return Some(format!("does not verify with our public key: {e}")),
    };
    if let Err(e) = jwt::check_claims(&claims, peer_uuid, Scope::Api, now) {
        return Some(e.to_string());
    }
    if claims.sub != own_uuid {
        return Some("JWT is signed for wrong source cluster".to_owned());
    }
    let left = claims.exp.saturating_sub(now.timestamp());
    if left <= REISSUE_BEFORE_SECS {
        return Some(format!(
            "expires in less than 30 days ({}s left, proactive refresh)",
            left.max(0)
        ));
    }
    None
}

/// The slice of a kubeconfig we read: `users[].user.token`.
#[derive(Debug, Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct User {
    #[serde(default)]
    token: Option<String>,
}

/// The first `users[].user.token` of a kubeconfig given as YAML text or as base64 of it.
pub fn kubeconfig_token(text: &str) -> Result<String, String> {
    if text.len() > MAX_KUBECONFIG_BYTES {
        return Err(format!(
            "kubeconfig is {} bytes, more than {MAX_KUBECONFIG_BYTES}",
            text.len()
        ));
    }
    match token_from_yaml(text) {
        Ok(t) => Ok(t),
        Err(yaml_err) => {
            let compact: String = text.split_whitespace().collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("neither a kubeconfig ({yaml_err}) nor base64 of one"))?;
            token_from_yaml(&decoded).map_err(|e| format!("base64-decoded kubeconfig: {e}"))
        }
    }
}

/// Parse errors name only a position: serde's messages may quote the (secret) content.
fn token_from_yaml(text: &str) -> Result<String, String> {
    let kc: Kubeconfig = serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!(
            "not a kubeconfig (line {}, column {})",
            l.line(),
            l.column()
        ),
        None => "not a kubeconfig".to_owned(),
    })?;
    kc.users
        .into_iter()
        .flatten()
        .find_map(|u| u.user.and_then(|u| u.token).filter(|t| !t.is_empty()))
        .ok_or_else(|| "kubeconfig has no users[].user.token".to_owned())
}

#[derive(Deserialize, Default)]
struct SecretMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Deserialize)]
struct SecretObj {
    #[serde(default)]
    metadata: SecretMeta,
    #[serde(default)]
    data: Option<BTreeMap<String, Option<String>>>,
}

/// The remote secrets (Istio's `istio/multiCluster` Secrets in d8-istio) with their kubeconfigs:
/// read here to reuse their tokens, and by `fetch-remote-metadata` to probe with them.
pub(crate) fn remote_secrets_binding(events: Events) -> Kubernetes {
    Kubernetes {
        name: SECRETS,
        api_version: "v1",
        kind: "Secret",
        namespace: Some("d8-istio"),
        name_selector: None,
        match_labels: &[("istio/multiCluster", "true")],
        jq_filter: "{metadata: {name: .metadata.name, annotations: {\"networking.istio.io/cluster\": .metadata.annotations[\"networking.istio.io/cluster\"]}}, data: .data}",
        events,
        on_synchronization: true,
    }
}

/// Tokens of the remote secrets by multicluster name (the name after the prefix). The kubeconfig
/// sits under the data key `<name>`, else under the key the cluster annotation names. A secret
/// whose token cannot be read is logged and mapped to the reason: its peer gets a new token.
pub(crate) fn remote_secret_tokens(
    snapshots: &Snapshots,
) -> BTreeMap<String, Result<String, String>> {
    let mut out = BTreeMap::new();
    for (i, v) in snapshots.get(SECRETS).iter().enumerate() {
        let secret: SecretObj = match serde_json::from_value(v.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(index = i, error = %e, "ignoring malformed remote secret");
                continue;
            }
        };
        let secret_name = secret.metadata.name;
        let Some(name) = secret_name
            .strip_prefix(SECRET_PREFIX)
            .filter(|n| !n.is_empty())
        else {
            tracing::warn!(secret = %secret_name, "ignoring a multicluster secret not named {SECRET_PREFIX}<name>");
            continue;
        };
        match secret_token(
            name,
            secret.metadata.annotations.as_ref(),
            secret.data.as_ref(),
        ) {
            Ok(token) => {
                out.insert(name.to_owned(), Ok(token));
            }
            Err(e) => {
                tracing::warn!(secret = %secret_name, "cannot read the api token of the remote secret: {e}");
                out.insert(name.to_owned(), Err(format!("unreadable: {e}")));
            }
        }
    }
    out
}

fn secret_token(
    name: &str,
    annotations: Option<&BTreeMap<String, Option<String>>>,
    data: Option<&BTreeMap<String, Option<String>>>,
) -> Result<String, String> {
    let data = data.ok_or("no data")?;
    let annotated = annotations
        .and_then(|a| a.get("networking.istio.io/cluster"))
        .and_then(Option::as_deref);
    let encoded = data
        .get(name)
        .or_else(|| annotated.and_then(|key| data.get(key)))
        .and_then(Option::as_deref)
        .ok_or_else(|| format!("no data key {name:?}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| format!("data is not base64: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "kubeconfig is not UTF-8".to_owned())?;
    kubeconfig_token(&text)
}

/// `apiJWT` of the items already in `istio.internal.multiclusters`, by name.
fn values_tokens(values: &Value) -> BTreeMap<String, String> {
    values
        .pointer("/istio/internal/multiclusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m.get("name")?.as_str()?.to_owned(),
                m.get("apiJWT")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pki;
    use std::path::PathBuf;
    use std::time::Duration;

    const OWN: &str = "11111111-1111-4111-8111-111111111111";
    const PEER: &str = "22222222-2222-4222-8222-222222222222";

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/multicluster-remote-secrets")
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(fixtures().join(format!("fixture-{name}"))).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn kubeconfig(token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: b\n  cluster:\n    server: https://istio-api-proxy.b.example.com\ncontexts:\n- name: b\n  context: {{cluster: b, user: b}}\ncurrent-context: b\nusers:\n- name: b\n  user:\n    token: {token}\n"
        )
    }

    #[test]
    fn kubeconfig_raw_and_base64() {
        let raw = kubeconfig("abc.def.ghi");
        assert_eq!(kubeconfig_token(&raw).unwrap(), "abc.def.ghi");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert_eq!(kubeconfig_token(&b64).unwrap(), "abc.def.ghi");
        // Wrapped base64, as `base64` prints it.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
            .collect();
        assert_eq!(kubeconfig_token(&wrapped).unwrap(), "abc.def.ghi");
        // The first user with a token wins.
        let two = "users:\n- name: x\n  user: {}\n- name: y\n  user: {token: t2}\n- name: z\n  user: {token: t3}\n";
        assert_eq!(kubeconfig_token(two).unwrap(), "t2");
    }

    #[test]
    fn kubeconfig_garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "not yaml: [",
            "\u{0}\u{1}",
            "users: 5",
            "users: [{user: {token: [a]}}]",
            "users: []",
            "!!binary AAAA",
            "- a\n- b\n",
        ] {
            assert!(kubeconfig_token(text).is_err(), "{text:?}");
        }
        // Errors never quote the content (it may hold a token).
        let err = kubeconfig_token("users: \"secret-token-text\"").unwrap_err();
        assert!(!err.contains("secret-token-text"), "{err}");
        let b64_garbage = base64::engine::general_purpose::STANDARD.encode("users: [");
        assert!(kubeconfig_token(&b64_garbage)
            .unwrap_err()
            .starts_with("base64-decoded kubeconfig"));
        assert!(kubeconfig_token(&"a".repeat(MAX_KUBECONFIG_BYTES + 1)).is_err());
        // YAML alias bombs are refused by serde_yaml's limits.
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nusers: [*g]\n";
        assert!(kubeconfig_token(bomb).is_err());
    }

    #[test]
    fn secret_token_reads_name_key_then_annotated_key() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let data: BTreeMap<String, Option<String>> =
            [("other".to_owned(), Some(b64(&kubeconfig("t1"))))].into();
        let ann: BTreeMap<String, Option<String>> = [(
            "networking.istio.io/cluster".to_owned(),
            Some("other".to_owned()),
        )]
        .into();
        assert_eq!(secret_token("b", Some(&ann), Some(&data)).unwrap(), "t1");
        assert!(secret_token("b", None, Some(&data))
            .unwrap_err()
            .contains("no data key"));
        let bad: BTreeMap<String, Option<String>> =
            [("b".to_owned(), Some("%%%".to_owned()))].into();
        assert!(secret_token("b", None, Some(&bad))
            .unwrap_err()
            .contains("not base64"));
        assert!(secret_token("b", None, None).is_err());
    }

    #[test]
    fn reuse_decision() {
        let (own_priv, own_pub) = (fixture("own-priv.pem"), fixture("own-pub.pem"));
        let foreign_priv = fixture("foreign-priv.pem");
        let now = at("2026-12-01T00:00:00Z");
        let day = 86_400u64;
        let mint =
            |key: &str, sub: &str, aud: &str, scope: &str, issued: DateTime<Utc>, ttl_days: u64| {
                jwt::sign_with_ttl(
                    key,
                    sub,
                    aud,
                    scope,
                    issued,
                    Duration::from_secs(ttl_days * day),
                )
                .unwrap()
            };
        let issued = now - chrono::Duration::days(100);
        let good = mint(&own_priv, OWN, PEER, "api", issued, 366);
        assert_eq!(reuse_problem(&good, &own_pub, OWN, PEER, now), None);
        // A freshly issued token is reused on the next run.
        let fresh = jwt::sign(&own_priv, OWN, PEER, Scope::Api, now).unwrap();
        assert_eq!(reuse_problem(&fresh, &own_pub, OWN, PEER, now), None);

        let problem = |t: &str| reuse_problem(t, &own_pub, OWN, PEER, now).unwrap();
        assert!(problem(&mint(
            &own_priv,
            OWN,
            PEER,
            "api",
            now - chrono::Duration::days(356),
            366
        ))
        .contains("less than 30 days"));
        // Exactly 30 days left is not enough; 30 days and a second is.
        let edge = now + chrono::Duration::days(30) - chrono::Duration::days(366);
        assert!(
            problem(&mint(&own_priv, OWN, PEER, "api", edge, 366)).contains("less than 30 days")
        );
        let just = jwt::sign_with_ttl(
            &own_priv,
            OWN,
            PEER,
            "api",
            edge,
            Duration::from_secs(366 * day + 1),
        )
        .unwrap();
        assert_eq!(reuse_problem(&just, &own_pub, OWN, PEER, now), None);
        assert!(problem(&mint(
            &own_priv,
            OWN,
            PEER,
            "api",
            now - chrono::Duration::days(400),
            366
        ))
        .contains("expired"));
        assert!(
            problem(&mint(&foreign_priv, OWN, PEER, "api", issued, 366)).contains("our public key")
        );
        assert!(
            problem(&mint(&own_priv, OWN, "someone-else", "api", issued, 366))
                .contains("destination")
        );
        assert!(
            problem(&mint(&own_priv, "someone-else", PEER, "api", issued, 366)).contains("source")
        );
        assert!(problem(&mint(
            &own_priv,
            OWN,
            PEER,
            "private-multicluster",
            issued,
            366
        ))
        .contains("scope"));
        assert!(problem(&mint(
            &own_priv,
            OWN,
            PEER,
            "api",
            now + chrono::Duration::days(2),
            366
        ))
        .contains("not yet valid"));
        assert!(problem("garbage").contains("our public key"));
        // Not ours: an HS256 token with the right claims (what a 2021 Deckhouse test used).
        let body = good.split('.').nth(1).unwrap();
        let hs = format!(
            "{}.{body}.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#)
        );
        assert!(problem(&hs).contains("our public key"));
        // A broken own public key never lets a token through.
        assert!(reuse_problem(&good, "not a key", OWN, PEER, now).is_some());
    }

    /// Tokens embedded in the golden cases (fixture-tokens.json): valid, expiring in 10 days,
    /// foreign-signed, wrong audience. Ed25519 signatures are deterministic, so re-minting from
    /// the stored keys at the stored times reproduces them byte for byte.
    fn fixture_tokens() -> BTreeMap<&'static str, String> {
        let (own_priv, foreign_priv) = (fixture("own-priv.pem"), fixture("foreign-priv.pem"));
        let day = 86_400u64;
        let mint = |key: &str, aud: &str, issued: &str, ttl_days: u64| {
            jwt::sign_with_ttl(
                key,
                OWN,
                aud,
                "api",
                at(issued),
                Duration::from_secs(ttl_days * day),
            )
            .unwrap()
        };
        const PEER_C: &str = "33333333-3333-4333-8333-333333333333";
        [
            (
                "valid-b",
                mint(&own_priv, PEER, "2026-06-01T00:00:00Z", 366),
            ),
            (
                "valid-c",
                mint(&own_priv, PEER_C, "2026-06-01T00:00:00Z", 366),
            ),
            (
                "expiring-b",
                mint(&own_priv, PEER, "2025-12-10T00:00:00Z", 366),
            ),
            (
                "foreign-b",
                mint(&foreign_priv, PEER, "2026-06-01T00:00:00Z", 366),
            ),
            (
                "wrong-aud-b",
                mint(&own_priv, PEER_C, "2026-06-01T00:00:00Z", 366),
            ),
        ]
        .into()
    }

    /// Regenerates `testdata/multicluster-remote-secrets/fixture-tokens.json`:
    /// `cargo test --lib multicluster_remote_secrets::tests::mint_fixture_tokens -- --ignored`.
    #[test]
    #[ignore]
    fn mint_fixture_tokens() {
        let json = serde_json::to_string_pretty(&fixture_tokens()).unwrap() + "\n";
        std::fs::write(fixtures().join("fixture-tokens.json"), json).unwrap();
    }

    #[test]
    fn fixture_tokens_are_reproducible_and_decode_as_named() {
        let stored: BTreeMap<String, String> =
            serde_json::from_str(&fixture("tokens.json")).unwrap();
        let minted = fixture_tokens();
        assert_eq!(stored.len(), minted.len());
        for (k, v) in &minted {
            assert_eq!(stored.get(*k), Some(v), "{k}");
        }
        let now = at("2026-12-01T00:00:00Z");
        let own_pub = fixture("own-pub.pem");
        assert_eq!(
            reuse_problem(&minted["valid-b"], &own_pub, OWN, PEER, now),
            None
        );
        let left = jwt::peek_claims(&minted["expiring-b"]).unwrap().exp - now.timestamp();
        assert_eq!(left, 10 * 86_400);
        assert!(reuse_problem(&minted["foreign-b"], &own_pub, OWN, PEER, now).is_some());
        assert!(reuse_problem(&minted["wrong-aud-b"], &own_pub, OWN, PEER, now).is_some());
        assert!(pki::keypair_matches(&fixture("own-priv.pem"), &own_pub));
    }
    /// The golden `full-peer` case, run here to check what its new token says.
    #[test]
    fn full_peer_token_has_the_right_claims() {
        let case = fixtures().join("full-peer");
        let read = |f: &str| std::fs::read_to_string(case.join(f)).unwrap();
        let snapshots = crate::runtime::binding::fold(
            crate::runtime::binding::parse(read("binding-context.json").as_bytes(), "bc").unwrap(),
        );
        let values: Value = serde_json::from_str(&read("values.json")).unwrap();
        let config: Value = serde_json::from_str(&read("config-values.json")).unwrap();
        let now = at(read("now.txt").trim());
        let http = crate::net::CannedClient::default();
        let out = crate::runtime::execute(
            &MulticlusterRemoteSecrets,
            &snapshots,
            &values,
            &config,
            now,
            &http,
        )
        .unwrap();
        let patch = serde_json::to_value(&out.values_patch).unwrap();
        let items = patch
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["path"] == "/istio/internal/multiclusters")
            .map(|op| op["value"].clone())
            .unwrap();
        let items: Vec<Multicluster> = serde_json::from_value(items).unwrap();
        assert_eq!(items.len(), 1);
        let token = &items[0].api_jwt;
        let claims = jwt::verify_signature(token, &fixture("own-pub.pem")).unwrap();
        assert_eq!(claims.iss, "d8-istio");
        assert_eq!(claims.sub, OWN);
        assert_eq!(claims.aud, PEER);
        assert_eq!(claims.scope, "api");
        assert_eq!(claims.nbf, now.timestamp());
        assert_eq!(claims.exp, now.timestamp() + 366 * 86_400);
        assert_eq!(items[0].metadata_exporter_ca, fixture("ca-b.pem"));
    }
}
