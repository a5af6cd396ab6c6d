//! A CSV file as a data source: columns stacked into a feature tensor, an integer label column.

mod common;

use common::{Scratch, summary_f64, train_ok};

#[test]
fn a_classifier_trains_on_csv_columns() {
    let scratch = Scratch::new("csv");
    // Two classes separated by the sign of f1 + f2; f3 is noise.
    let mut csv = String::from("f1,f2,f3,label\n");
    for i in 0..400 {
        let a = ((i * 37) % 101) as f64 / 50.0 - 1.0;
        let b = ((i * 53) % 97) as f64 / 48.0 - 1.0;
        let c = ((i * 17) % 89) as f64 / 44.0 - 1.0;
        let label = usize::from(a + b > 0.0);
        csv.push_str(&format!("{a},{b},{c},{label}\n"));
    }
    let file = scratch.write("features.csv", &csv);
    let config = format!(
        "name: csv
environment: {{seed: 1, device: cpu, output_dir: out}}
data:
  name: TensorFile
  args: {{train: {}, inputs: [x], targets: [label], columns: {{x: [f1, f2, f3]}}, val_fraction: 0.2, test_fraction: 0.2, batch_size: 32}}
model: {{name: MLP, args: {{sizes: [3, 16, 2]}}}}
loss: {{name: cross_entropy, args: {{target: label}}}}
metrics: [{{name: accuracy, args: {{target: label}}}}]
optimizer: {{name: adam, args: {{lr: 0.02}}}}
trainer: {{name: Default_trainer, args: {{max_epochs: 20, test_after_fit: true}}}}
",
        file.display()
    );
    let (run_dir, _) = train_ok(&scratch, &config, &[]);
    let accuracy = summary_f64(&run_dir, &["test_metrics", "test_accuracy"]);
    assert!(accuracy > 0.9, "test accuracy {accuracy}");

    // A group naming a missing column is refused with the file's columns.
    let bad = scratch.write("bad.yaml", &config.replace("[f1, f2, f3]", "[f1, f9]"));
    let check = scratch.stoker(&["check", bad.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("data.args.columns.x"),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains("f1, f2, f3, label"),
        "{}",
        check.stderr
    );
}
