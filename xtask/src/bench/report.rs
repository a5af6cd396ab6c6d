//! The results table, as Markdown.

use std::process::Command;

use super::Sample;
use super::stats::Spread;

/// The repeats of one workload.
pub struct Row {
    name: &'static str,
    stoker: Vec<Sample>,
    torch: Vec<Sample>,
}

impl Row {
    /// An empty row for workload `name`.
    pub fn new(name: &'static str) -> Row {
        Row {
            name,
            stoker: Vec::new(),
            torch: Vec::new(),
        }
    }

    /// One repeat: stoker's sample and, where the workload has one, PyTorch's.
    pub fn add(&mut self, stoker: Sample, torch: Option<Sample>) {
        self.stoker.push(stoker);
        self.torch.extend(torch);
    }
}

/// Every workload's row, and how they were run.
pub struct Table {
    device: String,
    threads: usize,
    nproc: usize,
    precision: String,
    repeat: usize,
    short: bool,
    /// The data workers of each side of the stream workloads.
    pub stream_workers: usize,
    rows: Vec<Row>,
}

const MIB: f64 = (1 << 20) as f64;

fn spread(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> Option<Spread> {
    Spread::of(&samples.iter().map(value).collect::<Vec<_>>())
}

fn rate(s: Option<Spread>) -> String {
    s.map_or("—".into(), |s| {
        format!("{} ({}–{})", sig(s.median), sig(s.min), sig(s.max))
    })
}

/// Three significant figures, without exponent for the sizes seen here.
fn sig(v: f64) -> String {
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}")
}

fn peak(samples: &[Sample], value: impl Fn(&Sample) -> Option<u64>) -> Option<f64> {
    samples
        .iter()
        .filter_map(&value)
        .max()
        .map(|b| b as f64 / MIB)
}

/// The phases stoker's loop owns (not the model's compute).
const LOOP_PHASES: [&str; 4] = ["data", "metrics", "logging", "hooks"];
const PHASES: [&str; 8] = [
    "release",
    "data",
    "forward",
    "metrics",
    "backward",
    "optimizer",
    "logging",
    "hooks",
];

/// The profile of the median-speed stoker run.
fn median_profile(samples: &[Sample]) -> Option<&Sample> {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.steps_per_second.total_cmp(&b.steps_per_second));
    sorted.get(sorted.len() / 2).copied()
}

impl Table {
    /// An empty table for runs on `device` with `threads` threads, `repeat` repeats.
    pub fn new(
        device: &str,
        threads: usize,
        nproc: usize,
        precision: &str,
        repeat: usize,
        short: bool,
    ) -> Table {
        Table {
            device: device.to_string(),
            threads,
            nproc,
            precision: precision.to_string(),
            repeat,
            short,
            stream_workers: 0,
            rows: Vec::new(),
        }
    }

