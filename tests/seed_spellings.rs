//! PHM-Vibench's trainer block (seed 002) as its documentation writes it: each key maps to
//! stoker's own, the run log lists the mapping, and keys with no meaning here are refused with
//! the reason and the fix.

mod common;

use common::{Scratch, csv_rows, tensor_f32, train_ok};

const EXPERIMENT: &str = "\
name: phm
environment: {seed: 5, output_dir: out}
data: {name: SyntheticClassification, args: {n_samples: 400, n_features: 8, n_classes: 3, separation: 2.0, test_fraction: 0.2, batch_size: 40}}
model: {name: MLP, args: {sizes: [8, 32, 3]}}
loss: cross_entropy
metrics: [accuracy]
optimizer: {name: adam, args: {lr: 0.01}}
";

/// Seed 002's \"Basic Trainer Setup\", its checkpointing, early-stopping and pruning blocks,
/// word for word (comments included).
const PHM_TRAINER: &str = r#"
trainer:
  name: "Default_trainer"
  
  args:
    # Training duration
    num_epochs: 100
    max_steps: -1              # Use epochs instead
    
    # Hardware configuration
    gpus: 1
    accelerator: "gpu"         # "gpu", "cpu", "tpu"
    strategy: "auto"           # DDP strategy
    
    # Precision and performance
    mixed_precision: true      # 16-bit training
    gradient_clip_val: 1.0     # Gradient clipping
    accumulate_grad_batches: 1 # Gradient accumulation
    
    # Validation
    check_val_every_n_epoch: 1
    val_check_interval: 1.0    # Check validation every epoch
    
    # Checkpointing
    enable_checkpointing: true
    save_top_k: 3
    monitor_metric: "val_loss"
    mode: "min"
    
    # Early stopping
    early_stopping: true
    patience: 15
    min_delta: 0.001
    
    # Pruning
    pruning: true
    pruning_amount: 0.2
    pruning_method: "l1_unstructured"
    
    # Logging
    log_every_n_steps: 50
    enable_progress_bar: true
"#;

#[test]
fn phm_vibenchs_trainer_block_trains_as_written() {
    let scratch = Scratch::new("phm-block");
    // Four epochs instead of the block's 100, through its own key.
    let (run_dir, run) = train_ok(
        &scratch,
        &format!("{EXPERIMENT}{PHM_TRAINER}"),
        &["trainer.args.num_epochs=4"],
    );
    for line in [
        "num_epochs: 4 -> max_epochs: 4",
        "max_steps: -1 -> no step limit",
        "gpus: 1 -> devices: 1",
        "accelerator: gpu -> environment.device: auto",
        "save_top_k, monitor_metric, mode -> callbacks: ModelCheckpoint {monitor: val_loss, mode: min, save_top_k: 3}",
        "early_stopping: true -> callbacks: EarlyStopping {monitor: val_loss, mode: min, patience: 15, min_delta: 0.001}",
        "pruning: true -> callbacks: ModelPruning {pruning_fn: l1_unstructured, amount: 0.2, scope: global}",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing `{line}` in:\n{}",
            run.stdout
        );
        let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
        assert!(log.contains(line), "the run log lacks `{line}`");
    }
    // The run did what the block asks: 4 epochs, mixed precision, the top 3 checkpoints by
    // val_loss, and weights pruned at each epoch (1 - 0.8^4 of them by the end).
    let epochs = csv_rows(&run_dir)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .count();
    assert_eq!(epochs, 4);
    assert!(run.stdout.contains("bf16-mixed"), "{}", run.stdout);
    let config = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    for key in [
        "max_epochs: 4",
        "ModelCheckpoint",
        "EarlyStopping",
        "ModelPruning",
    ] {
        assert!(config.contains(key), "config.yaml lacks {key}:\n{config}");
    }
    let checkpoints: Vec<_> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("epoch="))
        .collect();
    assert_eq!(checkpoints.len(), 3, "{checkpoints:?}");
    let weights = tensor_f32(
        &run_dir.join("checkpoints").join(&checkpoints[0]),
        "layers.0.weight",
    );
    let zeros = weights.iter().filter(|w| **w == 0.0).count() as f64 / weights.len() as f64;
    assert!(zeros > 0.3, "{zeros}");
}

