//! Sections "CA file" and "TLS verification": `--ca` is readable and holds certificates, or
//! verification is off by `--insecure-skip-verify`.

use super::conn::read_pem_file;
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
    let text = read_pem_file(r, NAME, path)?;
    let certs = r.or_fail(
        NAME,
        pki::parse_certificates(&text),
        |e| format!("{}: {e}", path.display()),
        "the file must hold PEM CERTIFICATE blocks",
    )?;
    r.pass(
        NAME,
        format!("{}: {} certificate(s)", path.display(), certs.len()),
    );
    if args.insecure_skip_verify {
        r.warn(
            NAME,
            "--insecure-skip-verify is ignored because --ca is given (as in the hooks)".into(),
            None,
        );
    }
    Some(Some(text))
}
