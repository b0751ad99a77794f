//! Benchmark: what one `fetch-remote-metadata` poll of N unchanged peers costs with and without
//! conditional requests, end to end. The hook runs as the real binary (one process per poll,
//! as shell-operator runs it: new TLS connections every time) against one in-process
//! metadata-exporter over HTTPS, reached through N counting TCP relays (one port per peer, so
//! one TLS connection per peer as with real peers).
//!
//! Modes: `cold` (empty status: first poll), `plain` (status as the cold poll left it but
//! without the stored ETags: what every poll cost before conditional requests) and
//! `conditional` (the stored ETags are sent: 304s). Reported per poll and per peer: bytes on
//! the wire (TCP payload, TLS included) received and sent by the hook, the hook process's CPU
//! (`getrusage(RUSAGE_CHILDREN)`), the exporter's CPU (its runtime thread, `RUSAGE_THREAD`), and
//! the size of the status merge patches the hook writes (what the apiserver receives).
//!
//! `cargo build --release && PEERS=20 ROUNDS=10 target/release/examples/hook_poll`

use istio_hooks::domain::pki;
use istio_hooks::servers::exporter;
use istio_hooks::tls;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const LOCAL_UUID: &str = "00000000-0000-0000-0000-00000000000a";
const PEER_UUID: &str = "00000000-0000-0000-0000-00000000000b";

fn rusage(who: libc::c_int) -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the whole struct on success.
    if unsafe { libc::getrusage(who, u.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: initialised above.
    let u = unsafe { u.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Asks a runtime thread for its own CPU time.
type CpuQuery = mpsc::UnboundedSender<oneshot::Sender<f64>>;

/// A current-thread runtime on its own OS thread running `start`, answering CPU queries.
fn thread_runtime<T: Send + 'static>(
    name: &str,
    start: impl FnOnce() -> T + Send + 'static,
) -> (CpuQuery, std::sync::mpsc::Receiver<T>) {
    let (q_tx, mut q_rx) = mpsc::unbounded_channel::<oneshot::Sender<f64>>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let _ = ready_tx.send(start());
                while let Some(reply) = q_rx.recv().await {
                    let _ = reply.send(rusage(libc::RUSAGE_THREAD));
                }
            });
        });
    spawned.expect("spawn a runtime thread");
    (q_tx, ready_rx)
}

fn thread_cpu(q: &CpuQuery) -> f64 {
    let (tx, rx) = oneshot::channel();
    q.send(tx).expect("cpu query");
    rx.blocking_recv().expect("cpu answer")
}

#[derive(Default)]
struct Counters {
    /// Exporter → hook.
    down: AtomicU64,
    /// Hook → exporter.
    up: AtomicU64,
    open: AtomicUsize,
}

/// `n` relay listeners forwarding to `target`, counting bytes both ways.
async fn relays(n: usize, target: std::net::SocketAddr, c: Arc<Counters>) -> Vec<u16> {
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        ports.push(l.local_addr().expect("addr").port());
        let c = c.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                let c = c.clone();
                c.open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        if let Ok((up, down)) =
                            tokio::io::copy_bidirectional(&mut client, &mut server).await
                        {
                            c.up.fetch_add(up, Ordering::SeqCst);
                            c.down.fetch_add(down, Ordering::SeqCst);
                        }
                    }
                    c.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    ports
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec(v).expect("json")).expect("write");
}

struct Poll {
    down: u64,
    up: u64,
    hook_cpu: f64,
    exporter_cpu: f64,
    wall: Duration,
    not_modified: usize,
    patches: Vec<Value>,
    /// Size of the status merge patches the hook hands to the apiserver.
    patch_bytes: u64,
}

struct Bench {
    bin: PathBuf,
    dir: PathBuf,
    counters: Arc<Counters>,
    exporter: CpuQuery,
}

