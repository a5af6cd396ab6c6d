//! Where this process stands among several, from the variables its launcher set: torchrun's
//! (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `GROUP_RANK`, `MASTER_ADDR`, `MASTER_PORT`; also what
//! stoker's own launcher sets) or SLURM's (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`,
//! `SLURM_NODEID`, the first host of `SLURM_NODELIST`), as Lightning's
//! `TorchElasticEnvironment` and `SLURMEnvironment` read them. torchrun's win when both are set
//! (torchrun started inside a SLURM job).

use stoker_core::device::DeviceChoice;

/// Which launcher's variables were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// torchrun, or `cargo xtask train --nproc N`.
    Torchrun,
    /// `srun`.
    Slurm,
}

/// This process's place in a group of processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEnvironment {
    /// Whose variables these are.
    pub launcher: Launcher,
    /// Processes in the group.
    pub world_size: usize,
    /// This process's rank in the group (0 writes the run directory).
    pub rank: usize,
    /// Its rank on its machine (which GPU it takes).
    pub local_rank: usize,
    /// Its machine's rank.
    pub node_rank: usize,
    /// The host of the rendezvous (rank 0's machine).
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
}

/// Lightning's port for a SLURM job without `MASTER_PORT`: 15000 plus the job id's last four
/// digits, or 12910 without a job id.
fn slurm_port(job_id: Option<&str>) -> u16 {
    let last_four = job_id.map(|id| {
        let tail: String = id
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        tail.parse::<u16>().ok()
    });
    match last_four {
        Some(Some(n)) => 15000 + n,
        _ => 12910,
    }
}

/// The first host of a SLURM node list: `node[001-004,007],gpu[1-2]` gives `node001`,
/// `host0,host1` and `host0 host1` give `host0`; every bracket of the first host takes its first
/// number (`rack[1-2]-node[3-4]` gives `rack1-node3`).
pub fn slurm_root_host(nodelist: &str) -> Option<String> {
    let mut host = String::new();
    let mut in_bracket = false;
    let mut took_first = false;
    for c in nodelist.trim().chars() {
        match (in_bracket, c) {
            (false, ',' | ' ') => break,
            (false, '[') => {
                in_bracket = true;
                took_first = false;
            }
            (false, c) => host.push(c),
            (true, ']') => in_bracket = false,
            (true, ',' | '-') => took_first = true,
            (true, ' ') => {}
            (true, c) if !took_first => host.push(c),
            (true, _) => {}
        }
    }
    (!host.is_empty()).then_some(host)
}

fn number(var: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>, String> {
    match var(name) {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            format!("{name}={text:?} is not a number: the launcher's variables are inconsistent")
        }),
    }
}

impl ClusterEnvironment {
    /// The environment `var` describes (a lookup such as `std::env::var`), `None` when no
    /// launcher's variables are set; an error names a variable that is missing or malformed.
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let torchrun = var("WORLD_SIZE").is_some() && var("RANK").is_some();
        let interactive = matches!(
            var("SLURM_JOB_NAME").as_deref(),
            Some("bash" | "interactive")
        );
        let slurm = var("SLURM_NTASKS").is_some() && var("SLURM_PROCID").is_some() && !interactive;
        let env = if torchrun {
            let world_size = number(&var, "WORLD_SIZE")?.unwrap_or(1);
            let port = var("MASTER_PORT");
            let (master_addr, master_port) = match (var("MASTER_ADDR"), port) {
                (Some(addr), Some(port)) => (
                    addr,
                    port.trim().parse().map_err(|_| {
                        format!("MASTER_PORT={port:?} is not a port number")
                    })?,
                ),
                _ if world_size <= 1 => ("127.0.0.1".to_string(), 29500),
                (None, _) => return Err("WORLD_SIZE and RANK are set but MASTER_ADDR is not: start the processes with torchrun or `cargo xtask train --nproc N`".into()),
                (_, None) => return Err("WORLD_SIZE and RANK are set but MASTER_PORT is not: start the processes with torchrun or `cargo xtask train --nproc N`".into()),
            };
            ClusterEnvironment {
                launcher: Launcher::Torchrun,
                world_size,
                rank: number(&var, "RANK")?.unwrap_or(0),
                local_rank: number(&var, "LOCAL_RANK")?.unwrap_or(0),
                node_rank: number(&var, "GROUP_RANK")?.unwrap_or(0),
                master_addr,
                master_port,
            }
        } else if slurm {
            let nodelist = var("SLURM_NODELIST").or_else(|| var("SLURM_JOB_NODELIST"));
            let master_addr = match var("MASTER_ADDR") {
                Some(addr) => addr,
                None => nodelist.as_deref().and_then(slurm_root_host).ok_or(
                    "SLURM_NTASKS is set but neither MASTER_ADDR nor SLURM_NODELIST names the first host",
                )?,
            };
            let master_port = match var("MASTER_PORT") {
                Some(port) => port
                    .trim()
                    .parse()
                    .map_err(|_| format!("MASTER_PORT={port:?} is not a port number"))?,
                None => slurm_port(var("SLURM_JOB_ID").as_deref()),
            };
            ClusterEnvironment {
                launcher: Launcher::Slurm,
                world_size: number(&var, "SLURM_NTASKS")?.unwrap_or(1),
                rank: number(&var, "SLURM_PROCID")?.unwrap_or(0),
                local_rank: number(&var, "SLURM_LOCALID")?.unwrap_or(0),
                node_rank: number(&var, "SLURM_NODEID")?.unwrap_or(0),
                master_addr,
                master_port,
            }
        } else {
            return Ok(None);
        };
        if env.world_size == 0 || env.rank >= env.world_size {
            return Err(format!(
                "rank {} in a world of {} processes: the launcher's variables are inconsistent",
                env.rank, env.world_size
            ));
        }
        Ok(Some(env))
    }

    /// [`detect`](Self::detect) from this process's environment variables.
    pub fn from_process() -> Result<Option<Self>, String> {
        Self::detect(|name| std::env::var(name).ok())
    }
}

