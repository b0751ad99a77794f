//! `fetch-remote-metadata` against real HTTPS peers on 127.0.0.1: a test CA and server
//! certificate made with openssl, one TLS listener routing `/<peer>/metadata/...` to a per-peer
//! behaviour (correct, 500, bad JSON, wrong shape, 50 MB bodies, a handler that never answers, a
//! slow drip), a TCP listener that accepts and never speaks TLS, and a peer configured with the
//! wrong CA. The hook runs through `runtime::execute` with the real `HttpsClient`.
//!
//! Assertions are structural, never timing thresholds: the concurrency test holds every healthy
//! peer's answer until all peers' requests (including the hanging one's) are in flight at once,
//! which a serializing hook could never achieve. Elapsed times are printed only.
//! `cargo test --test fetch_sockets -- --ignored --nocapture` runs the 50-peer benchmark.
//! One test polls the real metadata-exporter (`servers::exporter::spawn`, HTTPS) twice to show
//! conditional requests end in 304s that leave the cache untouched.

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use istio_hooks::domain::jwt;
use istio_hooks::domain::pki;
use istio_hooks::net::{GetFuture, HttpGet, HttpsClient, Request};
use istio_hooks::runtime::{binding, execute, Outcome};
use istio_hooks::servers::exporter;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const HUGE: u64 = 50 * 1024 * 1024;

/// The socket tests run one at a time: they share two CPU cores with everything else, and a
/// 1 s deadline is meant for the peers, not for a neighbouring test's handshakes.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
const LOCAL_UUID: &str = "local-cluster-uuid";

// ---------------------------------------------------------------------------------------------
// PKI

struct TestCa {
    cert: X509,
    key: PKey<Private>,
    pem: String,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn cert_builder(cn: &str, key: &PKey<Private>) -> openssl::x509::X509Builder {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    let now = Utc::now().timestamp();
    b.set_not_before(&Asn1Time::from_unix(now - 3600).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(3650).unwrap())
        .unwrap();
    b
}

fn test_ca(cn: &str) -> TestCa {
    let key = ec_key();
    let mut b = cert_builder(cn, &key);
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let pem = String::from_utf8(cert.to_pem().unwrap()).unwrap();
    TestCa { cert, key, pem }
}

/// A certificate builder for a TLS server leaf: not a CA, digital signature, server auth.
fn leaf_builder(cn: &str, key: &PKey<Private>) -> openssl::x509::X509Builder {
    let mut b = cert_builder(cn, key);
    b.append_extension(BasicConstraints::new().critical().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    b
}

/// A server certificate for 127.0.0.1 and localhost, issued by `ca`.
fn server_cert(ca: &TestCa) -> (X509, PKey<Private>) {
    let key = ec_key();
    let mut b = leaf_builder("127.0.0.1", &key);
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(&ca.cert), None))
        .unwrap();
    b.append_extension(san).unwrap();
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(&ca.cert), None))
        .unwrap();
    b.append_extension(aki).unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn acceptor(ca: &TestCa) -> Arc<SslAcceptor> {
    Arc::new(owned_acceptor(ca))
}

fn owned_acceptor(ca: &TestCa) -> SslAcceptor {
    let (cert, key) = server_cert(ca);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_private_key(&key).unwrap();
    b.set_certificate(&cert).unwrap();
    b.check_private_key().unwrap();
    b.build()
}

// ---------------------------------------------------------------------------------------------
// Peers

