//! Installing libtorch: PyPI's `torch==2.11.0` (its CUDA build, which also serves the CPU) in a
//! virtual environment cached outside the repository, once, with a clear message while it runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The torch version every build and run of this project uses.
pub const TORCH_VERSION: &str = "2.11.0";
/// The Python packages installed beside it: numpy and safetensors serve the cross-check scripts;
/// CUDA's `crt` and `cccl` headers (3 MB, the versions of torch's CUDA 13.0 runtime) are what
/// libtorch's NCCL process group header needs beyond the runtime and NCCL headers torch's wheel
/// brings, for stoker's C++ shim to reach NCCL (data-parallel training on CUDA).
pub const PACKAGES: [&str; 5] = [
    "torch==2.11.0",
    "numpy",
    "safetensors",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-cccl==13.0.85",
];

/// What `cargo xtask test` adds to the same environment: the readers and servers the tests check
/// stoker's output against (TensorBoard's event reader, an MLflow tracking server, Optuna's
/// journal storage and its dashboard for sweeps).
pub const TEST_PACKAGES: [&str; 4] = [
    "tensorboard==2.21.0",
    "mlflow==3.17.2",
    "optuna==5.0.0",
    "optuna-dashboard==0.21.0",
];

/// A ready torch installation.
pub struct Torch {
    /// The virtual environment.
    pub venv: PathBuf,
    /// Its `lib/` with `libtorch_cpu.so`, `libc10.so`, ...
    pub lib_dir: PathBuf,
}

impl Torch {
    /// The venv's Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }
}

/// Where stoker caches what it installs: `$STOKER_CACHE`, else `$XDG_CACHE_HOME/stoker`, else
/// `~/.cache/stoker`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STOKER_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("stoker");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("stoker")
}

fn find_lib_dir(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|entry| {
            let dir = entry.path().join("site-packages").join("torch").join("lib");
            dir.join("libtorch_cpu.so").is_file().then_some(dir)
        })
}

fn marker(venv: &Path) -> PathBuf {
    venv.join(".stoker-ready")
}

fn marker_text() -> String {
    PACKAGES.join(" ")
}

/// Holds a lock directory while installing, so that two commands started at once do not both
/// install into the same place.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire(path: PathBuf) -> Result<Self, String> {
        let mut waited = false;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(InstallLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(3600));
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                        continue;
                    }
                    if !waited {
                        eprintln!(
                            "stoker setup: another command is installing libtorch; waiting for it ({})",
                            path.display()
                        );
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn ready(venv: &Path) -> Option<Torch> {
    let text = std::fs::read_to_string(marker(venv)).ok()?;
    if text.trim() != marker_text() {
        return None;
    }
    let lib_dir = find_lib_dir(venv)?;
    Some(Torch {
        venv: venv.to_path_buf(),
        lib_dir,
    })
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Makes sure torch is installed and returns where. Idempotent: the second call only checks.
pub fn ensure_torch() -> Result<Torch, String> {
    if crate::env::packed().is_some() {
        return packed_torch();
    }
    let cache = cache_dir();
    let venv = cache.join(format!("torch-{TORCH_VERSION}"));
    if let Some(torch) = ready(&venv) {
        return Ok(torch);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let _lock = InstallLock::acquire(cache.join(".install-lock"))?;
    if let Some(torch) = ready(&venv) {
        return Ok(torch);
    }
    let python = std::env::var("STOKER_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "stoker setup: installing libtorch {TORCH_VERSION} once, from PyPI's torch wheel (about 4.6 GB with its CUDA libraries), into"
    );
    eprintln!("stoker setup:   {}", venv.display());
    eprintln!("stoker setup: this takes a few minutes; set STOKER_CACHE to install elsewhere");
    if !venv.join("bin").join("pip").is_file() {
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            &format!("{python} -m venv"),
        )?;
    }
    let pip = venv.join("bin").join("pip");
    run(
        Command::new(&pip)
            .args(["install", "--disable-pip-version-check"])
            .args(PACKAGES),
        "pip install torch",
    )?;
    let lib_dir = find_lib_dir(&venv).ok_or_else(|| {
        format!(
            "torch installed into {} but its lib/ with libtorch_cpu.so was not found",
            venv.display()
        )
    })?;
    std::fs::write(marker(&venv), marker_text())
        .map_err(|e| format!("cannot write the ready marker: {e}"))?;
    eprintln!("stoker setup: libtorch ready ({})", lib_dir.display());
    Ok(Torch { venv, lib_dir })
}

/// The torch of the machine a packed copy runs on: the venv `$STOKER_TORCH_VENV` names.
fn packed_torch() -> Result<Torch, String> {
    let venv = std::env::var_os("STOKER_TORCH_VENV")
        .map(PathBuf::from)
        .ok_or("a packed xtask ($STOKER_PACKED) needs $STOKER_TORCH_VENV, the venv of this machine's torch")?;
    let lib_dir = find_lib_dir(&venv).ok_or_else(|| {
        format!(
            "{} has no torch with a lib/ holding libtorch_cpu.so",
            venv.display()
        )
    })?;
    Ok(Torch { venv, lib_dir })
}

fn test_marker(venv: &Path) -> PathBuf {
    venv.join(".stoker-test-extras")
}

/// Makes sure the test-only Python packages ([`TEST_PACKAGES`]) are installed beside torch.
/// Idempotent: once installed, the call only reads a marker file.
pub fn ensure_test_extras(torch: &Torch) -> Result<(), String> {
    let wanted = TEST_PACKAGES.join(" ");
    let is_ready = || {
        std::fs::read_to_string(test_marker(&torch.venv)).is_ok_and(|text| text.trim() == wanted)
    };
    if is_ready() {
        return Ok(());
    }
    let _lock = InstallLock::acquire(cache_dir().join(".install-lock"))?;
    if is_ready() {
        return Ok(());
    }
    eprintln!("stoker setup: installing the test readers and servers once ({wanted}) into");
    eprintln!("stoker setup:   {}", torch.venv.display());
    run(
        Command::new(torch.venv.join("bin").join("pip"))
            .args(["install", "--disable-pip-version-check"])
            .args(TEST_PACKAGES),
        "pip install (test packages)",
    )?;
    std::fs::write(test_marker(&torch.venv), &wanted)
        .map_err(|e| format!("cannot write the test packages' marker: {e}"))?;
    eprintln!("stoker setup: test packages ready");
    Ok(())
}
