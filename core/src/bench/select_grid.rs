//! `medpick bench select`: time and peak GPU memory of the selection engine on synthetic features at
//! N × D (10k–1M × 256–768, B = 1000), each cell in its own process (so a cell that runs past the time cap is
//! stopped and its peak host memory is its own), with scikit-activeml's time on the same features beside it
//! when Python with scikit-activeml is available, and MedCAL-Bench's own numpy code's when a checkout is
//! given. Native only (child processes).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SelectCell;
use crate::{Context, Error, Result};

/// The grid to run.
#[derive(Clone, Debug)]
pub struct GridConfig {
    pub n: Vec<usize>,
    pub d: Vec<usize>,
    pub budget: usize,
    pub strategies: Vec<String>,
    /// Seconds a cell may run, for medpick and scikit-activeml alike.
    pub cap: u64,
    /// Compare with scikit-activeml when `python -c "import skactiveml"` works.
    pub skactiveml: bool,
    pub python: String,
    /// bench/skactiveml_select.py.
    pub script: PathBuf,
    /// A checkout of MedCAL-Bench: its own numpy selection code runs as a second peer (bench/medcal_select.py)
    /// on the strategies it has.
    pub medcal: Option<PathBuf>,
    /// bench/medcal_select.py.
    pub medcal_script: PathBuf,
    /// The medpick binary whose `bench select-cell` runs one cell, and the global arguments it gets first
    /// (`--device`, `--threads`).
    pub exe: PathBuf,
    pub child_args: Vec<String>,
    /// Threads medpick's cells run on; scikit-activeml's BLAS is limited to the same.
    pub threads: usize,
    pub out: PathBuf,
}

/// Every cell's row, the Markdown table, and whether every cell ran (finished or reached the cap).
pub struct GridReport {
    pub rows: Vec<Row>,
    pub markdown: String,
    pub all_ran: bool,
}

/// What one child run gave: its last stdout line as JSON, or why there is none.
enum Outcome {
    Done(serde_json::Value),
    TimedOut,
    Failed(String),
}

fn run_child(mut cmd: Command, cap: Duration) -> Outcome {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("could not start: {e}")),
    };
    // Drain both pipes on threads so a chatty child never blocks.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() > cap => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    };
    let (stdout, stderr) = (t_out.join().unwrap_or_default(), t_err.join().unwrap_or_default());
    let Some(status) = status else { return Outcome::TimedOut };
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{'));
    match (status.success(), last.and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())) {
        (true, Some(v)) => Outcome::Done(v),
        // A peer that refuses says why in its JSON line (MedCAL's N x N matrices past this machine's memory).
        (false, Some(v)) if v["error"].is_string() => {
            Outcome::Failed(format!("{status}: {}", v["error"].as_str().unwrap_or_default()))
        }
        _ => {
            let why = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
            Outcome::Failed(format!("{status}: {why}"))
        }
    }
}

#[derive(Serialize)]
pub struct Row {
    pub strategy: String,
    pub n: usize,
    pub d: usize,
    pub budget: usize,
    /// "ok", "timed out after CAP s" or the error.
    pub status: String,
    /// Where the cell ran ("gpu", "cpu ×T").
    pub backend: String,
    pub seconds: Option<f64>,
    pub peak_gpu_bytes: Option<u64>,
    pub peak_host_kb: Option<u64>,
    pub notes: Vec<String>,
    pub skactiveml_status: String,
    pub skactiveml_seconds: Option<f64>,
    /// scikit-activeml's time / medpick's time.
    pub speedup: Option<f64>,
    pub medcal_status: String,
    pub medcal_seconds: Option<f64>,
    /// Distinct picks MedCAL's code returned (its Probcover and FPS can repeat a pick).
    pub medcal_unique: Option<u64>,
    /// MedCAL's time / medpick's time.
    pub medcal_speedup: Option<f64>,
}

/// The medpick strategies MedCAL-Bench's select_samples.py implements too (bench/medcal_select.py's table).
const MEDCAL_STRATEGIES: [&str; 7] = ["coreset", "typiclust", "probcover", "repdiv", "alps", "fps", "bal"];