/// What one peer does when asked for its public (or private) document.
#[derive(Clone)]
enum Behaviour {
    Correct,
    PublicStatus(u16),
    PublicBody(&'static str),
    /// 50 MB announced with Content-Length.
    PublicHugeWithLength,
    /// 50 MB, chunked, counted as produced.
    PublicHugeChunked,
    /// Reads the request, never answers.
    PublicHang,
    /// The correct document, one byte per 100 ms.
    PublicDrip,
    PrivateStatus(u16),
    PrivateBody(&'static str),
}

struct PeerDef {
    public: String,
    private: String,
    behaviour: Behaviour,
}

/// Holds every healthy public answer until `target` public requests have arrived.
struct Barrier {
    arrived: AtomicUsize,
    target: usize,
}

#[derive(Default)]
struct State {
    peers: HashMap<String, PeerDef>,
    /// `(path, Authorization)` of every request that carried one.
    auth: Mutex<Vec<(String, String)>>,
    huge_produced: AtomicU64,
    barrier: Option<Barrier>,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(status: u16, body: impl Into<Bytes>) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r
}

fn streamed(
    content_length: Option<u64>,
    stream: impl futures_util::Stream<Item = Bytes> + Send + 'static,
) -> hyper::Response<Body> {
    use futures_util::StreamExt;
    let body = StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let mut r = hyper::Response::new(body.boxed_unsync());
    if let Some(n) = content_length {
        r.headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, n.into());
    }
    r
}

fn huge(state: Arc<State>, content_length: Option<u64>) -> hyper::Response<Body> {
    const CHUNK: usize = 64 * 1024;
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let s = futures_util::stream::unfold(0u64, move |sent| {
        let (state, chunk) = (state.clone(), chunk.clone());
        async move {
            if sent >= HUGE {
                return None;
            }
            state
                .huge_produced
                .fetch_add(CHUNK as u64, Ordering::SeqCst);
            Some((chunk, sent + CHUNK as u64))
        }
    });
    streamed(content_length, s)
}

fn drip(doc: String) -> hyper::Response<Body> {
    let bytes = Bytes::from(doc);
    let len = bytes.len() as u64;
    let s = futures_util::stream::unfold(0usize, move |i| {
        let bytes = bytes.clone();
        async move {
            if i >= bytes.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((bytes.slice(i..i + 1), i + 1))
        }
    });
    streamed(Some(len), s)
}

async fn wait_for_barrier(state: &State) {
    let Some(b) = &state.barrier else { return };
    b.arrived.fetch_add(1, Ordering::SeqCst);
    let give_up = Instant::now() + Duration::from_secs(20);
    while b.arrived.load(Ordering::SeqCst) < b.target && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn handle(
    state: Arc<State>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if let Some(auth) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        state
            .auth
            .lock()
            .unwrap()
            .push((path.clone(), auth.to_owned()));
    }
    if path == "/version" {
        return Ok(full(200, r#"{"major":"1","minor":"31"}"#));
    }
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (Some(name), Some(rest)) = (parts.next(), parts.next()) else {
        return Ok(full(404, "no such path"));
    };
    let Some(peer) = state.peers.get(name) else {
        return Ok(full(404, "no such peer"));
    };
    let public = rest == "metadata/public/public.json";
    let private = rest.starts_with("metadata/private/");
    if public {
        wait_for_barrier(&state).await;
    }
    Ok(match (&peer.behaviour, public, private) {
        (Behaviour::PublicStatus(code), true, _) => full(*code, "oops"),
        (Behaviour::PublicBody(body), true, _) => full(200, *body),
        (Behaviour::PublicHugeWithLength, true, _) => huge(state.clone(), Some(HUGE)),
        (Behaviour::PublicHugeChunked, true, _) => huge(state.clone(), None),
        (Behaviour::PublicHang, true, _) => std::future::pending().await,
        (Behaviour::PublicDrip, true, _) => drip(peer.public.clone()),
        (_, true, _) => full(200, peer.public.clone()),
        (Behaviour::PrivateStatus(code), _, true) => full(*code, "oops"),
        (Behaviour::PrivateBody(body), _, true) => full(200, *body),
        (_, _, true) => full(200, peer.private.clone()),
        _ => full(404, "no such document"),
    })
}

async fn serve(listener: TcpListener, tls: Arc<SslAcceptor>, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (tls, state) = (tls.clone(), state.clone());
        tokio::spawn(async move {
            let Ok(ssl) = Ssl::new(tls.context()) else {
                return;
            };
            let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
                return;
            };
            if Pin::new(&mut stream).accept().await.is_err() {
                return;
            }
            let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Accepts TCP connections and never says a word.
async fn black_hole(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((tcp, _)) = listener.accept().await {
        held.push(tcp);
    }
}

/// The servers of one test, alive as long as this value.
struct Peers {
    rt: tokio::runtime::Runtime,
    state: Arc<State>,
    port: u16,
    hang_port: u16,
    ca: TestCa,
    local_pub: String,
    local_priv: String,
}

fn federation_private(trust_domain: &str) -> String {
    json!({
        "ingressGateways": [{"address": "10.0.0.1", "port": 15443}],
        "publicServices": [{"hostname": format!("web.ns.svc.{trust_domain}"), "ports": [{"name": "http", "port": 80}, {"name": "grpc-api", "port": 9090}]}],
    })
    .to_string()
}

impl Peers {
    /// Starts the servers; `api_port_peer` (a name) publishes `localhost:<port>` as its apiHost.
    fn start(defs: Vec<(&str, Behaviour)>, barrier: Option<usize>) -> Peers {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ca = test_ca("istio-hooks test peers CA");
        let (listener, hang) = rt.block_on(async {
            (
                TcpListener::bind("127.0.0.1:0").await.unwrap(),
                TcpListener::bind("127.0.0.1:0").await.unwrap(),
            )
        });
        let port = listener.local_addr().unwrap().port();
        let hang_port = hang.local_addr().unwrap().port();
        let mut peers = HashMap::new();
        for (name, behaviour) in defs {
            let uuid = format!("uuid-{name}");
            let (_, peer_pub) = pki::generate_ed25519_keypair().unwrap();
            let public =
                json!({"clusterUUID": uuid, "authnKeyPub": peer_pub, "rootCA": ca.pem}).to_string();
            let private = if name.starts_with("mc-") {
                json!({"ingressGateways": [{"address": "10.0.0.2", "port": 15443}], "apiHost": format!("localhost:{port}"), "networkName": format!("network-{name}")}).to_string()
            } else {
                federation_private(&format!("{name}.local"))
            };
            peers.insert(
                name.to_owned(),
                PeerDef {
                    public,
                    private,
                    behaviour,
                },
            );
        }
        let state = Arc::new(State {
            peers,
            barrier: barrier.map(|target| Barrier {
                arrived: AtomicUsize::new(0),
                target,
            }),
            ..State::default()
        });
        rt.spawn(serve(listener, acceptor(&ca), state.clone()));
        rt.spawn(black_hole(hang));
        let (local_priv, local_pub) = pki::generate_ed25519_keypair().unwrap();
        Peers {
            rt,
            state,
            port,
            hang_port,
            ca,
            local_pub,
            local_priv,
        }
    }

    fn endpoint(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}/metadata/", self.port)
    }

    fn uuid(&self, name: &str) -> String {
        format!("uuid-{name}")
    }

    /// The CR projection of a peer with a prior good cache and a prior condition of another type.
    fn cr(&self, name: &str, endpoint: &str, ca_pem: &str, multicluster: bool) -> Value {
        self.cr_with(name, endpoint, json!({"ca": ca_pem}), multicluster)
    }

    /// Like [`Peers::cr`] with an explicit `spec.metadata` (TLS settings).
    fn cr_with(&self, name: &str, endpoint: &str, metadata: Value, multicluster: bool) -> Value {
        let mut spec = json!({"metadataEndpoint": endpoint, "metadata": metadata});
        if !multicluster {
            spec["trustDomain"] = json!(format!("{name}.local"));
        }
        json!({
            "metadata": {"name": name},
            "spec": spec,
            "status": {
                "metadataCache": {
                    "public": {"clusterUUID": self.uuid(name), "authnKeyPub": "previous", "rootCA": "previous"},
                    "private": {"ingressGateways": [], "publicServices": []},
                    "publicLastFetchTimestamp": "2026-01-01T00:00:00Z",
                },
                "conditions": [{"type": "DataplaneConnectionReady", "status": "True", "reason": "Connected", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "lastProbeTime": "2026-01-01T00:00:00Z"}],
            },
        })
    }

    fn values(&self, timeout: &str) -> Value {
        json!({
            "global": {"discovery": {"clusterUUID": LOCAL_UUID, "clusterDomain": "local.cluster"}, "modules": {"publicDomainTemplate": "%s.example.com"}},
            "istio": {
                "federation": {"enabled": true},
                "multicluster": {"enabled": true},
                "alliance": {"metadataFetch": {"timeout": timeout, "maxResponseBytes": 1_048_576}},
                "internal": {"remoteAuthnKeypair": {"pub": self.local_pub, "priv": self.local_priv}},
            },
        })
    }
}

/// Runs the hook the way the binary does: a Group binding context, the real HTTP client.
fn run_hook(
    values: &Value,
    federations: Vec<Value>,
    multiclusters: Vec<Value>,
) -> (Outcome, Duration) {
    let items = |v: Vec<Value>| {
        v.into_iter()
            .map(|o| json!({"filterResult": o}))
            .collect::<Vec<_>>()
    };
    let ctx = json!([{"binding": "main", "type": "Group", "groupName": "main", "snapshots": {
        "federations": items(federations), "multiclusters": items(multiclusters), "multiclouds": []}}]);
    let snapshots =
        binding::fold(binding::parse(&serde_json::to_vec(&ctx).unwrap(), "test").unwrap());
    let hook = istio_hooks::hooks::find("fetch-remote-metadata").unwrap();
    let started = Instant::now();
    let out = execute(
        hook,
        &snapshots,
        values,
        &json!({}),
        Utc::now(),
        &HttpsClient::default(),
    )
    .unwrap();
    (out, started.elapsed())
}

fn status<'a>(out: &'a Outcome, name: &str) -> &'a Value {
    let op = out
        .object_ops
        .iter()
        .find(|op| op.name() == name)
        .unwrap_or_else(|| panic!("no status patch for {name}"));
    &op.merge_patch().unwrap()["status"]
}

/// `(status, reason, message)` of condition `type_`.
fn cond(status: &Value, type_: &str) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} in {status}"));
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    (s("status"), s("reason"), s("message"))
}

