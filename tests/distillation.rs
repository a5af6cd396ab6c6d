//! `Distillation_trainer` end to end: a teacher run, a student distilled from it, `eval` through
//! the trainer's validation step, and a resume refused when the teacher changed.

mod common;

use common::{Scratch, csv_rows, summary, train_ok};

const DATA: &str = "\
environment: {seed: 7, device: cpu, output_dir: out}
data: {name: SyntheticClassification, args: {n_samples: 600, n_features: 8, n_classes: 3, separation: 2.0, test_fraction: 0.2, batch_size: 50}}
metrics: [accuracy]
optimizer: {name: adam, args: {lr: 0.01}}
callbacks: [{name: ModelCheckpoint, args: {monitor: val_accuracy, mode: max, save_last: true}}]
";

const TEACHER_MODEL: &str = "{name: MLP, args: {sizes: [8, 32, 32, 3], dropout: 0.2}}";

fn teacher() -> String {
    format!(
        "name: teacher\n{DATA}model: {TEACHER_MODEL}\nloss: cross_entropy\n\
         trainer: {{name: Default_trainer, args: {{max_epochs: 4}}}}\n"
    )
}

/// A student of `model` distilled from the runs of `teacher` under `out/`.
fn student(model: &str, epochs: usize) -> String {
    format!(
        "name: student\n{DATA}model: {model}\n\
         loss: {{name: distillation, args: {{temperature: 2.0, alpha: 0.5}}}}\n\
         trainer: {{name: Distillation_trainer, args: {{max_epochs: {epochs}, teacher: out/teacher, test_after_fit: true}}}}\n"
    )
}

#[test]
fn a_student_learns_from_a_frozen_teacher_run() {
    let scratch = Scratch::new("distill");
    let (teacher_run, _) = train_ok(&scratch, &teacher(), &[]);
    let (student_run, run) = train_ok(
        &scratch,
        &student("{name: MLP, args: {sizes: [8, 8, 3]}}", 6),
        &[],
    );
    assert!(
        run.stdout.contains("Distillation_trainer: teacher MLP"),
        "{}",
        run.stdout
    );
    // Both terms of the distillation loss are logged, and the student learns.
    let rows = csv_rows(&student_run);
    let last = rows
        .iter()
        .rev()
        .find(|r| r.contains_key("val_loss"))
        .unwrap();
    for key in [
        "train_loss_soft",
        "train_loss_hard",
        "val_loss_soft",
        "val_loss_hard",
    ] {
        assert!(last.contains_key(key), "{key}: {last:?}");
    }
    let accuracy = summary(&student_run)["test_metrics"]["test_accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("{}", summary(&student_run)));
    assert!(accuracy > 0.6, "{accuracy}");

    // The teacher's own weights as the student: the teacher's scores are that checkpoint's in
    // evaluation mode, so the soft term (the KL divergence) vanishes, and `eval` runs the
    // trainer's validation step, which adds them.
    let twin = scratch.write("twin.yaml", &student(TEACHER_MODEL, 1));
    let checkpoint = teacher_run.join("checkpoints").join("last.safetensors");
    let eval = scratch.stoker(&[
        "eval",
        twin.to_str().unwrap(),
        "--ckpt",
        checkpoint.to_str().unwrap(),
        "--json",
    ]);
    eval.expect_code(0);
    // The last line is the JSON (the build's notes come before it).
    let json = eval.stdout.trim().lines().last().unwrap_or_default();
    let values: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {}", eval.stdout));
    let soft = values["val_loss_soft"].as_f64().unwrap();
    let hard = values["val_loss_hard"].as_f64().unwrap();
    assert!(soft.abs() < 1e-5, "{values}");
    assert!(hard > 0.0, "{values}");

    // Another teacher run (a newer version under out/teacher) refuses the student's resume.
    train_ok(&scratch, &teacher(), &["trainer.args.max_epochs=1"]);
    let config = scratch.write(
        "exp.yaml",
        &student("{name: MLP, args: {sizes: [8, 8, 3]}}", 8),
    );
    let last = student_run.join("checkpoints").join("last.safetensors");
    let resumed = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--resume",
        last.to_str().unwrap(),
    ]);
    assert_ne!(resumed.code, 0, "{}", resumed.stdout);
    assert!(
        resumed.stderr.contains("the teacher's weights differ"),
        "{}",
        resumed.stderr
    );
}

#[test]
fn a_missing_teacher_is_refused_before_training() {
    let scratch = Scratch::new("distill-missing");
    let config = scratch.write(
        "exp.yaml",
        &student("{name: MLP, args: {sizes: [8, 4, 3]}}", 1),
    );
    let check = scratch.stoker(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("trainer.args.teacher"),
        "{}",
        check.stderr
    );
    assert!(check.stderr.contains("out/teacher"), "{}", check.stderr);
}
