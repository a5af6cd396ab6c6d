//! `stoker train CONFIG --nproc N`: starts N processes of a data-parallel run on this machine,
//! each with the variables torchrun sets (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `LOCAL_WORLD_SIZE`, `GROUP_RANK`, `MASTER_ADDR`, `MASTER_PORT`), so that a run started here
//! and one started by `torchrun --no-python` are the same. Several machines: the same command on
//! each, with `--nnodes`, `--node-rank`, `--master-addr` and `--master-port`.
//!
//! The launcher supervises its processes as torchrun does: when one fails, the others are
//! stopped (SIGTERM, then SIGKILL after a grace period) and the launcher exits with the failed
//! process's status; SIGINT or SIGTERM to the launcher reaches every process once (they stop
//! together at the next step, rank 0 writes the checkpoint to resume from).

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stoker::console;

use crate::EXIT_BAD_INPUT;

/// How long stopped processes get to exit after SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(15);

/// Where this machine's processes sit in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Processes on this machine.
    pub nproc: usize,
    /// Machines.
    pub nnodes: usize,
    /// This machine's rank, `0..nnodes`.
    pub node_rank: usize,
    /// The host of rank 0 (127.0.0.1 on a single machine when none is given).
    pub master_addr: Option<String>,
    /// Its port; a free one is picked on a single machine when none is given.
    pub master_port: Option<u16>,
}

impl Launch {
    /// `nproc` processes on this machine alone.
    pub fn on_this_machine(nproc: usize) -> Launch {
        Launch {
            nproc,
            nnodes: 1,
            node_rank: 0,
            master_addr: None,
            master_port: None,
        }
    }
}

/// The launcher's own flags, removed from the arguments its processes get (with their value).
const OWN_FLAGS: [&str; 5] = [
    "--nproc",
    "--nnodes",
    "--node-rank",
    "--master-addr",
    "--master-port",
];

/// `args` (this process's, program name excluded) without the launcher's flags.
pub fn process_args(args: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        let text = arg.to_string_lossy();
        if OWN_FLAGS.contains(&text.as_ref()) {
            skip_value = true;
            continue;
        }
        if OWN_FLAGS
            .iter()
            .any(|flag| text.starts_with(&format!("{flag}=")))
        {
            continue;
        }
        out.push(arg.clone());
    }
    out
}

/// Checks `launch`, then a port rank 0 can serve on: the one given (refused at once when this
/// machine is rank 0's and the port is taken) or a free one.
fn port(launch: &Launch) -> Result<u16, String> {
    if launch.nnodes > 1 && launch.master_addr.is_none() {
        return Err(
            "--nnodes > 1 needs --master-addr (rank 0's machine, reachable from every machine) and --master-port, the same on every machine".into(),
        );
    }
    match launch.master_port {
        Some(port) if launch.node_rank == 0 => match TcpListener::bind(("0.0.0.0", port)) {
            Ok(_) => Ok(port),
            Err(e) => Err(format!(
                "--master-port {port} cannot be served on this machine ({e}): another program holds it\n hint: pick a free port, or leave --master-port out on a single machine to get one"
            )),
        },
        Some(port) => Ok(port),
        None if launch.nnodes > 1 => Err(
            "--nnodes > 1 needs --master-port (and --master-addr, rank 0's machine), the same on every machine".into(),
        ),
        None => TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("cannot find a free port for the rendezvous: {e}")),
    }
}

/// What `trainer.args.devices` and `num_nodes` ask of a `stoker train` started alone (no
/// launcher's variables), read from the experiment without building it: `Ok(Some(devices))`
/// when this command should start that many processes on this machine, `Err` with the exit
/// status when it cannot (several machines need the command on each). A config that does not
/// load is left to `train`, which reports it.
pub fn asked_by_config(config: &Path, sets: &[String]) -> Result<Option<usize>, i32> {
    if std::env::var_os("WORLD_SIZE").is_some() || std::env::var_os("SLURM_NTASKS").is_some() {
        return Ok(None);
    }
    let Ok(experiment) = stoker_run::assemble::load(config, sets) else {
        return Ok(None);
    };
    let args = &experiment.trainer.resolved_args;
    let count = |key: &str| args.get(key).and_then(|v| v.as_u64()).map(|n| n as usize);
    let (devices, nodes) = (
        count("devices").unwrap_or(1),
        count("num_nodes").unwrap_or(1),
    );
    if nodes > 1 {
        eprintln!(
            "error: trainer.args.num_nodes is {nodes}: start this command on each machine with its rank\n  --> {}\n hint: cargo xtask train {} --nproc {devices} --nnodes {nodes} --node-rank I --master-addr HOST --master-port PORT (or torchrun, srun)",
            config.display(),
            config.display()
        );
        return Err(EXIT_BAD_INPUT);
    }
    Ok((devices > 1).then_some(devices))
}