/// This process's global rank and the number of processes training together, from its
/// environment: (0, 1) alone, or when the variables are unreadable (the strategy reports that
/// when it is built).
pub fn process_place() -> (usize, usize) {
    match ClusterEnvironment::from_process() {
        Ok(Some(env)) => (env.rank, env.world_size),
        _ => (0, 1),
    }
}

/// The device this process trains on when the experiment names `choice`, and the local rank it
/// was moved by. Alone, `choice` (and 0). As one of several processes, a CUDA device moves by the
/// process's local rank, so that each process on a machine takes a GPU of its own: `cuda` (and
/// `auto` on a machine with a GPU) gives `cuda:LOCAL_RANK`, `cuda:N` gives `cuda:N+LOCAL_RANK`,
/// as torchrun's scripts pick `cuda:LOCAL_RANK` and Lightning gives local rank i its i-th device.
/// A process that sees a single GPU keeps it: its launcher gave it that one (SLURM's
/// `--gpus-per-task=1`, a `CUDA_VISIBLE_DEVICES` per process).
pub fn process_device(choice: DeviceChoice) -> (DeviceChoice, usize) {
    match ClusterEnvironment::from_process() {
        Ok(Some(env)) => (
            on_local_gpu(
                stoker_native::device::concrete(choice),
                env.local_rank,
                stoker_native::device::cuda_device_count(),
            ),
            env.local_rank,
        ),
        _ => (choice, 0),
    }
}

/// `choice` (concrete: not `auto`) for the process of local rank `local_rank` that sees
/// `visible` GPUs.
fn on_local_gpu(choice: DeviceChoice, local_rank: usize, visible: usize) -> DeviceChoice {
    match choice {
        DeviceChoice::Cuda(first) if visible != 1 => DeviceChoice::Cuda(first + local_rank),
        other => other,
    }
}

