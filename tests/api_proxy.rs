//! api-proxy over real sockets on 127.0.0.1 with real TLS on both sides: a fake kube-apiserver
//! (test CA) that checks it only ever sees the proxy's own token, streaming of watches chunk by
//! chunk, read-only enforcement, token checks, token rotation and `/ready`.

mod common;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::{eventually, https_client, Identity, SecretDir};
use istio_hooks::domain::jwt::Scope;
use istio_hooks::domain::pki::{self, TestPki};
use istio_hooks::servers::api_proxy::{self, Config};
use istio_hooks::servers::serve::{self, Limits, Running};
use istio_hooks::tls;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OWN: &str = "cluster-a";
const PEER: &str = "cluster-b";
const CHUNKS: [&str; 3] = [
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\"}}}\n",
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\"}}}\n",
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p1\"}}}\n",
];

/// What the fake apiserver saw and how it behaves.
#[derive(Default)]
struct Upstream {
    healthy: AtomicBool,
    expected_token: Mutex<String>,
    /// Requests that arrived with anything but the expected token, or with forbidden headers.
    violations: Mutex<Vec<String>>,
    /// Paths and queries received.
    seen: Mutex<Vec<String>>,
    /// When each watch chunk was handed to the connection.
    sent_at: Mutex<Vec<Instant>>,
}

