//! PKI helpers over openssl: PEM blocks parsed by body (labels ignored, as Deckhouse labels its
//! keys `ED25519 PUBLIC KEY`), Ed25519 key generation and checks, root-CA inspection, and the
//! crate's one X.509 certificate builder ([`build_certificate`], with a validity window) with
//! the certificates made from it: the api-proxy's self-signed one and the test and demo PKI.

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Upper bound on a PEM bundle we are willing to parse (SPEC §5.3: root CA ≤ 64 KiB).
pub const MAX_ROOT_CA_BYTES: usize = 64 * 1024;
/// A [`Memo`] is emptied when the texts it holds exceed this many bytes.
const MEMO_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Successful parses by input text. OpenSSL 3's decoders cost ~1 ms per key or certificate,
/// and a run sees the same texts again and again (every peer of a cluster publishes the same
/// root; our own key is loaded per peer). Keyed by the whole text (never a hash: the inputs are
/// untrusted), bounded by [`MEMO_MAX_BYTES`] so that a long-running server cannot grow it
/// without limit. Failures are not remembered: they are rare and parsed again.
struct Memo<T> {
    inner: OnceLock<Mutex<(HashMap<String, T>, usize)>>,
}

impl<T: Clone> Memo<T> {
    const fn new() -> Memo<T> {
        Memo {
            inner: OnceLock::new(),
        }
    }

    fn get_or_parse(&self, text: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        let lock = || {
            self.inner
                .get_or_init(Mutex::default)
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(hit) = lock().0.get(text) {
            return Ok(hit.clone());
        }
        // Parsed without holding the lock: server threads may parse other texts meanwhile.
        let parsed = parse(text)?;
        let mut memo = lock();
        if memo.1 + text.len() > MEMO_MAX_BYTES {
            *memo = (HashMap::new(), 0);
        }
        if text.len() <= MEMO_MAX_BYTES && memo.0.insert(text.to_owned(), parsed.clone()).is_none()
        {
            memo.1 += text.len();
        }
        Ok(parsed)
    }
}

/// DER bodies of every PEM block in `text`, whatever their labels.
pub fn pem_bodies(text: &str) -> Result<Vec<Vec<u8>>> {
    let blocks = pem::parse_many(text).map_err(|e| anyhow!("malformed PEM: {e}"))?;
    if blocks.is_empty() {
        bail!("no PEM block found");
    }
    Ok(blocks.into_iter().map(|b| b.into_contents()).collect())
}

/// DER body of the first PEM block.
pub fn first_pem_body(text: &str) -> Result<Vec<u8>> {
    let block = pem::parse(text).map_err(|e| anyhow!("malformed PEM: {e}"))?;
    Ok(block.into_contents())
}

/// Parses an Ed25519 public key (SubjectPublicKeyInfo) from PEM with any label. Successful
/// parses are remembered by text (see [`Memo`]).
pub fn ed25519_public_key(text: &str) -> Result<PKey<Public>> {
    static MEMO: Memo<PKey<Public>> = Memo::new();
    MEMO.get_or_parse(text, parse_ed25519_public_key)
}

fn parse_ed25519_public_key(text: &str) -> Result<PKey<Public>> {
    let der = first_pem_body(text)?;
    let key = PKey::public_key_from_der(&der).context("not a SubjectPublicKeyInfo public key")?;
    if key.id() != Id::ED25519 {
        bail!("public key is not Ed25519");
    }
    Ok(key)
}

/// Parses an Ed25519 private key (PKCS#8) from PEM with any label.
pub fn ed25519_private_key(text: &str) -> Result<PKey<Private>> {
    let der = first_pem_body(text)?;
    let key = PKey::private_key_from_pkcs8(&der).context("not a PKCS#8 private key")?;
    if key.id() != Id::ED25519 {
        bail!("private key is not Ed25519");
    }
    Ok(key)
}

/// A freshly generated Ed25519 keypair as (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_ed25519_keypair() -> Result<(String, String)> {
    let key = PKey::generate_ed25519()?;
    let private = String::from_utf8(key.private_key_to_pem_pkcs8()?)?;
    let public = String::from_utf8(key.public_key_to_pem()?)?;
    Ok((private, public))
}

