//! Benchmark: what one poll of an unchanged peer costs with and without conditional requests
//! (`If-None-Match` → 304). Starts a metadata-exporter in-process on 127.0.0.1 over plain HTTP
//! (the TLS handshake cost is the same either way with a kept-alive connection), then polls the
//! public and the private (JWT-verified) document POLLS times each way with reqwest, reporting
//! bytes on the wire per poll (status line + headers + body, as received) and process CPU per poll
//! (client and server, from getrusage). `cargo run --release --example conditional_poll`.

use istio_hooks::domain::jwt::{self, Scope};
use istio_hooks::servers::exporter;
use std::path::Path;
use std::time::Instant;

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";

fn cpu_seconds() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the whole struct on success.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) } == 0;
    if !ok {
        return 0.0;
    }
    // SAFETY: initialised above.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/fixtures")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn write_data_dir(dir: &Path) {
    let services: Vec<_> = (0..20)
        .map(|i| serde_json::json!({"hostname": format!("svc-{i}.ns.svc.cluster.local"), "ports": [{"name": "http", "port": 8080}]}))
        .collect();
    let local = serde_json::json!({
        "public": {"clusterUUID": B, "authnKeyPub": fixture("ed25519-b.pub"), "rootCA": fixture("root-a.pem")},
        "federation": {"ingressGateways": [{"address": "10.0.0.1", "port": 15443}], "publicServices": services},
    });
    let remote = serde_json::json!({A: {"clusterUUID": A, "authnKeyPub": fixture("ed25519-a.pub"), "rootCA": fixture("root-b.pem")}});
    std::fs::write(dir.join(exporter::LOCAL_FILE), local.to_string()).expect("write local");
    std::fs::write(dir.join(exporter::REMOTE_FILE), remote.to_string()).expect("write remote");
}

async fn poll(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    conditional: bool,
    polls: usize,
) -> (f64, f64, f64, u16) {
    let mut etag: Option<String> = None;
    let mut bytes = 0usize;
    let mut status = 0;
    // Warm up: connection and first fetch (the ETag a real poller would have cached).
    for _ in 0..50 {
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("GET");
        etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        r.bytes().await.expect("body");
    }
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    for _ in 0..polls {
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if conditional {
            if let Some(e) = &etag {
                req = req.header("If-None-Match", e);
            }
        }
        let r = req.send().await.expect("GET");
        status = r.status().as_u16();
        let hdr = r.headers().clone();
        let body = r.bytes().await.expect("body").len();
        // As received: status line, header lines, blank line, body (HTTP/1.1 framing).
        bytes += "HTTP/1.1 200 OK\r\n".len()
            + hdr
                .iter()
                .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
                .sum::<usize>()
            + 2
            + body;
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let n = polls as f64;
    (bytes as f64 / n, cpu / n * 1e6, wall / n * 1e6, status)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let polls: usize = std::env::var("POLLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("tempdir");
    write_data_dir(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = exporter::spawn(listener, exporter::Config::new(dir.path().to_owned()))
        .expect("spawn exporter");
    let base = format!("http://{}", running.addr);
    let token = jwt::sign(
        &fixture("ed25519-a.key"),
        A,
        B,
        Scope::PrivateFederation,
        chrono::Utc::now(),
    )
    .expect("sign");
    let client = reqwest::Client::builder().build().expect("client");
    println!(
        "| document | mode | status | bytes/poll | CPU µs/poll (client+server) | wall µs/poll |"
    );
    println!("|---|---|---|---|---|---|");
    for (doc, path, tok) in [
        ("public", "/metadata/public/public.json", None),
        (
            "private (JWT)",
            "/metadata/private/federation.json",
            Some(token.as_str()),
        ),
    ] {
        for conditional in [false, true] {
            let (b, cpu, wall, status) =
                poll(&client, &format!("{base}{path}"), tok, conditional, polls).await;
            let mode = if conditional {
                "If-None-Match"
            } else {
                "plain GET"
            };
            println!("| {doc} | {mode} | {status} | {b:.0} | {cpu:.1} | {wall:.1} |");
        }
    }
    println!("\n{polls} polls per row over one kept-alive connection.");
}