async fn fake_apiserver(State(u): State<Arc<Upstream>>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let expected = format!("Bearer {}", u.expected_token.lock().unwrap());
    if auth != expected {
        u.violations
            .lock()
            .unwrap()
            .push(format!("authorization {auth:?}"));
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    for name in req.headers().keys() {
        if name.as_str().starts_with("impersonate-") || name == "cookie" {
            u.violations.lock().unwrap().push(format!("header {name}"));
        }
    }
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    u.seen.lock().unwrap().push(pq.clone());
    match req.uri().path() {
        "/version" if u.healthy.load(Ordering::SeqCst) => {
            ([("content-type", "application/json")], r#"{"major":"1"}"#).into_response()
        }
        "/version" => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        "/api/v1/pods" if pq.contains("watch=true") => watch_stream(u.clone()),
        "/api/v1/pods" => (
            [("content-type", "application/json")],
            r#"{"kind":"PodList","items":[]}"#,
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "nope").into_response(),
    }
}

/// A watch: three chunks, one second apart, each send time recorded.
fn watch_stream(u: Arc<Upstream>) -> Response {
    let stream = futures_util::stream::unfold(0usize, move |i| {
        let u = u.clone();
        async move {
            let chunk = CHUNKS.get(i)?;
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            u.sent_at.lock().unwrap().push(Instant::now());
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(chunk.as_bytes())),
                i + 1,
            ))
        }
    });
    (
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

struct Fixture {
    pki: TestPki,
    peer: Identity,
    upstream: Arc<Upstream>,
    apiserver: Running,
    proxy: Running,
    token_dir: SecretDir,
    base: String,
}

impl Fixture {
    fn client(&self) -> reqwest::Client {
        https_client(&self.pki.ca_pem)
    }

    async fn get(&self, path: &str, auth: Option<&str>) -> reqwest::Response {
        let mut r = self.client().get(format!("{}{path}", self.base));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send().await.unwrap()
    }

    fn violations(&self) -> Vec<String> {
        self.upstream.violations.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.proxy.shutdown().await;
        self.apiserver.shutdown().await;
    }
}

async fn start() -> Fixture {
    start_with(None).await
}

/// With `client_org`, the proxy requires client certificates from the fixture's CA with that
/// Organization.
async fn start_with(client_org: Option<&str>) -> Fixture {
    let pki = pki::ca_and_localhost_cert().unwrap();
    let acceptor =
        || tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let upstream = Arc::new(Upstream::default());
    upstream.healthy.store(true, Ordering::SeqCst);
    *upstream.expected_token.lock().unwrap() = "proxy-token-1".into();
    let app = Router::new()
        .route("/version", get(fake_apiserver))
        .fallback(fake_apiserver)
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, _) = serve::shutdown_channel();
    let apiserver = serve::serve(listener, app, Some(acceptor()), Limits::default(), tx).unwrap();

    let peer = Identity::new(PEER);
    let mut token_dir = SecretDir::new();
    let remote = json!({PEER: peer.public_metadata(&pki.ca_pem)}).to_string();
    token_dir.publish(&[
        ("token", b"proxy-token-1\n"),
        ("remote-public-metadata.json", remote.as_bytes()),
    ]);
    let config = Config {
        remote_metadata: token_dir.path().join("remote-public-metadata.json"),
        cluster_uuid: OWN.into(),
        apiserver: url::Url::parse(&format!("https://127.0.0.1:{}", apiserver.addr.port()))
            .unwrap(),
        token_file: token_dir.path().join("token"),
        ca_pem: pki.ca_pem.clone().into_bytes(),
        tls: match client_org {
            None => acceptor(),
            Some(org) => tls::acceptor_requiring_client_certs(
                pki.cert_pem.as_bytes(),
                pki.key_pem.as_bytes(),
                pki.ca_pem.as_bytes(),
                Some(org.to_owned()),
            )
            .unwrap(),
        },
        reload_interval: Duration::from_millis(100),
        upstream_header_timeout: Duration::from_secs(10),
        limits: Limits::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = api_proxy::spawn(listener, config).unwrap();
    let base = format!("https://127.0.0.1:{}", proxy.addr.port());
    Fixture {
        pki,
        peer,
        upstream,
        apiserver,
        proxy,
        token_dir,
        base,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_proxied_with_the_proxys_own_token() {
    let f = start().await;
    let auth = f.peer.bearer(OWN, Scope::Api);
    let resp = f
        .client()
        .get(format!(
            "{}/api/v1/pods?limit=500&labelSelector=app%3Dx",
            f.base
        ))
        .header("authorization", &auth)
        .header("impersonate-user", "system:admin")
        .header("impersonate-group", "system:masters")
        .header("cookie", "session=1")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"kind":"PodList","items":[]}"#
    );
    assert_eq!(f.violations(), Vec::<String>::new());
    assert_eq!(
        f.upstream.seen.lock().unwrap().clone(),
        vec!["/api/v1/pods?limit=500&labelSelector=app%3Dx".to_owned()]
    );
    // Upstream statuses pass through.
    assert_eq!(f.get("/api/v1/nothing", Some(&auth)).await.status(), 404);
    assert_eq!(f.get("/healthz", None).await.text().await.unwrap(), "Ok.");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stream_chunk_by_chunk() {
    let f = start().await;
    let resp = f
        .get(
            "/api/v1/pods?watch=true",
            Some(&f.peer.bearer(OWN, Scope::Api)),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut arrivals = Vec::new();
    let mut body = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.unwrap();
        arrivals.push(Instant::now());
        body.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8(body).unwrap(), CHUNKS.concat());
    let sent = f.upstream.sent_at.lock().unwrap().clone();
    assert_eq!(sent.len(), CHUNKS.len());
    // The first event reached the client before the apiserver even produced the last one, and
    // the second before the third: nothing was buffered until the end.
    assert!(
        arrivals[0] < sent[2],
        "first chunk arrived only after the last was sent"
    );
    assert!(arrivals.len() >= 2, "the body arrived in one piece");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_passes() {
    let f = start().await;
    let auth = f.peer.bearer(OWN, Scope::Api);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ] {
        let resp = f
            .client()
            .request(
                method.clone(),
                format!("{}/api/v1/namespaces/default/pods/p1", f.base),
            )
            .header("authorization", &auth)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
    }
    assert!(
        f.upstream.seen.lock().unwrap().is_empty(),
        "a write reached the apiserver"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401() {
    let f = start().await;
    let stranger = Identity::new("cluster-z");
    let cases = [
        ("none", None),
        ("basic", Some("Basic YTpi".to_owned())),
        ("garbage", Some("Bearer x.y.z".to_owned())),
        (
            "private scope",
            Some(f.peer.bearer(OWN, Scope::PrivateMulticluster)),
        ),
        ("wrong aud", Some(f.peer.bearer("cluster-x", Scope::Api))),
        ("unknown sub", Some(stranger.bearer(OWN, Scope::Api))),
        (
            "apiserver token passed through",
            Some("Bearer proxy-token-1".to_owned()),
        ),
    ];
    for (name, auth) in cases {
        let resp = f.get("/api/v1/pods", auth.as_deref()).await;
        assert_eq!(resp.status(), 401, "{name}");
        let text = resp.text().await.unwrap();
        assert!(
            text.starts_with("[api-proxy] Authentication error: "),
            "{name}: {text}"
        );
    }
    assert!(
        f.upstream.seen.lock().unwrap().is_empty(),
        "an unauthenticated request reached the apiserver"
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reflects_upstream_health() {
    let f = start().await;
    let resp = f.get("/ready", None).await;
    assert_eq!(
        (resp.status().as_u16(), resp.text().await.unwrap()),
        (200, "Ok.".to_owned())
    );
    f.upstream.healthy.store(false, Ordering::SeqCst);
    assert_eq!(f.get("/ready", None).await.status(), 500);
    f.upstream.healthy.store(true, Ordering::SeqCst);
    assert_eq!(f.get("/ready", None).await.status(), 200);
    assert_eq!(f.violations(), Vec::<String>::new());
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_token_and_new_peers_are_picked_up() {
    let mut f = start().await;
    let newcomer = Identity::new("cluster-c");
    let remote = json!({PEER: f.peer.public_metadata(&f.pki.ca_pem), "cluster-c": newcomer.public_metadata(&f.pki.ca_pem)});
    *f.upstream.expected_token.lock().unwrap() = "proxy-token-2".into();
    f.token_dir.publish(&[
        ("token", b"proxy-token-2"),
        ("remote-public-metadata.json", remote.to_string().as_bytes()),
    ]);
    let auth = newcomer.bearer(OWN, Scope::Api);
    let ok = eventually(100, || async {
        f.get("/api/v1/pods", Some(&auth)).await.status() == 200
    })
    .await;
    assert!(ok, "new token or new peer never picked up");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_apiserver_certificate_is_refused() {
    // The proxy trusts only --ca-file: an apiserver with a certificate from another CA fails.
    let f = start().await;
    let other = pki::ca_and_localhost_cert().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let remote_path = f.token_dir.path().join("remote-public-metadata.json");
    let config = Config {
        remote_metadata: remote_path,
        cluster_uuid: OWN.into(),
        apiserver: url::Url::parse(&format!("https://127.0.0.1:{}", f.apiserver.addr.port()))
            .unwrap(),
        token_file: f.token_dir.path().join("token"),
        ca_pem: other.ca_pem.into_bytes(),
        tls: tls::acceptor_from_pem(f.pki.cert_pem.as_bytes(), f.pki.key_pem.as_bytes()).unwrap(),
        reload_interval: Duration::from_secs(1),
        upstream_header_timeout: Duration::from_secs(5),
        limits: Limits::default(),
    };
    let proxy = api_proxy::spawn(listener, config).unwrap();
    let url = format!("https://127.0.0.1:{}/api/v1/pods", proxy.addr.port());
    let resp = f
        .client()
        .get(url)
        .header("authorization", f.peer.bearer(OWN, Scope::Api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert!(f.upstream.seen.lock().unwrap().is_empty());
    proxy.shutdown().await;
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_configured() {
    let f = start_with(Some("ingress-nginx:auth")).await;
    let client_with = |cert: Option<(String, String)>| {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(f.pki.ca_pem.as_bytes()).unwrap());
        if let Some((c, k)) = cert {
            b = b.identity(reqwest::Identity::from_pkcs8_pem(c.as_bytes(), k.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let url = format!("{}/api/v1/pods", f.base);
    let auth = f.peer.bearer(OWN, Scope::Api);
    let status = |c: reqwest::Client| {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            c.get(url)
                .header("authorization", auth)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .ok()
        }
    };
    let ingress = pki::client_cert(&f.pki, "ingress-nginx:auth").unwrap();
    assert_eq!(status(client_with(Some(ingress))).await, Some(200));
    assert_eq!(
        status(client_with(None)).await,
        None,
        "no client certificate"
    );
    let wrong_org = pki::client_cert(&f.pki, "someone-else").unwrap();
    assert_eq!(
        status(client_with(Some(wrong_org))).await,
        None,
        "wrong organization"
    );
    let other_ca = pki::ca_and_localhost_cert().unwrap();
    let foreign = pki::client_cert(&other_ca, "ingress-nginx:auth").unwrap();
    assert_eq!(status(client_with(Some(foreign))).await, None, "foreign CA");
    assert_eq!(f.upstream.seen.lock().unwrap().len(), 1);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_watch_finish_and_refuses_new_connections() {
    let f = start().await;
    let resp = f
        .get(
            "/api/v1/pods?watch=true",
            Some(&f.peer.bearer(OWN, Scope::Api)),
        )
        .await;
    let mut stream = resp.bytes_stream();
    let first = futures_util::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    let mut body = first.to_vec();
    let addr = f.proxy.addr;
    let stopping = tokio::spawn(f.proxy.shutdown());
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        String::from_utf8(body).unwrap(),
        CHUNKS.concat(),
        "the watch was cut by shutdown"
    );
    stopping.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    f.apiserver.shutdown().await;
}
