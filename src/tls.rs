//! The crate's OpenSSL contexts, client and server.
//!
//! Client ([`TlsSetting`], for [`crate::net::HttpsClient`]): contexts cheap to build per TLS
//! setting. `SslConnector::builder` (and so native-tls/reqwest) calls `set_default_verify_paths`,
//! which parses the whole system CA bundle into every new context: tens of milliseconds of CPU
//! per distinct `spec.metadata.ca`. Here the system roots are found once per process
//! (`openssl_probe`): hashed certificate directories are added as lazy lookups (OpenSSL reads a
//! root from disk only when a chain needs it); the bundle file (`SSL_CERT_FILE` or the
//! distribution's) is skipped when it sits in such a directory (then it holds the same roots),
//! else parsed once and its certificates shared (reference counts) by every store. Everything
//! else is `SslConnector`'s configuration: the same options, cipher list, peer verification,
//! hostname/IP checks with no partial wildcards, SNI for DNS names only, TLS 1.2 minimum
//! (native-tls's default).
//!
//! Server (the metadata-exporter and the api-proxy): acceptors (Mozilla intermediate) from PEM
//! files or memory, optionally requiring client certificates of a CA and an Organization.

use anyhow::{anyhow, Context, Result};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslAcceptor, SslAcceptorBuilder, SslContext, SslContextBuilder, SslMethod, SslMode,
    SslOptions, SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::X509;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Client contexts

/// `SslConnector`'s cipher list.
const CIPHERS: &str = "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

/// Where the system's trusted roots are, found once per process.
struct SystemRoots {
    /// Hashed certificate directories (`<subject hash>.<n>`), looked up lazily by OpenSSL.
    dirs: Vec<PathBuf>,
    /// The bundle file's certificates, parsed once (empty when the directories cover it).
    bundle: Vec<X509>,
}

static SYSTEM_ROOTS: OnceLock<SystemRoots> = OnceLock::new();

fn system_roots() -> &'static SystemRoots {
    SYSTEM_ROOTS.get_or_init(|| {
        let probe = openssl_probe::probe();
        // The bundle is skipped when it sits beside its own hash links (`update-ca-certificates`
        // writes both from the same certificates: Debian, Ubuntu, Alpine), wherever it was
        // found (`SSL_CERT_FILE` or the distribution's usual paths); otherwise parsed once.
        let hashed: Vec<PathBuf> = probe
            .cert_dir
            .iter()
            .filter(|d| has_hash_links(d))
            .filter_map(|d| d.canonicalize().ok())
            .collect();
        let bundle = match &probe.cert_file {
            Some(file) if !beside_hash_links(file, &hashed) => load_bundle(file),
            _ => Vec::new(),
        };
        SystemRoots {
            dirs: probe.cert_dir,
            bundle,
        }
    })
}

/// The bundle `update-ca-certificates` writes next to the hash links it makes.
const DISTRO_BUNDLE: &str = "ca-certificates.crt";

/// Whether `file` (symbolic links resolved) is the distribution's own bundle
/// (`ca-certificates.crt`) in one of the `hashed` directories. Any other bundle (a custom
/// `SSL_CERT_FILE`, say) may hold certificates the links don't, so it is always parsed.
fn beside_hash_links(file: &Path, hashed: &[PathBuf]) -> bool {
    file.canonicalize()
        .ok()
        .filter(|f| f.file_name().is_some_and(|n| n == DISTRO_BUNDLE))
        .and_then(|f| f.parent().map(|p| hashed.iter().any(|d| d == p)))
        .unwrap_or(false)
}

/// Whether `dir` holds at least one `c_rehash`-style link (`0123abcd.0`).
fn has_hash_links(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        let Some((hash, n)) = name.split_once('.') else {
            return false;
        };
        hash.len() == 8
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

fn load_bundle(file: &Path) -> Vec<X509> {
    match std::fs::read(file).map(|pem| X509::stack_from_pem(&pem)) {
        Ok(Ok(certs)) => certs,
        Ok(Err(e)) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot parse the system CA bundle");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the system CA bundle");
            Vec::new()
        }
    }
}

/// One TLS setting: a client context and whether verification is off.
pub struct TlsSetting {
    ctx: SslContext,
    insecure: bool,
}

