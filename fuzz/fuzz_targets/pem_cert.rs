//! Fuzz target: PEM text as found in remote metadata (`rootCA`, `authnKeyPub`): certificate
//! parsing and Ed25519 key loading must refuse garbage with an error, never a panic.
#![no_main]
use istio_hooks::domain::pki;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(certs) = pki::parse_certificates(text) {
        for c in &certs {
            let _ = c.root_problem(chrono::Utc::now());
        }
    }
    let _ = pki::ed25519_public_key(text);
    let _ = pki::pem_bodies(text);
});
