//! `istio-hooks metadata-exporter` (SPEC §6.1).

/// Flags of the metadata-exporter.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory holding local-metadata.json and remote-public-metadata.json.
    #[arg(long)]
    pub data_dir: std::path::PathBuf,
}

pub fn main(_args: Args) -> Result<(), String> {
    Err("metadata-exporter: not implemented yet".into())
}