/// True when the private key's public half is `public_pem`.
pub fn keypair_matches(private_pem: &str, public_pem: &str) -> bool {
    let (Ok(private), Ok(public)) = (
        ed25519_private_key(private_pem),
        ed25519_public_key(public_pem),
    ) else {
        return false;
    };
    match (private.raw_public_key(), public.raw_public_key()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What we know about one certificate of a root bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The certificate re-encoded as a single PEM block.
    pub pem: String,
    /// SHA-256 of the DER, lowercase hex without colons.
    pub fingerprint_sha256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub is_ca: bool,
    pub subject: String,
}

impl CertInfo {
    /// Why this certificate may not be trusted as a root at `now`, if anything.
    pub fn root_problem(&self, now: DateTime<Utc>) -> Option<String> {
        if !self.is_ca {
            return Some(format!(
                "certificate {} is not a CA (basicConstraints CA:TRUE missing)",
                self.subject
            ));
        }
        if now < self.not_before {
            return Some(format!(
                "certificate {} is not valid before {}",
                self.subject,
                rfc3339(self.not_before)
            ));
        }
        if now > self.not_after {
            return Some(format!(
                "certificate {} expired at {}",
                self.subject,
                rfc3339(self.not_after)
            ));
        }
        None
    }
}

/// RFC 3339 UTC with second precision (`2026-11-22T05:40:58Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn asn1_to_utc(t: &openssl::asn1::Asn1TimeRef) -> Result<DateTime<Utc>> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(t)?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| anyhow!("certificate time out of range"))
}

/// Parses every certificate of a PEM bundle (labels other than CERTIFICATE are rejected).
/// Successful parses are remembered by text (see [`Memo`]).
pub fn parse_certificates(text: &str) -> Result<Vec<CertInfo>> {
    static MEMO: Memo<Vec<CertInfo>> = Memo::new();
    MEMO.get_or_parse(text, parse_certificates_uncached)
}

fn parse_certificates_uncached(text: &str) -> Result<Vec<CertInfo>> {
    if text.len() > MAX_ROOT_CA_BYTES {
        bail!(
            "certificate bundle is {} bytes, more than {MAX_ROOT_CA_BYTES}",
            text.len()
        );
    }
    let blocks = pem::parse_many(text).map_err(|e| anyhow!("malformed PEM: {e}"))?;
    if blocks.is_empty() {
        bail!("no PEM certificate found");
    }
    blocks
        .iter()
        .enumerate()
        .map(|(i, block)| {
            if block.tag() != "CERTIFICATE" {
                bail!("PEM block {i} is {:?}, not CERTIFICATE", block.tag());
            }
            let cert = X509::from_der(block.contents())
                .with_context(|| format!("PEM block {i} is not an X.509 certificate"))?;
            cert_info(&cert)
        })
        .collect()
}

fn cert_info(cert: &X509) -> Result<CertInfo> {
    let der = cert.to_der()?;
    let fingerprint = openssl::hash::hash(MessageDigest::sha256(), &der)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = String::from_utf8_lossy(e.data().as_slice()).into_owned();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(CertInfo {
        pem: String::from_utf8(cert.to_pem()?)?,
        fingerprint_sha256: fingerprint,
        not_before: asn1_to_utc(cert.not_before())?,
        not_after: asn1_to_utc(cert.not_after())?,
        is_ca: is_ca(cert)?,
        subject,
    })
}