/// The number of processes training together ([`process_place`]'s second half).
pub fn process_world_size() -> usize {
    process_place().1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn detect(vars: &[(&str, &str)]) -> Result<Option<ClusterEnvironment>, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClusterEnvironment::detect(|name| map.get(name).cloned())
    }

    #[test]
    fn each_local_rank_takes_its_own_gpu_and_the_cpu_is_shared() {
        let gpu = DeviceChoice::Cuda;
        assert_eq!(on_local_gpu(gpu(0), 1, 4), gpu(1));
        assert_eq!(on_local_gpu(gpu(2), 3, 8), gpu(5));
        assert_eq!(on_local_gpu(gpu(0), 0, 4), gpu(0));
        // A GPU past the visible ones is resolve()'s error, with the local rank in its hint.
        assert_eq!(on_local_gpu(gpu(0), 2, 2), gpu(2));
        // The launcher gave each process one GPU: it is that process's cuda:0.
        assert_eq!(on_local_gpu(gpu(0), 1, 1), gpu(0));
        assert_eq!(on_local_gpu(DeviceChoice::Cpu, 1, 4), DeviceChoice::Cpu);
        assert_eq!(on_local_gpu(DeviceChoice::Flex, 1, 0), DeviceChoice::Flex);
    }

    #[test]
    fn the_first_host_of_a_slurm_node_list() {
        // Lightning's own cases (tests of SLURMEnvironment.resolve_root_node_address) ...
        assert_eq!(slurm_root_host("abc").as_deref(), Some("abc"));
        assert_eq!(slurm_root_host("abc[23]").as_deref(), Some("abc23"));
        assert_eq!(slurm_root_host("abc[23-24]").as_deref(), Some("abc23"));
        assert_eq!(
            slurm_root_host("abc[23-24, 45-40, 40]").as_deref(),
            Some("abc23")
        );
        // ... its documented forms, and hosts Slurm writes with several ranges or a suffix.
        assert_eq!(
            slurm_root_host("host0 host1 host3").as_deref(),
            Some("host0")
        );
        assert_eq!(
            slurm_root_host("host0,host1,host3").as_deref(),
            Some("host0")
        );
        assert_eq!(slurm_root_host("host[5-9]").as_deref(), Some("host5"));
        assert_eq!(
            slurm_root_host("node[001-004,007],gpu[1-2]").as_deref(),
            Some("node001")
        );
        assert_eq!(
            slurm_root_host("1.2.3.[100-110]").as_deref(),
            Some("1.2.3.100")
        );
        assert_eq!(
            slurm_root_host("rack[1-2]-node[3-4]").as_deref(),
            Some("rack1-node3")
        );
        assert_eq!(slurm_root_host(""), None);
    }

    #[test]
    fn torchrun_variables() {
        let env = detect(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("GROUP_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.5"),
            ("MASTER_PORT", "29400"),
            // torchrun inside a SLURM job: torchrun's variables win.
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            env,
            ClusterEnvironment {
                launcher: Launcher::Torchrun,
                world_size: 4,
                rank: 3,
                local_rank: 1,
                node_rank: 1,
                master_addr: "10.0.0.5".into(),
                master_port: 29400,
            }
        );
        let missing = detect(&[("WORLD_SIZE", "2"), ("RANK", "0"), ("MASTER_PORT", "1")]);
        assert!(missing.unwrap_err().contains("MASTER_ADDR is not"));
        let bad = detect(&[
            ("WORLD_SIZE", "2"),
            ("RANK", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ]);
        assert!(bad.unwrap_err().contains("rank 2 in a world of 2"));
        let text = detect(&[("WORLD_SIZE", "two"), ("RANK", "0")]);
        assert!(
            text.unwrap_err()
                .starts_with("WORLD_SIZE=\"two\" is not a number")
        );
        // One process needs no rendezvous.
        let one = detect(&[("WORLD_SIZE", "1"), ("RANK", "0")])
            .unwrap()
            .unwrap();
        assert_eq!((one.world_size, one.rank), (1, 0));
        assert_eq!(detect(&[]).unwrap(), None);
    }

    #[test]
    fn slurm_variables() {
        let env = detect(&[
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_NODEID", "2"),
            ("SLURM_NODELIST", "gpu[07-10]"),
            ("SLURM_JOB_ID", "1234567"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            env,
            ClusterEnvironment {
                launcher: Launcher::Slurm,
                world_size: 8,
                rank: 5,
                local_rank: 1,
                node_rank: 2,
                master_addr: "gpu07".into(),
                master_port: 15000 + 4567,
            }
        );
        let given = detect(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
            ("MASTER_ADDR", "login1"),
            ("MASTER_PORT", "40000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (given.master_addr.as_str(), given.master_port),
            ("login1", 40000)
        );
        let no_host = detect(&[("SLURM_NTASKS", "2"), ("SLURM_PROCID", "0")]);
        assert!(no_host.unwrap_err().contains("SLURM_NODELIST"));
        // An interactive allocation (`srun --pty bash`) is not a launch.
        let shell = detect(&[
            ("SLURM_NTASKS", "1"),
            ("SLURM_PROCID", "0"),
            ("SLURM_JOB_NAME", "bash"),
        ]);
        assert_eq!(shell.unwrap(), None);
        assert_eq!(slurm_port(None), 12910);
    }
}
