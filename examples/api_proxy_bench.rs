//! api-proxy throughput and added latency, measured against direct calls to the same fake
//! apiserver in the same run (the baseline). Everything on 127.0.0.1 over real TLS with a real
//! peer JWT. Run: `cargo run --release --example api_proxy_bench [REQUESTS] [CONNECTIONS]`.

use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::domain::metadata::{PublicMetadata, RemotePublicMetadata};
use istio_hooks::domain::pki;
use istio_hooks::servers::{api_proxy, serve};
use istio_hooks::tls;
use std::time::{Duration, Instant};

const OWN: &str = "0b1b2c3d-bbbb-4000-8000-00000000000b";
const PEER: &str = "0a1b2c3d-aaaa-4000-8000-00000000000a";

async fn load(
    client: reqwest::Client,
    url: String,
    bearer: Option<String>,
    requests: usize,
    connections: usize,
) -> (f64, Vec<Duration>, usize) {
    let started = Instant::now();
    let per = requests / connections;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, bearer) = (client.clone(), url.clone(), bearer.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            let mut errors = 0;
            for _ in 0..per {
                let t = Instant::now();
                let mut rb = client.get(&url);
                if let Some(b) = &bearer {
                    rb = rb.bearer_auth(b);
                }
                match rb.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("load task");
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    ((all.len() as f64) / secs, all, errors)
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = args.first().copied().unwrap_or(20_000);
    let connections = args.get(1).copied().unwrap_or(32);
    let pki = pki::ca_and_localhost_cert().expect("test pki");
    let dir = tempfile::tempdir().expect("tempdir");

    // The fake apiserver: a small NamespaceList, like a cheap istiod list call.
    let body = serde_json::json!({"kind": "NamespaceList", "apiVersion": "v1",
        "items": (0..10).map(|i| serde_json::json!({"metadata": {"name": format!("ns-{i}")}})).collect::<Vec<_>>()})
    .to_string();
    let app = axum::Router::new().route(
        "/api/v1/namespaces",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let (tx, _rx) = serve::shutdown_channel();
    let acceptor =
        tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor");
    let upstream = serve::serve(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        app,
        Some(acceptor),
        serve::Limits::default(),
        tx,
    )
    .expect("fake apiserver");

    // The proxy, knowing one peer.
    let (private, public) = pki::generate_ed25519_keypair().expect("keys");
    let mut peers = RemotePublicMetadata::new();
    peers.insert(
        PEER.into(),
        PublicMetadata {
            cluster_uuid: PEER.into(),
            authn_key_pub: public,
            root_ca: String::new(),
        },
    );
    let remote = dir.path().join("remote-public-metadata.json");
    std::fs::write(&remote, serde_json::to_vec(&peers).unwrap()).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "proxy-sa-token").unwrap();
    let config = api_proxy::Config {
        remote_metadata: remote,
        cluster_uuid: OWN.into(),
        apiserver: url::Url::parse(&format!("https://127.0.0.1:{}", upstream.addr.port())).unwrap(),
        token_file,
        ca_pem: pki.ca_pem.clone().into_bytes(),
        tls: tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap(),
        reload_interval: Duration::from_secs(2),
        upstream_header_timeout: Duration::from_secs(10),
        limits: serve::Limits::default(),
    };
    let proxy = api_proxy::spawn(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        config,
    )
    .expect("proxy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = jwt::sign(&private, PEER, OWN, Scope::Api, chrono::Utc::now()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();

    let direct_url = format!(
        "https://127.0.0.1:{}/api/v1/namespaces",
        upstream.addr.port()
    );
    let proxy_url = format!("https://127.0.0.1:{}/api/v1/namespaces", proxy.addr.port());
    // Warm both paths (TLS handshakes, pools), then measure direct, proxied, direct again.
    let _ = load(
        client.clone(),
        direct_url.clone(),
        Some("x".into()),
        connections * 10,
        connections,
    )
    .await;
    let _ = load(
        client.clone(),
        proxy_url.clone(),
        Some(token.clone()),
        connections * 10,
        connections,
    )
    .await;
    let (d_rps, d_lat, d_err) = load(
        client.clone(),
        direct_url.clone(),
        Some("x".into()),
        requests,
        connections,
    )
    .await;
    let (p_rps, p_lat, p_err) = load(
        client.clone(),
        proxy_url,
        Some(token.clone()),
        requests,
        connections,
    )
    .await;
    println!("api-proxy benchmark: {requests} GETs over {connections} connections, 127.0.0.1, TLS on both hops");
    println!("| path | req/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    println!(
        "| direct to fake apiserver (baseline) | {d_rps:.0} | {:.2} | {:.2} | {d_err} |",
        pct(&d_lat, 0.5),
        pct(&d_lat, 0.99)
    );
    println!(
        "| through api-proxy (JWT check + re-auth) | {p_rps:.0} | {:.2} | {:.2} | {p_err} |",
        pct(&p_lat, 0.5),
        pct(&p_lat, 0.99)
    );
    println!(
        "| ratio proxy/direct | {:.2}× throughput | +{:.2} ms p50 | +{:.2} ms p99 | |",
        p_rps / d_rps,
        pct(&p_lat, 0.5) - pct(&d_lat, 0.5),
        pct(&p_lat, 0.99) - pct(&d_lat, 0.99)
    );
    proxy.shutdown().await;
    upstream.shutdown().await;
}
