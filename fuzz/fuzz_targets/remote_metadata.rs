//! Fuzz target: what a remote peer may send as public or private metadata, through the SPEC §5.3
//! validators. Any JSON must give a verdict, never a panic.
#![no_main]
use istio_hooks::domain::validate;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok((_, certs)) = validate::public_metadata_structure(&v) {
        let _ = validate::root_problems(&certs, chrono::Utc::now());
    }
    let _ = validate::federation_private(&v, "cluster.local");
    let _ = validate::multicluster_private(&v);
});
