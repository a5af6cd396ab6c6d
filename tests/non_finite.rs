//! NaN does not go unnoticed: data modules refuse non-finite values where they load them
//! (unless `allow_non_finite`), and a non-finite training loss stops the run with a non-zero
//! exit, naming the steps, with no checkpoint of NaN weights written.

mod common;

use common::{Scratch, npz, tensor_f32};

/// 64 samples, sample 41 (in batch 5 of 8, unshuffled) with one NaN feature.
fn nan_data(scratch: &Scratch) {
    npz(
        scratch,
        "d",
        "x = rng.normal(size=(64, 4)).astype(np.float32)\nx[41, 2] = np.nan\narrays['x'] = x\narrays['y'] = x[:, :1].copy()\narrays['y'][41] = 0.0\n",
    );
}

const CONFIG: &str = "\
name: nan
environment: {seed: 0, device: cpu, output_dir: out}
data: {name: TensorFile, args: {train: d.npz, inputs: [x], targets: [y], batch_size: 8, shuffle: false}}
model: {name: MLP, args: {sizes: [4, 8, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 2, num_sanity_val_steps: 0}}
callbacks:
  - {name: ModelCheckpoint, args: {every_n_train_steps: 2, save_top_k: -1, filename: '{step}'}}
  - OnExceptionCheckpoint
";

#[test]
fn a_data_file_with_nan_is_refused_where_it_is_loaded() {
    let scratch = Scratch::new("nan-data");
    nan_data(&scratch);
    let config = scratch.write("c.yaml", CONFIG);
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(2);
    for expected in [
        "`d.npz`: tensor `x` holds NaN at sample 41, position [2]",
        "data.args.train",
        "allow_non_finite: true",
    ] {
        assert!(
            run.stderr.contains(expected),
            "`{expected}` missing:\n{}",
            run.stderr
        );
    }
    assert!(
        !scratch.path("out").exists(),
        "nothing is written for bad data"
    );
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_finite_checkpoint() {
    let scratch = Scratch::new("nan-loss");
    nan_data(&scratch);
    let config = scratch.write("c.yaml", CONFIG);
    let config = config.to_str().unwrap();
    let allow = "data.args.allow_non_finite=true";
    let run = scratch.stoker(&["train", config, "--set", allow]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Batch 5 is optimizer step 6; the count is read when step 6's checkpoint is due.
    assert!(
        run.stderr
            .contains("the training loss became NaN or infinite between steps 5 and 6 (epoch 0)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("out/nan/version_0/checkpoints/4.safetensors"),
        "{}",
        run.stderr
    );
    let checkpoints = scratch.path("out/nan/version_0/checkpoints");
    let mut names: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["2.safetensors", "4.safetensors"]);
    assert!(
        run.stdout
            .contains("not written: out/nan/version_0/checkpoints/on_exception.safetensors"),
        "{}",
        run.stdout
    );
    for name in &names {
        let weights = tensor_f32(&checkpoints.join(name), "layers.0.weight");
        assert!(weights.iter().all(|w| w.is_finite()), "{name}");
    }

    // detect_anomaly: the exact step, read every step.
    let exact = scratch.stoker(&[
        "train",
        config,
        "--set",
        allow,
        "--set",
        "trainer.args.detect_anomaly=true",
    ]);
    assert_eq!(exact.code, 1, "{}", exact.stderr);
    assert!(
        exact
            .stderr
            .contains("detect_anomaly: the loss is NaN at epoch 0, step 6, batch 5 of the epoch"),
        "{}",
        exact.stderr
    );
}
