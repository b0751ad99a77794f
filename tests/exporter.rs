//! metadata-exporter over real sockets on 127.0.0.1: documents, JWT checks with real tokens,
//! hot reload through a kubelet-style `..data` swap, HTTPS, ETags and hostile clients.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{deckhouse_token, eventually, http_client, https_client, now, Identity, SecretDir};
use istio_hooks::domain::jwt::Scope;
use istio_hooks::domain::pki;
use istio_hooks::servers::exporter::{self, Config};
use istio_hooks::servers::serve::Running;
use istio_hooks::tls;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OWN: &str = "cluster-a";
const PEER: &str = "cluster-b";

struct Fixture {
    dir: SecretDir,
    me: Identity,
    peer: Identity,
    root_ca: String,
    local: Value,
    server: Running,
    base: String,
}

fn local_metadata(me: &Identity, root_ca: &str) -> Value {
    json!({
        "public": me.public_metadata(root_ca),
        "federation": {
            "ingressGateways": [{"address": "1.2.3.4", "port": 15443}],
            "publicServices": [{"hostname": "bar.ns.svc.cluster-a.local", "ports": [{"name": "http", "port": 8080}]}]
        },
        "multicluster": {
            "ingressGateways": [{"address": "1.2.3.4", "port": 15443}],
            "apiHost": "istio-api-proxy.a.example.com",
            "networkName": "network-a-1",
            "clusterID": "a-1"
        }
    })
}

fn publish(dir: &mut SecretDir, local: &Value, remote: &Value) {
    let (l, r) = (local.to_string(), remote.to_string());
    dir.publish(&[
        (exporter::LOCAL_FILE, l.as_bytes()),
        (exporter::REMOTE_FILE, r.as_bytes()),
    ]);
}

async fn start_with(tweak: impl FnOnce(&mut Config)) -> Fixture {
    let me = Identity::new(OWN);
    let peer = Identity::new(PEER);
    let (root_ca, _) = pki::generate_self_signed_ca("root", pki::Validity::days(30), true).unwrap();
    let local = local_metadata(&me, &root_ca);
    let mut dir = SecretDir::new();
    publish(
        &mut dir,
        &local,
        &json!({PEER: peer.public_metadata(&root_ca)}),
    );
    let mut config = Config::new(dir.path());
    config.reload_interval = Duration::from_millis(100);
    tweak(&mut config);
    let https = config.tls.is_some();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = exporter::spawn(listener, config).unwrap();
    let base = format!(
        "{}://127.0.0.1:{}",
        if https { "https" } else { "http" },
        server.addr.port()
    );
    Fixture {
        dir,
        me,
        peer,
        root_ca,
        local,
        server,
        base,
    }
}

async fn start() -> Fixture {
    start_with(|_| {}).await
}

