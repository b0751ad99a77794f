//! Bench helper for `bench/exporter.sh`: mints a pool of distinct, valid peer tokens before the
//! measured load, so every request can carry a token the exporter has never seen (no cache can
//! answer). PEERS peers (`sub`), each with its own fresh Ed25519 key, sign COUNT tokens in all
//! (round robin over the peers) for `aud`, scope `private-federation`. Tokens are made distinct
//! by their `nbf` (mint time minus the token's index within its peer, in seconds); every token
//! expires an hour after minting.
//!
//! Writes `OUT/peers.json` (clusterUUID → `{"clusterUUID","authnKeyPub"}`, to merge into
//! remote-public-metadata.json) and `OUT/tokens.txt` (one token a line, in minting order, so
//! consecutive lines come from different peers).
//!
//! `cargo run --release --example mint_tokens -- OUT AUD COUNT PEERS`

use istio_hooks::domain::jwt::{Scope, Signer};
use istio_hooks::domain::pki;
use std::io::Write;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, aud, count, peers] = args.as_slice() else {
        anyhow::bail!("usage: mint_tokens OUT AUD COUNT PEERS");
    };
    let out = std::path::Path::new(out);
    let count: usize = count.parse()?;
    let peers: usize = peers.parse::<usize>()?.max(1);
    let now = chrono::Utc::now();
    let hour = 3600;

    let mut keys = serde_json::Map::new();
    let mut signers = Vec::new();
    for p in 0..peers {
        let uuid = format!("00000000-0000-0000-0001-{p:012x}");
        let (private, public) = pki::generate_ed25519_keypair()?;
        keys.insert(
            uuid.clone(),
            serde_json::json!({"clusterUUID": uuid, "authnKeyPub": public}),
        );
        signers.push((uuid, Signer::from_pem(&private)?));
    }
    std::fs::write(out.join("peers.json"), serde_json::to_vec(&keys)?)?;

    // Each peer's share is signed on its own thread (the box has few cores; minting is not
    // measured but should not take long either).
    let per_peer: Vec<Vec<String>> = std::thread::scope(|s| {
        let workers: Vec<_> = signers
            .iter()
            .enumerate()
            .map(|(p, (uuid, signer))| {
                let n = count / peers + usize::from(p < count % peers);
                s.spawn(move || {
                    (0..n)
                        .map(|i| {
                            let back = i as i64;
                            let nbf = now - chrono::Duration::seconds(back);
                            let ttl = Duration::from_secs((back + hour) as u64);
                            signer.sign_with_ttl(
                                uuid,
                                aud,
                                Scope::PrivateFederation.as_str(),
                                nbf,
                                ttl,
                            )
                        })
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("minting thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;

    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("tokens.txt"))?);
    let longest = per_peer.iter().map(Vec::len).max().unwrap_or(0);
    let mut written = 0usize;
    let mut seen = std::collections::HashSet::with_capacity(count);
    for i in 0..longest {
        for tokens in &per_peer {
            if let Some(t) = tokens.get(i) {
                anyhow::ensure!(seen.insert(t.as_str()), "duplicate token minted");
                writeln!(file, "{t}")?;
                written += 1;
            }
        }
    }
    file.flush()?;
    eprintln!("minted {written} distinct tokens from {peers} peers");
    Ok(())
}
