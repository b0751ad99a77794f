//! The peer JWT (SPEC §5.1): compact JWS, header `{"alg":"EdDSA"}`, claims `iss`, `sub`, `aud`
//! (a string), `scope`, `nbf`, `exp`. Keys are read and checked with OpenSSL; tokens are signed
//! and their signatures checked by `jsonwebtoken` (RustCrypto backend); this module adds the
//! claim rules both servers and hooks share.

use crate::domain::metadata::RemotePublicMetadata;
use crate::domain::pki;
use anyhow::{anyhow, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

/// `iss` of every token a Deckhouse-compatible peer mints.
pub const ISSUER: &str = "d8-istio";
/// Tokens longer than this are refused before any parsing (a real one is ~300 bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock-skew allowance for `nbf`/`exp`.
pub const LEEWAY_SECS: i64 = 30;

/// Token scopes (SPEC §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PrivateFederation,
    PrivateMulticluster,
    Api,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PrivateFederation => "private-federation",
            Scope::PrivateMulticluster => "private-multicluster",
            Scope::Api => "api",
        }
    }

    /// Lifetime of a freshly minted token of this scope.
    pub fn ttl(self) -> Duration {
        match self {
            Scope::Api => Duration::from_secs(366 * 24 * 3600),
            _ => Duration::from_secs(60),
        }
    }
}

/// The claims we read back from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub scope: String,
    pub nbf: i64,
    pub exp: i64,
}

/// Why a token was refused. The display text is what a 401 says: short, never private data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Bearer authorization required")]
    MissingBearer,
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm")]
    Algorithm,
    #[error("JWT is signed for wrong issuer")]
    Issuer,
    #[error("JWT is signed for wrong destination cluster")]
    Audience,
    #[error("JWT is signed for wrong scope")]
    Scope,
    #[error("JWT token expired")]
    Expired,
    #[error("JWT token not yet valid")]
    NotYetValid,
    #[error("JWT is signed for unknown source cluster")]
    UnknownSubject,
    #[error("cannot verify JWT token with known public key")]
    Signature,
}