/// basicConstraints CA:TRUE, read from openssl's own rendering of the extensions (rust-openssl
/// exposes no accessor for basicConstraints).
fn is_ca(cert: &X509) -> Result<bool> {
    let text = String::from_utf8_lossy(&cert.to_text()?).into_owned();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("X509v3 Basic Constraints") {
            return Ok(lines
                .next()
                .is_some_and(|l| l.trim_start().starts_with("CA:TRUE")));
        }
    }
    Ok(false)
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour ago (room for clock skew) until `days` days from now.
    pub fn days(days: u32) -> Validity {
        let now = Utc::now();
        Validity {
            not_before: now - TimeDelta::hours(1),
            not_after: now + TimeDelta::days(days.into()),
        }
    }

    /// One day that ended `days_ago` days ago: an expired certificate.
    pub fn expired(days_ago: u32) -> Validity {
        let end = Utc::now() - TimeDelta::days(days_ago.into());
        Validity {
            not_before: end - TimeDelta::days(1),
            not_after: end,
        }
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A CA: basicConstraints CA:TRUE, keyCertSign and cRLSign (all critical).
    Ca,
    /// A TLS server certificate (extendedKeyUsage serverAuth).
    Server,
    /// A TLS client certificate (extendedKeyUsage clientAuth).
    Client,
}

/// The contents of one certificate for [`build_certificate`].
#[derive(Debug, Clone, Copy)]
pub struct CertSpec<'a> {
    /// The subject's Organization.
    pub organization: &'a str,
    /// The subject's CommonName.
    pub common_name: &'a str,
    pub usage: Usage,
    /// DNS names and IP addresses of a server or client certificate (none: no extension).
    pub sans: &'a [&'a str],
    pub validity: Validity,
}

/// A fresh EC P-256 private key.
pub fn generate_ec_key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// A fresh RSA-2048 private key.
pub fn generate_rsa_key() -> Result<PKey<Private>> {
    Ok(PKey::from_rsa(Rsa::generate(2048)?)?)
}

/// The crate's one X.509 builder: a v3 certificate for `key` as `spec` says (subject
/// `O=…, CN=…`, random 64-bit serial, subject key identifier, SHA-256), self-signed unless
/// `issuer` (certificate and key) signs it. A leaf gets basicConstraints CA:FALSE,
/// digitalSignature and keyEncipherment (critical), its extended key usage and its SANs.
pub fn build_certificate(
    spec: &CertSpec<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> Result<X509> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("O", spec.organization)?;
    name.append_entry_by_text("CN", spec.common_name)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(spec.validity.not_before.timestamp())?;
    let not_after = Asn1Time::from_unix(spec.validity.not_after.timestamp())?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    if spec.usage == Usage::Ca {
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
    } else {
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        let mut eku = ExtendedKeyUsage::new();
        if spec.usage == Usage::Client {
            eku.client_auth();
        } else {
            eku.server_auth();
        }
        b.append_extension(eku.build()?)?;
    }
    let issuer_cert = issuer.map(|(c, _)| c.as_ref());
    if !spec.sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for s in spec.sans {
            if s.parse::<IpAddr>().is_ok() {
                san.ip(s);
            } else {
                san.dns(s);
            }
        }
        let ext = san.build(&b.x509v3_context(issuer_cert, None))?;
        b.append_extension(ext)?;
    }
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer_cert, None))?;
    b.append_extension(ski)?;
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())?;
    Ok(b.build())
}

/// A certificate and its private key (PKCS#8), as PEM.
fn to_pem(cert: &X509, key: &PKey<Private>) -> Result<(String, String)> {
    Ok((
        String::from_utf8(cert.to_pem()?)?,
        String::from_utf8(key.private_key_to_pem_pkcs8()?)?,
    ))
}

/// A self-signed certificate (RSA-2048, `O=istio-hooks`) and its key, as PEM: a root CA when
/// `ca`, else a server certificate without names. Tests and demo.
pub fn generate_self_signed_ca(
    common_name: &str,
    validity: Validity,
    ca: bool,
) -> Result<(String, String)> {
    let key = generate_rsa_key()?;
    let spec = CertSpec {
        organization: "istio-hooks",
        common_name,
        usage: if ca { Usage::Ca } else { Usage::Server },
        sans: &[],
        validity,
    };
    to_pem(&build_certificate(&spec, &key, None)?, &key)
}

