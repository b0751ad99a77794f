//! The two HTTP servers: the metadata-exporter (what peers fetch) and the api-proxy (what remote
//! istiods read the local apiserver through), plus what they share: the hardened listener
//! (`serve`), the bearer check (`auth`) and hot-reloaded files (`datadir`). Their TLS acceptors
//! come from [`crate::tls`].

pub mod api_proxy;
pub mod auth;
pub mod datadir;
pub mod exporter;
pub mod serve;
