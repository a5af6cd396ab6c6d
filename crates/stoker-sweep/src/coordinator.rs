//! Runs a sweep: each trial is a `stoker train` process of the experiment with the trial's
//! parameters as `--set`, in `<output_dir>/<sweep>/trial_<N>/`. The coordinator samples each
//! trial's parameters, writes everything to the study's journal as it happens (so that a sweep
//! killed at any moment continues with `--resume`), answers each trial's report of its objective
//! with the pruner's decision, and keeps `sweep.json`, `best.yaml` and `report.html` current.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use stoker::console;
use stoker::rng::Rng;
use stoker::sweep::{Direction, Distribution, Proposal, Pruner, Sampler, Study, TrialState};

use crate::journal::{Journal, lock::CoordinatorLock, ops, pyjson};
use crate::reporter::{METRIC_VAR, SOCKET_VAR, TRIAL_VAR};
use crate::sampler::trial_seed;
use crate::study::{self, FAIL_REASON, FAILED_TRIAL, Retry};
use crate::sweep_file::{Reduce, SweepFile};

/// Exit status of bad input (as `stoker train`).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status of a sweep stopped by a signal.
pub const EXIT_INTERRUPTED: i32 = 130;

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// Trials run at once.
    pub jobs: usize,
    /// Continue the study in the sweep's folder.
    pub resume: bool,
}

/// A trial's report of its objective, waiting for the pruner's answer.
struct Report {
    trial: usize,
    step: i64,
    value: f64,
    answer: mpsc::Sender<bool>,
}

/// A trial being trained.
struct Running {
    number: usize,
    trial_id: usize,
    child: Child,
    started: Instant,
    pruned_at: Option<i64>,
    dir: PathBuf,
    stopping: bool,
}

/// The socket trials report on, removed when dropped.
struct Socket {
    path: PathBuf,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, reports: mpsc::Sender<Report>) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let Ok(message) = pyjson::parse_line(&line) else {
            return;
        };
        let (Some(trial), Some(step), Some(value)) = (
            message["trial"].as_u64(),
            message["step"].as_i64(),
            pyjson::as_float(&message["value"]),
        ) else {
            return;
        };
        let (answer, answered) = mpsc::channel();
        let report = Report {
            trial: trial as usize,
            step,
            value,
            answer,
        };
        if reports.send(report).is_err() {
            return;
        }
        let prune = answered.recv().unwrap_or(true);
        if writer
            .write_all(format!("{{\"prune\":{prune}}}\n").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

fn listen(reports: mpsc::Sender<Report>) -> Result<Socket, String> {
    let path = std::env::temp_dir().join(format!(
        "stoker-sweep-{}-{}.sock",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            % 1_000_000_000
    ));
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot open the trials' socket {}: {e}", path.display()))?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let reports = reports.clone();
            std::thread::spawn(move || serve(stream, reports));
        }
    });
    Ok(Socket { path })
}

/// The trial's value from its reports: its best or last non-NaN one.
pub fn reduce(values: &BTreeMap<i64, f64>, direction: Direction, reduce: Reduce) -> Option<f64> {
    let mut finite = values.values().copied().filter(|v| !v.is_nan());
    match reduce {
        Reduce::Last => values.values().next_back().copied(),
        Reduce::Best => {
            let first = finite.next()?;
            Some(finite.fold(
                first,
                |best, v| if direction.better(v, best) { v } else { best },
            ))
        }
    }
}

/// A value for the console: six significant digits.
fn short(v: f64) -> String {
    if v == 0.0 || (1e-3..1e6).contains(&v.abs()) {
        format!("{:.6}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v:.5e}")
    }
}

/// The newest `version_N` folder in `dir`.
fn newest_version(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n: usize = e
                .file_name()
                .to_str()?
                .strip_prefix("version_")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// The sweep as it runs.
struct Coordinator<'a> {
    sweep: &'a SweepFile,
    dir: PathBuf,
    journal: Journal,
    study_id: usize,
    space: Vec<(String, Distribution)>,
    sampler: Box<dyn Sampler>,
    seed: u64,
    pruner: Box<dyn Pruner>,
    retries: Vec<Retry>,
    running: Vec<Running>,
    exhausted: bool,
    threads: String,
    socket: PathBuf,
}

