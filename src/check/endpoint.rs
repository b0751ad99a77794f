//! Section "endpoint URL": the endpoint is an https URL with a host and no query.

use super::Report;

/// Endpoint URL: https (as the hooks require), a host, no query. Returns the base
/// without trailing `/`.
pub(super) fn check(r: &mut Report, endpoint: &str) -> Option<String> {
    const NAME: &str = "endpoint URL";
    const HINT: &str = "use the peer's spec.metadataEndpoint, e.g. https://istio-metadata.<peer public domain>/metadata/";
    let url = r.or_fail(
        NAME,
        url::Url::parse(endpoint),
        |e| format!("{endpoint:?} is not a URL: {e}"),
        HINT,
    )?;
    if url.host_str().is_none_or(str::is_empty) {
        r.fail(NAME, format!("{endpoint:?} has no host"), HINT);
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        r.fail(NAME, format!("{endpoint:?} has a query or fragment"), HINT);
        return None;
    }
    let base = endpoint.trim_end_matches('/').to_owned();
    match url.scheme() {
        "https" => r.pass(NAME, format!("{base} (https)")),
        "http" => {
            r.fail(
                NAME,
                format!("{base} is plain http: metadata carries trust roots and must not travel in clear text"),
                "the hooks refuse non-https endpoints (FetchFailed): publish the exporter through an HTTPS ingress and use its https:// URL",
            );
            return None;
        }
        other => {
            r.fail(NAME, format!("scheme {other:?} is not https"), HINT);
            return None;
        }
    }
    if !base.ends_with("/metadata") {
        r.warn(
            NAME,
            format!("{base} does not end in /metadata"),
            Some("the exporter serves under /metadata/; a different path works only behind a rewriting ingress"),
        );
    }
    Some(base)
}
