//! `istio-hooks check` through the binary against a fake metadata exporter: real TLS on
//! 127.0.0.1 (a test CA and a leaf made with openssl), real Ed25519 JWTs checked with
//! `domain::jwt::authenticate_with_keys`. Healthy peer, wrong CA, expired root, refused private access,
//! foreign hostnames, multicluster, unreachable / hanging / oversized peers, bad URLs.

use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::domain::metadata::{PublicMetadata, RemotePublicMetadata};
use istio_hooks::domain::pki;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_istio-hooks");
const OUR_UUID: &str = "cluster-a-uuid";
const PEER_UUID: &str = "cluster-b-uuid";
const PEER_DOMAIN: &str = "cluster-b.local";

/// What the fake exporter serves.
#[derive(Clone)]
struct Peer {
    public: Vec<u8>,
    federation: Value,
    multicluster: Value,
    known: RemotePublicMetadata,
    peer_public_key: String,
    /// Accept connections but never answer.
    hang: bool,
    /// Served instead of the bundle derived from `public`.
    spiffe: Option<Vec<u8>>,
    /// Served by both private endpoints instead of the authenticated documents.
    private_answer: Option<(u16, Vec<u8>)>,
    /// Status of `/version` (the api-proxy) instead of the authenticated 200.
    api_status: Option<u16>,
}

/// Test PKI: the ingress CA (what `--ca` should be) with a leaf for 127.0.0.1/localhost.
struct Tls {
    ca_pem: String,
    leaf: X509,
    leaf_key: PKey<openssl::pkey::Private>,
}

