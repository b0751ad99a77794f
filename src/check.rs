//! `istio-hooks check`: an operator's diagnostic of a peer's metadata endpoint.

/// Flags of `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub fn main(_args: Args) -> Result<(), String> {
    Err("check: not implemented yet".into())
}
