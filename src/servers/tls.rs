//! TLS for the servers (openssl): server acceptors from PEM files or memory, optionally
//! requiring client certificates.

use anyhow::{anyhow, Context, Result};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pki::{ca_and_localhost_cert, self_signed_server_cert};

    #[test]
    fn test_pki_is_a_chain_and_acceptors_load() {
        let pki = ca_and_localhost_cert().unwrap();
        let ca = X509::from_pem(pki.ca_pem.as_bytes()).unwrap();
        let cert = X509::from_pem(pki.cert_pem.as_bytes()).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
        acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
        let (c, k) =
            self_signed_server_cert("istio-api-proxy", crate::servers::api_proxy::API_PROXY_SANS)
                .unwrap();
        acceptor_from_pem(c.as_bytes(), k.as_bytes()).unwrap();
        let (_, other_key) = self_signed_server_cert("x", &["x"]).unwrap();
        assert!(acceptor_from_pem(c.as_bytes(), other_key.as_bytes()).is_err());
    }
}
