//! Named test sets (`test: {a: a.npz, b: b.npz}`): `test_after_fit` evaluates each and logs it as
//! `test_<name>_<metric>`, `eval --split test_<name>` evaluates one, and a plain `--split test`
//! says which names there are. Named validation sets (`val: {a: a.npz, b: b.npz}`): each
//! validation logs every set as `val_<name>_<metric>` and `val_<metric>` over all of them.

mod common;

use common::{Scratch, csv_rows, npz, summary, train_ok};

fn config() -> String {
    "\
name: named
environment: {seed: 3, device: cpu, output_dir: out}
data:
  name: TensorFile
  args:
    train: train.npz
    val_fraction: 0.2
    test: {near: near.npz, far: far.npz}
    inputs: [x]
    targets: [y]
    normalize: {y: gaussian}
    batch_size: 32
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 3, test_after_fit: true}}
callbacks: [{name: ModelCheckpoint, args: {save_last: true}}]
"
    .to_string()
}

/// y = x . w + 5 on inputs around `center`: `far` lies outside the training inputs.
fn data(scratch: &Scratch) {
    for (name, n, center) in [("train", 320, 0.0), ("near", 64, 0.0), ("far", 48, 3.0)] {
        npz(
            scratch,
            name,
            &format!(
                "x = (rng.standard_normal(({n}, 4)) + {center}).astype(np.float32)\n\
                 arrays['x'] = x\n\
                 arrays['y'] = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 5).astype(np.float32)\n"
            ),
        );
    }
}

#[test]
fn each_named_test_set_is_evaluated_and_logged_by_name() {
    let scratch = Scratch::new("named-tests");
    data(&scratch);
    let (run_dir, run) = train_ok(&scratch, &config(), &[]);
    assert!(
        run.stdout.contains("test near (") && run.stdout.contains("test far ("),
        "{}",
        run.stdout
    );
    let metrics = &summary(&run_dir)["final_metrics"];
    let value = |key: &str| {
        metrics[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key}: {metrics}"))
    };
    let (near, far) = (value("test_near_mse"), value("test_far_mse"));
    assert!(metrics.get("test_mse").is_none(), "{metrics}");
    // Out of the training range the model is worse.
    assert!(far > near, "near {near}, far {far}");
    // `eval --split test_far` gives what test_after_fit logged (decoded, physical units).
    let config = scratch.path("exp.yaml");
    let last = run_dir.join("checkpoints/last.safetensors");
    let eval = scratch.stoker(&[
        "eval",
        config.to_str().unwrap(),
        "--ckpt",
        last.to_str().unwrap(),
        "--split",
        "test_far",
        "--json",
    ]);
    eval.expect_code(0);
    let json = eval.stdout.lines().last().unwrap();
    let values: serde_json::Value = serde_json::from_str(json).unwrap();
    let evaluated = values["test_far_mse"].as_f64().unwrap();
    assert!(
        (evaluated - far).abs() <= 1e-6 * far.max(1.0),
        "{evaluated} against {far}"
    );
    // A plain --split test names the sets there are.
    let plain = scratch.stoker(&[
        "eval",
        config.to_str().unwrap(),
        "--ckpt",
        last.to_str().unwrap(),
        "--split",
        "test",
    ]);
    assert_eq!(plain.code, 2);
    assert!(
        plain.stderr.contains("test_near | test_far"),
        "{}",
        plain.stderr
    );
}

#[test]
fn a_test_set_name_that_cannot_be_logged_is_refused() {
    let scratch = Scratch::new("named-tests-bad");
    data(&scratch);
    let text = config().replace("{near: near.npz, far: far.npz}", "{'near set': near.npz}");
    let config = scratch.write("exp.yaml", &text);
    let check = scratch.stoker(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("data.args.test")
            && check.stderr.contains("`near set` cannot name a test set"),
        "{}",
        check.stderr
    );
}

/// The named validation config: `near` and `far` validate, the best checkpoint is the one of the
/// lowest error on `far`, and there is no test split.
fn val_config(val: &str) -> String {
    config()
        .replace("    val_fraction: 0.2\n", &format!("    val: {val}\n"))
        .replace("    test: {near: near.npz, far: far.npz}\n", "")
        .replace("test_after_fit: true", "test_after_fit: false")
        .replace(
            "{name: ModelCheckpoint, args: {save_last: true}}",
            "{name: ModelCheckpoint, args: {save_last: true, monitor: val_far_mse, mode: min}}",
        )
}