/// Mints a token signed with `private_pem` (PKCS#8 Ed25519, any PEM label).
pub fn sign(
    private_pem: &str,
    sub: &str,
    aud: &str,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<String> {
    sign_with_ttl(private_pem, sub, aud, scope.as_str(), now, scope.ttl())
}

/// Like [`sign`] with an explicit scope string and lifetime (tests mint odd tokens with it).
pub fn sign_with_ttl(
    private_pem: &str,
    sub: &str,
    aud: &str,
    scope: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<String> {
    Signer::from_pem(private_pem)?.sign_with_ttl(sub, aud, scope, now, ttl)
}

/// The claims of a token we mint, serialized in this order (the order earlier versions wrote
/// them in, so tokens stay byte-identical: Ed25519 is deterministic).
#[derive(serde::Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    scope: &'a str,
    nbf: i64,
    exp: i64,
}

/// The protected header of every token we mint: `{"alg":"EdDSA"}` (no `typ`, as Deckhouse).
fn minted_header() -> jsonwebtoken::Header {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = None;
    header
}

/// A signing key loaded once, for callers that mint many tokens. The key is checked with
/// OpenSSL once (any PEM label, Ed25519 only); tokens are made by `jsonwebtoken` over its
/// RustCrypto (ed25519-dalek) backend, about twice as fast per signature as OpenSSL 3's EVP.
pub struct Signer(jsonwebtoken::EncodingKey);

impl Signer {
    /// Loads `private_pem` (PKCS#8 Ed25519, any PEM label).
    pub fn from_pem(private_pem: &str) -> Result<Signer> {
        let key = pki::ed25519_private_key(private_pem)?;
        let der = key
            .private_key_to_pkcs8()
            .map_err(|e| anyhow!("cannot load signing key: {e}"))?;
        Ok(Signer(jsonwebtoken::EncodingKey::from_ed_der(&der)))
    }

    /// Like [`sign`].
    pub fn sign(&self, sub: &str, aud: &str, scope: Scope, now: DateTime<Utc>) -> Result<String> {
        self.sign_with_ttl(sub, aud, scope.as_str(), now, scope.ttl())
    }

    /// Like [`sign_with_ttl`].
    pub fn sign_with_ttl(
        &self,
        sub: &str,
        aud: &str,
        scope: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String> {
        let nbf = now.timestamp();
        let exp = nbf + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = MintedClaims {
            iss: ISSUER,
            sub,
            aud,
            scope,
            nbf,
            exp,
        };
        jsonwebtoken::encode(&minted_header(), &claims, &self.0)
            .map_err(|e| anyhow!("cannot sign token: {e}"))
    }
}

impl Signer {
    /// Tokens of `scope` from `sub` to each of `auds`, in order. With many, the signatures are
    /// shared out over the available cores (Ed25519 signing dominates a first run of
    /// multicluster-remote-secrets with many peers).
    pub fn sign_all(
        &self,
        sub: &str,
        auds: &[&str],
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        crate::par::map(auds, PARALLEL_SIGN_MIN, |aud| {
            self.sign(sub, aud, scope, now)
        })
        .ok_or_else(|| anyhow!("a signing thread panicked"))?
        .into_iter()
        .collect()
    }
}

impl Verifier {
    /// [`Verifier::verify`] of each of `tokens`, in order, shared out over the available cores
    /// like [`Signer::sign_all`] (a steady-state run of multicluster-remote-secrets checks one
    /// token per peer). A panicked worker (a bug) fails every token, never the caller.
    pub fn verify_all(&self, tokens: &[&str]) -> Vec<Result<Claims, AuthError>> {
        crate::par::map(tokens, PARALLEL_SIGN_MIN, |t| self.verify(t))
            .unwrap_or_else(|| vec![Err(AuthError::Signature); tokens.len()])
    }
}

/// [`Signer::sign_all`] and [`Verifier::verify_all`] use one thread below this many tokens per
/// thread (a signature is ~30 µs, a check ~50 µs, a thread ~50 µs to start).
const PARALLEL_SIGN_MIN: usize = 64;

/// A verification key loaded once, for callers that check many tokens against one key.
pub struct Verifier(jsonwebtoken::DecodingKey);

impl Verifier {
    /// Loads `public_pem` (SubjectPublicKeyInfo Ed25519, any PEM label).
    pub fn from_pem(public_pem: &str) -> Result<Verifier, AuthError> {
        let key = pki::ed25519_public_key(public_pem).map_err(|_| AuthError::Signature)?;
        let raw = key.raw_public_key().map_err(|_| AuthError::Signature)?;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        jsonwebtoken::DecodingKey::from_ed_components(&x)
            .map(Verifier)
            .map_err(|_| AuthError::Signature)
    }

    /// Like [`verify_signature`]: the header must name `alg` EdDSA and the signature must
    /// verify; the claims' rules are the callers' ([`check_claims`]).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = peek_claims(token)?;
        self.check_signature(token)?;
        Ok(claims)
    }

    /// The `jsonwebtoken` half of [`Verifier::verify`], for a token whose header and claims
    /// [`peek_claims`] has already read: `alg` must be EdDSA and the signature must verify.
    fn check_signature(&self, token: &str) -> Result<(), AuthError> {
        let mut rules = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        rules.validate_exp = false;
        rules.validate_nbf = false;
        rules.validate_aud = false;
        rules.required_spec_claims.clear();
        jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &self.0, &rules).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => AuthError::Algorithm,
                // `peek_claims` has read the header and claims: the rest is the signature.
                _ => AuthError::Signature,
            },
        )?;
        Ok(())
    }
}

/// The verification keys of every known peer, built once per load of remote public metadata
/// (the servers keep one per version of the file), so a request with a token never seen before
/// costs its signature check and nothing more: no PEM or key decoding per request.
#[derive(Default)]
pub struct PeerKeys {
    keys: std::collections::HashMap<String, PeerKey>,
}

struct PeerKey {
    /// The peer's `authnKeyPub` as published (part of the verified-token cache key).
    pem: String,
    /// Its verifier, or why the key is unusable (then every token of the peer is refused with
    /// [`AuthError::Signature`], as when the key was parsed per request).
    verifier: Result<Verifier, AuthError>,
}

