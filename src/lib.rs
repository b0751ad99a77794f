//! istio-hooks: Istio federation and multicluster for Deckhouse-style clusters, in one binary —
//! five shell-operator/addon-operator hooks, the metadata-exporter and api-proxy servers, and
//! the operator diagnostic `check`.
//!
//! Layout: [`runtime`] speaks the hook protocol and knows nothing of federation; [`hooks`] holds
//! one module per hook and the registry; [`domain`] holds the types and rules hooks and servers
//! share; [`net`] is the outbound HTTPS client; [`par`] shares pure per-item work over the cores; [`servers`] holds the two HTTP servers; [`tls`]
//! builds the OpenSSL contexts of both; [`check`] is the operator's diagnostic; [`cli`] maps
//! the command line onto them.

pub mod check;
pub mod cli;
pub mod domain;
pub mod hooks;
pub mod net;
pub mod par;
pub mod runtime;
pub mod servers;
pub mod tls;