impl Coordinator<'_> {
    fn trials(&self) -> Vec<stoker::sweep::Trial> {
        study::trials(&self.journal.replay, self.study_id, &self.space)
    }

    fn direction(&self) -> Direction {
        self.sweep.objective.direction
    }

    fn describe(&self, params: &BTreeMap<String, f64>) -> String {
        self.sweep
            .values_for(params)
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::sweep_file::set_text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Samples (or takes a retry) and starts one trial; false when nothing is left to try.
    fn launch(&mut self) -> Result<bool, String> {
        let trials = self.trials();
        let number = trials.len();
        let (proposal, failed) = match self.retries.pop() {
            Some(retry) => (
                Proposal {
                    params: retry.params,
                    system_attrs: retry.system_attrs,
                },
                Some(retry.failed),
            ),
            None => {
                let study = Study {
                    direction: self.direction(),
                    space: &self.space,
                    trials: &trials,
                };
                let mut rng = Rng::new(trial_seed(self.seed, number));
                match self.sampler.propose(&study, number, &mut rng) {
                    Some(p) => (p, None),
                    None => return Ok(false),
                }
            }
        };
        let params: Vec<(&str, f64, &Distribution)> = self
            .space
            .iter()
            .map(|(name, dist)| (name.as_str(), proposal.params[name], dist))
            .collect();
        let mut attrs = proposal.system_attrs.clone();
        if let Some(failed) = failed {
            attrs.push((FAILED_TRIAL.into(), Value::from(failed)));
        }
        let accepted =
            self.journal
                .append(vec![ops::create_trial(self.study_id, &params, &attrs)])?;
        if accepted != [true] {
            return Err("the journal refused the new trial (was the study deleted?)".into());
        }
        let trial_id = self.journal.replay.trials.len() - 1;
        let number = self.journal.replay.trials[trial_id].number;
        let dir = self.dir.join(format!("trial_{number}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log = dir.join("output.log");
        let out =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the stoker binary to start a trial: {e}"))?;
        let mut command = Command::new(exe);
        command.arg("train").arg(&self.sweep.experiment);
        for set in self.sweep.sets_for(&proposal.params) {
            command.arg("--set").arg(set);
        }
        command
            .arg("--set")
            .arg(format!("name=trial_{number}"))
            .arg("--output-dir")
            .arg(&self.dir)
            .env(SOCKET_VAR, &self.socket)
            .env(TRIAL_VAR, number.to_string())
            .env(METRIC_VAR, &self.sweep.objective.metric)
            .env("OMP_NUM_THREADS", &self.threads)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A Ctrl-C on the terminal reaches the sweep only, which stops the trials itself.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to send SIGTERM to the trial
        // when the sweep dies, however it dies, so that no trial trains on unwatched.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start trial {number}: {e}"))?;
        let retry = failed
            .map(|f| format!(" (re-runs trial {f})"))
            .unwrap_or_default();
        console::line(format!(
            "trial {number} started{retry}: {}",
            self.describe(&proposal.params)
        ));
        self.running.push(Running {
            number,
            trial_id,
            child,
            started: Instant::now(),
            pruned_at: None,
            dir,
            stopping: false,
        });
        Ok(true)
    }

    /// Records a report and answers whether the trial is to stop.
    fn on_report(&mut self, report: &Report) -> Result<bool, String> {
        let Some(index) = self.running.iter().position(|r| r.number == report.trial) else {
            return Ok(true);
        };
        if self.running[index].pruned_at.is_some() || self.running[index].stopping {
            return Ok(true);
        }
        let trial_id = self.running[index].trial_id;
        let stored = &self.journal.replay.trials[trial_id];
        if stored.state.is_finished() {
            // Finished from elsewhere (optuna-dashboard's "tell").
            return Ok(true);
        }
        if !stored.intermediate.contains_key(&report.step) {
            self.journal
                .append(vec![ops::intermediate(trial_id, report.step, report.value)])?;
        }
        let trials = self.trials();
        let study = Study {
            direction: self.direction(),
            space: &self.space,
            trials: &trials,
        };
        let decision = self.pruner.prune(&study, &trials[report.trial]);
        if !decision.system_attrs.is_empty() {
            let attrs = decision
                .system_attrs
                .into_iter()
                .map(|(k, v)| ops::trial_system_attr(trial_id, &k, v))
                .collect();
            self.journal.append(attrs)?;
        }
        if decision.prune {
            self.running[index].pruned_at = Some(report.step);
        }
        Ok(decision.prune)
    }

    /// Records the end of a trial that exited.
    fn finish(&mut self, done: Running, status: std::process::ExitStatus) -> Result<(), String> {
        let id = done.trial_id;
        let stored = self.journal.replay.trials[id].clone();
        let metric = &self.sweep.objective.metric;
        let log = done.dir.join("output.log");
        let mut lines = Vec::new();
        if let Some(run_dir) = newest_version(&done.dir) {
            lines.push(ops::trial_user_attr(
                id,
                "run_dir",
                Value::from(run_dir.display().to_string()),
            ));
        }
        let seconds = done.started.elapsed().as_secs_f64();
        let (state, value, said) = if let Some(step) = done.pruned_at {
            let last = stored
                .intermediate
                .values()
                .next_back()
                .copied()
                .filter(|v| !v.is_nan());
            let at = last
                .map(|v| format!(": {metric} {}", short(v)))
                .unwrap_or_default();
            (
                TrialState::Pruned,
                last,
                format!("pruned at epoch {step}{at}"),
            )
        } else if done.stopping {
            lines.push(ops::trial_system_attr(
                id,
                FAIL_REASON,
                Value::from("interrupted"),
            ));
            (
                TrialState::Fail,
                None,
                "interrupted; it runs again with --resume".to_string(),
            )
        } else if !status.success() {
            let reason = match status.code() {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            };
            lines.push(ops::trial_system_attr(
                id,
                FAIL_REASON,
                Value::from(reason.clone()),
            ));
            (
                TrialState::Fail,
                None,
                format!(
                    "failed ({reason}); the end of {}:\n{}",
                    log.display(),
                    last_lines(&log, 6)
                ),
            )
        } else {
            match reduce(
                &stored.intermediate,
                self.direction(),
                self.sweep.objective.reduce,
            ) {
                Some(v) if !v.is_nan() => (
                    TrialState::Complete,
                    Some(v),
                    format!("{metric} {}", short(v)),
                ),
                _ => {
                    let reason = if stored.intermediate.is_empty() {
                        format!("it never logged `{metric}`")
                    } else {
                        format!("`{metric}` is NaN")
                    };
                    lines.push(ops::trial_system_attr(
                        id,
                        FAIL_REASON,
                        Value::from(reason.clone()),
                    ));
                    (TrialState::Fail, None, format!("failed: {reason}"))
                }
            }
        };
        lines.push(ops::finish(id, state, value));
        self.journal.append(lines)?;
        console::line(format!(
            "trial {} {said} ({seconds:.0} s)",
            done.number,
            said = match state {
                TrialState::Complete => format!("complete: {said}"),
                _ => said,
            }
        ));
        crate::report::write(self.sweep, &self.dir, &self.journal.replay, self.study_id)
    }

    fn stop_all(&mut self, signal: i32) {
        for r in &mut self.running {
            r.stopping = r.pruned_at.is_none();
            // SAFETY: kill(2) on a child's pid, which is ours until it is waited for.
            unsafe {
                libc::kill(r.child.id() as i32, signal);
            }
        }
    }
}

/// Runs the sweep; the process exit status (0, 1 when no trial completed, 2 for bad input,
/// 130 when stopped by a signal).
pub fn run(sweep: &SweepFile, options: &Options) -> i32 {
    match run_inner(sweep, options) {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("{message}");
            code
        }
    }
}

fn run_inner(sweep: &SweepFile, options: &Options) -> Result<i32, (i32, String)> {
    let failed = |m: String| (1, format!("error: {m}"));
    let bad = |m: String| (EXIT_BAD_INPUT, m);
    let dir = sweep.output_dir.join(&sweep.name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("study.journal");
    let _hold = match CoordinatorLock::try_acquire(&path) {
        Ok(Some(hold)) => hold,
        Ok(None) => {
            return Err(bad(format!(
                "error: another sweep is running the study in {}\n hint: wait for it to end, or stop it first",
                dir.display()
            )));
        }
        Err(e) => return Err(failed(format!("cannot lock {}: {e}", path.display()))),
    };
    let mut journal = Journal::open(&path).map_err(failed)?;
    let space = sweep.distributions();
    let study_id = match (journal.replay.study_id(&sweep.name), options.resume) {
        (Some(_), false) => {
            let n = journal
                .replay
                .trials
                .iter()
                .filter(|t| Some(t.study_id) == journal.replay.study_id(&sweep.name))
                .count();
            return Err(bad(format!(
                "error: {} already holds the study `{}` ({n} trials)\n  --> {}\n hint: continue it with `--resume`, or give the sweep another `name:` (or remove the folder)",
                dir.display(),
                sweep.name,
                sweep.path.display()
            )));
        }
        (Some(id), true) => {
            study::check_space(&journal.replay, id, &space).map_err(|m| {
                bad(format!(
                    "error: the sweep file's space changed since the study began: {m}\n  --> {}\n hint: resuming needs the same space; give a new search another `name:`",
                    sweep.path.display()
                ))
            })?;
            id
        }
        (None, resume) => {
            if resume {
                console::note(format!(
                    "nothing to resume in {}: starting the study",
                    dir.display()
                ));
            }
            journal
                .append(vec![ops::create_study(
                    &sweep.name,
                    sweep.objective.direction == Direction::Maximize,
                )])
                .map_err(failed)?;
            let id = journal
                .replay
                .study_id(&sweep.name)
                .expect("the study just created");
            journal
                .append(vec![
                    ops::study_user_attr(
                        id,
                        "sweep_file",
                        Value::from(sweep.path.display().to_string()),
                    ),
                    ops::study_user_attr(
                        id,
                        "experiment",
                        Value::from(sweep.experiment.display().to_string()),
                    ),
                    ops::study_user_attr(
                        id,
                        "objective",
                        Value::from(sweep.objective.metric.clone()),
                    ),
                    ops::study_system_attr(
                        id,
                        "stoker:sampler",
                        Value::from(sweep.sampler_name.name.clone()),
                    ),
                    ops::study_system_attr(
                        id,
                        "stoker:pruner",
                        Value::from(sweep.pruner_name.name.clone()),
                    ),
                ])
                .map_err(failed)?;
            id
        }
    };
    let _ = std::fs::copy(&sweep.path, dir.join("sweep.yaml"));
    let mut retries = study::recover(&mut journal, study_id, &space).map_err(failed)?;
    retries.reverse();
    if !retries.is_empty() {
        console::note(format!(
            "{} trial(s) stopped with the sweep that ran them; they run again first",
            retries.len()
        ));
    }
    let sampler = sweep.sampler.build().map_err(|e| bad(e.to_string()))?;
    let pruner = sweep.pruner.build().map_err(|e| bad(e.to_string()))?;
    let (reports, incoming) = mpsc::channel();
    let socket = listen(reports).map_err(failed)?;
    let signals = stoker::training::signals::count_signals();
    let jobs = options.jobs.max(1);
    let threads = std::env::var("OMP_NUM_THREADS").unwrap_or_else(|_| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / jobs).max(1).to_string()
    });
    let mut c = Coordinator {
        sweep,
        dir: dir.clone(),
        journal,
        study_id,
        space,
        sampler,
        seed: sweep.sampler.seed(),
        pruner,
        retries,
        running: Vec::new(),
        exhausted: false,
        threads,
        socket: socket.path.clone(),
    };
    let started = Instant::now();
    let already = study::counted(&c.trials());
    console::line(format!(
        "sweep {}: {} of {} trials to run, {jobs} at a time ({} thread(s) each); study {}",
        sweep.name,
        sweep.trials.saturating_sub(already),
        sweep.trials,
        c.threads,
        path.display()
    ));
    let mut timed_out = false;
    let mut interrupted = 0;
    loop {
        let seen = signals.load(Ordering::SeqCst);
        if seen > interrupted {
            interrupted = seen;
            console::warn(if seen == 1 {
                "stopping: the running trials end (a checkpoint each) and are marked failed, to run again with --resume; a second signal kills them"
            } else {
                "killing the running trials"
            });
            c.stop_all(if seen == 1 {
                libc::SIGTERM
            } else {
                libc::SIGKILL
            });
        }
        if !timed_out && sweep.timeout.is_some_and(|t| started.elapsed() >= t) {
            timed_out = true;
            console::note("the sweep's timeout is reached: no new trial starts");
        }
        while interrupted == 0 && !timed_out && !c.exhausted && c.running.len() < jobs {
            let trials = c.trials();
            if study::counted(&trials) >= sweep.trials && c.retries.is_empty() {
                break;
            }
            if !c.launch().map_err(failed)? {
                c.exhausted = true;
                console::note("the sampler has nothing left to try");
            }
        }
        if c.running.is_empty() {
            break;
        }
        if let Ok(report) = incoming.recv_timeout(Duration::from_millis(50)) {
            let prune = c.on_report(&report).map_err(failed)?;
            let _ = report.answer.send(prune);
        }
        let mut i = 0;
        while i < c.running.len() {
            match c.running[i].child.try_wait() {
                Ok(Some(status)) => {
                    let done = c.running.remove(i);
                    c.finish(done, status).map_err(failed)?;
                }
                _ => i += 1,
            }
        }
    }
    drop(socket);
    crate::report::write(sweep, &dir, &c.journal.replay, study_id).map_err(failed)?;
    let trials = c.trials();
    let complete = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .count();
    let best = crate::report::best(&trials, c.direction());
    console::line(format!(
        "sweep {}: {} trials ({complete} complete, {} pruned, {} failed) in {:.0} s{}",
        sweep.name,
        trials.len(),
        trials
            .iter()
            .filter(|t| t.state == TrialState::Pruned)
            .count(),
        trials
            .iter()
            .filter(|t| t.state == TrialState::Fail)
            .count(),
        started.elapsed().as_secs_f64(),
        best.map(|b| format!(
            "; best: trial {} with {} {}",
            b.number,
            sweep.objective.metric,
            short(b.value.unwrap_or(f64::NAN))
        ))
        .unwrap_or_default()
    ));
    console::line(format!(
        "report: {}  best experiment: {}",
        dir.join("report.html").display(),
        dir.join("best.yaml").display()
    ));
    if interrupted > 0 {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(if complete == 0 { 1 } else { 0 })
}