impl PeerKeys {
    /// Parses every peer's `authnKeyPub`; a peer whose key does not parse stays known (its
    /// tokens fail the signature check).
    pub fn new(peers: &RemotePublicMetadata) -> PeerKeys {
        let keys = peers
            .iter()
            .map(|(uuid, peer)| {
                let key = PeerKey {
                    pem: peer.authn_key_pub.clone(),
                    verifier: Verifier::from_pem(&peer.authn_key_pub),
                };
                (uuid.clone(), key)
            })
            .collect();
        PeerKeys { keys }
    }

    /// Known peers.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Peers whose `authnKeyPub` is not a usable Ed25519 key.
    pub fn unusable(&self) -> impl Iterator<Item = &str> {
        self.keys
            .iter()
            .filter(|(_, k)| k.verifier.is_err())
            .map(|(uuid, _)| uuid.as_str())
    }
}

/// Reads the claims of a token without verifying it (to find the key, or to check a token we
/// minted ourselves for expiry).
pub fn peek_claims(token: &str) -> Result<Claims, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = engine
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err(AuthError::Algorithm);
    }
    let payload: Value = engine
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthError::Malformed)?;
    claims_from(&payload)
}

fn claims_from(payload: &Value) -> Result<Claims, AuthError> {
    let s = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str| payload.get(k).and_then(Value::as_i64);
    Ok(Claims {
        iss: s("iss").unwrap_or_default(),
        sub: s("sub").ok_or(AuthError::Malformed)?,
        aud: s("aud").ok_or(AuthError::Audience)?,
        scope: s("scope").ok_or(AuthError::Scope)?,
        nbf: n("nbf").unwrap_or(0),
        exp: n("exp").ok_or(AuthError::Malformed)?,
    })
}

/// Verifies `token` against `public_pem` only (signature, algorithm); returns its claims.
pub fn verify_signature(token: &str, public_pem: &str) -> Result<Claims, AuthError> {
    peek_claims(token)?;
    Verifier::from_pem(public_pem)?.verify(token)
}

/// Signatures already verified, keyed by SHA-256 of (peer key, token). OpenSSL 3 spends most of
/// a verification on key decoding and EVP set-up (~1 ms), while a peer (istiod through the
/// api-proxy, a polling hook) presents the same token many times. Only successes are cached,
/// so a flood of invalid tokens cannot fill it; claims are still checked on every request, and
/// a peer whose key changes no longer matches its entries.
struct VerifiedCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], i64>>,
}

/// Entries kept at most; the cache is emptied when full (cheap, and bounded).
const VERIFIED_CACHE_MAX: usize = 4096;

impl VerifiedCache {
    fn global() -> &'static VerifiedCache {
        static CACHE: std::sync::OnceLock<VerifiedCache> = std::sync::OnceLock::new();
        CACHE.get_or_init(|| VerifiedCache {
            entries: Default::default(),
        })
    }

    fn key(token: &str, public_pem: &str) -> [u8; 32] {
        let mut h = openssl::sha::Sha256::new();
        h.update(public_pem.as_bytes());
        h.update(&[0]);
        h.update(token.as_bytes());
        h.finish()
    }

    fn contains(&self, key: &[u8; 32], now: i64) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).is_some_and(|exp| exp + LEEWAY_SECS >= now)
    }

    fn insert(&self, key: [u8; 32], exp: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= VERIFIED_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key, exp);
    }
}

/// Full server-side check (SPEC §6.1): an `Authorization` header value carrying a token for
/// `own_uuid` with `scope`, from a peer listed in `keys` (parsed once per reload of the peers,
/// [`PeerKeys`]), valid now and correctly signed.
pub fn authenticate_with_keys(
    authorization: Option<&str>,
    own_uuid: &str,
    scope: Scope,
    keys: &PeerKeys,
    now: DateTime<Utc>,
) -> Result<Claims, AuthError> {
    let (token, claims) = bearer_claims(authorization, own_uuid, scope, now)?;
    let key = keys
        .keys
        .get(&claims.sub)
        .ok_or(AuthError::UnknownSubject)?;
    // A token whose signature already verified under this very key is answered by the cache.
    let cache = VerifiedCache::global();
    let cache_key = VerifiedCache::key(token, &key.pem);
    if cache.contains(&cache_key, now.timestamp()) {
        return Ok(claims);
    }
    key.verifier
        .as_ref()
        .map_err(Clone::clone)?
        .check_signature(token)?;
    cache.insert(cache_key, claims.exp);
    Ok(claims)
}

