//! The learning-rate finder: `stoker lr-find` writes the curve and a suggestion in the steep
//! part of it; `trainer.args.auto_lr_find` trains with the suggestion from the initial weights
//! (the same run as setting that rate by hand), keeps it in config.yaml and on resume, and
//! plots the curve in the report.

mod common;

use std::path::Path;

use common::{SMALL, Scratch, quickstart, train_ok};

/// The `lr` of the rows of `lr_find.csv` and the suggested one.
fn curve(dir: &Path) -> (Vec<f64>, Option<f64>) {
    let text = std::fs::read_to_string(dir.join("lr_find.csv")).expect("lr_find.csv");
    let mut lrs = Vec::new();
    let mut suggested = None;
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let lr: f64 = cells[1].parse().unwrap();
        if cells[4] == "1" {
            suggested = Some(lr);
        }
        lrs.push(lr);
    }
    (lrs, suggested)
}

#[test]
fn lr_find_writes_the_curve_and_suggests_a_rate_where_the_loss_falls() {
    let scratch = Scratch::new("lr-find");
    let run = scratch.stoker(&[
        "lr-find",
        quickstart().to_str().unwrap(),
        "--set",
        "environment.output_dir=out",
    ]);
    run.expect_code(0);
    let dir = scratch.dir.join("out/quickstart/lr_find");
    assert_eq!(run.stdout.lines().last(), Some("out/quickstart/lr_find"));
    let (lrs, suggested) = curve(&dir);
    // 100 rates from 1e-8 up, growing by 10^0.08 a step; the test stops once the loss of the
    // quickstart's MLP diverges (above 0.1).
    assert!(lrs.len() > 50 && lrs.len() <= 100, "{} steps", lrs.len());
    assert_eq!(lrs[0], 1e-8);
    assert!(lrs.windows(2).all(|w| w[1] > w[0]), "rising rates");
    // The quickstart trains well at 3e-3 (its config): the steepest descent lies in the decade
    // around it, not among the first tiny rates (Lightning 2.x's bug, fixed here).
    let lr = suggested.expect("a suggestion");
    assert!((1e-4..1e-1).contains(&lr), "suggested {lr}");
    assert!(run.stderr.contains("suggested learning rate") || run.stdout.contains("suggested"));
    assert!(dir.join("lr_find.html").is_file() && dir.join("lr_find.png").is_file());
    assert!(
        !scratch.dir.join("out/quickstart/version_0").exists(),
        "the range test leaves no run behind"
    );
}

#[test]
fn auto_lr_find_trains_from_the_initial_weights_with_the_suggestion_and_resumes_with_it() {
    let scratch = Scratch::new("auto-lr-find");
    let config =
        format!("{SMALL}callbacks: [{{name: ModelCheckpoint, args: {{save_last: true}}}}]\n");
    let auto = "trainer.args.auto_lr_find={num_training: 40, min_lr: 1.0e-6}";
    let (run_dir, run) = train_ok(&scratch, &config, &[auto]);
    assert!(
        run.stdout.contains("learning-rate finder: 40 steps")
            || run.stdout.contains("learning-rate finder:"),
        "{}",
        run.stdout
    );
    let (lrs, suggested) = curve(&run_dir);
    assert!(lrs.len() > 12);
    let lr = suggested.expect("a suggestion");
    let resolved = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    let saved: serde_yaml::Value = serde_yaml::from_str(&resolved).unwrap();
    assert_eq!(
        saved["optimizer"]["args"]["lr"].as_f64(),
        Some(lr),
        "config.yaml keeps the rate"
    );
    assert_eq!(
        saved["trainer"]["args"]["auto_lr_find"],
        serde_yaml::Value::Bool(false)
    );
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(
        report.contains("learning-rate finder: suggested"),
        "the report plots the curve"
    );

    // The same run as setting the rate by hand: the finder left the initial weights alone.
    let by_hand = scratch.stoker(&[
        "train",
        scratch.path("exp.yaml").to_str().unwrap(),
        "--set",
        &format!("optimizer.args.lr={lr:e}"),
    ]);
    by_hand.expect_code(0);
    let by_hand_dir = by_hand.run_dir(&scratch.dir);
    assert_eq!(
        std::fs::read_to_string(by_hand_dir.join("metrics.csv")).unwrap(),
        std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap(),
        "auto_lr_find trains as the suggested rate set by hand"
    );

    // Training longer from its checkpoint keeps the rate, without a second range test.
    let resumed = scratch.stoker(&[
        "train",
        scratch.path("exp.yaml").to_str().unwrap(),
        "--set",
        auto,
        "--set",
        "trainer.args.max_epochs=4",
        "--resume",
        run_dir
            .join("checkpoints/last.safetensors")
            .to_str()
            .unwrap(),
    ]);
    resumed.expect_code(0);
    assert!(
        resumed
            .stdout
            .contains("resumes with the learning rate its finder chose"),
        "{}",
        resumed.stdout
    );
    assert!(
        !resumed.stdout.contains("learning-rate finder: up to"),
        "no second test"
    );
}

#[test]
fn lr_finder_mistakes_are_refused_before_anything_runs() {
    let scratch = Scratch::new("lr-find-bad");
    let config = scratch.write("exp.yaml", SMALL);
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "trainer.args.auto_lr_find={min_lr: 1.0, max_lr: 0.1}",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("auto_lr_find") && run.stderr.contains("max_lr"),
        "{}",
        run.stderr
    );
    assert!(!scratch.dir.join("out").exists());
}
