//! `MultiTFR_trainer` with `MultiTFR_CNN` end to end: one loss per representation, weighted by
//! `tfr_weights` and logged, each branch's accuracy, and a weight for a branch the model lacks
//! refused with the names it has.

mod common;

use common::{Scratch, csv_rows, workspace};

/// `--set` pairs that make configs/bearing_multitfr.yaml small and quick.
fn small(scratch: &Scratch) -> Vec<String> {
    vec![
        "data.args.per_condition=1".into(),
        "data.args.length=512".into(),
        "model.args.channels=[4, 8]".into(),
        "trainer.args.max_epochs=2".into(),
        "trainer.args.test_after_fit=false".into(),
        format!("environment.output_dir={}", scratch.path("runs").display()),
        "environment.device=cpu".into(),
    ]
}

fn train(scratch: &Scratch, extra: &[&str]) -> common::Run {
    let config = workspace().join("configs/bearing_multitfr.yaml");
    let mut args = vec!["train".to_string(), config.display().to_string()];
    for set in small(scratch)
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
    {
        args.extend(["--set".to_string(), set]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    scratch.stoker(&args)
}

#[test]
fn each_representation_trains_on_its_own_weighted_loss() {
    let scratch = Scratch::new("multi-tfr");
    let run = train(
        &scratch,
        &["trainer.args.tfr_weights={stft: 1.0, morlet_cwt: 0.5, pseudo_wvd: 2.0}"],
    );
    run.expect_code(0);
    let rows = csv_rows(&run.run_dir(&scratch.dir));
    let epoch = rows
        .iter()
        .rev()
        .find(|r| r.contains_key("val_loss"))
        .unwrap();
    let value = |k: &str| -> f64 {
        epoch[k]
            .parse()
            .unwrap_or_else(|_| panic!("{k}: {epoch:?}"))
    };
    // The epoch's loss is the weighted sum of the branches' (each a mean over the same batches).
    for split in ["train", "val"] {
        let parts = value(&format!("{split}_loss_stft"))
            + 0.5 * value(&format!("{split}_loss_morlet_cwt"))
            + 2.0 * value(&format!("{split}_loss_pseudo_wvd"));
        let total = value(&format!("{split}_loss"));
        assert!(
            (total - parts).abs() <= 1e-4 * total,
            "{split}: {total} against {parts}"
        );
    }
    for branch in ["stft", "cwt", "wvd"] {
        let accuracy = value(&format!("val_accuracy_{branch}"));
        assert!((0.0..=1.0).contains(&accuracy), "{branch}: {accuracy}");
    }
}

#[test]
fn a_weight_for_a_branch_the_model_lacks_is_refused_with_those_it_has() {
    let scratch = Scratch::new("multi-tfr-missing");
    let run = train(
        &scratch,
        &[
            "model.args.transforms=[{name: stft}, {name: pseudo_wvd}]",
            "metrics=[accuracy]",
            "trainer.args.tfr_weights={stft: 1.0, morlet_cwt: 1.0}",
        ],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("tfr_weights names `morlet_cwt`")
            && run.stderr.contains("representations are: stft, pseudo_wvd"),
        "{}",
        run.stderr
    );
}
