//! Data held in memory and data read in place from its files (`data.args.in_memory`), with
//! folders of shards and data workers: the same data trains the same run every way; files that
//! cannot be read in place, or shards that disagree, are refused before training, naming the file.

mod common;

use common::{Scratch, npz};

fn config(train: &str, test: &str, extra: &str) -> String {
    format!(
        "\
name: ooc
environment: {{seed: 4, device: cpu, output_dir: out}}
data:
  name: TensorFile
  args:
    train: {train}
    test: {test}
    inputs: [x]
    targets: [y]
    val_fraction: 0.2
    normalize: {{x: gaussian_channel}}
    batch_size: 32
{extra}
model: {{name: MLP, args: {{sizes: [6, 16, 3]}}}}
loss: cross_entropy
metrics: [accuracy]
optimizer: {{name: adam, args: {{lr: 0.01}}}}
trainer: {{name: Default_trainer, args: {{max_epochs: 3, test_after_fit: true}}}}
"
    )
}

/// 500 training samples (x float64 [500, 6], labels int32 by the sign of two sums), written as
/// one .npz, the same split into a folder of three shards, as a folder of `.npy` arrays
/// (`np.save`), and compressed; 120 test samples.
fn data(scratch: &Scratch) {
    let labels = "arrays['y'] = ((x[:, :3].sum(1) > 0).astype(np.int32) + (x[:, 3:].sum(1) > 1).astype(np.int32))\n";
    npz(
        scratch,
        "train",
        &format!(
            "x = rng.standard_normal((500, 6)) * [1, 2, 3, 1, 2, 3] + 0.5\narrays['x'] = x\n{labels}"
        ),
    );
    npz(
        scratch,
        "test",
        &format!(
            "rng = np.random.default_rng(1)\nx = rng.standard_normal((120, 6)) * [1, 2, 3, 1, 2, 3] + 0.5\narrays['x'] = x\n{labels}"
        ),
    );
    scratch
        .python(
            "import numpy as np, os\n\
             d = np.load('train.npz')\n\
             os.makedirs('shards', exist_ok=True)\n\
             for i, (a, b) in enumerate([(0, 170), (170, 333), (333, 500)]):\n\
             \x20   np.savez(f'shards/part_{i}.npz', x=d['x'][a:b], y=d['y'][a:b])\n\
             np.savez_compressed('train_compressed.npz', x=d['x'], y=d['y'])\n\
             os.makedirs('npy', exist_ok=True)\n\
             np.save('npy/x.npy', d['x']); np.save('npy/y.npy', d['y'])\n",
        )
        .expect_code(0);
}

/// The epoch rows of a run's metrics.csv (the step rows left out) and its test line.
fn metrics(scratch: &Scratch, run: &common::Run) -> (Vec<String>, String) {
    let dir = run.run_dir(&scratch.dir);
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let rows = text.lines().map(str::to_string).collect();
    // The test line names the run's own checkpoint: only its values are compared.
    let test = run
        .stdout
        .lines()
        .find(|l| l.contains("test_accuracy"))
        .and_then(|l| l.split("): ").nth(1))
        .unwrap_or("")
        .to_string();
    (rows, test)
}

