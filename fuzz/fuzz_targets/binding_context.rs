//! Fuzz target: a binding-context file as addon-operator would write it, parsed and folded into
//! snapshots. Any input must end in `Ok` or a clear `Err`, never a panic or overflow.
#![no_main]
use istio_hooks::runtime::binding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(contexts) = binding::parse(data, "fuzz.json") {
        let snapshots = binding::fold(contexts);
        for binding in snapshots.bindings() {
            for item in snapshots.get(binding) {
                // What hooks do with every item: read it as JSON.
                let _ = item.get("metadata");
            }
        }
    }
});
