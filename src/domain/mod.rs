//! Domain types shared by hooks and servers: metadata documents, validation of remote data,
//! the peer custom resources, JWT, PKI helpers and derived names.

pub mod crd;
pub mod jwt;
pub mod metadata;
pub mod names;
pub mod pki;
pub mod settings;
pub mod spiffe;
pub mod validate;
