//! Named test sets (`test: {a: a.npz, b: b.npz}`): `test_after_fit` evaluates each and logs it as
//! `test_<name>_<metric>`, `eval --split test_<name>` evaluates one, and a plain `--split test`
//! says which names there are.

mod common;

use common::{Scratch, npz, summary, train_ok};

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
