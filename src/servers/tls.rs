//! TLS material for the servers (openssl): server acceptors from PEM files or memory, the
//! api-proxy's self-signed certificate, and a test/demo PKI (a CA plus a `localhost`/`127.0.0.1`
//! server certificate signed by it).

use anyhow::{anyhow, Context, Result};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use std::net::IpAddr;
use std::path::Path;

/// Names the api-proxy's self-signed certificate is valid for (the ingress does not verify it).
pub const API_PROXY_SANS: &[&str] = &[
    "api-proxy",
    "api-proxy.d8-istio",
    "api-proxy.d8-istio.svc",
    "localhost",
];

/// A server acceptor from a PEM certificate chain (leaf first) and a PEM private key.
pub fn acceptor_from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<SslAcceptor> {
    Ok(acceptor_builder(chain_pem, key_pem)?.build())
}

/// Like [`acceptor_from_pem`], and every client must present a certificate signed by
/// `client_ca_pem`; with `organization`, the certificate's first Organization must equal it
/// (Deckhouse's ingress-nginx presents `O=ingress-nginx:auth`).
pub fn acceptor_requiring_client_certs(
    chain_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
    organization: Option<String>,
) -> Result<SslAcceptor> {
    let mut b = acceptor_builder(chain_pem, key_pem)?;
    let cas = X509::stack_from_pem(client_ca_pem).context("cannot parse the client CA PEM")?;
    if cas.is_empty() {
        return Err(anyhow!("the client CA file holds no certificate"));
    }
    for ca in cas {
        b.add_client_ca(&ca)?;
        b.cert_store_mut().add_cert(ca)?;
    }
    let mode = SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    b.set_verify_callback(mode, move |ok, ctx| {
        if !ok || ctx.error_depth() != 0 {
            return ok;
        }
        let Some(want) = &organization else {
            return true;
        };
        let first_org = ctx.current_cert().and_then(|c| {
            let entry = c
                .subject_name()
                .entries_by_nid(Nid::ORGANIZATIONNAME)
                .next()?;
            entry.data().to_string().ok()
        });
        first_org.as_deref() == Some(want.as_str())
    });
    Ok(b.build())
}

fn acceptor_builder(chain_pem: &[u8], key_pem: &[u8]) -> Result<SslAcceptorBuilder> {
    let chain = X509::stack_from_pem(chain_pem).context("cannot parse the TLS certificate PEM")?;
    let mut certs = chain.into_iter();
    let leaf = certs
        .next()
        .ok_or_else(|| anyhow!("the TLS certificate file holds no certificate"))?;
    let key =
        PKey::private_key_from_pem(key_pem).context("cannot parse the TLS private key PEM")?;
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate(&leaf)?;
    for extra in certs {
        b.add_extra_chain_cert(extra)?;
    }
    b.set_private_key(&key)?;
    b.check_private_key()
        .context("the TLS private key does not match the certificate")?;
    Ok(b)
}

/// A server acceptor from `--tls-cert`/`--tls-key` files; the error names the file.
pub fn acceptor_from_files(cert: &Path, key: &Path) -> Result<SslAcceptor, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (c, k) = (read(cert)?, read(key)?);
    acceptor_from_pem(&c, &k).map_err(|e| format!("{} / {}: {e:#}", cert.display(), key.display()))
}

/// Test and demo PKI: a CA and a server certificate signed by it, all PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A fresh CA (EC P-256) and a server certificate for `localhost` and `127.0.0.1` signed by it.
pub fn ca_and_localhost_cert() -> Result<TestPki> {
    let ca_key = ec_key()?;
    let ca = build_cert("istio-hooks test CA", &[], &ca_key, None, 30, true)?;
    let key = ec_key()?;
    let cert = build_cert(
        "localhost",
        &["localhost", "127.0.0.1"],
        &key,
        Some((&ca, &ca_key)),
        30,
        false,
    )?;
    Ok(TestPki {
        ca_pem: pem_string(ca.to_pem()?)?,
        ca_key_pem: pem_string(ca_key.private_key_to_pem_pkcs8()?)?,
        cert_pem: pem_string(cert.to_pem()?)?,
        key_pem: pem_string(key.private_key_to_pem_pkcs8()?)?,
    })
}