fn assert_public_failed(out: &Outcome, name: &str, reason: &str, message_part: &str) {
    let st = status(out, name);
    let (s, r, m) = cond(st, "PublicMetadataExchangeReady");
    assert_eq!((s.as_str(), r.as_str()), ("False", reason), "{name}: {m}");
    assert!(
        m.contains(message_part),
        "{name}: {m:?} lacks {message_part:?}"
    );
    assert_eq!(
        cond(st, "PrivateMetadataExchangeReady").1,
        "AwaitingPublic",
        "{name}"
    );
    assert!(
        st.get("metadataCache").is_none(),
        "{name}: the previous cache must stay untouched: {st}"
    );
    let kept: Vec<_> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&"DataplaneConnectionReady"),
        "{name}: foreign condition lost"
    );
}

fn tokens_for(peers: &Peers, path_prefix: &str) -> Vec<String> {
    peers
        .state
        .auth
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with(path_prefix))
        .map(|(_, a)| a.strip_prefix("Bearer ").expect("Bearer scheme").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn hostile_peers_end_in_documented_conditions_and_keep_the_cache() {
    let _serial = serial();
    let peers = Peers::start(
        vec![
            ("correct", Behaviour::Correct),
            ("mc-correct", Behaviour::Correct),
            ("status-500", Behaviour::PublicStatus(500)),
            ("bad-json", Behaviour::PublicBody("{\"zzz")),
            (
                "wrong-shape",
                Behaviour::PublicBody(r#"{"wrong":"format"}"#),
            ),
            ("huge-length", Behaviour::PublicHugeWithLength),
            ("huge-chunked", Behaviour::PublicHugeChunked),
            ("hang-http", Behaviour::PublicHang),
            ("drip", Behaviour::PublicDrip),
            ("wrong-ca", Behaviour::Correct),
            ("insecure", Behaviour::Correct),
            ("system-roots-only", Behaviour::Correct),
            ("ca-wins-over-insecure", Behaviour::Correct),
            ("private-500", Behaviour::PrivateStatus(500)),
            ("private-bad-json", Behaviour::PrivateBody("[1,")),
            (
                "private-wrong-shape",
                Behaviour::PrivateBody(r#"{"ingressGateways":[]}"#),
            ),
        ],
        None,
    );
    let ca = peers.ca.pem.clone();
    let other_ca = test_ca("some other CA").pem;
    let fed = |name: &str| peers.cr(name, &peers.endpoint(name), &ca, false);
    let mut federations: Vec<Value> = [
        "bad-json",
        "correct",
        "drip",
        "hang-http",
        "huge-chunked",
        "huge-length",
        "private-500",
        "private-bad-json",
        "private-wrong-shape",
        "status-500",
        "wrong-shape",
    ]
    .iter()
    .map(|n| fed(n))
    .collect();
    federations.push(peers.cr(
        "hang-tcp",
        &format!("https://127.0.0.1:{}/metadata/", peers.hang_port),
        &ca,
        false,
    ));
    federations.push(peers.cr("wrong-ca", &peers.endpoint("wrong-ca"), &other_ca, false));
    let tls =
        |name: &str, metadata: Value| peers.cr_with(name, &peers.endpoint(name), metadata, false);
    federations.push(tls("insecure", json!({"insecureSkipVerify": true})));
    federations.push(tls("system-roots-only", json!({})));
    federations.push(tls(
        "ca-wins-over-insecure",
        json!({"ca": other_ca, "insecureSkipVerify": true}),
    ));
    let multiclusters = vec![peers.cr("mc-correct", &peers.endpoint("mc-correct"), &ca, true)];

    // Peers that never finish get a 1 s deadline; the rest a generous one, so that a loaded
    // machine never turns a healthy handshake into a false FetchFailed.
    let stalling = ["drip", "hang-http", "hang-tcp"];
    let (slow, fast): (Vec<Value>, Vec<Value>) = federations
        .into_iter()
        .partition(|f| stalling.contains(&f["metadata"]["name"].as_str().unwrap()));
    let (slow_out, elapsed) = run_hook(&peers.values("1s"), slow, vec![]);
    eprintln!(
        "stalling peers: {} in {elapsed:?}",
        slow_out.object_ops.len()
    );
    let (mut out, elapsed) = run_hook(&peers.values("20s"), fast, multiclusters);
    eprintln!(
        "other hostile peers: {} in {elapsed:?}",
        out.object_ops.len()
    );
    out.object_ops.extend(slow_out.object_ops);
    assert_eq!(out.object_ops.len(), 17);

    assert_public_failed(&out, "status-500", "NonOKResponse", "HTTP status 500");
    assert_public_failed(
        &out,
        "bad-json",
        "InvalidJSON",
        "cannot parse public metadata",
    );
    assert_public_failed(
        &out,
        "wrong-shape",
        "InvalidPublicMetadata",
        "clusterUUID must be a non-empty string",
    );
    assert_public_failed(
        &out,
        "huge-length",
        "ResponseTooLarge",
        "larger than 1048576 bytes",
    );
    assert_public_failed(
        &out,
        "huge-chunked",
        "ResponseTooLarge",
        "larger than 1048576 bytes",
    );
    assert_public_failed(
        &out,
        "hang-http",
        "FetchFailed",
        "no complete response within 1s",
    );
    assert_public_failed(&out, "hang-tcp", "FetchFailed", "");
    assert_public_failed(
        &out,
        "drip",
        "FetchFailed",
        "no complete response within 1s",
    );
    assert_public_failed(&out, "wrong-ca", "FetchFailed", "certificate verify failed");
    assert_public_failed(
        &out,
        "system-roots-only",
        "FetchFailed",
        "certificate verify failed",
    );
    assert_public_failed(
        &out,
        "ca-wins-over-insecure",
        "FetchFailed",
        "certificate verify failed",
    );
    let st = status(&out, "insecure");
    assert_eq!(
        cond(st, "PublicMetadataExchangeReady").1,
        "Succeeded",
        "{st}"
    );
    assert_eq!(
        cond(st, "PrivateMetadataExchangeReady").1,
        "Succeeded",
        "{st}"
    );
    let produced = peers.state.huge_produced.load(Ordering::SeqCst);
    eprintln!("chunked 50 MB peer produced {produced} bytes before the client hung up");
    assert!(
        produced < HUGE / 2,
        "the client read {produced} bytes of a 50 MB body"
    );

    for (name, reason) in [
        ("private-500", "NonOKResponse"),
        ("private-bad-json", "InvalidJSON"),
        ("private-wrong-shape", "InvalidPrivateMetadata"),
    ] {
        let st = status(&out, name);
        assert_eq!(
            cond(st, "PublicMetadataExchangeReady").1,
            "Succeeded",
            "{name}"
        );
        assert_eq!(cond(st, "PrivateMetadataExchangeReady").1, reason, "{name}");
        assert!(
            st["metadataCache"].get("private").is_none(),
            "{name}: private cache must stay: {st}"
        );
        assert!(
            st["metadataCache"]
                .get("privateLastFetchTimestamp")
                .is_none(),
            "{name}"
        );
        assert_eq!(
            st["metadataCache"]["public"]["clusterUUID"],
            peers.uuid(name).as_str()
        );
    }

    // The correct federation: both parts cached, ports carry protocols, the token verifies.
    let st = status(&out, "correct");
    assert_eq!(
        cond(st, "PublicMetadataExchangeReady"),
        (
            "True".into(),
            "Succeeded".into(),
            "Public metadata exchange succeeded.".into()
        )
    );
    assert_eq!(cond(st, "PrivateMetadataExchangeReady").1, "Succeeded");
    assert_eq!(
        st["metadataCache"]["public"],
        serde_json::from_str::<Value>(&peers.state.peers["correct"].public).unwrap()
    );
    assert_eq!(
        st["metadataCache"]["private"]["publicServices"][0]["ports"][1],
        json!({"name": "grpc-api", "port": 9090, "protocol": "HTTP2"})
    );
    let tokens = tokens_for(&peers, "/correct/metadata/private/federation.json");
    assert_eq!(tokens.len(), 1);
    let claims = jwt::verify_signature(&tokens[0], &peers.local_pub)
        .expect("token verifies with the hook's public key");
    assert_eq!(
        (claims.iss.as_str(), claims.sub.as_str()),
        ("d8-istio", LOCAL_UUID)
    );
    assert_eq!(claims.aud, peers.uuid("correct"));
    assert_eq!(claims.scope, "private-federation");
    assert_eq!(claims.exp - claims.nbf, 60);
    assert!(
        tokens_for(&peers, "/correct/metadata/public").is_empty(),
        "public requests carry no token"
    );

    // The correct multicluster peer: private token scope, and the API probe with an `api` token.
    let st = status(&out, "mc-correct");
    assert_eq!(cond(st, "PrivateMetadataExchangeReady").1, "Succeeded");
    assert_eq!(cond(st, "RemoteAPIServerReady").1, "RemoteAPIReachable");
    let tokens = tokens_for(&peers, "/mc-correct/metadata/private/multicluster.json");
    let claims = jwt::verify_signature(&tokens[0], &peers.local_pub).unwrap();
    assert_eq!(
        (claims.scope.as_str(), claims.aud.as_str()),
        ("private-multicluster", peers.uuid("mc-correct").as_str())
    );
    let probe = tokens_for(&peers, "/version");
    assert_eq!(probe.len(), 1);
    let claims = jwt::verify_signature(&probe[0], &peers.local_pub).unwrap();
    assert_eq!(
        (claims.scope.as_str(), claims.aud.as_str()),
        ("api", peers.uuid("mc-correct").as_str())
    );

    // Tokens for peers that failed before the private step were never minted or sent.
    assert!(tokens_for(&peers, "/status-500/").is_empty());
    drop(peers.rt);
}

#[test]
fn one_hanging_peer_does_not_serialize_fifty_healthy_ones() {
    let _serial = serial();
    const HEALTHY: usize = 50;
    let mut defs: Vec<(String, Behaviour)> = (0..HEALTHY)
        .map(|i| (format!("healthy-{i:02}"), Behaviour::Correct))
        .collect();
    defs.push(("hanging".into(), Behaviour::PublicHang));
    // Every healthy public answer waits until all 51 public requests are in flight at once.
    let peers = Peers::start(
        defs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect(),
        Some(HEALTHY + 1),
    );
    let ca = peers.ca.pem.clone();
    let feds: Vec<Value> = defs
        .iter()
        .map(|(n, _)| peers.cr(n, &peers.endpoint(n), &ca, false))
        .collect();

    let (out, elapsed) = run_hook(&peers.values("5s"), feds, vec![]);
    eprintln!("{HEALTHY} healthy peers + 1 hanging (deadline 5s): {elapsed:?}");
    let arrived = peers
        .state
        .barrier
        .as_ref()
        .unwrap()
        .arrived
        .load(Ordering::SeqCst);
    assert_eq!(
        arrived,
        HEALTHY + 1,
        "every public request was in flight simultaneously"
    );
    for (name, _) in defs.iter().take(HEALTHY) {
        let st = status(&out, name);
        assert_eq!(
            cond(st, "PublicMetadataExchangeReady").1,
            "Succeeded",
            "{name}"
        );
        assert_eq!(
            cond(st, "PrivateMetadataExchangeReady").1,
            "Succeeded",
            "{name}"
        );
    }
    assert_public_failed(
        &out,
        "hanging",
        "FetchFailed",
        "no complete response within 5s",
    );
}

/// `cargo test --test fetch_sockets -- --ignored --nocapture`: total time for 50 healthy peers
/// with one dead peer (accepts TCP, never answers) at the default 5 s deadline, and without it.
#[test]
#[ignore]
fn bench_fifty_peers_one_dead() {
    let _serial = serial();
    let defs: Vec<(String, Behaviour)> = (0..50)
        .map(|i| (format!("peer-{i:02}"), Behaviour::Correct))
        .collect();
    let peers = Peers::start(
        defs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect(),
        None,
    );
    let ca = peers.ca.pem.clone();
    let healthy: Vec<Value> = defs
        .iter()
        .map(|(n, _)| peers.cr(n, &peers.endpoint(n), &ca, false))
        .collect();
    let mut with_dead = healthy.clone();
    with_dead.push(peers.cr(
        "dead",
        &format!("https://127.0.0.1:{}/metadata/", peers.hang_port),
        &ca,
        false,
    ));
    for _ in 0..2 {
        let (out, t) = run_hook(&peers.values("5s"), healthy.clone(), vec![]);
        assert_eq!(out.object_ops.len(), 50);
        println!("50 healthy peers: {t:?}");
    }
    let (out, t) = run_hook(&peers.values("5s"), with_dead, vec![]);
    assert_eq!(
        cond(status(&out, "dead"), "PublicMetadataExchangeReady").1,
        "FetchFailed"
    );
    let ok = out
        .object_ops
        .iter()
        .filter(|op| op.merge_patch().unwrap()["status"]["conditions"][1]["reason"] == "Succeeded")
        .count();
    assert_eq!(ok, 50);
    println!("50 healthy peers + 1 dead (deadline 5s): {t:?}");
    // Every peer with its own `spec.metadata.ca` (the real CA plus a peer-specific one): 50
    // distinct TLS settings, so 50 HTTP clients are built during the run.
    let distinct: Vec<Value> = defs
        .iter()
        .map(|(n, _)| {
            let bundle = format!("{}{}", test_ca(&format!("extra {n}")).pem, ca);
            peers.cr(n, &peers.endpoint(n), &bundle, false)
        })
        .collect();
    let (out, t) = run_hook(&peers.values("5s"), distinct, vec![]);
    for op in &out.object_ops {
        let c = &op.merge_patch().unwrap()["status"]["conditions"];
        if c[1]["reason"] != "Succeeded" {
            println!("{}: {} / {}", op.name(), c[0]["message"], c[1]["message"]);
        }
    }
    let ok = out
        .object_ops
        .iter()
        .filter(|op| op.merge_patch().unwrap()["status"]["conditions"][1]["reason"] == "Succeeded")
        .count();
    assert_eq!(ok, 50);
    println!("50 healthy peers, 50 distinct CA bundles: {t:?}");
}

/// A caller that is itself async (a server, a test runtime) can run the hook: it moves its own
/// runtime to a helper thread instead of panicking on a nested `block_on`.
#[test]
fn runs_inside_an_async_caller() {
    let _serial = serial();
    let peers = Peers::start(vec![("correct", Behaviour::Correct)], None);
    let cr = peers.cr("correct", &peers.endpoint("correct"), &peers.ca.pem, false);
    let values = peers.values("5s");
    let (out, _) = peers
        .rt
        .block_on(async { run_hook(&values, vec![cr], vec![]) });
    assert_eq!(
        cond(status(&out, "correct"), "PrivateMetadataExchangeReady").1,
        "Succeeded"
    );
}

/// A self-signed leaf (no CA flag) for `sans` (IP addresses or DNS names), with its key.
fn self_signed_leaf(sans: &[&str]) -> (X509, PKey<Private>) {
    let key = ec_key();
    let mut b = leaf_builder("self-signed leaf", &key);
    let mut san = SubjectAlternativeName::new();
    for s in sans {
        if s.parse::<std::net::IpAddr>().is_ok() {
            san.ip(s);
        } else {
            san.dns(s);
        }
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Another TLS listener of `peers` (same routes), presenting `cert`; returns its port.
fn extra_listener(peers: &Peers, cert: &X509, key: &PKey<Private>) -> u16 {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_private_key(key).unwrap();
    b.set_certificate(cert).unwrap();
    let tls = Arc::new(b.build());
    let listener = peers.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    peers.rt.spawn(serve(listener, tls, peers.state.clone()));
    port
}

/// `spec.metadata.ca` may be the peer's own self-signed leaf certificate (OpenSSL and Go accept
/// it as a trust anchor); the name or address is still checked against it, over an IP address
/// and over a DNS name (SNI).
#[test]
fn a_self_signed_leaf_given_as_its_own_ca_is_trusted_for_its_names_only() {
    let _serial = serial();
    let peers = Peers::start(
        vec![
            ("leaf-ip", Behaviour::Correct),
            ("leaf-dns", Behaviour::Correct),
            ("leaf-other-name", Behaviour::Correct),
        ],
        None,
    );
    let (leaf, key) = self_signed_leaf(&["127.0.0.1", "localhost"]);
    let port = extra_listener(&peers, &leaf, &key);
    let (other, other_key) = self_signed_leaf(&["other.example"]);
    let other_port = extra_listener(&peers, &other, &other_key);
    let pem = |c: &X509| String::from_utf8(c.to_pem().unwrap()).unwrap();
    let feds = vec![
        peers.cr(
            "leaf-ip",
            &format!("https://127.0.0.1:{port}/leaf-ip/metadata/"),
            &pem(&leaf),
            false,
        ),
        peers.cr(
            "leaf-dns",
            &format!("https://localhost:{port}/leaf-dns/metadata/"),
            &pem(&leaf),
            false,
        ),
        peers.cr(
            "leaf-other-name",
            &format!("https://127.0.0.1:{other_port}/leaf-other-name/metadata/"),
            &pem(&other),
            false,
        ),
    ];
    let (out, _) = run_hook(&peers.values("10s"), feds, vec![]);
    for name in ["leaf-ip", "leaf-dns"] {
        let st = status(&out, name);
        for type_ in [
            "PublicMetadataExchangeReady",
            "PrivateMetadataExchangeReady",
        ] {
            assert_eq!(cond(st, type_).1, "Succeeded", "{name}: {st}");
        }
    }
    assert_public_failed(
        &out,
        "leaf-other-name",
        "FetchFailed",
        "(IP address mismatch)",
    );
}

/// `cargo test --release --test fetch_sockets bench_hundred_peers -- --ignored --nocapture`
/// (bench/fetch.sh): 100 healthy federation peers (public + private document each, over HTTPS),
/// then the same with 10 more peers that accept TCP and never answer, at a 2 s deadline. Prints
/// `BENCH` lines: total hook time, requests per second, ratio to the deadline.
#[test]
#[ignore]
fn bench_hundred_peers_ten_dead() {
    let deadline = Duration::from_secs(2);
    let defs: Vec<(String, Behaviour)> = (0..100)
        .map(|i| (format!("peer-{i:03}"), Behaviour::Correct))
        .collect();
    let peers = Peers::start(
        defs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect(),
        None,
    );
    let ca = peers.ca.pem.clone();
    let healthy: Vec<Value> = defs
        .iter()
        .map(|(n, _)| peers.cr(n, &peers.endpoint(n), &ca, false))
        .collect();
    let dead_endpoint = format!("https://127.0.0.1:{}/metadata/", peers.hang_port);
    let mut with_dead = healthy.clone();
    for i in 0..10 {
        with_dead.push(peers.cr(&format!("dead-{i}"), &dead_endpoint, &ca, false));
    }
    let values = peers.values("2s");
    let (_, warm) = run_hook(&values, healthy.clone(), vec![]);
    println!("BENCH warm-up 100 healthy: {warm:?}");
    let mut times = Vec::new();
    for _ in 0..3 {
        let (out, t) = run_hook(&values, healthy.clone(), vec![]);
        assert_eq!(out.object_ops.len(), 100);
        times.push(t);
    }
    times.sort();
    let median = times[1];
    // Each healthy peer costs two GETs (public, then private with a token).
    println!(
        "BENCH healthy peers=100 requests=200 median_s={:.3} req_per_s={:.0}",
        median.as_secs_f64(),
        200.0 / median.as_secs_f64()
    );
    let (out, t) = run_hook(&values, with_dead, vec![]);
    assert_eq!(out.object_ops.len(), 110);
    for i in 0..10 {
        assert_eq!(
            cond(
                status(&out, &format!("dead-{i}")),
                "PublicMetadataExchangeReady"
            )
            .1,
            "FetchFailed"
        );
    }
    println!(
        "BENCH dead peers=100+10 deadline_s={:.1} total_s={:.3} ratio={:.2}",
        deadline.as_secs_f64(),
        t.as_secs_f64(),
        t.as_secs_f64() / deadline.as_secs_f64()
    );
}

/// `cargo test --release --test fetch_sockets bench_hundred_peers -- --ignored --nocapture`
/// (bench/fetch.sh): 100 healthy federation peers, each with its OWN `spec.metadata.ca` (a CA of
/// its own followed by the listener's CA, so every peer is a distinct TLS setting, as with real
/// per-peer private CAs). Prints `BENCH` lines: warm-up and median hook time of 3 runs.
#[test]
#[ignore]
fn bench_hundred_peers_own_ca() {
    let defs: Vec<(String, Behaviour)> = (0..100)
        .map(|i| (format!("peer-{i:03}"), Behaviour::Correct))
        .collect();
    let peers = Peers::start(
        defs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect(),
        None,
    );
    let healthy: Vec<Value> = defs
        .iter()
        .map(|(n, _)| {
            let own = test_ca(&format!("{n} private CA"));
            let bundle = format!("{}{}", own.pem, peers.ca.pem);
            peers.cr(n, &peers.endpoint(n), &bundle, false)
        })
        .collect();
    let values = peers.values("2s");
    let (_, warm) = run_hook(&values, healthy.clone(), vec![]);
    println!("BENCH own-CA warm-up 100 healthy: {warm:?}");
    let mut times = Vec::new();
    for _ in 0..3 {
        let (out, t) = run_hook(&values, healthy.clone(), vec![]);
        assert_eq!(out.object_ops.len(), 100);
        for (n, _) in &defs {
            for type_ in [
                "PublicMetadataExchangeReady",
                "PrivateMetadataExchangeReady",
            ] {
                assert_eq!(cond(status(&out, n), type_).1, "Succeeded", "{n}");
            }
        }
        times.push(t);
    }
    times.sort();
    let median = times[1];
    println!(
        "BENCH own-CA healthy peers=100 distinct_ca=100 requests=200 median_s={:.3} req_per_s={:.0}",
        median.as_secs_f64(),
        200.0 / median.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Conditional requests against the real metadata-exporter

/// `(url, If-None-Match sent, status, body bytes)` of one answer.
type Seen = (String, Option<String>, u16, usize);

/// The real client, recording every answer.
#[derive(Default)]
struct Recording {
    inner: HttpsClient,
    seen: Mutex<Vec<Seen>>,
}

impl HttpGet for Recording {
    fn get(&self, req: Request) -> GetFuture<'_> {
        Box::pin(async move {
            let (url, tag) = (req.url.clone(), req.if_none_match.clone());
            let r = self.inner.get(req).await;
            if let Ok(resp) = &r {
                let row = (url, tag, resp.status, resp.body.len());
                self.seen.lock().unwrap().push(row);
            }
            r
        })
    }
}

impl Recording {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn exporter_local(uuid: &str, peer_pub: &str, ca: &str, services: usize) -> String {
    let services: Vec<Value> = (0..services)
        .map(|i| json!({"hostname": format!("svc-{i}.ns.svc.peer.local"), "ports": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}))
        .collect();
    json!({
        "public": {"clusterUUID": uuid, "authnKeyPub": peer_pub, "rootCA": ca},
        "federation": {"ingressGateways": [{"address": "10.0.0.1", "port": 15443}], "publicServices": services},
        "multicluster": {"ingressGateways": [{"address": "10.0.0.1", "port": 15443}], "apiHost": "127.0.0.1:1", "networkName": "network-peer"},
    })
    .to_string()
}

fn gauge(out: &Outcome, name: &str, peer: &str, part: &str) -> Option<f64> {
    out.metrics.as_ref()?.gauges.iter().find_map(|g| {
        (g.name == name && g.labels["name"] == peer && g.labels["part"] == part).then_some(g.value)
    })
}

/// Two polls of an unchanged real exporter: the first gets 200s and stores the ETags next to
/// the documents; the second sends them, gets 304s with empty bodies, and its status patch
/// carries only the refreshed timestamps and conditions (the cache is untouched). Then the
/// exporter's federation document changes: the third poll gets a 200 for it (new tag) and
/// still a 304 for the public document.
#[test]
fn second_poll_of_the_real_exporter_gets_304s_and_keeps_the_cache() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ca = test_ca("istio-hooks etag test CA");
    let (local_priv, local_pub) = pki::generate_ed25519_keypair().unwrap();
    let (_, peer_pub) = pki::generate_ed25519_keypair().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local_file = dir.path().join(exporter::LOCAL_FILE);
    std::fs::write(
        &local_file,
        exporter_local("peer-uuid", &peer_pub, &ca.pem, 20),
    )
    .unwrap();
    let remote = json!({LOCAL_UUID: {"clusterUUID": LOCAL_UUID, "authnKeyPub": local_pub, "rootCA": ca.pem}});
    std::fs::write(dir.path().join(exporter::REMOTE_FILE), remote.to_string()).unwrap();
    let mut config = exporter::Config::new(dir.path().to_owned());
    config.reload_interval = Duration::from_millis(50);
    config.tls = Some(owned_acceptor(&ca));
    let running = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        exporter::spawn(listener, config).unwrap()
    });
    let endpoint = format!("https://127.0.0.1:{}/metadata/", running.addr.port());
    let values = json!({
        "global": {"discovery": {"clusterUUID": LOCAL_UUID, "clusterDomain": "local.cluster"}, "modules": {"publicDomainTemplate": "%s.example.com"}},
        "istio": {"federation": {"enabled": true}, "multicluster": {"enabled": true},
                  "internal": {"remoteAuthnKeypair": {"pub": local_pub, "priv": local_priv}}},
    });
    let spec = |multi: bool| {
        let mut s = json!({"metadataEndpoint": endpoint, "metadata": {"ca": ca.pem}});
        if !multi {
            s["trustDomain"] = json!("peer.local");
        }
        s
    };
    let mut fed = json!({"metadata": {"name": "fed"}, "spec": spec(false), "status": {}});
    let mut mc = json!({"metadata": {"name": "mc"}, "spec": spec(true), "status": {}});
    let http = Recording::default();
    let hook = istio_hooks::hooks::find("fetch-remote-metadata").unwrap();
    let poll = |fed: &Value, mc: &Value| {
        let item = |o: &Value| json!([{"filterResult": o}]);
        let ctx = json!([{"binding": "main", "type": "Group", "groupName": "main", "snapshots": {
            "federations": item(fed), "multiclusters": item(mc), "multiclouds": []}}]);
        let snaps =
            binding::fold(binding::parse(&serde_json::to_vec(&ctx).unwrap(), "test").unwrap());
        let out = execute(hook, &snaps, &values, &json!({}), Utc::now(), &http).unwrap();
        (out, http.take())
    };
    // What the apiserver does with the hook's merge patches.
    let apply = |cr: &mut Value, out: &Outcome, name: &str| {
        let mut st = cr["status"].clone();
        json_patch::merge(&mut st, status(out, name));
        cr["status"] = st;
    };
    let metadata_requests = |seen: &[Seen]| {
        seen.iter()
            .filter(|(url, ..)| url.contains("/metadata/"))
            .map(|(url, tag, code, len)| {
                (
                    url.rsplit('/').next().unwrap().to_owned(),
                    tag.is_some(),
                    *code,
                    *len,
                )
            })
            .collect::<Vec<_>>()
    };

    // 1. Cold: 200s with bodies, ETags stored.
    let (out, seen) = poll(&fed, &mc);
    let cold = metadata_requests(&seen);
    assert_eq!(cold.len(), 4, "{cold:?}");
    assert!(
        cold.iter()
            .all(|(_, tag, code, len)| !tag && *code == 200 && *len > 0),
        "{cold:?}"
    );
    for name in ["fed", "mc"] {
        let cache = &status(&out, name)["metadataCache"];
        for key in ["publicETag", "privateETag"] {
            let tag = cache[key]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no {key} in {cache}"));
            assert!(
                tag.starts_with('"') && tag.ends_with('"') && tag.len() <= 130,
                "{tag}"
            );
        }
        assert_eq!(
            cond(status(&out, name), "PrivateMetadataExchangeReady").1,
            "Succeeded"
        );
    }
    apply(&mut fed, &out, "fed");
    apply(&mut mc, &out, "mc");
    let cached_fed = fed["status"]["metadataCache"].clone();

    // 2. Warm: every metadata request carries its tag and gets a bodiless 304; nothing but
    //    timestamps would change, and they are fresh: no status is written at all.
    let (out, seen) = poll(&fed, &mc);
    let warm = metadata_requests(&seen);
    assert_eq!(warm.len(), 4, "{warm:?}");
    assert!(
        warm.iter().all(|(_, tag, code, _)| *tag && *code == 304),
        "{warm:?}"
    );
    assert!(
        out.object_ops.is_empty(),
        "an unchanged poll writes no status: {:?}",
        out.object_ops
    );
    assert_eq!(
        gauge(
            &out,
            "d8_istio_alliance_metadata_not_modified",
            "fed",
            "private"
        ),
        Some(1.0)
    );

    // 2b. The same when the stored timestamps are five minutes old: they are refreshed (the
    //     heartbeat), and only they are written.
    let old = (Utc::now() - chrono::Duration::seconds(301))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for cr in [&mut fed, &mut mc] {
        for part in ["public", "private"] {
            cr["status"]["metadataCache"][format!("{part}LastFetchTimestamp")] = json!(old);
        }
        for c in cr["status"]["conditions"].as_array_mut().unwrap() {
            c["lastProbeTime"] = json!(old);
        }
    }
    let (out, seen) = poll(&fed, &mc);
    let warm = metadata_requests(&seen);
    assert_eq!(warm.len(), 4, "{warm:?}");
    assert!(
        warm.iter()
            .all(|(_, tag, code, len)| *tag && *code == 304 && *len == 0),
        "{warm:?}"
    );
    let bytes = |v: &[(String, bool, u16, usize)]| v.iter().map(|r| r.3).sum::<usize>();
    println!(
        "body bytes: cold poll {}, warm poll {}",
        bytes(&cold),
        bytes(&warm)
    );
    for name in ["fed", "mc"] {
        let st = status(&out, name);
        let keys: Vec<&str> = st["metadataCache"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["publicLastFetchTimestamp", "privateLastFetchTimestamp"],
            "{name}: {st}"
        );
        assert_eq!(cond(st, "PublicMetadataExchangeReady").1, "Succeeded");
        assert_eq!(cond(st, "PrivateMetadataExchangeReady").1, "Succeeded");
        for part in ["public", "private"] {
            assert_eq!(
                gauge(&out, "d8_istio_alliance_metadata_not_modified", name, part),
                Some(1.0)
            );
        }
    }
    apply(&mut fed, &out, "fed");
    apply(&mut mc, &out, "mc");
    for key in ["public", "private", "publicETag", "privateETag"] {
        assert_eq!(
            fed["status"]["metadataCache"][key], cached_fed[key],
            "{key}"
        );
    }

    // 3. The peer publishes one more service: its federation document comes back in full with
    //    a new tag; the public document is still not modified.
    std::fs::write(
        &local_file,
        exporter_local("peer-uuid", &peer_pub, &ca.pem, 21),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (out, seen) = poll(&fed, &mc);
    let after = metadata_requests(&seen);
    let code = |doc: &str| after.iter().find(|r| r.0 == doc).map(|r| r.2);
    assert_eq!(code("federation.json"), Some(200), "{after:?}");
    assert_eq!(code("multicluster.json"), Some(304), "{after:?}");
    assert!(
        after
            .iter()
            .filter(|r| r.0 == "public.json")
            .all(|r| r.2 == 304),
        "{after:?}"
    );
    let cache = &status(&out, "fed")["metadataCache"];
    assert_eq!(
        cache["private"]["publicServices"].as_array().unwrap().len(),
        21
    );
    assert_ne!(cache["privateETag"], cached_fed["privateETag"]);
    assert!(
        cache.get("public").is_none() && cache.get("publicETag").is_none(),
        "{cache}"
    );
    rt.block_on(running.shutdown());
}