/// A self-signed server certificate (EC P-256, `O=istio-hooks`, 10 years) for `sans`, as
/// (cert PEM, key PEM): the api-proxy's when it is given none.
pub fn self_signed_server_cert(common_name: &str, sans: &[&str]) -> Result<(String, String)> {
    let key = generate_ec_key()?;
    let spec = CertSpec {
        organization: "istio-hooks",
        common_name,
        usage: Usage::Server,
        sans,
        validity: Validity::days(3650),
    };
    to_pem(&build_certificate(&spec, &key, None)?, &key)
}

/// Test and demo PKI: a CA and a server certificate signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A fresh CA (EC P-256) and a server certificate for `localhost` and `127.0.0.1` signed by
/// it, both valid for 30 days.
pub fn ca_and_localhost_cert() -> Result<TestPki> {
    let ca_key = generate_ec_key()?;
    let ca_spec = CertSpec {
        organization: "istio-hooks",
        common_name: "istio-hooks test CA",
        usage: Usage::Ca,
        sans: &[],
        validity: Validity::days(30),
    };
    let ca = build_certificate(&ca_spec, &ca_key, None)?;
    let key = generate_ec_key()?;
    let spec = CertSpec {
        common_name: "localhost",
        usage: Usage::Server,
        sans: &["localhost", "127.0.0.1"],
        ..ca_spec
    };
    let cert = build_certificate(&spec, &key, Some((&ca, &ca_key)))?;
    let (ca_pem, ca_key_pem) = to_pem(&ca, &ca_key)?;
    let (cert_pem, key_pem) = to_pem(&cert, &key)?;
    Ok(TestPki {
        ca_pem,
        ca_key_pem,
        cert_pem,
        key_pem,
    })
}

/// A client certificate (30 days) with Organization `organization`, signed by the CA of `pki`,
/// as (cert PEM, key PEM).
pub fn client_cert(pki: &TestPki, organization: &str) -> Result<(String, String)> {
    let ca = X509::from_pem(pki.ca_pem.as_bytes())?;
    let ca_key = PKey::private_key_from_pem(pki.ca_key_pem.as_bytes())?;
    let key = generate_ec_key()?;
    let spec = CertSpec {
        organization,
        common_name: "client",
        usage: Usage::Client,
        sans: &["client"],
        validity: Validity::days(30),
    };
    to_pem(&build_certificate(&spec, &key, Some((&ca, &ca_key)))?, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_round_trip_with_any_label() {
        let (private, public) = generate_ed25519_keypair().unwrap();
        assert!(private.contains("BEGIN PRIVATE KEY"));
        assert!(public.contains("BEGIN PUBLIC KEY"));
        let relabelled = public.replace("PUBLIC KEY", "ED25519 PUBLIC KEY");
        ed25519_public_key(&relabelled).unwrap();
        assert!(keypair_matches(&private, &relabelled));
        let (_, other) = generate_ed25519_keypair().unwrap();
        assert!(!keypair_matches(&private, &other));
    }

    #[test]
    fn root_checks() {
        let now = Utc::now();
        let (good, _) = generate_self_signed_ca("good", Validity::days(30), true).unwrap();
        let info = &parse_certificates(&good).unwrap()[0];
        assert!(info.is_ca);
        assert_eq!(info.fingerprint_sha256.len(), 64);
        assert_eq!(info.root_problem(now), None);
        let (leaf, _) = generate_self_signed_ca("leaf", Validity::days(30), false).unwrap();
        assert!(parse_certificates(&leaf).unwrap()[0]
            .root_problem(now)
            .unwrap()
            .contains("not a CA"));
        let (old, _) = generate_self_signed_ca("old", Validity::expired(2), true).unwrap();
        assert!(parse_certificates(&old).unwrap()[0]
            .root_problem(now)
            .unwrap()
            .contains("expired"));
        assert!(parse_certificates("garbage").is_err());
        assert!(parse_certificates(&"A".repeat(70_000)).is_err());
    }
}