impl TlsSetting {
    /// System roots plus the PEM certificates of `ca_pem`; or no verification at all when
    /// `insecure` (the caller only asks for it without a CA).
    pub fn new(ca_pem: Option<&str>, insecure: bool) -> Result<TlsSetting, String> {
        let e = |e: openssl::error::ErrorStack| format!("cannot build the TLS context: {e}");
        let mut b = SslContextBuilder::new(SslMethod::tls_client()).map_err(e)?;
        let opts = (SslOptions::ALL
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_SSLV2
            | SslOptions::NO_SSLV3
            | SslOptions::SINGLE_DH_USE
            | SslOptions::SINGLE_ECDH_USE)
            & !SslOptions::DONT_INSERT_EMPTY_FRAGMENTS;
        b.set_options(opts);
        b.set_mode(
            SslMode::AUTO_RETRY
                | SslMode::ACCEPT_MOVING_WRITE_BUFFER
                | SslMode::ENABLE_PARTIAL_WRITE
                | SslMode::RELEASE_BUFFERS,
        );
        b.set_cipher_list(CIPHERS).map_err(e)?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(e)?;
        if insecure {
            b.set_verify(SslVerifyMode::NONE);
            return Ok(TlsSetting {
                ctx: b.build(),
                insecure,
            });
        }
        b.set_verify(SslVerifyMode::PEER);
        let extra = match ca_pem {
            Some(pem) => {
                let certs = X509::stack_from_pem(pem.as_bytes())
                    .map_err(|e| format!("spec.metadata.ca: {e}"))?;
                if certs.is_empty() {
                    return Err("spec.metadata.ca: no PEM certificate".into());
                }
                certs
            }
            None => Vec::new(),
        };
        let roots = system_roots();
        for dir in &roots.dirs {
            if let Err(err) = b.load_verify_locations(None, Some(dir)) {
                tracing::debug!(dir = %dir.display(), error = %err, "cannot add a CA directory");
            }
        }
        let store = b.cert_store_mut();
        for cert in roots.bundle.iter().chain(&extra) {
            // A duplicate is refused by some OpenSSL versions; the first copy stays.
            if let Err(err) = store.add_cert(cert.clone()) {
                tracing::debug!(error = %err, "cannot add a CA certificate");
            }
        }
        Ok(TlsSetting {
            ctx: b.build(),
            insecure,
        })
    }

    /// A session for `host` (a DNS name or an IP address, without brackets): SNI for DNS
    /// names, and the certificate checked against the name or address unless insecure.
    pub(crate) fn session(&self, host: &str) -> Result<Ssl, openssl::error::ErrorStack> {
        let mut ssl = Ssl::new(&self.ctx)?;
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() {
            ssl.set_hostname(host)?;
        }
        if !self.insecure {
            let param = ssl.param_mut();
            param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
            match ip {
                Some(ip) => param.set_ip(ip)?,
                None => param.set_host(host)?,
            }
        }
        Ok(ssl)
    }
}

// ---------------------------------------------------------------------------------------------
// Server acceptors

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
    fn hash_links_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca-certificates.crt"), "").unwrap();
        std::fs::write(dir.path().join("README.0"), "").unwrap();
        assert!(!has_hash_links(dir.path()));
        let bundle = dir.path().join("ca-certificates.crt");
        let canonical = dir.path().canonicalize().unwrap();
        std::fs::write(dir.path().join("0123abcd.0"), "").unwrap();
        assert!(has_hash_links(dir.path()));
        assert!(beside_hash_links(&bundle, std::slice::from_ref(&canonical)));
        assert!(!beside_hash_links(&bundle, &[]));
        let custom = dir.path().join("custom.pem");
        std::fs::write(&custom, "").unwrap();
        assert!(!beside_hash_links(
            &custom,
            std::slice::from_ref(&canonical)
        ));
        assert!(!has_hash_links(&dir.path().join("missing")));
    }

    #[test]
    fn a_ca_without_a_certificate_is_refused() {
        for bad in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let e = TlsSetting::new(Some(bad), false).err().unwrap();
            assert!(e.starts_with("spec.metadata.ca: "), "{e}");
        }
        assert!(TlsSetting::new(None, true).is_ok());
    }

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