fn tls() -> Tls {
    let (ca_pem, ca_key_pem) =
        pki::generate_self_signed_ca("ingress-ca", pki::Validity::days(365), true).unwrap();
    let ca = X509::from_pem(ca_pem.as_bytes()).unwrap();
    let ca_key = PKey::private_key_from_pem(ca_key_pem.as_bytes()).unwrap();
    let leaf_key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&leaf_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(Some(&ca), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    Tls {
        ca_pem,
        leaf: b.build(),
        leaf_key,
    }
}

/// A peer publishing `PEER_UUID` with a valid mesh root and a federation document under
/// `.svc.cluster-b.local`, knowing our key (`our_pub`).
fn healthy_peer(our_pub: &str) -> Peer {
    let (mesh_root, _) =
        pki::generate_self_signed_ca("mesh-root-b", pki::Validity::days(3650), true).unwrap();
    let (_, peer_pub) = pki::generate_ed25519_keypair().unwrap();
    let peer_pub = peer_pub.replace("PUBLIC KEY", "ED25519 PUBLIC KEY");
    let public = json!({"clusterUUID": PEER_UUID, "authnKeyPub": peer_pub, "rootCA": mesh_root});
    let mut known = RemotePublicMetadata::new();
    known.insert(
        OUR_UUID.into(),
        PublicMetadata {
            cluster_uuid: OUR_UUID.into(),
            authn_key_pub: our_pub.into(),
            root_ca: String::new(),
        },
    );
    Peer {
        public: serde_json::to_vec(&public).unwrap(),
        federation: json!({
            "ingressGateways": [{"address": "10.0.0.1", "port": 15443}],
            "publicServices": [{"hostname": format!("bar.xyz.svc.{PEER_DOMAIN}"), "ports": [{"name": "http", "port": 8080}, {"name": "grpc-api", "port": 9090}]}]
        }),
        multicluster: json!({
            "ingressGateways": [{"address": "gw.b.example.com", "port": 15443}],
            "apiHost": "istio-api-proxy.b.example.com",
            "networkName": "network-cluster-b-local-1",
            "clusterID": "cluster-b-local-1"
        }),
        known,
        peer_public_key: peer_pub,
        hang: false,
        spiffe: None,
        private_answer: None,
        api_status: None,
    }
}

fn respond(status: u16, body: Vec<u8>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap()
}

/// The SPIFFE bundle of the published root (as a Deckhouse exporter serves it: `x5c` is the
/// standard-base64 DER); `AAAA` when the public document has no parseable root.
fn spiffe_bundle(public: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let x5c = serde_json::from_slice::<Value>(public)
        .ok()
        .and_then(|v| v["rootCA"].as_str().map(str::to_owned))
        .and_then(|pem| X509::from_pem(pem.as_bytes()).ok())
        .and_then(|c| c.to_der().ok())
        .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
        .unwrap_or_else(|| "AAAA".into());
    serde_json::to_vec(&json!({
        "spiffe_sequence": 1,
        "spiffe_refresh_hint": 2419200,
        "keys": [{"kty": "RSA", "use": "x509-svid", "x5c": [x5c], "e": "AQAB", "n": "AAAA"}]
    }))
    .unwrap()
}

fn answer(
    peer: &Peer,
    req: &http::Request<hyper::body::Incoming>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let private = |scope: Scope, doc: &Value| {
        if let Some((status, body)) = &peer.private_answer {
            return respond(*status, body.clone());
        }
        match jwt::authenticate_with_keys(
            auth,
            PEER_UUID,
            scope,
            &jwt::PeerKeys::new(&peer.known),
            chrono::Utc::now(),
        ) {
            Ok(_) => respond(200, serde_json::to_vec(doc).unwrap()),
            Err(e) => respond(401, e.to_string().into_bytes()),
        }
    };
    match req.uri().path() {
        "/metadata/public/public.json" => respond(200, peer.public.clone()),
        "/metadata/public/spiffe-bundle-endpoint" => respond(
            200,
            peer.spiffe
                .clone()
                .unwrap_or_else(|| spiffe_bundle(&peer.public)),
        ),
        "/version" if peer.api_status.is_some() => {
            respond(peer.api_status.unwrap_or(500), b"unavailable".to_vec())
        }
        "/version" => {
            match jwt::authenticate_with_keys(
                auth,
                PEER_UUID,
                Scope::Api,
                &jwt::PeerKeys::new(&peer.known),
                chrono::Utc::now(),
            ) {
                Ok(_) => respond(200, br#"{"major":"1","minor":"31"}"#.to_vec()),
                Err(e) => respond(401, e.to_string().into_bytes()),
            }
        }
        "/metadata/private/federation.json" => private(Scope::PrivateFederation, &peer.federation),
        "/metadata/private/multicluster.json" => {
            private(Scope::PrivateMulticluster, &peer.multicluster)
        }
        _ => respond(404, b"not found".to_vec()),
    }
}

/// Starts the fake exporter on 127.0.0.1 over TLS; it lives until the test process exits.
fn serve(tls: &Tls, peer: Peer) -> SocketAddr {
    serve_with(tls, peer, |_, _| {})
}

/// Like [`serve`], adjusting the served documents once the address is known.
fn serve_with(tls: &Tls, mut peer: Peer, adjust: impl FnOnce(&mut Peer, SocketAddr)) -> SocketAddr {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor.set_certificate(&tls.leaf).unwrap();
    acceptor.set_private_key(&tls.leaf_key).unwrap();
    let acceptor = Arc::new(acceptor.build());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    adjust(&mut peer, addr);
    let peer = Arc::new(peer);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let peer = peer.clone();
                tokio::spawn(async move {
                    if peer.hang {
                        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        drop(tcp);
                        return;
                    }
                    let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                    if std::pin::Pin::new(&mut stream).accept().await.is_err() {
                        return;
                    }
                    let svc = hyper::service::service_fn(move |req| {
                        let resp = answer(&peer, &req);
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

/// Files the CLI reads, in a temp dir kept alive by the caller.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn check(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(BIN).arg("check").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json_check(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = check(&all);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

fn find<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A healthy setup: TLS material, our key and a peer that knows us.
struct Setup {
    files: Files,
    tls: Tls,
    peer: Peer,
    key_path: PathBuf,
    ca_path: PathBuf,
}

fn setup() -> Setup {
    let files = Files::new();
    let tls = tls();
    let (our_priv, our_pub) = pki::generate_ed25519_keypair().unwrap();
    let key_path = files.write(
        "key.pem",
        &our_priv.replace("PRIVATE KEY", "ED25519 PRIVATE KEY"),
    );
    let ca_path = files.write("ca.pem", &tls.ca_pem);
    let peer = healthy_peer(&our_pub);
    Setup {
        files,
        tls,
        peer,
        key_path,
        ca_path,
    }
}

fn endpoint(addr: SocketAddr) -> String {
    format!("https://{addr}/metadata/")
}

fn full_args<'a>(s: &'a Setup, ep: &'a str) -> Vec<&'a str> {
    vec![
        ep,
        "--ca",
        s.ca_path.to_str().unwrap(),
        "--trust-domain",
        PEER_DOMAIN,
        "--private-key",
        s.key_path.to_str().unwrap(),
        "--cluster-uuid",
        OUR_UUID,
    ]
}

#[test]
fn healthy_peer_passes_in_text_and_json() {
    let s = setup();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let args = full_args(&s, &ep);

    let (code, v) = json_check(&args);
    assert_eq!(code, 0, "{v:#}");
    for (name, status) in statuses(&v) {
        assert_eq!(status, "pass", "{name}: {v:#}");
    }
    for name in [
        "endpoint URL",
        "CA file",
        "public metadata reachable",
        "public metadata valid",
        "authn key is Ed25519",
        "root CA #0",
        "spiffe bundle endpoint",
        "token",
        "private metadata access",
        "private metadata valid",
        "ingress gateways",
    ] {
        find(&v, name);
    }
    assert_eq!(v["endpoint"], ep);
    assert_eq!(v["publicMetadata"]["clusterUUID"], PEER_UUID);
    assert_eq!(
        v["privateMetadata"]["publicServices"][0]["hostname"],
        format!("bar.xyz.svc.{PEER_DOMAIN}")
    );
    assert_eq!(
        v["privateMetadata"]["publicServices"][0]["ports"][1]["protocol"],
        "HTTP2"
    );
    assert_eq!(v["dropped"], json!([]));
    assert!(find(&v, "spiffe bundle endpoint")["message"]
        .as_str()
        .unwrap()
        .contains("1 matching the published rootCA"));
    let root = find(&v, "root CA #0")["message"].as_str().unwrap();
    assert!(
        root.contains("SHA-256 ") && root.contains("CN=mesh-root-b"),
        "{root}"
    );

    let (code, out, _) = check(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("✔ public metadata valid: clusterUUID cluster-b-uuid"),
        "{out}"
    );
    assert!(out.contains("gateway 10.0.0.1:15443"), "{out}");
    assert!(
        out.contains(
            "service bar.xyz.svc.cluster-b.local ports http/8080(HTTP), grpc-api/9090(HTTP2)"
        ),
        "{out}"
    );
    assert!(!out.contains('✘') && !out.contains('⚠'), "{out}");
    assert!(out.ends_with("0 warning(s), 0 failed\n"), "{out}");
}

#[test]
fn wrong_ca_fails_on_tls_with_a_hint() {
    let s = setup();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (other_ca, _) =
        pki::generate_self_signed_ca("someone-else", pki::Validity::days(365), true).unwrap();
    let other = s.files.write("other-ca.pem", &other_ca);
    let (code, v) = json_check(&[&ep, "--ca", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    let c = find(&v, "public metadata reachable");
    assert_eq!(c["status"], "fail");
    assert!(c["hint"].as_str().unwrap().contains("--ca"), "{c}");
    assert!(v.get("publicMetadata").is_none());

    // Without --ca the system roots do not know the test CA either; --insecure-skip-verify
    // gets through with a warning.
    let (code, _) = json_check(&[&ep]);
    assert_eq!(code, 1);
    let (code, v) = json_check(&[&ep, "--insecure-skip-verify"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(find(&v, "TLS verification")["status"], "warn");
}

/// `check` with extra environment variables, JSON report.
fn json_check_env(args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, Value) {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .args(["-o", "json"])
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (out.status.code().unwrap_or(-1), v)
}

/// Without `--ca` (no `spec.metadata.ca`) the system roots are used, wherever OpenSSL's
/// environment says they are: a bundle file (`SSL_CERT_FILE`, parsed once) or a hashed
/// directory (`SSL_CERT_DIR`, looked up lazily).
#[test]
fn system_roots_come_from_ssl_cert_file_or_a_hashed_ssl_cert_dir() {
    let s = setup();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let reachable = |env: &[(&str, &std::path::Path)]| {
        let (_, v) = json_check_env(&[&ep], env);
        find(&v, "public metadata reachable")["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let empty = tempfile::tempdir().unwrap();
    let (other_ca, _) =
        pki::generate_self_signed_ca("someone-else", pki::Validity::days(365), true).unwrap();
    let other = s.files.write("other-ca.pem", &other_ca);
    let hashed = tempfile::tempdir().unwrap();
    let ca = X509::from_pem(s.tls.ca_pem.as_bytes()).unwrap();
    std::fs::write(
        hashed
            .path()
            .join(format!("{:08x}.0", ca.subject_name_hash())),
        &s.tls.ca_pem,
    )
    .unwrap();

    // The test CA as the system bundle.
    let file_env = [
        ("SSL_CERT_FILE", s.ca_path.as_path()),
        ("SSL_CERT_DIR", empty.path()),
    ];
    assert_eq!(reachable(&file_env), "pass");
    // The test CA in a hashed directory, another CA as the bundle.
    let dir_env = [
        ("SSL_CERT_FILE", other.as_path()),
        ("SSL_CERT_DIR", hashed.path()),
    ];
    assert_eq!(reachable(&dir_env), "pass");
    // Neither: refused.
    let neither = [
        ("SSL_CERT_FILE", other.as_path()),
        ("SSL_CERT_DIR", empty.path()),
    ];
    assert_eq!(reachable(&neither), "fail");
}

#[test]
fn expired_root_fails() {
    let mut s = setup();
    let (old_root, _) =
        pki::generate_self_signed_ca("old-root", pki::Validity::expired(2), true).unwrap();
    let mut public: Value = serde_json::from_slice(&s.peer.public).unwrap();
    public["rootCA"] = Value::from(old_root);
    s.peer.public = serde_json::to_vec(&public).unwrap();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1, "{v:#}");
    let c = find(&v, "root CA #0");
    assert_eq!(c["status"], "fail");
    assert!(c["message"].as_str().unwrap().contains("expired"), "{c}");
    assert!(c.get("hint").is_some());
    // No token is minted for a peer whose public metadata the hooks would reject.
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "token"));
}

#[test]
fn root_expiring_soon_is_a_warning() {
    let mut s = setup();
    let (root, _) =
        pki::generate_self_signed_ca("short-root", pki::Validity::days(10), true).unwrap();
    let mut public: Value = serde_json::from_slice(&s.peer.public).unwrap();
    public["rootCA"] = Value::from(root);
    s.peer.public = serde_json::to_vec(&public).unwrap();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(find(&v, "root CA #0")["status"], "warn");
}

#[test]
fn private_access_refused_for_an_unknown_cluster() {
    let mut s = setup();
    s.peer.known.clear();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    let c = find(&v, "private metadata access");
    assert_eq!(c["status"], "fail");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 401: JWT is signed for unknown source cluster"),
        "{c}"
    );
    assert!(
        c["hint"].as_str().unwrap().contains("create the peer's CR"),
        "{c}"
    );
    assert!(v.get("privateMetadata").is_none());

    let (code, out, _) = check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    assert!(out.contains("✘ private metadata access"), "{out}");
    assert!(
        out.contains("    hint: the peer does not know this cluster yet"),
        "{out}"
    );
}

#[test]
fn private_access_refused_for_a_wrong_key() {
    let mut s = setup();
    let (_, stranger_pub) = pki::generate_ed25519_keypair().unwrap();
    if let Some(p) = s.peer.known.get_mut(OUR_UUID) {
        p.authn_key_pub = stranger_pub;
    }
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    let c = find(&v, "private metadata access");
    assert!(
        c["hint"].as_str().unwrap().contains("different public key"),
        "{c}"
    );
}

#[test]
fn foreign_hostnames_are_listed_as_dropped() {
    let mut s = setup();
    s.peer.federation["publicServices"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"hostname": "kubernetes.default.svc.cluster.local", "ports": [{"name": "https", "port": 443}]}),
            json!({"hostname": "evil.svc.cluster-b.local.attacker.io", "ports": [{"name": "http", "port": 80}]}),
        ]);
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(find(&v, "dropped by validation")["status"], "warn");
    let dropped = v["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 2, "{v:#}");
    assert!(dropped.iter().all(|d| d["reason"] == "ForeignHostname"));
    assert!(dropped[0]["detail"]
        .as_str()
        .unwrap()
        .contains("kubernetes.default.svc.cluster.local"));
    assert_eq!(
        v["privateMetadata"]["publicServices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (_, out, _) = check(&full_args(&s, &ep));
    assert!(out.contains("Dropped by validation:\n  - ForeignHostname: service kubernetes.default.svc.cluster.local"), "{out}");
}

#[test]
fn without_trust_domain_hostnames_are_not_validated() {
    let s = setup();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let args = [
        ep.as_str(),
        "--ca",
        s.ca_path.to_str().unwrap(),
        "--private-key",
        s.key_path.to_str().unwrap(),
        "--cluster-uuid",
        OUR_UUID,
    ];
    let (code, v) = json_check(&args);
    assert_eq!(code, 0, "{v:#}");
    let c = find(&v, "private metadata valid");
    assert_eq!(c["status"], "warn");
    assert!(c["hint"].as_str().unwrap().contains("--trust-domain"));
    assert_eq!(v["dropped"], json!([]));
    let (code, out, _) = check(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("  service bar.xyz.svc.cluster-b.local (hostname not validated)"),
        "{out}"
    );
}

/// Serves the peer with its api-proxy on the same listener: `apiHost` = `localhost:<port>`.
fn serve_multicluster(s: &Setup, peer: Peer) -> String {
    let addr = serve_with(&s.tls, peer, |p, addr| {
        p.multicluster["apiHost"] = Value::from(format!("localhost:{}", addr.port()));
    });
    endpoint(addr)
}

#[test]
fn multicluster_document_and_api_proxy_are_checked() {
    let s = setup();
    let ep = serve_multicluster(&s, s.peer.clone());
    let mut args = full_args(&s, &ep);
    args.extend(["--kind", "multicluster"]);
    let (code, v) = json_check(&args);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["privateMetadata"]["apiHost"]
        .as_str()
        .unwrap()
        .starts_with("localhost:"));
    assert!(find(&v, "token")["message"]
        .as_str()
        .unwrap()
        .contains("private-multicluster"));
    assert_eq!(find(&v, "remote API (api-proxy)")["status"], "pass");
    let (_, out, _) = check(&args);
    assert!(
        out.contains("  networkName network-cluster-b-local-1"),
        "{out}"
    );

    // An api-proxy that answers 503, and one that is not there.
    let mut peer = s.peer.clone();
    peer.api_status = Some(503);
    let ep = serve_multicluster(&s, peer);
    let mut args = full_args(&s, &ep);
    args.extend(["--kind", "multicluster"]);
    let (code, v) = json_check(&args);
    assert_eq!(code, 1);
    let c = find(&v, "remote API (api-proxy)");
    assert!(
        c["hint"].as_str().unwrap().contains("RemoteAPIBadResponse"),
        "{c}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut peer = s.peer.clone();
    peer.multicluster["apiHost"] = Value::from(format!("localhost:{}", closed.port()));
    let ep = endpoint(serve(&s.tls, peer));
    let mut args = full_args(&s, &ep);
    args.extend(["--kind", "multicluster", "--timeout", "2s"]);
    let (code, v) = json_check(&args);
    assert_eq!(code, 1);
    let c = find(&v, "remote API (api-proxy)");
    assert!(
        c["hint"].as_str().unwrap().contains("RemoteAPIUnreachable"),
        "{c}"
    );
}

#[test]
fn invalid_public_metadata_fails() {
    let mut s = setup();
    s.peer.public = serde_json::to_vec(
        &json!({"clusterUUID": "a b", "authnKeyPub": s.peer.peer_public_key, "rootCA": "x"}),
    )
    .unwrap();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    assert_eq!(find(&v, "public metadata valid")["status"], "fail");

    s.peer.public = b"<html>hello</html>".to_vec();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    let c = find(&v, "public metadata valid");
    assert!(c["hint"].as_str().unwrap().contains("InvalidJSON"), "{c}");
}

#[test]
fn oversized_answer_is_refused() {
    let mut s = setup();
    s.peer.public = vec![b' '; 2 * 1024 * 1024];
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    let c = find(&v, "public metadata reachable");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576"),
        "{c}"
    );
}

#[test]
fn unreachable_and_hanging_peers_fail() {
    let s = setup();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let ep = endpoint(closed);
    let (code, v) = json_check(&[&ep, "--ca", s.ca_path.to_str().unwrap(), "--timeout", "2s"]);
    assert_eq!(code, 1);
    let c = find(&v, "public metadata reachable");
    assert!(c["hint"].as_str().unwrap().contains("unreachable"), "{c}");

    let mut peer = s.peer.clone();
    peer.hang = true;
    let ep = endpoint(serve(&s.tls, peer));
    let (code, v) = json_check(&[&ep, "--ca", s.ca_path.to_str().unwrap(), "--timeout", "1s"]);
    assert_eq!(code, 1);
    let c = find(&v, "public metadata reachable");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("no complete response within"),
        "{c}"
    );
    // Not asked twice: no second deadline for the SPIFFE bundle.
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "spiffe bundle endpoint"));
}

#[test]
fn malformed_endpoints_fail_without_network() {
    for ep in [
        "not a url",
        "ftp://x.example.com/metadata",
        "http://x.example.com/metadata",
        "https://",
    ] {
        let (code, v) = json_check(&[ep]);
        assert_eq!(code, 1, "{ep}");
        assert_eq!(find(&v, "endpoint URL")["status"], "fail", "{ep}");
    }
    let (code, _, err) = check(&["https://x.example.com/metadata", "--private-key", "k"]);
    assert_ne!(code, 0);
    assert!(err.contains("--cluster-uuid"), "{err}");
}

#[test]
fn spiffe_bundle_problems_are_warnings() {
    let mut s = setup();
    let (other_root, _) =
        pki::generate_self_signed_ca("other-root", pki::Validity::days(365), true).unwrap();
    s.peer.spiffe = Some(spiffe_bundle(
        &serde_json::to_vec(&json!({"rootCA": other_root})).unwrap(),
    ));
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 0, "{v:#}");
    let c = find(&v, "spiffe bundle endpoint");
    assert_eq!(c["status"], "warn");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("none of the bundle"),
        "{c}"
    );

    s.peer.spiffe = Some(b"{\"keys\": []}".to_vec());
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(find(&v, "spiffe bundle endpoint")["status"], "warn");
}

#[test]
fn hostile_private_answers_fail_cleanly() {
    let mut s = setup();
    let mut body = b"\x1b[2J\x1b]0;owned\x07".to_vec();
    body.extend(std::iter::repeat_n(b'x', 10_000));
    s.peer.private_answer = Some((401, body));
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, out, _) = check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    let line = out
        .lines()
        .find(|l| l.starts_with("✘ private metadata access"))
        .unwrap();
    assert!(line.chars().count() < 400, "{line}");

    for (doc, hint) in [
        (b"<html>login</html>".to_vec(), "InvalidJSON"),
        (
            br#"{"ingressGateways": null, "publicServices": []}"#.to_vec(),
            "InvalidPrivateMetadata",
        ),
    ] {
        s.peer.private_answer = Some((200, doc));
        let ep = endpoint(serve(&s.tls, s.peer.clone()));
        let (code, v) = json_check(&full_args(&s, &ep));
        assert_eq!(code, 1);
        let c = find(&v, "private metadata valid");
        assert_eq!(c["status"], "fail");
        assert!(c["hint"].as_str().unwrap().contains(hint), "{c}");
    }

    s.peer.private_answer = Some((404, b"not found".to_vec()));
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let (code, v) = json_check(&full_args(&s, &ep));
    assert_eq!(code, 1);
    assert!(find(&v, "private metadata access")["hint"]
        .as_str()
        .unwrap()
        .contains("enable the feature"));
}

#[test]
fn private_key_can_come_from_stdin_and_bad_keys_fail() {
    use std::io::Write;
    let s = setup();
    let ep = endpoint(serve(&s.tls, s.peer.clone()));
    let key = std::fs::read_to_string(&s.key_path).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "check",
            &ep,
            "--ca",
            s.ca_path.to_str().unwrap(),
            "--trust-domain",
            PEER_DOMAIN,
            "--private-key",
            "/dev/stdin",
            "--cluster-uuid",
            OUR_UUID,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(key.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("✔ private metadata access"), "{text}");

    let (_, rsa_key) = pki::generate_self_signed_ca("x", pki::Validity::days(1), true).unwrap();
    let bad = s.files.write("rsa.pem", &rsa_key);
    let mut args = full_args(&s, &ep);
    args[6] = bad.to_str().unwrap();
    let (code, v) = json_check(&args);
    assert_eq!(code, 1);
    let c = find(&v, "token");
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("TokenGenerationFailed"),
        "{c}"
    );
}