#[test]
fn the_flat_block_beside_the_name_is_read_too() {
    // The seed's first example writes the keys beside `name`, without `args`.
    let scratch = Scratch::new("phm-flat");
    let text = format!(
        "{EXPERIMENT}trainer:\n  name: \"Default_trainer\"\n  num_epochs: 100\n  gpus: 1\n  accelerator: \"gpu\"\n  strategy: \"auto\"\n  mixed_precision: true\n  gradient_clip_val: 1.0\n  accumulate_grad_batches: 1\n  check_val_every_n_epoch: 1\n  enable_checkpointing: true\n  save_top_k: 3\n"
    );
    let config = scratch.write("exp.yaml", &text);
    let check = scratch.stoker(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    for line in [
        "trainer.num_epochs -> trainer.args.num_epochs",
        "num_epochs: 100 -> max_epochs: 100",
        "callbacks: ModelCheckpoint {monitor: val_loss, mode: min, save_top_k: 3}",
    ] {
        assert!(
            check.stdout.contains(line),
            "missing `{line}`:\n{}",
            check.stdout
        );
    }
}

#[test]
fn keys_without_meaning_here_are_refused_with_the_reason() {
    let scratch = Scratch::new("phm-refused");
    for (args, key, says) in [
        (
            "{accelerator: tpu}",
            "trainer.args.accelerator",
            "libtorch on the CPU or on CUDA",
        ),
        (
            "{gpus: [2, 3]}",
            "trainer.args.gpus",
            "CUDA_VISIBLE_DEVICES",
        ),
        (
            "{resume_from_checkpoint: last.ckpt}",
            "trainer.args.resume_from_checkpoint",
            "--resume last.ckpt",
        ),
        (
            "{patience: 5}",
            "trainer.args.patience",
            "early_stopping: true",
        ),
        (
            "{pruning: true, pruning_method: random_unstructured}",
            "trainer.args.pruning_method",
            "l1_unstructured",
        ),
        (
            "{num_epochs: 5, max_epochs: 6}",
            "trainer.args.num_epochs",
            "keep one",
        ),
        (
            "{profiler: pytorch}",
            "trainer.args.profiler",
            "step_profile_us",
        ),
    ] {
        let config = scratch.write(
            "exp.yaml",
            &format!("{EXPERIMENT}trainer: {{name: Default_trainer, args: {args}}}\n"),
        );
        let check = scratch.stoker(&["check", config.to_str().unwrap()]);
        assert_eq!(check.code, 2, "{args}: {}", check.stdout);
        assert!(
            check.stderr.contains(key)
                && check.stderr.contains(says)
                && check.stderr.contains("exp.yaml"),
            "{args}: {}",
            check.stderr
        );
    }
}

#[test]
fn a_trainers_own_argument_is_never_taken_for_phm_vibenchs() {
    // ProgressiveResizing_trainer has a `mode` of its own (crop, resample, subsample): it stays
    // the trainer's, and the checkpoint's mode is PHM-Vibench's default, min.
    let scratch = Scratch::new("phm-own");
    let config = scratch.write(
        "exp.yaml",
        &format!(
            "{EXPERIMENT}trainer: {{name: ProgressiveResizing_trainer, args: {{num_epochs: 2, mode: crop, schedule: [[0, 8]], save_top_k: 2}}}}\n"
        ),
    );
    let check = scratch.stoker(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(
            "save_top_k -> callbacks: ModelCheckpoint {monitor: val_loss, mode: min, save_top_k: 2}"
        ),
        "{}",
        check.stdout
    );
}