    /// Adds a workload's row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The whole table with its header and the per-phase profile.
    pub fn markdown(&self) -> String {
        let cuda = self.device == "cuda";
        let mut out = format!(
            "# stoker vs plain PyTorch, {} on {}\n\n\
             `cargo xtask bench --device {}` on {}: {} thread(s) for both, {} repeat(s) each, run \
             alternately{}; the first epoch of every run is left out. Steps/s as median (min–max) \
             over the repeats; stoker / PyTorch is the ratio of the medians, and \"fastest\" the \
             ratio of each side's fastest run, the least disturbed by other load on a shared \
             machine; peak memory is the largest over the repeats (host: the process's peak \
             resident set{}).\n\n",
            today(),
            self.device,
            self.device,
            machine(&self.device),
            self.threads,
            self.repeat,
            if self.short {
                " (short mode: 2 epochs of 5 steps, not a measurement)"
            } else {
                ""
            },
            if cuda {
                "; device: nvidia-smi's per-process memory, sampled every 100 ms"
            } else {
                ""
            },
        );
        if self.nproc > 1 {
            out.push_str(&format!(
                "Data-parallel: {} processes on each side (stoker `--nproc {0}`, PyTorch \
                 DistributedDataParallel on gloo under torchrun), the thread count and the \
                 config's batch size per process; a step is one optimizer step of every process \
                 together (steps/epoch is each process's share); peak host memory is the \
                 largest process's.\n\n",
                self.nproc
            ));
        }
        if self.rows.iter().any(|r| r.name.starts_with("stream")) {
            out.push_str(&format!(
                "Stream workloads: the data is generated once as two `.npy` files (x float32 \
                 [rows, 2048], y [rows, 1]; stream1g 131,072 rows, 1.07 GB; stream8g 1,048,576 \
                 rows, 8.6 GB) and read in place by both sides with {} data worker(s): stoker \
                 with `in_memory: false`, PyTorch with `np.load(mmap_mode=\"r\")` and a \
                 DataLoader over a shuffled BatchSampler (one read per batch, persistent \
                 workers). PyTorch's peak host memory is the largest of its processes (main or \
                 worker), and the file pages a process has touched through its map count in it; \
                 stoker reads rows with pread, so they do not.\n\n",
                self.stream_workers
            ));
        }
        if self.precision != "32-true" {
            out.push_str(&format!(
                "Precision {}: stoker with `trainer.args.precision: {0}`, PyTorch with its forward \
                 pass and loss under `torch.autocast` ({}){}.\n\n",
                self.precision,
                if self.precision == "bf16-mixed" {
                    "bfloat16"
                } else {
                    "float16"
                },
                if self.precision == "16-mixed" {
                    " and a torch.amp.GradScaler on both sides"
                } else {
                    ""
                }
            ));
        }
        out.push_str(
            "| workload | parameters | steps/epoch | stoker steps/s | PyTorch steps/s | stoker / PyTorch | fastest | peak host MiB stoker / PyTorch | host ratio |",
        );
        if cuda {
            out.push_str(" peak device MiB stoker / PyTorch | device ratio |");
        }
        out.push('\n');
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        if cuda {
            out.push_str(" --- | --- |");
        }
        out.push('\n');
        for row in &self.rows {
            let Some(first) = row.stoker.first() else {
                continue;
            };
            let stoker_rate = spread(&row.stoker, |s| s.steps_per_second);
            let torch_rate = spread(&row.torch, |s| s.steps_per_second);
            let (ratio, fastest) = match (stoker_rate, torch_rate) {
                (Some(s), Some(t)) => (
                    format!("**{:.2}**", s.median / t.median),
                    format!("{:.2}", s.max / t.max),
                ),
                _ => ("—".into(), "—".into()),
            };
            let memory = |value: fn(&Sample) -> Option<u64>| {
                let (s, t) = (peak(&row.stoker, value), peak(&row.torch, value));
                let pair = format!(
                    "{} / {}",
                    s.map_or("—".into(), |v| format!("{v:.0}")),
                    t.map_or("—".into(), |v| format!("{v:.0}"))
                );
                let ratio = match (s, t) {
                    (Some(s), Some(t)) if t > 0.0 => format!("{:.2}", s / t),
                    _ => "—".into(),
                };
                (pair, ratio)
            };
            let (host, host_ratio) = memory(|s| Some(s.peak_rss));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {ratio} | {fastest} | {host} | {host_ratio} |",
                row.name,
                first.parameters,
                first.steps_per_epoch,
                rate(stoker_rate),
                rate(torch_rate),
            ));
            if cuda {
                let (device, device_ratio) = memory(|s| s.peak_device);
                out.push_str(&format!(" {device} | {device_ratio} |"));
            }
            out.push('\n');
        }
        out.push_str(
            "\nWhere a stoker step goes, mean µs per step of the median run (`step_profile_us` in the \
             run's summary.json; the loop's own share is data + metrics + logging + hooks; release is freeing the previous step's tensors and autodiff graph):\n\n\
             | workload | step | loop's own | release | data | forward | metrics | backward | optimizer | logging | hooks |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for row in &self.rows {
            let Some(sample) = median_profile(&row.stoker) else {
                continue;
            };
            let p = &sample.profile;
            let get = |k: &str| p.get(k).copied().unwrap_or(f64::NAN);
            let own: f64 = LOOP_PHASES.iter().map(|k| get(k)).sum();
            out.push_str(&format!(
                "| {} | {} | **{}** |",
                row.name,
                sig(get("step")),
                sig(own)
            ));
            for phase in PHASES {
                out.push_str(&format!(" {} |", sig(get(phase))));
            }
            out.push('\n');
        }
        out
    }
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date((secs / 86_400) as i64)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The CPU model (and, on CUDA, the GPU), for the table's header.
fn machine(device: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut text = format!("{cpu} ({cores} cores available)");
    if device == "cuda"
        && let Ok(out) = Command::new("nvidia-smi")
            .args(["--query-gpu=name", "--format=csv,noheader"])
            .output()
    {
        let gpu = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !gpu.is_empty() {
            text.push_str(&format!(", {gpu}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(steps_per_second: f64) -> Sample {
        Sample {
            steps_per_second,
            steps_per_epoch: 10.0,
            parameters: 7,
            peak_rss: 100 << 20,
            peak_device: None,
            profile: Default::default(),
        }
    }

    #[test]
    fn a_row_gives_the_ratio_of_medians_and_of_the_fastest_runs() {
        let mut row = Row::new("w");
        // stoker 10, 36, 20 (median 20, fastest 36); PyTorch 16, 8, 24 (median 16, fastest 24).
        for (s, t) in [(10.0, 16.0), (36.0, 8.0), (20.0, 24.0)] {
            row.add(sample(s), Some(sample(t)));
        }
        let mut table = Table::new("cpu", 2, 1, "32-true", 3, false);
        table.push(row);
        let markdown = table.markdown();
        let line = markdown.lines().find(|l| l.starts_with("| w |")).unwrap();
        assert_eq!(
            line,
            "| w | 7 | 10 | 20.0 (10.0–36.0) | 16.0 (8.00–24.0) | **1.25** | 1.50 | 100 / 100 | 1.00 |"
        );
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        // 2026-11-22 is day 20,779.
        assert_eq!(civil_date(20_779), "2026-11-22");
    }
}