/// A client certificate with Organization `organization`, signed by the CA of `pki`, as
/// (cert PEM, key PEM).
pub fn client_cert(pki: &TestPki, organization: &str) -> Result<(String, String)> {
    let ca = X509::from_pem(pki.ca_pem.as_bytes())?;
    let ca_key = PKey::private_key_from_pem(pki.ca_key_pem.as_bytes())?;
    let key = ec_key()?;
    let cert = build_cert_for(
        organization,
        "client",
        &["client"],
        &key,
        Some((&ca, &ca_key)),
        30,
        Kind::Client,
    )?;
    Ok((
        pem_string(cert.to_pem()?)?,
        pem_string(key.private_key_to_pem_pkcs8()?)?,
    ))
}

/// A self-signed server certificate (EC P-256, 10 years) for `sans`, as (cert PEM, key PEM).
pub fn self_signed_server_cert(common_name: &str, sans: &[&str]) -> Result<(String, String)> {
    let key = ec_key()?;
    let cert = build_cert(common_name, sans, &key, None, 3650, false)?;
    Ok((
        pem_string(cert.to_pem()?)?,
        pem_string(key.private_key_to_pem_pkcs8()?)?,
    ))
}

fn pem_string(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).context("PEM is not UTF-8")
}

fn ec_key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// One X.509 v3 certificate: a CA when `ca`, else a TLS server certificate for `sans`; self-signed
/// unless `issuer` is given.
fn build_cert(
    cn: &str,
    sans: &[&str],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    days: u32,
    ca: bool,
) -> Result<X509> {
    build_cert_for(
        "istio-hooks",
        cn,
        sans,
        key,
        issuer,
        days,
        if ca { Kind::Ca } else { Kind::Server },
    )
}

/// What a certificate is for.
#[derive(PartialEq)]
enum Kind {
    Ca,
    Server,
    Client,
}

fn build_cert_for(
    org: &str,
    cn: &str,
    sans: &[&str],
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    days: u32,
    kind: Kind,
) -> Result<X509> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("O", org)?;
    name.append_entry_by_text("CN", cn)?;
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
    let now = chrono::Utc::now().timestamp();
    let (start, end) = (
        Asn1Time::from_unix(now - 3600)?,
        Asn1Time::from_unix(now + i64::from(days) * 86_400)?,
    );
    b.set_not_before(&start)?;
    b.set_not_after(&end)?;
    if kind == Kind::Ca {
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
        if kind == Kind::Client {
            b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        } else {
            b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        }
        let mut san = SubjectAlternativeName::new();
        for s in sans {
            if s.parse::<IpAddr>().is_ok() {
                san.ip(s);
            } else {
                san.dns(s);
            }
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))?;
        b.append_extension(ext)?;
    }
    let signing_key = issuer.map_or(key, |(_, k)| k);
    b.sign(signing_key, MessageDigest::sha256())?;
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pki_is_a_chain_and_acceptors_load() {
        let pki = ca_and_localhost_cert().unwrap();
        let ca = X509::from_pem(pki.ca_pem.as_bytes()).unwrap();
        let cert = X509::from_pem(pki.cert_pem.as_bytes()).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
        acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
        let (c, k) = self_signed_server_cert("istio-api-proxy", API_PROXY_SANS).unwrap();
        acceptor_from_pem(c.as_bytes(), k.as_bytes()).unwrap();
        let (_, other_key) = self_signed_server_cert("x", &["x"]).unwrap();
        assert!(acceptor_from_pem(c.as_bytes(), other_key.as_bytes()).is_err());
    }
}
