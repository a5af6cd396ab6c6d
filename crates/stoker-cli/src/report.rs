//! `stoker report RUN_DIR` and `stoker compare RUN_DIR... [--output FILE]`.

use std::path::{Path, PathBuf};

use crate::EXIT_BAD_INPUT;

fn check_dir(dir: &Path) -> Result<(), i32> {
    if dir.is_dir() {
        return Ok(());
    }
    eprintln!(
        "error: {} is not a directory\n hint: give a run directory, e.g. runs/quickstart/version_0",
        dir.display()
    );
    Err(EXIT_BAD_INPUT)
}

/// Regenerates the run's `report.html` and `plots/*.png`.
pub fn report(dir: &Path) -> i32 {
    if let Err(code) = check_dir(dir) {
        return code;
    }
    match stoker_report::write_report(dir) {
        Ok(written) => {
            println!("stoker: report with {} plot(s) written", written.pngs.len());
            println!("{}", written.html.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_BAD_INPUT
        }
    }
}

/// Writes one page overlaying the runs' curves and final metrics.
pub fn compare(dirs: &[PathBuf], output: &Path) -> i32 {
    for dir in dirs {
        if let Err(code) = check_dir(dir) {
            return code;
        }
    }
    match stoker_report::write_comparison(dirs, output) {
        Ok(()) => {
            println!("stoker: {} runs compared", dirs.len());
            println!("{}", output.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_BAD_INPUT
        }
    }
}
