//! `istio-hooks api-proxy` (SPEC §6.2).

/// Flags of the api-proxy.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub fn main(_args: Args) -> Result<(), String> {
    Err("api-proxy: not implemented yet".into())
}
