//! `cargo xtask gpu-pack`: the folder taken to a GPU machine holds a binary that runs from
//! there against the torch it is given, and its check script runs every step (here on the CPU,
//! briefly: `DEVICE=cpu QUICK=1`).

mod common;

use std::process::Command;

use common::{Scratch, workspace};

#[test]
fn the_gpu_check_packs_and_runs_from_its_folder() {
    let scratch = Scratch::new("gpu-pack");
    let pack = scratch.path("pack");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let packed = Command::new(cargo)
        .current_dir(workspace())
        .args(["xtask", "gpu-pack"])
        .arg(&pack)
        .output()
        .expect("cargo xtask gpu-pack runs");
    let stdout = String::from_utf8_lossy(&packed.stdout);
    assert!(
        packed.status.success() && stdout.contains("packed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    for file in [
        "stoker",
        "xtask",
        "run.sh",
        "compare.py",
        "configs/quickstart.yaml",
        "data/fno/darcy_train_16.npz",
        "bench/reference/common.py",
    ] {
        assert!(pack.join(file).is_file(), "the pack holds {file}");
    }

    // Run from the pack with nothing of this checkout on the library path: the torch comes
    // from TORCH_VENV, as /opt/torch/.venv on the GPU machine.
    let venv = std::env::var("VIRTUAL_ENV").expect("cargo xtask test names torch's venv");
    let out = scratch.path("out");
    let run = Command::new("bash")
        .arg(pack.join("run.sh"))
        .current_dir(&scratch.dir)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("STOKER_BIN")
        .envs([
            ("DEVICE", "cpu"),
            ("QUICK", "1"),
            ("TORCH_VENV", venv.as_str()),
        ])
        .env("OUT", &out)
        .output()
        .expect("run.sh runs");
    let steps = std::fs::read_to_string(out.join("steps.txt")).unwrap_or_default();
    assert!(
        run.status.success(),
        "{steps}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<&str> = steps.lines().collect();
    assert!(lines.len() >= 7, "every step ran: {steps}");
    for line in &lines {
        assert!(line.contains("exit=0"), "{line}\n{steps}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("| quickstart-cpu-bf16-mixed |"),
        "{summary}"
    );
    assert!(summary.contains("val_mse"), "{summary}");
    // One rank through the launcher and the ddp strategy trains the single process's run, to
    // the last digit (a relative difference of exactly 0 prints as +0%).
    let ddp = summary
        .lines()
        .find(|l| l.starts_with("| quickstart-cpu-ddp |"))
        .unwrap_or_else(|| panic!("no ddp run: {summary}"));
    let compared = ddp.matches("%)").count();
    let same = ddp.matches(", +0%)").count();
    assert!(compared > 0 && same == compared, "{ddp}");
    assert!(
        summary.contains("| bearing_cnn-cpu-ddp-sync_batchnorm |"),
        "{summary}"
    );
    let bench = std::fs::read_to_string(out.join("bench.log")).unwrap();
    assert!(
        bench.contains("| mlp |") && bench.contains("| decoder |"),
        "{bench}"
    );
}
