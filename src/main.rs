//! Entry point: runs the command line, turning errors and panics into a non-zero exit with one
//! line on stderr.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        eprintln!("istio-hooks: internal error{place}: {msg}");
    }));
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("{e}");
            1
        }
        Err(_) => 2,
    };
    std::process::exit(code);
}

/// The command line. In debug builds only (those `cargo test` makes), a non-empty
/// `ISTIO_HOOKS_TEST_PANIC` panics first with its value, so that the path above is tested
/// through the binary; release builds hold no such trigger.
fn run() -> Result<(), String> {
    #[cfg(debug_assertions)]
    if let Some(msg) = std::env::var_os("ISTIO_HOOKS_TEST_PANIC").filter(|v| !v.is_empty()) {
        panic!("{}", msg.to_string_lossy());
    }
    istio_hooks::cli::main()
}