/// The per-epoch values of `column` in a run's metrics.csv, as written.
fn column(run_dir: &std::path::Path, column: &str) -> Vec<String> {
    csv_rows(run_dir)
        .into_iter()
        .filter_map(|row| row.get(column).filter(|v| !v.is_empty()).cloned())
        .collect()
}

#[test]
fn each_named_validation_set_is_logged_by_name_and_val_covers_them_all() {
    let scratch = Scratch::new("named-vals");
    data(&scratch);
    let (run_dir, run) = train_ok(&scratch, &val_config("{near: near.npz, far: far.npz}"), &[]);
    assert!(
        run.stdout.contains("val near 64, val far 48"),
        "{}",
        run.stdout
    );
    let near = column(&run_dir, "val_near_mse");
    let far = column(&run_dir, "val_far_mse");
    let all = column(&run_dir, "val_mse");
    assert_eq!((near.len(), far.len(), all.len()), (3, 3, 3));
    // val_mse is over the 112 samples of both sets: the mean of squared errors weighted by the
    // sets' sizes (64 and 48).
    for ((n, f), a) in near.iter().zip(&far).zip(&all) {
        let (n, f, a): (f64, f64, f64) =
            (n.parse().unwrap(), f.parse().unwrap(), a.parse().unwrap());
        let union = (64.0 * n + 48.0 * f) / 112.0;
        assert!(
            (a - union).abs() <= 1e-5 * union,
            "val_mse {a}, from the sets {union}"
        );
        assert!(f > n, "far {f} near {n}");
    }
    // A set validated alone gives the same values, to the last digit: the same batches.
    let alone = Scratch::new("named-vals-alone");
    data(&alone);
    let (alone_dir, _) = train_ok(
        &alone,
        &val_config("near.npz").replace("monitor: val_far_mse", "monitor: val_mse"),
        &[],
    );
    assert_eq!(column(&alone_dir, "val_mse"), near);
    // Read in place from the files, the sets validate the same.
    let in_place = Scratch::new("named-vals-in-place");
    data(&in_place);
    let (in_place_dir, _) = train_ok(
        &in_place,
        &val_config("{near: near.npz, far: far.npz}").replace(
            "    batch_size: 32\n",
            "    batch_size: 32\n    in_memory: false\n",
        ),
        &[],
    );
    for name in ["val_near_mse", "val_far_mse", "val_mse"] {
        assert_eq!(
            column(&in_place_dir, name),
            column(&run_dir, name),
            "{name}"
        );
    }
    // The best checkpoint is the one of the lowest `val_far_mse`.
    let rows: Vec<_> = csv_rows(&run_dir)
        .into_iter()
        .filter(|row| row.get("val_far_mse").is_some_and(|v| !v.is_empty()))
        .collect();
    let value = |row: &std::collections::BTreeMap<String, String>| -> f64 {
        row["val_far_mse"].parse().unwrap()
    };
    let best_epoch = &rows
        .iter()
        .min_by(|a, b| value(a).total_cmp(&value(b)))
        .unwrap()["epoch"];
    let best = summary(&run_dir)["best_checkpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(best.contains(&format!("epoch={best_epoch}-")), "{best}");
    // `eval --split val` gives every set and the union; `--split val_far` the one set.
    let config = scratch.path("exp.yaml");
    let last = run_dir.join("checkpoints/last.safetensors");
    let eval = |split: &str| {
        let run = scratch.stoker(&[
            "eval",
            config.to_str().unwrap(),
            "--ckpt",
            last.to_str().unwrap(),
            "--split",
            split,
            "--json",
        ]);
        run.expect_code(0);
        let values: serde_json::Value =
            serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
        values
    };
    let every = eval("val");
    for (key, logged) in [
        ("val_near_mse", &near),
        ("val_far_mse", &far),
        ("val_mse", &all),
    ] {
        let value = every[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {every}"));
        let last: f64 = logged.last().unwrap().parse().unwrap();
        assert!(
            (value - last).abs() <= 1e-6 * last,
            "{key}: {value} against {last}"
        );
    }
    let one = eval("val_far");
    assert_eq!(one["val_far_mse"], every["val_far_mse"], "{one}");
    assert!(one.get("val_mse").is_none(), "{one}");
    // A monitor that names no set is refused with the names the run logs.
    let typo = val_config("{near: near.npz, far: far.npz}").replace("val_far_mse", "val_farr_mse");
    let config = scratch.write("typo.yaml", &typo);
    let check = scratch.stoker(&["train", config.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("val_farr_mse") && check.stderr.contains("val_near_mse"),
        "{}",
        check.stderr
    );
}
