//! medpick's one integration-test binary: `mod` per area.

mod cli;
mod cli_bench;
mod common;
mod composable;
mod csv_files;
mod device;
mod hostile;
mod io;
mod kernels;
mod models;
mod select;
mod select_check;
mod select_exact;
mod serve;
mod shaders;
mod shards;
mod stow;
mod train;
mod train_seg;
mod weights;

/// The LiteMedSAM weights path, or None (after printing why) unless REQUIRE_WEIGHTS=1.
pub fn models_available() -> Option<std::path::PathBuf> {
    match medpick_core::io::weights::default_litemedsam_path() {
        Ok(p) => Some(p),
        Err(e) => {
            if std::env::var("REQUIRE_WEIGHTS").is_ok_and(|v| v == "1") {
                panic!("{e}");
            }
            eprintln!("skipped: {e}");
            None
        }
    }
}