/// A peer's run on the dumped features: (status, seconds, the JSON line). This workplace's OpenBLAS settings pick
/// an old kernel (10–16× slower): the peer runs without them, and its BLAS report says which kernel it got.
fn run_peer(mut c: Command, cap: Duration) -> (String, Option<f64>, Option<serde_json::Value>) {
    c.env_remove("OPENBLAS_CORETYPE").env_remove("OPENBLAS_L2_SIZE");
    match run_child(c, cap) {
        Outcome::Done(v) => ("ok".to_string(), v["seconds"].as_f64(), Some(v)),
        Outcome::TimedOut => (format!("> {} s", cap.as_secs()), None, None),
        Outcome::Failed(e) => (format!("failed: {e}"), None, None),
    }
}

fn skactiveml_available(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import skactiveml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn fmt_secs(s: Option<f64>, status: &str) -> String {
    match s {
        Some(s) => format!("{s:.2}"),
        None => status.to_string(),
    }
}

/// Run every cell (each in a child process `exe bench select-cell ...`, stopped at the cap), with
/// scikit-activeml's time beside it when asked; writes bench-select.json and .md under `a.out`.
pub fn run(a: &GridConfig) -> Result<GridReport> {
    let sk = a.skactiveml && skactiveml_available(&a.python);
    let script = &a.script;
    let medcal = a.medcal.as_deref();
    if let Some(m) = medcal {
        if !m.join("FM-AL/select_samples.py").is_file() {
            return Err(Error::io(m, "not a MedCAL-Bench checkout (no FM-AL/select_samples.py)"));
        }
        let imports = "import numpy, scipy, sklearn, pandas, tqdm";
        let ok = Command::new(&a.python).args(["-c", imports]).stderr(Stdio::null()).status();
        if !ok.is_ok_and(|s| s.success()) {
            let why = format!("needs ‹python› with MedCAL-Bench's imports ({imports}); {} lacks one", a.python);
            return Err(Error::setting("medcal", m.display(), why));
        }
        if !a.medcal_script.exists() {
            return Err(Error::io(&a.medcal_script, "the MedCAL-Bench script is missing"));
        }
    }
    if sk && !script.exists() {
        return Err(Error::io(script, "the scikit-activeml script is missing"));
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let exe = &a.exe;
    let cap = Duration::from_secs(a.cap);
    let tmp = std::env::temp_dir().join(format!("medpick-bench-select-{}", std::process::id()));
    let total = a.n.len() * a.d.len() * a.strategies.len();
    let pb = crate::progress::bar("bench select");
    pb.set_length(total as u64);
    let mut rows = Vec::new();
    let mut blas = String::new();
    note!(
        "bench select: {} cells, cap {} s each{}",
        total,
        a.cap,
        if sk { ", with scikit-activeml" } else { " (scikit-activeml not used)" }
    );
    if let Some(m) = medcal {
        note!("bench select: MedCAL-Bench's own code from {} as a second peer", m.display());
    }
    for &n in &a.n {
        for &d in &a.d {
            for s in &a.strategies {
                pb.set_message(format!("{s} n={n} d={d}"));
                let sk_here = sk && matches!(s.as_str(), "coreset" | "typiclust-knn" | "probcover");
                let medcal_here = medcal.filter(|_| MEDCAL_STRATEGIES.contains(&s.as_str()));
                let dump = (sk_here || medcal_here.is_some()).then(|| tmp.with_extension(format!("{n}x{d}.npy")));
                let mut cmd = Command::new(exe);
                cmd.args(&a.child_args)
                    .args(["bench", "select-cell", "--n", &n.to_string(), "--d", &d.to_string()])
                    .args(["--strategy", s, "--budget", &a.budget.to_string()]);
                if let Some(p) = &dump {
                    cmd.arg("--dump").arg(p);
                }
                let (status, cell, host) = match run_child(cmd, cap) {
                    Outcome::Done(v) => {
                        let host = v["peak_host_kb"].as_u64();
                        let cell: Option<SelectCell> = serde_json::from_value(v).ok();
                        ("ok".to_string(), cell, host)
                    }
                    Outcome::TimedOut => (format!("> {} s", a.cap), None, None),
                    Outcome::Failed(e) => (format!("failed: {e}"), None, None),
                };
                let dumped = dump.as_ref().filter(|p| p.exists());
                let missing = || "no features (medpick's cell did not finish writing them)".to_string();
                let (sk_status, sk_secs) = match (sk_here, dumped) {
                    (false, _) => ("—".to_string(), None),
                    (true, None) => (missing(), None),
                    (true, Some(p)) => {
                        let mut c = Command::new(&a.python);
                        c.arg(script).arg(p).arg(s).arg(a.budget.to_string()).arg(a.threads.to_string());
                        let (st, secs, v) = run_peer(c, cap);
                        if let Some(b) = v.as_ref().and_then(|v| v["blas"].as_str()) {
                            blas = b.to_string();
                        }
                        (st, secs)
                    }
                };
                let (medcal_status, medcal_secs, medcal_unique) = match (medcal_here, dumped) {
                    (None, _) => ("—".to_string(), None, None),
                    (Some(_), None) => (missing(), None, None),
                    (Some(m), Some(p)) => {
                        let mut c = Command::new(&a.python);
                        c.arg(&a.medcal_script).arg(m).arg(p).arg(s);
                        c.arg(a.budget.to_string()).arg(a.threads.to_string());
                        let (st, secs, v) = run_peer(c, cap);
                        if let Some(b) = v.as_ref().and_then(|v| v["blas"].as_str()) {
                            blas = b.to_string();
                        }
                        (st, secs, v.and_then(|v| v["unique"].as_u64()))
                    }
                };
                if let Some(p) = &dump {
                    let _ = std::fs::remove_file(p);
                }
                let seconds = cell.as_ref().map(|c| c.seconds);
                let backend = match cell.as_ref() {
                    Some(c) if c.backend == "cpu" => format!("cpu ×{}", c.threads),
                    Some(c) => c.backend.clone(),
                    None => "—".into(),
                };
                rows.push(Row {
                    strategy: s.clone(),
                    n,
                    d,
                    budget: a.budget,
                    status,
                    backend,
                    seconds,
                    peak_gpu_bytes: cell.as_ref().map(|c| c.peak_gpu_bytes),
                    peak_host_kb: host,
                    notes: cell.map(|c| c.notes).unwrap_or_default(),
                    speedup: seconds.zip(sk_secs).map(|(m, k)| k / m),
                    skactiveml_status: sk_status,
                    skactiveml_seconds: sk_secs,
                    medcal_speedup: seconds.zip(medcal_secs).map(|(m, k)| k / m),
                    medcal_status,
                    medcal_seconds: medcal_secs,
                    medcal_unique,
                });
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    let medcal_cols = medcal.is_some();
    let mut md = String::from(
        "| strategy | N | D | B | backend | medpick s | peak GPU MiB | peak host MiB | scikit-activeml s | ratio |",
    );
    md.push_str(if medcal_cols { " MedCAL-Bench s | ratio |\n" } else { "\n" });
    md.push_str("|---|---|---|---|---|---|---|---|---|---|");
    md.push_str(if medcal_cols { "---|---|\n" } else { "\n" });
    let ratio = |x: Option<f64>| x.map(|x| format!("{x:.1}×")).unwrap_or_else(|| "—".into());
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.strategy,
            r.n,
            r.d,
            r.budget,
            r.backend,
            fmt_secs(r.seconds, &r.status),
            r.peak_gpu_bytes.map(|b| format!("{:.0}", b as f64 / 1048576.0)).unwrap_or_else(|| "—".into()),
            r.peak_host_kb.map(|k| format!("{:.0}", k as f64 / 1024.0)).unwrap_or_else(|| "—".into()),
            fmt_secs(r.skactiveml_seconds, &r.skactiveml_status),
            ratio(r.speedup),
        ));
        if medcal_cols {
            let repeats = match r.medcal_unique {
                Some(u) if (u as usize) < r.budget => format!(" ({u} distinct)"),
                _ => String::new(),
            };
            let secs = fmt_secs(r.medcal_seconds, &r.medcal_status);
            md.push_str(&format!(" {secs}{repeats} | {} |", ratio(r.medcal_speedup)));
        }
        md.push('\n');
    }
    if !blas.is_empty() {
        md.push_str(&format!("\nscikit-activeml on {} threads; its BLAS (threadpoolctl): {blas}\n", a.threads));
    }
    let medcal_dir = medcal.map(|m| m.display().to_string());
    let doc = serde_json::json!({ "cap_seconds": a.cap, "skactiveml": sk, "medcal": medcal_dir, "threads": a.threads, "skactiveml_blas": blas, "rows": rows });
    std::fs::write(a.out.join("bench-select.json"), serde_json::to_string_pretty(&doc)?)?;
    std::fs::write(a.out.join("bench-select.md"), &md)?;
    let all_ran = rows.iter().all(|r| r.status == "ok" || r.status.starts_with('>'));
    Ok(GridReport { rows, markdown: md, all_ran })
}
