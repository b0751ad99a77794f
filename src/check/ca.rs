//! Sections "CA file" and "TLS verification": `--ca` is readable and holds certificates, or
//! verification is off by `--insecure-skip-verify`.

use super::{Args, Report};
use crate::domain::pki;

/// `--ca`: readable and holding at least one certificate. `Some(None)` = no CA given.
pub(super) fn check(r: &mut Report, args: &Args) -> Option<Option<String>> {
    const NAME: &str = "CA file";
    let Some(path) = &args.ca else {
        if args.insecure_skip_verify {
            r.warn(
                "TLS verification",
                "disabled by --insecure-skip-verify: the peer is not authenticated".into(),
                Some("give the CA of the peer's ingress certificate with --ca (spec.metadata.ca)"),
            );
        }
        return Some(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.fail(
                NAME,
                format!("cannot read {}: {e}", path.display()),
                "pass a readable PEM file",
            );
            return None;
        }
    };
    match pki::parse_certificates(&text) {
        Ok(certs) => r.pass(
            NAME,
            format!("{}: {} certificate(s)", path.display(), certs.len()),
        ),
        Err(e) => {
            r.fail(
                NAME,
                format!("{}: {e}", path.display()),
                "the file must hold PEM CERTIFICATE blocks",
            );
            return None;
        }
    }
    if args.insecure_skip_verify {
        r.warn(
            NAME,
            "--insecure-skip-verify is ignored because --ca is given (as in the hooks)".into(),
            None,
        );
    }
    Some(Some(text))
}