impl Bench {
    /// One hook process over `crs`.
    fn poll(&self, crs: &[Value], values: &Value) -> Poll {
        let items: Vec<Value> = crs.iter().map(|o| json!({"filterResult": o})).collect();
        let ctx = json!([{"binding": "main", "type": "Group", "groupName": "main", "snapshots": {
            "federations": items, "multiclusters": [], "multiclouds": []}}]);
        let f = |n: &str| self.dir.join(n);
        write_json(&f("binding-context.json"), &ctx);
        write_json(&f("values.json"), values);
        for out in ["patches.jsonl", "metrics.jsonl", "values-patch.json"] {
            let _ = std::fs::remove_file(f(out));
        }
        let (down0, up0) = (
            self.counters.down.load(Ordering::SeqCst),
            self.counters.up.load(Ordering::SeqCst),
        );
        let (hook0, exp0, t0) = (
            rusage(libc::RUSAGE_CHILDREN),
            thread_cpu(&self.exporter),
            Instant::now(),
        );
        let status = Command::new(&self.bin)
            .arg("fetch-remote-metadata")
            .env("BINDING_CONTEXT_PATH", f("binding-context.json"))
            .env("VALUES_PATH", f("values.json"))
            .env("CONFIG_VALUES_PATH", f("config-values.json"))
            .env("VALUES_JSON_PATCH_PATH", f("values-patch.json"))
            .env("KUBERNETES_PATCH_PATH", f("patches.jsonl"))
            .env("METRICS_PATH", f("metrics.jsonl"))
            .env("RUST_LOG", "error")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the hook binary");
        let wall = t0.elapsed();
        assert!(status.success(), "hook failed: {status}");
        let hook_cpu = rusage(libc::RUSAGE_CHILDREN) - hook0;
        // The hook has exited: wait for the relays to see every connection close.
        while self.counters.open.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let exporter_cpu = thread_cpu(&self.exporter) - exp0;
        let lines = |name: &str| -> Vec<Value> {
            std::fs::read_to_string(f(name))
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).expect("jsonl"))
                .collect()
        };
        let not_modified = lines("metrics.jsonl")
            .iter()
            .filter(|m| m["name"] == "d8_istio_alliance_metadata_not_modified" && m["value"] == 1.0)
            .count();
        let patch_bytes = std::fs::metadata(f("patches.jsonl")).map_or(0, |m| m.len());
        Poll {
            patch_bytes,
            down: self.counters.down.load(Ordering::SeqCst) - down0,
            up: self.counters.up.load(Ordering::SeqCst) - up0,
            hook_cpu,
            exporter_cpu,
            wall,
            not_modified,
            patches: lines("patches.jsonl"),
        }
    }
}

