//! `stoker lr-find CONFIG [--set K=V]...` (`cargo xtask lr-find`): the learning-rate finder on
//! its own. The curve goes to `<output_dir>/<name>/lr_find/` (lr_find.csv, lr_find.html and
//! lr_find.png), and the suggestion is printed with the command that trains with it.

use std::path::Path;

use stoker::console;
use stoker::tuning::LrFindArgs;
use stoker_run::train::RunError;

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Runs the finder; the exit code.
pub fn lr_find(config: &Path, sets: &[String], args: LrFindArgs) -> i32 {
    if let Some(problem) = args.problem() {
        eprintln!("error: lr-find: {problem}");
        return EXIT_BAD_INPUT;
    }
    let experiment = match stoker_run::assemble::load(config, sets) {
        Ok(experiment) => experiment,
        Err(error) => {
            eprintln!("{error}");
            return EXIT_BAD_INPUT;
        }
    };
    let found = match stoker_run::tuner::lr_find::find(config, sets, &args) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("{error}");
            return match error {
                RunError::BadInput(_) => EXIT_BAD_INPUT,
                _ => EXIT_FAILED,
            };
        }
    };
    let dir = experiment
        .environment
        .output_dir
        .join(&experiment.name)
        .join("lr_find");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("lr_find.csv"), found.csv()))
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))
        .and_then(|()| stoker_report::lr_find::write_page(&dir));
    if let Err(error) = written {
        eprintln!("error: {error}");
        return EXIT_FAILED;
    }
    console::note(found.describe());
    if let Some(lr) = found.lr() {
        console::note(format!(
            "train with it: cargo xtask train {} --set optimizer.args.lr={lr:e}   (or set trainer.args.auto_lr_find: true)",
            config.display()
        ));
    }
    println!("{}", dir.display());
    0
}