#[test]
fn in_memory_in_place_sharded_and_with_workers_train_the_same_run() {
    let scratch = Scratch::new("out-of-core");
    data(&scratch);
    // The converter (`cargo xtask data shard`): shards of 8 KB (146 samples: a sample's 7
    // values are counted at 8 bytes), from the archive read in place (x copied as float64, y as
    // int32) and from the compressed one read whole (written as float32 and int64).
    for (source, out) in [
        ("train.npz", "sharded"),
        ("train_compressed.npz", "sharded_c"),
    ] {
        let run = scratch.stoker(&["data", "shard", source, out, "--shard-size", "8KB"]);
        run.expect_code(0);
        assert!(
            run.stdout.contains("500 samples") && run.stdout.contains("shard(s)"),
            "{}",
            run.stdout
        );
        let shards = std::fs::read_dir(scratch.path(out)).unwrap().count();
        assert!(shards >= 3, "{shards} shards");
    }
    // Nothing is written over.
    let again = scratch.stoker(&["data", "shard", "train.npz", "sharded"]);
    again.expect_code(2);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    let variants = [
        ("sharded", "in_memory: false"),
        ("sharded_c", "in_memory: true"),
        ("train.npz", "in_memory: true"),
        ("train.npz", "in_memory: false"),
        ("shards", "in_memory: false"),
        ("shards", "in_memory: true"),
        ("npy", "in_memory: false"),
        ("npy", "in_memory: true"),
        // Compressed: read whole, the way every file was read before.
        ("train_compressed.npz", "in_memory: auto"),
    ];
    let mut reference = None;
    for (train, mode) in variants {
        for workers in [0, 2] {
            scratch.write(
                "c.yaml",
                &config(train, "test.npz", &format!("    {mode}")).replace(
                    "max_epochs: 3,",
                    &format!("max_epochs: 3, num_workers: {workers},"),
                ),
            );
            let run = scratch.stoker(&["train", "c.yaml"]);
            run.expect_code(0);
            if mode == "in_memory: false" {
                assert!(
                    run.stdout.contains("read in place from the files"),
                    "{}",
                    run.stdout
                );
            }
            let got = metrics(&scratch, &run);
            assert!(got.1.contains("test_accuracy"), "{}", run.stdout);
            match &reference {
                None => reference = Some(got),
                Some(expected) => {
                    assert_eq!(&got, expected, "{train} {mode} with {workers} workers")
                }
            }
        }
    }
    // auto holds small data in memory, and says so in the run log.
    scratch.write("c.yaml", &config("train.npz", "test.npz", ""));
    let run = scratch.stoker(&["train", "c.yaml"]);
    run.expect_code(0);
    let log = std::fs::read_to_string(run.run_dir(&scratch.dir).join("run.log")).unwrap();
    assert!(
        log.contains("data: held in memory") && log.contains("in_memory: auto"),
        "{log}"
    );
}

#[test]
fn files_that_cannot_be_read_in_place_or_shards_that_disagree_are_refused_before_training() {
    let scratch = Scratch::new("out-of-core-bad");
    data(&scratch);
    // A compressed archive asked to be read in place.
    scratch.write(
        "c.yaml",
        &config("train_compressed.npz", "test.npz", "    in_memory: false"),
    );
    let run = scratch.stoker(&["train", "c.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("train_compressed.npz") && run.stderr.contains("np.savez"),
        "{}",
        run.stderr
    );
    // A shard whose samples have another shape.
    scratch
        .python("import numpy as np\nnp.savez('shards/part_9.npz', x=np.zeros((4, 5)), y=np.zeros(4, dtype=np.int32))\n")
        .expect_code(0);
    for mode in ["true", "false"] {
        scratch.write(
            "c.yaml",
            &config("shards", "test.npz", &format!("    in_memory: {mode}")),
        );
        let run = scratch.stoker(&["train", "c.yaml"]);
        run.expect_code(2);
        assert!(
            run.stderr.contains("part_9.npz")
                && run.stderr.contains("same element type and sample shape"),
            "{}",
            run.stderr
        );
    }
    std::fs::remove_file(scratch.path("shards/part_9.npz")).unwrap();
    // A folder of .npy arrays whose labels stop short (the last 5 samples missing), or lack one.
    scratch
        .python("import numpy as np\nnp.save('npy/y.npy', np.load('npy/y.npy')[:-5])\n")
        .expect_code(0);
    scratch.write("c.yaml", &config("npy", "test.npz", "    in_memory: false"));
    let run = scratch.stoker(&["train", "c.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("495") && run.stderr.contains("500"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(scratch.path("npy/y.npy")).unwrap();
    let run = scratch.stoker(&["train", "c.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("npy") && run.stderr.contains("y.npy"),
        "{}",
        run.stderr
    );
    // A shard whose array stops short of what its header promises (a copy that did not
    // finish): rewritten as an archive whose x.npy lacks its last 100 bytes.
    scratch
        .python(
            "import numpy as np, zipfile, io\n\
             def npy(a):\n\
             \x20   b = io.BytesIO(); np.lib.format.write_array(b, a); return b.getvalue()\n\
             with zipfile.ZipFile('shards/part_1.npz', 'w', zipfile.ZIP_STORED) as z:\n\
             \x20   z.writestr('x.npy', npy(np.zeros((163, 6)))[:-100])\n\
             \x20   z.writestr('y.npy', npy(np.zeros(163, dtype=np.int32)))\n",
        )
        .expect_code(0);
    scratch.write(
        "c.yaml",
        &config("shards", "test.npz", "    in_memory: false"),
    );
    let run = scratch.stoker(&["train", "c.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("part_1.npz") && run.stderr.contains("truncated"),
        "{}",
        run.stderr
    );
    assert!(!scratch.path("out").exists(), "a run directory was created");
}