/// The CRs after the apiserver applied `patches`, optionally without the stored ETags.
fn applied(crs: &[Value], patches: &[Value], keep_etags: bool) -> Vec<Value> {
    crs.iter()
        .map(|cr| {
            let mut cr = cr.clone();
            let p = patches
                .iter()
                .find(|p| p["name"] == cr["metadata"]["name"])
                .expect("a patch per peer");
            let mut st = cr["status"].clone();
            json_patch::merge(&mut st, &p["mergePatch"]["status"]);
            if !keep_etags {
                if let Some(c) = st["metadataCache"].as_object_mut() {
                    c.remove("publicETag");
                    c.remove("privateETag");
                }
            }
            cr["status"] = st;
            cr
        })
        .collect()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let peers = env_usize("PEERS", 20);
    let rounds = env_usize("ROUNDS", 10);
    let services = env_usize("SERVICES", 20);
    let bin = std::env::current_exe()
        .expect("exe")
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("istio-hooks");
    assert!(
        bin.exists(),
        "{} missing: cargo build --release first",
        bin.display()
    );
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let pki = pki::ca_and_localhost_cert().expect("test PKI");
    let (local_priv, local_pub) =
        istio_hooks::domain::pki::generate_ed25519_keypair().expect("keypair");
    let (_, peer_pub) = istio_hooks::domain::pki::generate_ed25519_keypair().expect("keypair");
    let svcs: Vec<Value> = (0..services)
        .map(|i| json!({"hostname": format!("svc-{i}.ns.svc.peer.local"), "ports": [{"name": "http", "port": 8080}]}))
        .collect();
    write_json(
        &data.join(exporter::LOCAL_FILE),
        &json!({
            "public": {"clusterUUID": PEER_UUID, "authnKeyPub": peer_pub, "rootCA": pki.ca_pem},
            "federation": {"ingressGateways": [{"address": "10.0.0.1", "port": 15443}], "publicServices": svcs},
        }),
    );
    write_json(
        &data.join(exporter::REMOTE_FILE),
        &json!({LOCAL_UUID: {"clusterUUID": LOCAL_UUID, "authnKeyPub": local_pub, "rootCA": pki.ca_pem}}),
    );
    let mut config = exporter::Config::new(data);
    config.tls = Some(
        tls::acceptor_from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).expect("acceptor"),
    );
    let (exporter_cpu, ready) = thread_runtime("exporter", move || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let l = tokio::net::TcpListener::from_std(l).expect("listener");
        let running = exporter::spawn(l, config).expect("exporter");
        let addr = running.addr;
        std::mem::forget(running);
        addr
    });
    let addr = ready.recv().expect("exporter address");
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let (_relay_cpu, ready) = thread_runtime("relays", move || {
        let (tx, rx) = std::sync::mpsc::channel();
        tokio::spawn(async move {
            let _ = tx.send(relays(peers, addr, c).await);
        });
        rx
    });
    let ports = ready
        .recv()
        .expect("relay thread")
        .recv()
        .expect("relay ports");
    // The exporter needs a moment to load its data dir.
    std::thread::sleep(Duration::from_millis(300));

    let bench = Bench {
        bin,
        dir: work.path().to_owned(),
        counters,
        exporter: exporter_cpu,
    };
    let values = json!({
        "global": {"discovery": {"clusterUUID": LOCAL_UUID, "clusterDomain": "local.cluster"}, "modules": {"publicDomainTemplate": "%s.example.com"}},
        "istio": {"federation": {"enabled": true},
                  "internal": {"remoteAuthnKeypair": {"pub": local_pub, "priv": local_priv}}},
    });
    let cold: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            json!({"metadata": {"name": format!("peer-{i:03}")},
                   "spec": {"trustDomain": "peer.local", "metadataEndpoint": format!("https://127.0.0.1:{port}/metadata/"),
                            "metadata": {"ca": pki.ca_pem}},
                   "status": {}})
        })
        .collect();
    let first = bench.poll(&cold, &values);
    assert_eq!(first.patches.len(), peers, "a status patch per peer");
    let plain = applied(&cold, &first.patches, false);
    let conditional = applied(&cold, &first.patches, true);

    println!("{peers} peers, {services} services each, {rounds} polls per warm mode (one hook process per poll, HTTPS, new connections each poll).\n");
    println!("| mode | 304s / poll | bytes recv / peer | bytes sent / peer | hook CPU ms / poll | hook CPU µs / peer | exporter CPU µs / peer | status patch bytes / peer | wall ms / poll |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let row = |mode: &str, polls: &[Poll]| {
        let n = polls.len() as f64;
        let per_peer = n * peers as f64;
        let sum = |f: &dyn Fn(&Poll) -> f64| polls.iter().map(f).sum::<f64>();
        println!(
            "| {mode} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} |",
            sum(&|p| p.not_modified as f64) / n,
            sum(&|p| p.down as f64) / per_peer,
            sum(&|p| p.up as f64) / per_peer,
            sum(&|p| p.hook_cpu) / n * 1e3,
            sum(&|p| p.hook_cpu) / per_peer * 1e6,
            sum(&|p| p.exporter_cpu) / per_peer * 1e6,
            sum(&|p| p.patch_bytes as f64) / per_peer,
            sum(&|p| p.wall.as_secs_f64()) / n * 1e3,
        );
    };
    row("cold (empty cache)", std::slice::from_ref(&first));
    let (mut p, mut c) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        p.push(bench.poll(&plain, &values));
        c.push(bench.poll(&conditional, &values));
    }
    assert!(p.iter().all(|x| x.not_modified == 0));
    assert!(
        c.iter().all(|x| x.not_modified == 2 * peers),
        "every conditional poll gets 304 for both documents"
    );
    row("plain GET (no stored ETag)", &p);
    row("If-None-Match (304)", &c);
}