/// Runs this machine's processes of the run, each with this command's arguments less the
/// launcher's flags; the exit status of the run.
pub fn launch(launch: &Launch) -> i32 {
    let own: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args = process_args(&own);
    if launch.nproc == 0 || launch.nnodes == 0 || launch.node_rank >= launch.nnodes {
        eprintln!(
            "error: --nproc {} --nnodes {} --node-rank {}: need at least one process and one machine, and --node-rank below --nnodes",
            launch.nproc, launch.nnodes, launch.node_rank
        );
        return EXIT_BAD_INPUT;
    }
    if std::env::var_os("WORLD_SIZE").is_some() {
        eprintln!(
            "error: --nproc in a process a launcher started (WORLD_SIZE is set)\n hint: leave --nproc out under torchrun or srun; they start the processes"
        );
        return EXIT_BAD_INPUT;
    }
    let port = match port(launch) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the stoker binary to start: {e}");
            return crate::EXIT_FAILED;
        }
    };
    let world = launch.nproc * launch.nnodes;
    let master_addr = launch.master_addr.as_deref().unwrap_or("127.0.0.1");
    // torchrun's rule: one thread each unless the user chose, so that N processes do not
    // oversubscribe the cores; here the cores are shared out instead.
    let threads = std::env::var("OMP_NUM_THREADS").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / launch.nproc).max(1).to_string()
    });
    console::note(format!(
        "starting {} of {world} processes (ranks {}..{}), rendezvous at {}:{port}, {threads} thread(s) each",
        launch.nproc,
        launch.node_rank * launch.nproc,
        (launch.node_rank + 1) * launch.nproc - 1,
        master_addr
    ));
    // Before any process starts, so that a signal in between is passed on too.
    let signals = stoker::training::signals::count_signals();
    let mut children: Vec<(usize, Child)> = Vec::new();
    for local in 0..launch.nproc {
        let rank = launch.node_rank * launch.nproc + local;
        let mut command = Command::new(&exe);
        command
            .args(&args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("LOCAL_WORLD_SIZE", launch.nproc.to_string())
            .env("GROUP_RANK", launch.node_rank.to_string())
            .env("MASTER_ADDR", master_addr)
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", &threads)
            // Its own process group: a Ctrl-C on the terminal reaches the launcher only, which
            // passes one SIGTERM on.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; between fork and exec it only sets this
        // process's parent-death signal: a launcher that dies (killed, out of memory) takes
        // its processes with it instead of leaving them training.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        match command.spawn() {
            Ok(child) => children.push((rank, child)),
            Err(e) => {
                eprintln!("error: cannot start rank {rank}: {e}");
                stop(&mut children, libc::SIGKILL);
                return crate::EXIT_FAILED;
            }
        }
    }
    supervise(children, &signals)
}

/// Sends `signal` to every process still running.
fn stop(children: &mut [(usize, Child)], signal: i32) {
    for (_, child) in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on a child's pid, which is ours until it is waited for.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }
}

/// Waits for the processes: the first failure stops the others; signals are passed on.
fn supervise(mut children: Vec<(usize, Child)>, signals: &AtomicUsize) -> i32 {
    let mut forwarded = 0;
    let mut failure: Option<(usize, i32)> = None;
    let mut stopping_since: Option<Instant> = None;
    let mut terminated = false;
    let mut status = vec![None; children.len()];
    loop {
        let received = signals.load(Ordering::SeqCst);
        if received > forwarded {
            // The first signal asks every process to stop after its step and checkpoint; a
            // second one ends them at once.
            let signal = if forwarded == 0 {
                libc::SIGTERM
            } else {
                libc::SIGKILL
            };
            stop(&mut children, signal);
            forwarded = received;
        }
        for (i, (rank, child)) in children.iter_mut().enumerate() {
            if status[i].is_some() {
                continue;
            }
            if let Ok(Some(exit)) = child.try_wait() {
                // A process a passed-on signal ended before it could catch it (while it was
                // still being built, say) was interrupted like the others.
                let signalled = exit.signal();
                let code = match signalled {
                    Some(_) if forwarded > 0 => crate::commands::EXIT_INTERRUPTED,
                    Some(_) => crate::EXIT_FAILED,
                    None => exit.code().unwrap_or(crate::EXIT_FAILED),
                };
                status[i] = Some(code);
                let expected =
                    code == 0 || (forwarded > 0 && code == crate::commands::EXIT_INTERRUPTED);
                if !expected && failure.is_none() {
                    failure = Some((*rank, code));
                    let how = match signalled {
                        Some(signal) => format!("was killed by signal {signal}"),
                        None => format!("exited with status {code}"),
                    };
                    eprintln!("error: rank {rank} {how}; stopping the other processes");
                    stopping_since = Some(Instant::now());
                }
            }
        }
        if failure.is_some() && !terminated {
            stop(&mut children, libc::SIGTERM);
            terminated = true;
        }
        if stopping_since.is_some_and(|t| t.elapsed() >= GRACE) {
            stop(&mut children, libc::SIGKILL);
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match failure {
        Some((_, code)) => code,
        None if forwarded > 0 => crate::commands::EXIT_INTERRUPTED,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_processes_get_the_arguments_without_the_launchers_flags() {
        let args: Vec<OsString> = [
            "train",
            "c.yaml",
            "--nproc",
            "2",
            "--set",
            "a=1",
            "--master-port=2950",
            "--nnodes",
            "1",
            "--resume",
            "last",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let kept: Vec<String> = process_args(&args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept,
            ["train", "c.yaml", "--set", "a=1", "--resume", "last"]
        );
    }

    #[test]
    fn a_port_in_use_is_refused_before_any_process_starts() {
        let held = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let taken = held.local_addr().unwrap().port();
        let launch = Launch {
            nproc: 2,
            nnodes: 1,
            node_rank: 0,
            master_addr: None,
            master_port: Some(taken),
        };
        let error = port(&launch).unwrap_err();
        assert!(error.contains(&format!("--master-port {taken}")), "{error}");
        // Several machines need rank 0's address and port given on each.
        let several = Launch {
            nnodes: 2,
            node_rank: 1,
            master_port: Some(29500),
            ..launch
        };
        assert!(port(&several).unwrap_err().contains("--master-addr"));
        let addressed = Launch {
            master_addr: Some("10.0.0.1".into()),
            master_port: None,
            ..several
        };
        assert!(port(&addressed).unwrap_err().contains("--master-port"));
    }
}
