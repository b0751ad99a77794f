//! The two HTTP servers: the metadata-exporter (what peers fetch) and the api-proxy (what remote
//! istiods read the local apiserver through).

pub mod api_proxy;
pub mod exporter;
