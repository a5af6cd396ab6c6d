//! The progress bar on a terminal: `script` gives the run a pseudo-terminal, as a person's
//! shell would, and records what the terminal received.

mod common;

use std::process::Command;

use common::{SMALL, Scratch};

#[test]
fn a_terminal_gets_a_live_progress_bar_and_a_pipe_gets_plain_lines() {
    let scratch = Scratch::new("progress");
    let config = scratch.write(
        "exp.yaml",
        &SMALL.replace(
            "args: {max_epochs: 3}",
            "args: {max_epochs: 3, progress_bar_metrics: [mse]}",
        ),
    );
    let inner = format!(
        "{} train {} --set data.args.n_samples=20000",
        common::stoker_bin().display(),
        config.display()
    );
    let output = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(&scratch.dir)
        .env("OMP_NUM_THREADS", "1")
        .env("COLUMNS", "160")
        .output()
        .expect("`script` (util-linux) runs");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    // The bar redraws in place (carriage return / cursor codes), counts steps of the epoch's
    // total, and shows the rate, the live loss, the chosen metric and the LR.
    assert!(
        terminal.contains('\x1b'),
        "no control codes on a terminal:\n{terminal}"
    );
    assert!(terminal.contains("/500"), "no step / total:\n{terminal}");
    assert!(terminal.contains("it/s"), "no rate:\n{terminal}");
    for part in ["epoch 1/3", "loss ", "lr "] {
        assert!(terminal.contains(part), "no `{part}`:\n{terminal}");
    }
    // The finished epoch still leaves its plain summary line.
    assert!(terminal.contains("val_loss"), "{terminal}");

    // The same run through a pipe: plain lines, no control codes.
    let piped = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "data.args.n_samples=20000",
    ]);
    piped.expect_code(0);
    assert!(!piped.stdout.contains('\x1b') && !piped.stdout.contains('\r'));
    assert_eq!(
        piped
            .stdout
            .lines()
            .filter(|l| l.starts_with("epoch "))
            .count(),
        3,
        "{}",
        piped.stdout
    );
}
