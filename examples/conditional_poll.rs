//! Benchmark: what one poll of an unchanged peer costs with and without conditional requests
//! (`If-None-Match` → 304). Starts a metadata-exporter in-process on 127.0.0.1 over plain HTTP
//! (the TLS handshake cost is the same either way with a kept-alive connection), then polls the
//! public and the private (JWT-verified) document POLLS times each way with reqwest, reporting
//! bytes on the wire per poll (status line + headers + body, as received) and process CPU per poll
//! (client and server, from getrusage). The private document is polled with one token reused
//! (the exporter's verified-token cache answers) and with a distinct token per poll, as the hook
//! sends (it mints a token per run), which costs an Ed25519 verification every time.
//! `cargo run --release --example conditional_poll`.

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
    tokens: &[String],
    conditional: bool,
    polls: usize,
) -> (f64, f64, f64, u16) {
    let mut etag: Option<String> = None;
    let mut bytes = 0usize;
    let mut status = 0;
    // Warm up: connection and first fetch (the ETag a real poller would have cached).
    let token = |i: usize| (!tokens.is_empty()).then(|| &tokens[i % tokens.len()]);
    for i in 0..50 {
        let mut req = client.get(url);
        if let Some(t) = token(polls + i) {
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
    for i in 0..polls {
        let mut req = client.get(url);
        if let Some(t) = token(i) {
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
    // Distinct tokens: one per poll (and warm-up), each living a second longer than the last.
    let signer = jwt::Signer::from_pem(&fixture("ed25519-a.key")).expect("signing key");
    let now = chrono::Utc::now();
    let scope = Scope::PrivateFederation.as_str();
    let mint = |first: usize| -> Vec<String> {
        (first..first + polls + 50)
            .map(|i| {
                let ttl = std::time::Duration::from_secs(60 + i as u64);
                signer.sign_with_ttl(A, B, scope, now, ttl).expect("sign")
            })
            .collect()
    };
    let reused = mint(0)[..1].to_vec();
    // Never seen by the exporter before their row: its verified-token cache cannot answer.
    let fresh = [mint(polls + 50), mint(2 * (polls + 50))];
    let client = reqwest::Client::builder().build().expect("client");
    println!(
        "| document | mode | status | bytes/poll | CPU µs/poll (client+server) | wall µs/poll |"
    );
    println!("|---|---|---|---|---|---|");
    for (doc, path, tok) in [
        ("public", "/metadata/public/public.json", &[][..]),
        (
            "private (JWT reused)",
            "/metadata/private/federation.json",
            &reused[..],
        ),
        (
            "private (JWT per poll)",
            "/metadata/private/federation.json",
            &[][..],
        ),
    ] {
        for conditional in [false, true] {
            let tok = if doc.ends_with("per poll)") {
                &fresh[usize::from(conditional)][..]
            } else {
                tok
            };
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