async fn get(url: &str, auth: Option<&str>) -> (u16, String) {
    let mut req = http_client().get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_documents_are_served() {
    let f = start().await;
    assert_eq!(
        get(&format!("{}/healthz", f.base), None).await,
        (200, "Ok.".into())
    );
    let resp = http_client()
        .get(format!("{}/metadata/public/public.json", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, f.local["public"]);
    assert_eq!(body.as_object().unwrap().len(), 3);

    let (status, text) = get(
        &format!("{}/metadata/public/spiffe-bundle-endpoint", f.base),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            bundle["spiffe_sequence"].as_i64(),
            bundle["spiffe_refresh_hint"].as_i64()
        ),
        (Some(1), Some(2_419_200))
    );
    let key = &bundle["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str(), key["e"].as_str()),
        (Some("RSA"), Some("x509-svid"), Some("AQAB"))
    );
    let der = STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(der, pki::first_pem_body(&f.root_ca).unwrap());
    assert!(URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).is_ok());

    assert_eq!(
        get(&format!("{}/metadata/public/nothing", f.base), None)
            .await
            .0,
        404
    );
    let post = http_client()
        .post(format!("{}/metadata/public/public.json", f.base))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_documents_need_a_valid_token() {
    let f = start().await;
    for (path, scope, part) in [
        ("federation.json", Scope::PrivateFederation, "federation"),
        (
            "multicluster.json",
            Scope::PrivateMulticluster,
            "multicluster",
        ),
    ] {
        let url = format!("{}/metadata/private/{path}", f.base);
        let resp = http_client()
            .get(&url)
            .header("authorization", f.peer.bearer(OWN, scope))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, f.local[part], "{path}");
    }
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_401_without_data() {
    let f = start().await;
    let url = format!("{}/metadata/private/federation.json", f.base);
    let good = f.peer.bearer(OWN, Scope::PrivateFederation);
    let good_token = good.trim_start_matches("Bearer ").to_owned();
    let body_part = good_token.split('.').nth(1).unwrap().to_owned();
    let with_alg = |alg: &str| {
        format!(
            "Bearer {}.{body_part}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#))
        )
    };
    let stranger = Identity::new("cluster-z");
    let claims = |sub: &str, aud: &str, scope: &str, nbf: i64, exp: i64| json!({"iss": "d8-istio", "sub": sub, "aud": aud, "scope": scope, "nbf": nbf, "exp": exp});
    let t = now();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "Bearer authorization required"),
        (
            "basic",
            Some(format!("Basic {}", STANDARD.encode("a:b"))),
            "Bearer authorization required",
        ),
        (
            "lowercase scheme",
            Some(format!("bearer {good_token}")),
            "Bearer authorization required",
        ),
        (
            "garbage",
            Some("Bearer not-a-jwt".into()),
            "malformed token",
        ),
        (
            "alg none",
            Some(with_alg("none")),
            "unsupported token algorithm",
        ),
        (
            "HS256",
            Some(with_alg("HS256")),
            "unsupported token algorithm",
        ),
        (
            "wrong aud",
            Some(f.peer.bearer("cluster-x", Scope::PrivateFederation)),
            "wrong destination cluster",
        ),
        (
            "wrong scope",
            Some(f.peer.bearer(OWN, Scope::PrivateMulticluster)),
            "wrong scope",
        ),
        (
            "api scope",
            Some(f.peer.bearer(OWN, Scope::Api)),
            "wrong scope",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                deckhouse_token(
                    &f.peer.private,
                    &claims(PEER, OWN, "private-federation", t - 600, t - 300)
                )
            )),
            "expired",
        ),
        (
            "unknown sub",
            Some(stranger.bearer(OWN, Scope::PrivateFederation)),
            "unknown source cluster",
        ),
        (
            "wrong key",
            Some(format!(
                "Bearer {}",
                deckhouse_token(
                    &stranger.private,
                    &claims(PEER, OWN, "private-federation", t, t + 60)
                )
            )),
            "cannot verify",
        ),
        (
            "oversized",
            Some(format!("Bearer {}", "a".repeat(10 * 1024))),
            "too large",
        ),
    ];
    for (name, auth, reason) in cases {
        let (status, text) = get(&url, auth.as_deref()).await;
        assert_eq!(status, 401, "{name}: {text}");
        assert!(text.starts_with("Authentication error: "), "{name}: {text}");
        assert!(text.contains(reason), "{name}: {text}");
        assert!(
            !text.contains("1.2.3.4") && !text.contains("bar.ns"),
            "{name} leaked data: {text}"
        );
    }
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deckhouse_minted_token_is_accepted() {
    let f = start().await;
    let t = now();
    let claims = json!({"aud": OWN, "exp": t + 60, "iss": "d8-istio", "nbf": t, "scope": "private-multicluster", "sub": PEER});
    let token = deckhouse_token(&f.peer.private, &claims);
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    assert_eq!(header, br#"{"alg":"EdDSA"}"#);
    assert!(f.peer.public.contains("BEGIN ED25519 PUBLIC KEY"));
    let (status, text) = get(
        &format!("{}/metadata/private/multicluster.json", f.base),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        f.local["multicluster"]
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_private_parts_are_404() {
    let mut f = start().await;
    let remote = json!({PEER: f.peer.public_metadata(&f.root_ca)});
    publish(
        &mut f.dir,
        &json!({"public": f.me.public_metadata(&f.root_ca)}),
        &remote,
    );
    let fed = format!("{}/metadata/private/federation.json", f.base);
    let auth = f.peer.bearer(OWN, Scope::PrivateFederation);
    assert!(eventually(100, || async { get(&fed, Some(&auth)).await.0 == 404 }).await);
    let mc = format!("{}/metadata/private/multicluster.json", f.base);
    assert_eq!(
        get(&mc, Some(&f.peer.bearer(OWN, Scope::PrivateMulticluster)))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&format!("{}/metadata/public/public.json", f.base), None)
            .await
            .0,
        200
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_follows_data_swaps_and_keeps_last_good_data() {
    let mut f = start().await;
    let public_url = format!("{}/metadata/public/public.json", f.base);
    let fed_url = format!("{}/metadata/private/federation.json", f.base);

    // A new peer appears and the federation document changes: served after the swap.
    let newcomer = Identity::new("cluster-c");
    let mut local = f.local.clone();
    local["federation"]["ingressGateways"] = json!([{"address": "5.6.7.8", "port": 443}]);
    let remote = json!({PEER: f.peer.public_metadata(&f.root_ca), "cluster-c": newcomer.public_metadata(&f.root_ca)});
    publish(&mut f.dir, &local, &remote);
    let auth = newcomer.bearer(OWN, Scope::PrivateFederation);
    assert!(
        eventually(100, || async {
            get(&fed_url, Some(&auth)).await.1.contains("5.6.7.8")
        })
        .await
    );

    // Broken local file, remote file missing: the last good data stays.
    f.dir.publish(&[(exporter::LOCAL_FILE, b"{not json")]);
    let (status, text) = get(
        &fed_url,
        Some(&newcomer.bearer(OWN, Scope::PrivateFederation)),
    )
    .await;
    assert_eq!((status, text.contains("5.6.7.8")), (200, true));
    tokio::time::sleep(Duration::from_millis(400)).await; // several reload intervals
    let (status, text) = get(
        &fed_url,
        Some(&newcomer.bearer(OWN, Scope::PrivateFederation)),
    )
    .await;
    assert_eq!((status, text.contains("5.6.7.8")), (200, true), "{text}");
    assert_eq!(get(&public_url, None).await.0, 200);

    // Valid again with a new uuid: picked up.
    let mut local2 = local.clone();
    local2["public"]["clusterUUID"] = json!("cluster-a2");
    publish(&mut f.dir, &local2, &remote);
    assert!(
        eventually(100, || async {
            get(&public_url, None).await.1.contains("cluster-a2")
        })
        .await
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_valid_data_the_exporter_answers_503_then_recovers() {
    let mut dir = SecretDir::new();
    dir.publish(&[(exporter::LOCAL_FILE, b"{}")]);
    let mut config = Config::new(dir.path());
    config.reload_interval = Duration::from_millis(100);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = exporter::spawn(listener, config).unwrap();
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    assert_eq!(get(&format!("{base}/healthz"), None).await.0, 503);
    assert_eq!(get(&format!("{base}/livez"), None).await.0, 200);
    assert_eq!(
        get(&format!("{base}/metadata/public/public.json"), None)
            .await
            .0,
        503
    );
    let me = Identity::new(OWN);
    let (root, _) = pki::generate_self_signed_ca("root", pki::Validity::days(30), true).unwrap();
    publish(
        &mut dir,
        &json!({"public": me.public_metadata(&root)}),
        &json!({}),
    );
    assert!(
        eventually(100, || async {
            get(&format!("{base}/healthz"), None).await.0 == 200
        })
        .await
    );
    assert_eq!(
        get(&format!("{base}/metadata/public/public.json"), None)
            .await
            .0,
        200
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_root_gives_500_on_spiffe_and_ec_roots_give_ec_keys() {
    let mut f = start().await;
    let remote = json!({});
    publish(
        &mut f.dir,
        &json!({"public": f.me.public_metadata("not a certificate")}),
        &remote,
    );
    let url = format!("{}/metadata/public/spiffe-bundle-endpoint", f.base);
    assert!(eventually(100, || async { get(&url, None).await.0 == 500 }).await);
    assert_eq!(
        get(&format!("{}/metadata/public/public.json", f.base), None)
            .await
            .0,
        200
    );

    let ec_root = pki::ca_and_localhost_cert().unwrap().ca_pem;
    publish(
        &mut f.dir,
        &json!({"public": f.me.public_metadata(&ec_root)}),
        &remote,
    );
    assert!(eventually(100, || async { get(&url, None).await.0 == 200 }).await);
    let bundle: Value = serde_json::from_str(&get(&url, None).await.1).unwrap();
    let key = &bundle["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["y"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_mode_with_a_test_ca() {
    let pki = pki::ca_and_localhost_cert().unwrap();
    let acceptor = tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let f = start_with(|c| c.tls = Some(acceptor)).await;
    assert!(f.base.starts_with("https://"));
    let client = https_client(&pki.ca_pem);
    let resp = client
        .get(format!("{}/metadata/public/public.json", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{}/metadata/private/federation.json", f.base))
        .header(
            "authorization",
            f.peer.bearer(OWN, Scope::PrivateFederation),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A client that does not trust the test CA fails the handshake; plain HTTP is not answered.
    let other = pki::ca_and_localhost_cert().unwrap();
    assert!(https_client(&other.ca_pem)
        .get(format!("{}/healthz", f.base))
        .send()
        .await
        .is_err());
    let plain = f.base.replace("https://", "http://");
    assert!(http_client()
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .is_err());
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_answer_conditional_requests() {
    let f = start().await;
    for (path, auth) in [
        ("public/public.json", None),
        ("public/spiffe-bundle-endpoint", None),
        ("private/federation.json", Some(Scope::PrivateFederation)),
    ] {
        let url = format!("{}/metadata/{path}", f.base);
        let req = |etag: Option<&str>| {
            let mut r = http_client().get(&url);
            if let Some(s) = auth {
                r = r.header("authorization", f.peer.bearer(OWN, s));
            }
            if let Some(e) = etag {
                r = r.header("if-none-match", e);
            }
            r.send()
        };
        let first = req(None).await.unwrap();
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let second = req(Some(&etag)).await.unwrap();
        assert_eq!(second.status(), 304, "{path}");
        assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
        assert!(second.text().await.unwrap().is_empty());
        let other = req(Some("\"something-else\"")).await.unwrap();
        assert_eq!(other.status(), 200, "{path}");
    }
    // A conditional request never bypasses authentication.
    let url = format!("{}/metadata/private/federation.json", f.base);
    assert_eq!(
        http_client()
            .get(&url)
            .header("if-none-match", "*")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_without_blocking_others() {
    let f = start_with(|c| c.limits.header_timeout = Duration::from_secs(2)).await;
    let mut slow = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    let (mut rd, mut wr) = slow.split();
    let head = b"GET /metadata/public/public.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed_early = false;
    let mut read_buf = [0u8; 256];
    let mut reader =
        Box::pin(async move { rd.read(&mut read_buf).await.map(|n| read_buf[..n].to_vec()) });
    let mut sent = 0;
    for byte in head.iter() {
        tokio::select! {
            r = &mut reader => {
                let got = r.unwrap_or_default();
                assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "slow client got an answer");
                closed_early = true;
                break;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if wr.write_all(&[*byte]).await.is_err() {
            closed_early = true;
            break;
        }
        sent += 1;
        // Meanwhile other clients are served.
        if sent == 1 {
            assert_eq!(
                get(&format!("{}/metadata/public/public.json", f.base), None)
                    .await
                    .0,
                200
            );
        }
    }
    assert!(
        closed_early,
        "the slow client sent its whole head ({sent} bytes) without being cut off"
    );
    assert!(sent < head.len());
    assert_eq!(get(&format!("{}/healthz", f.base), None).await.0, 200);
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_header_is_refused() {
    let f = start().await;
    let mut s = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    req.extend(b"\r\n\r\n");
    let _ = s.write_all(&req).await; // the server may close mid-way
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains(" 200 "), "{text}");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    assert_eq!(get(&format!("{}/healthz", f.base), None).await.0, 200);
    f.server.shutdown().await;
}

/// Not a test: a throughput figure. `cargo test --test exporter -- --ignored --nocapture throughput`
/// (set `REQUESTS` / `CONNECTIONS` to change the load).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn throughput() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (requests, connections) = (env("REQUESTS", 20_000), env("CONNECTIONS", 16));
    let f = start().await;
    for (label, path, scope) in [
        ("public", "public/public.json", None),
        (
            "private",
            "private/federation.json",
            Some(Scope::PrivateFederation),
        ),
    ] {
        let url = format!("{}/metadata/{path}", f.base);
        let auth = scope.map(|s| f.peer.bearer(OWN, s));
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (url, auth) = (url.clone(), auth.clone());
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            tasks.push(tokio::spawn(async move {
                for _ in 0..requests / connections {
                    let mut r = client.get(&url);
                    if let Some(a) = &auth {
                        r = r.header("authorization", a);
                    }
                    let resp = r.send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let done = (requests / connections) * connections;
        println!(
            "{label}: {done} requests over {connections} connections in {secs:.2}s = {:.0} req/s",
            done as f64 / secs
        );
    }
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let f = start_with(|c| c.limits.header_timeout = Duration::from_secs(1)).await;
    let mut s = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now idle: the server closes the connection by itself (read returns EOF, not a hang).
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert_eq!(
        closed,
        Ok(true),
        "an idle keep-alive connection stayed open"
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_client_is_dropped_after_the_handshake_timeout() {
    let pki = pki::ca_and_localhost_cert().unwrap();
    let acceptor = tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let f = start_with(|c| {
        c.tls = Some(acceptor);
        c.limits.handshake_timeout = Duration::from_secs(1);
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    // Served meanwhile.
    let resp = https_client(&pki.ca_pem)
        .get(format!("{}/healthz", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection stayed open: {closed:?}"
    );
    f.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_clients_until_a_slot_frees() {
    let f = start_with(|c| {
        c.limits.max_connections = 1;
        c.limits.header_timeout = Duration::from_secs(1);
    })
    .await;
    // Take the only slot with a connection that says nothing.
    let hog = tokio::net::TcpStream::connect(f.server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = http_client()
        .get(format!("{}/healthz", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The server closed the hog (header timeout) before it could serve anyone else: its FIN is
    // already in the hog's socket when the second answer arrives.
    let mut buf = [0u8; 64];
    let state = hog.try_read(&mut buf);
    assert!(
        matches!(state, Ok(0) | Err(_))
            && !matches!(&state, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "hog still open: {state:?}"
    );
    f.server.shutdown().await;
}