/// The token of a `Bearer` header value and its claims, read once (size limit, three parts,
/// `alg` EdDSA) and checked against the claim rules; the signature is not checked yet.
fn bearer_claims<'a>(
    authorization: Option<&'a str>,
    own_uuid: &str,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<(&'a str, Claims), AuthError> {
    let header = authorization.ok_or(AuthError::MissingBearer)?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(AuthError::MissingBearer)?
        .trim();
    let claims = peek_claims(token)?;
    check_claims(&claims, own_uuid, scope, now)?;
    Ok((token, claims))
}

/// Claim rules shared by every verifier.
pub fn check_claims(
    c: &Claims,
    own_uuid: &str,
    scope: Scope,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let now = now.timestamp();
    if c.iss != ISSUER {
        return Err(AuthError::Issuer);
    }
    if c.aud != own_uuid {
        return Err(AuthError::Audience);
    }
    if c.scope != scope.as_str() {
        return Err(AuthError::Scope);
    }
    if c.exp + LEEWAY_SECS < now {
        return Err(AuthError::Expired);
    }
    if c.nbf - LEEWAY_SECS > now {
        return Err(AuthError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`authenticate_with_keys`] with the keys of `peers`, as a server holds them.
    fn authenticate(
        authorization: Option<&str>,
        own_uuid: &str,
        scope: Scope,
        peers: &RemotePublicMetadata,
        now: DateTime<Utc>,
    ) -> Result<Claims, AuthError> {
        authenticate_with_keys(authorization, own_uuid, scope, &PeerKeys::new(peers), now)
    }
    use crate::domain::metadata::PublicMetadata;

    fn peers(uuid: &str, public: &str) -> RemotePublicMetadata {
        let mut m = RemotePublicMetadata::new();
        m.insert(
            uuid.into(),
            PublicMetadata {
                cluster_uuid: uuid.into(),
                authn_key_pub: public.into(),
                root_ca: String::new(),
            },
        );
        m
    }

    #[test]
    fn round_trip_and_rejections() {
        let now = Utc::now();
        let (private, public) = pki::generate_ed25519_keypair().unwrap();
        let known = peers(
            "caller",
            &public.replace("PUBLIC KEY", "ED25519 PUBLIC KEY"),
        );
        let tok = sign(&private, "caller", "me", Scope::PrivateFederation, now).unwrap();
        let header = format!("Bearer {tok}");
        let c = authenticate(Some(&header), "me", Scope::PrivateFederation, &known, now).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.aud.as_str(), c.exp - c.nbf),
            ("caller", "me", 60)
        );

        let err = |h: Option<&str>, aud: &str, scope: Scope, at: DateTime<Utc>| {
            authenticate(h, aud, scope, &known, at).unwrap_err()
        };
        assert_eq!(
            err(None, "me", Scope::PrivateFederation, now),
            AuthError::MissingBearer
        );
        assert_eq!(
            err(
                Some(&format!("Basic {tok}")),
                "me",
                Scope::PrivateFederation,
                now
            ),
            AuthError::MissingBearer
        );
        assert_eq!(
            err(Some(&header), "other", Scope::PrivateFederation, now),
            AuthError::Audience
        );
        assert_eq!(err(Some(&header), "me", Scope::Api, now), AuthError::Scope);
        let later = now + chrono::Duration::seconds(200);
        assert_eq!(
            err(Some(&header), "me", Scope::PrivateFederation, later),
            AuthError::Expired
        );
        let earlier = now - chrono::Duration::seconds(200);
        assert_eq!(
            err(Some(&header), "me", Scope::PrivateFederation, earlier),
            AuthError::NotYetValid
        );

        let stranger = sign(&private, "stranger", "me", Scope::PrivateFederation, now).unwrap();
        assert_eq!(
            err(
                Some(&format!("Bearer {stranger}")),
                "me",
                Scope::PrivateFederation,
                now
            ),
            AuthError::UnknownSubject
        );

        let (other_private, _) = pki::generate_ed25519_keypair().unwrap();
        let forged = sign(
            &other_private,
            "caller",
            "me",
            Scope::PrivateFederation,
            now,
        )
        .unwrap();
        assert_eq!(
            err(
                Some(&format!("Bearer {forged}")),
                "me",
                Scope::PrivateFederation,
                now
            ),
            AuthError::Signature
        );

        // alg:none and HS256 with the same claims.
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = tok.split('.').nth(1).unwrap();
        for alg in ["none", "HS256", "RS256"] {
            let h = engine.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let t = format!("Bearer {h}.{body}.");
            assert_eq!(
                err(Some(&t), "me", Scope::PrivateFederation, now),
                AuthError::Algorithm,
                "{alg}"
            );
        }
        // A verified (cached) token is still refused once expired, for another scope, or when
        // the peer's key changes.
        assert!(authenticate(Some(&header), "me", Scope::PrivateFederation, &known, now).is_ok());
        assert_eq!(
            err(Some(&header), "me", Scope::PrivateFederation, later),
            AuthError::Expired
        );
        assert_eq!(err(Some(&header), "me", Scope::Api, now), AuthError::Scope);
        let (_, rotated) = pki::generate_ed25519_keypair().unwrap();
        let rotated = peers("caller", &rotated);
        assert_eq!(
            authenticate(Some(&header), "me", Scope::PrivateFederation, &rotated, now).unwrap_err(),
            AuthError::Signature
        );

        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(
            err(Some(&huge), "me", Scope::PrivateFederation, now),
            AuthError::TooLarge
        );
        assert_eq!(
            err(Some("Bearer x.y"), "me", Scope::PrivateFederation, now),
            AuthError::Malformed
        );
    }

    #[test]
    fn keys_parsed_once_answer_like_keys_parsed_per_request() {
        let now = Utc::now();
        let (private, public) = pki::generate_ed25519_keypair().unwrap();
        let (other_private, _) = pki::generate_ed25519_keypair().unwrap();
        let mut known = peers("caller", &public);
        known.insert(
            "broken".into(),
            PublicMetadata {
                cluster_uuid: "broken".into(),
                authn_key_pub: "not a key".into(),
                root_ca: String::new(),
            },
        );
        let keys = PeerKeys::new(&known);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.unusable().collect::<Vec<_>>(), ["broken"]);
        let fed = Scope::PrivateFederation;
        let mint = |key: &str, sub: &str, aud: &str, scope: &str, back: i64, ttl: u64| {
            let at = now - chrono::Duration::seconds(back);
            let t = sign_with_ttl(key, sub, aud, scope, at, Duration::from_secs(ttl)).unwrap();
            format!("Bearer {t}")
        };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let good = mint(&private, "caller", "me", fed.as_str(), 0, 60);
        let body = good.split('.').nth(1).unwrap();
        let cases = [
            (good.clone(), Ok("caller")),
            // Distinct valid tokens: none can be answered by the verified-token cache.
            (
                mint(&private, "caller", "me", fed.as_str(), 1, 61),
                Ok("caller"),
            ),
            (
                mint(&private, "caller", "me", fed.as_str(), 2, 62),
                Ok("caller"),
            ),
            (
                mint(&other_private, "caller", "me", fed.as_str(), 3, 63),
                Err(AuthError::Signature),
            ),
            (
                mint(&private, "broken", "me", fed.as_str(), 4, 64),
                Err(AuthError::Signature),
            ),
            (
                mint(&private, "stranger", "me", fed.as_str(), 5, 65),
                Err(AuthError::UnknownSubject),
            ),
            (
                mint(&private, "caller", "you", fed.as_str(), 6, 66),
                Err(AuthError::Audience),
            ),
            (
                mint(&private, "caller", "me", "api", 7, 67),
                Err(AuthError::Scope),
            ),
            (
                mint(&private, "caller", "me", fed.as_str(), 200, 60),
                Err(AuthError::Expired),
            ),
            (
                mint(&private, "caller", "me", fed.as_str(), -200, 600),
                Err(AuthError::NotYetValid),
            ),
            (
                format!("Bearer {}.{body}.", engine.encode(r#"{"alg":"none"}"#)),
                Err(AuthError::Algorithm),
            ),
            (
                format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1)),
                Err(AuthError::TooLarge),
            ),
            ("Bearer x.y".into(), Err(AuthError::Malformed)),
            (
                good.replace("Bearer ", "Basic "),
                Err(AuthError::MissingBearer),
            ),
        ];
        for (header, want) in &cases {
            let with_keys = authenticate_with_keys(Some(header), "me", fed, &keys, now);
            assert_eq!(
                with_keys
                    .as_ref()
                    .map(|c| c.sub.as_str())
                    .map_err(Clone::clone),
                want.clone(),
                "{header}"
            );
        }
        assert_eq!(
            authenticate_with_keys(None, "me", fed, &keys, now),
            Err(AuthError::MissingBearer)
        );
        // A token verified (and cached) under one key is refused once the peer's key changes.
        let (_, rotated) = pki::generate_ed25519_keypair().unwrap();
        let rotated = PeerKeys::new(&peers("caller", &rotated));
        assert_eq!(
            authenticate_with_keys(Some(&good), "me", fed, &rotated, now),
            Err(AuthError::Signature)
        );
        assert_eq!(
            authenticate_with_keys(Some(&good), "me", fed, &PeerKeys::default(), now),
            Err(AuthError::UnknownSubject)
        );
    }

    #[test]
    fn cached_verifiers_follow_the_key() {
        let (private, public) = pki::generate_ed25519_keypair().unwrap();
        let (_, other_public) = pki::generate_ed25519_keypair().unwrap();
        let now = Utc::now();
        let token = sign(&private, "a", "b", Scope::Api, now).unwrap();
        for _ in 0..2 {
            assert!(verify_signature(&token, &public).is_ok());
            assert_eq!(
                verify_signature(&token, &other_public),
                Err(AuthError::Signature)
            );
            assert_eq!(
                verify_signature(&token, "not a key"),
                Err(AuthError::Signature)
            );
        }
    }

    #[test]
    fn sign_all_matches_one_by_one_and_verifies() {
        let (private, public) = pki::generate_ed25519_keypair().unwrap();
        let signer = Signer::from_pem(&private).unwrap();
        let verifier = Verifier::from_pem(&public).unwrap();
        let now = Utc::now();
        let names: Vec<String> = (0..3 * PARALLEL_SIGN_MIN)
            .map(|i| format!("p{i}"))
            .collect();
        let auds: Vec<&str> = names.iter().map(String::as_str).collect();
        for n in [0, 1, PARALLEL_SIGN_MIN, auds.len()] {
            let all = signer.sign_all("me", &auds[..n], Scope::Api, now).unwrap();
            assert_eq!(all.len(), n);
            for (aud, token) in auds.iter().zip(&all) {
                assert_eq!(token, &sign(&private, "me", aud, Scope::Api, now).unwrap());
                assert_eq!(verifier.verify(token).unwrap().aud, *aud);
            }
            // Batch checks agree with single ones, in order, good and bad tokens mixed.
            let mut tokens: Vec<&str> = all.iter().map(String::as_str).collect();
            if n > 0 {
                tokens[n / 2] = "garbage";
            }
            let one_by_one: Vec<_> = tokens.iter().map(|t| verifier.verify(t)).collect();
            assert_eq!(verifier.verify_all(&tokens), one_by_one);
        }
        // A flipped signature byte or a truncated signature never verifies.
        let token = signer.sign("me", "you", Scope::Api, now).unwrap();
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(verifier.verify(&flipped), Err(AuthError::Signature));
        assert_eq!(
            verifier.verify(&token[..token.len() - 4]),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn header_is_exactly_eddsa() {
        let (private, _) = pki::generate_ed25519_keypair().unwrap();
        let tok = sign(&private, "a", "b", Scope::Api, Utc::now()).unwrap();
        let header = tok.split('.').next().unwrap();
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), r#"{"alg":"EdDSA"}"#);
        let c = peek_claims(&tok).unwrap();
        assert_eq!(c.exp - c.nbf, 366 * 86_400);
    }
}
