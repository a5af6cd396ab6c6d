//! What stoker's end-to-end tests share: the `stoker` binary (`$STOKER_BIN`, which `cargo xtask
//! test` builds and sets) run in a scratch directory, and readers of what a run wrote. The
//! workspace's tests and each plugin's own tests use it as a dev-dependency.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `stoker` binary `cargo xtask test` built (`$STOKER_BIN`).
pub fn stoker_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STOKER_BIN") {
        return PathBuf::from(bin);
    }
    panic!(
        "STOKER_BIN is not set: run the tests with `cargo xtask test`, which builds the runner and sets it"
    );
}

/// A scratch directory for one test, emptied first.
pub struct Scratch {
    /// Its path.
    pub dir: PathBuf,
    /// Environment variables of every command run in it.
    env: Vec<(String, String)>,
}

impl Scratch {
    /// A fresh directory named after the test.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stoker-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            env: Vec::new(),
        }
    }

    /// The same scratch whose `stoker` commands glibc gives a fixed mmap threshold of 64 KiB:
    /// every freed tensor goes back to the system at once, so a process's peak resident memory
    /// follows the memory in use rather than how its heap happened to grow (which moved peaks
    /// by 20 to 70 MiB from run to run). For the tests that compare measured memory.
    pub fn with_memory_returned(mut self) -> Self {
        self.env
            .push(("MALLOC_MMAP_THRESHOLD_".into(), "65536".into()));
        self
    }

    /// Writes `text` to `name` inside the directory and returns the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `path` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `stoker ARGS` with the directory as working directory.
    pub fn stoker(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("the stoker binary runs");
        Run::from(output)
    }

    /// A `stoker ARGS` command in the directory. LibTorch gets one thread: the tests run two at
    /// a time on CI's two cores, and two processes spinning two threads each starve each other.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(stoker_bin());
        command
            .args(args)
            .current_dir(&self.dir)
            .env("OMP_NUM_THREADS", "1")
            .env("MKL_NUM_THREADS", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs the Python interpreter of the torch venv (`$STOKER_PYTHON`) on `script`.
    pub fn python(&self, script: &str) -> Run {
        let python =
            std::env::var_os("STOKER_PYTHON").expect("STOKER_PYTHON is set by `cargo xtask test`");
        let output = Command::new(python)
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .output()
            .expect("python runs");
        Run::from(output)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What a command printed and how it ended.
pub struct Run {
    /// The exit status code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with the output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The run directory a successful `train` printed on its last line.
    pub fn run_dir(&self, cwd: &Path) -> PathBuf {
        let last = self.stdout.lines().last().expect("train printed something");
        cwd.join(last.trim())
    }
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The quickstart config of the repository, with its path.
pub fn quickstart() -> PathBuf {
    workspace().join("configs/quickstart.yaml")
}

/// Reads a run's `summary.json`.
pub fn summary(run_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json exists");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// The shared FNO datasets, when this machine has them.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let path = workspace().join("../shared/data").join(file);
    path.is_file().then_some(path)
}

/// A small regression experiment in the scratch directory (synthetic data, MLP, 3 epochs).
pub const SMALL: &str = "\
name: small
environment: {seed: 7, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 3}}
";

/// The rows of a run's `metrics.csv`, each as `column -> cell` (empty cells left out).
pub fn csv_rows(run_dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(run_dir.join("metrics.csv")).expect("metrics.csv exists");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .filter(|(_, cell)| !cell.is_empty())
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

/// The model tensors of a checkpoint (its optimizer state left out), by name.
pub fn weights(checkpoint: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(checkpoint).expect("the checkpoint exists");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    file.tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__stoker"))
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect()
}

/// Trains `config_text` (written as `exp.yaml`) with `--set` overrides; panics unless it succeeds.
pub fn train_ok(scratch: &Scratch, config_text: &str, sets: &[&str]) -> (PathBuf, Run) {
    let config = scratch.write("exp.yaml", config_text);
    let mut args = vec!["train", config.to_str().unwrap()];
    for set in sets {
        args.extend(["--set", set]);
    }
    let run = scratch.stoker(&args);
    run.expect_code(0);
    (run.run_dir(&scratch.dir), run)
}

/// A run's `summary.json` value at `key` as a float.
pub fn summary_f64(run_dir: &Path, path: &[&str]) -> f64 {
    let mut value = &summary(run_dir);
    let s = value.clone();
    for key in path {
        value = &value[*key];
    }
    value
        .as_f64()
        .unwrap_or_else(|| panic!("summary.json has no number at {path:?}: {s}"))
}

/// The float32 values of one tensor of a safetensors file.
pub fn tensor_f32(file: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st
        .tensor(name)
        .unwrap_or_else(|_| panic!("{} has no tensor {name}", file.display()));
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The tensor names of a safetensors file.
pub fn tensor_names(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    names
}

/// Writes `name.npz` with numpy: `code` is Python that defines the arrays in a dict `arrays`.
pub fn npz(scratch: &Scratch, name: &str, code: &str) {
    scratch
        .python(&format!("import numpy as np\nrng = np.random.default_rng(0)\narrays = {{}}\n{code}\nnp.savez('{name}.npz', **arrays)\n"))
        .expect_code(0);
}
