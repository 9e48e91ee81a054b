//! `medpick-fuzz`: run medpick's fuzz targets on stable Rust.
//!
//! A mutation fuzzer without coverage instrumentation (so it needs no nightly compiler and no sanitizer runtime):
//! each execution takes an input from the target's pool (its corpus `fuzz/corpus/<target>/`, seeded from
//! `../shared/data` and the tests' bad files, plus inputs the target accepted during this run), applies a few
//! structure-blind mutations (bit flips, interesting integers and floats written over header fields, inserted,
//! deleted, duplicated and spliced ranges, truncation) and runs the target. A finding is
//! - a panic (caught, the input saved under `fuzz/artifacts/<target>/crash-<sha>`),
//! - an execution that allocated more than `--max-alloc-mb` at its peak (saved as `mem-<sha>`; the allocator
//!   refuses anything past 4× that limit, which aborts the process after the input is written to `oom-last`),
//! - an execution slower than `--max-exec-s` (saved as `slow-<sha>`).
//!
//! The run is deterministic for a `--seed`; `--replay FILE...` runs a target on saved inputs.
//!
//! ```text
//! medpick-fuzz --list
//! medpick-fuzz all --seconds 10                  # what CI runs
//! medpick-fuzz image --execs 1000000 --json out.json
//! medpick-fuzz image --replay fuzz/artifacts/image/crash-0123abcd
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use medpick_fuzz::{Scratch, Target, TARGETS};

mod mutate;
mod seeds;

/// Bytes allocated now, the peak since the last reset, and the hard limit past which allocation fails.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static HARD_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static OVER_HARD: AtomicBool = AtomicBool::new(false);
/// Where the input of an execution that hit the hard limit is written (opened before the run; writing to an open
/// file does not allocate).
static OOM_FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);
static CURRENT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !self.reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !self.reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !self.reserve(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            // The old block stays as it was.
            if new_size > layout.size() {
                LIVE.fetch_sub(new_size - layout.size(), Ordering::Relaxed);
            }
        } else if new_size < layout.size() {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        p
    }
}

/// `MEDPICK_FUZZ_TRACE_MB=N`: print where each allocation of more than N MiB is made (to find a `mem` finding's
/// source; a fallible allocation that fails when replayed under a low --max-alloc-mb leaves no abort to read).
static TRACE_OVER: AtomicUsize = AtomicUsize::new(usize::MAX);
thread_local!(static TRACING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

fn trace(size: usize) {
    if size > TRACE_OVER.load(Ordering::Relaxed) && !TRACING.with(|t| t.replace(true)) {
        eprintln!("allocation of {} MiB at\n{}", size >> 20, std::backtrace::Backtrace::force_capture());
        TRACING.with(|t| t.set(false));
    }
}

impl Counting {
    fn reserve(&self, size: usize) -> bool {
        trace(size);
        let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        // Recorded even when refused below: a fallible allocation (try_reserve) refused here is handled by the
        // library as an error, and would otherwise leave no trace of what the input asked for.
        PEAK.fetch_max(now, Ordering::Relaxed);
        if now > HARD_LIMIT.load(Ordering::Relaxed) {
            LIVE.fetch_sub(size, Ordering::Relaxed);
            if !OVER_HARD.swap(true, Ordering::Relaxed) {
                // Save the input before the process aborts (try_lock: never wait inside the allocator).
                if let (Ok(mut f), Ok(cur)) = (OOM_FILE.try_lock(), CURRENT.try_lock()) {
                    if let Some(f) = f.as_mut() {
                        let _ = f.write_all(&cur);
                    }
                }
            }
            return false;
        }
        true
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Parser)]
#[command(name = "medpick-fuzz", about = "Fuzz medpick's parsers and selection (stable Rust, no instrumentation)")]
struct Args {
    /// A target name, or `all`.
    target: Option<String>,
    /// List the targets.
    #[arg(long)]
    list: bool,
    /// Executions per target (the run stops at whichever of --execs and --seconds comes first).
    #[arg(long)]
    execs: Option<u64>,
    /// Seconds per target.
    #[arg(long)]
    seconds: Option<f64>,
    /// RNG seed (the run is deterministic for a seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The corpus folder (one sub-folder per target).
    #[arg(long, default_value = "fuzz/corpus")]
    corpus: PathBuf,
    /// Where findings are saved (one sub-folder per target).
    #[arg(long, default_value = "fuzz/artifacts")]
    artifacts: PathBuf,
    /// A finding when one execution's peak allocation passes this (MiB); 4× this fails the allocation. Counted
    /// are bytes reserved, touched or not: the tiff crate reserves up to 256 MiB for a directory's values before
    /// the image crate's limits reach it (untouched address space, whatever the size cap), hence 512.
    #[arg(long, default_value_t = 512)]
    max_alloc_mb: usize,
    /// A finding when one execution takes longer than this (seconds).
    #[arg(long, default_value_t = 2.0)]
    max_exec_s: f64,
    /// Write the per-target results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// (Re)write the seed corpus from this folder of shared data (`../shared/data`) and the tests' files.
    #[arg(long, value_name = "SHARED_DATA")]
    make_corpus: Option<PathBuf>,
    /// Run the target on these files (saved findings) instead of fuzzing.
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
}

/// What one target's run found.
struct Outcome {
    target: &'static str,
    execs: u64,
    seconds: f64,
    accepted: u64,
    seeds: usize,
    pool: usize,
    peak_mb: f64,
    slowest_ms: f64,
    findings: Vec<String>,
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.list {
        for t in TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        return Ok(());
    }
    if let Some(shared) = &a.make_corpus {
        seeds::make(shared, &a.corpus)?;
        println!("corpus written to {}", a.corpus.display());
        return Ok(());
    }
    let name = a.target.clone().context("name a target (or `all`); --list lists them")?;
    let targets: Vec<&'static Target> = if name == "all" {
        TARGETS.iter().collect()
    } else {
        vec![medpick_fuzz::target(&name).with_context(|| format!("no target {name:?}; --list lists them"))?]
    };
    medpick_core::cpu::par::set_threads(1);
    if let Some(mb) = std::env::var("MEDPICK_FUZZ_TRACE_MB").ok().and_then(|v| v.parse::<usize>().ok()) {
        TRACE_OVER.store(mb << 20, Ordering::Relaxed);
    }
    let scratch = Scratch::new().context("creating the fuzz scratch folder")?;
    if !a.replay.is_empty() {
        if targets.len() != 1 {
            bail!("--replay runs one target: name it");
        }
        let found = replay(targets[0], &scratch, &a.replay, a.max_alloc_mb << 20)?;
        if found > 0 {
            bail!("{found} of {} input(s) still a finding", a.replay.len());
        }
        return Ok(());
    }
    if a.execs.is_none() && a.seconds.is_none() {
        bail!("say how long: --execs N and/or --seconds S (per target)");
    }
    // Panics are findings, reported once per input below; keep their messages out of the terminal.
    let last_panic: &'static Mutex<String> = Box::leak(Box::new(Mutex::new(String::new())));
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if let Ok(mut m) = last_panic.lock() {
            *m = format!("{msg}{at}");
        }
    }));
    let mut outcomes = Vec::new();
    for t in targets {
        let o = run(t, &scratch, &a, last_panic)?;
        println!(
            "{:<14} {:>9} execs {:>7.1} s {:>8.0}/s  accepted {:>8}  seeds {:>3} pool {:>4}  peak {:>6.1} MiB  slowest {:>7.1} ms  findings {}",
            o.target,
            o.execs,
            o.seconds,
            o.execs as f64 / o.seconds.max(1e-9),
            o.accepted,
            o.seeds,
            o.pool,
            o.peak_mb,
            o.slowest_ms,
            o.findings.len()
        );
        for f in &o.findings {
            println!("    {f}");
        }
        outcomes.push(o);
    }
    if let Some(p) = &a.json {
        let v: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "target": o.target, "execs": o.execs, "seconds": o.seconds, "accepted": o.accepted,
                    "seeds": o.seeds, "pool": o.pool, "peak_alloc_mb": o.peak_mb, "slowest_ms": o.slowest_ms,
                    "findings": o.findings, "seed": a.seed,
                })
            })
            .collect();
        std::fs::write(p, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let found: usize = outcomes.iter().map(|o| o.findings.len()).sum();
    if found > 0 {
        bail!("{found} finding(s); inputs saved under {}", a.artifacts.display());
    }
    Ok(())
}

fn read_corpus(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    files.sort();
    files.iter().map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display()))).collect()
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().take(8).map(|x| format!("{x:02x}")).collect()
}

fn save(dir: &Path, kind: &str, input: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = dir.join(format!("{kind}-{}", sha(input)));
    std::fs::write(&p, input).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

fn run(t: &'static Target, scratch: &Scratch, a: &Args, last_panic: &Mutex<String>) -> Result<Outcome> {
    let seeds = read_corpus(&a.corpus.join(t.name))?;
    let n_seeds = seeds.len();
    let mut pool: Vec<Vec<u8>> = if seeds.is_empty() { vec![Vec::new()] } else { seeds };
    let pinned = pool.len();
    let mut rng = mutate::Rng::new(
        a.seed ^ t.name.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)),
    );
    let art = a.artifacts.join(t.name);
    let limit = a.max_alloc_mb << 20;
    std::fs::create_dir_all(&art).with_context(|| format!("creating {}", art.display()))?;
    *OOM_FILE.lock().expect("not poisoned") = Some(std::fs::File::create(art.join("oom-last"))?);
    let (max_execs, max_time) = (a.execs.unwrap_or(u64::MAX), a.seconds.map(Duration::from_secs_f64));
    let start = Instant::now();
    let mut o = Outcome {
        target: t.name,
        execs: 0,
        seconds: 0.0,
        accepted: 0,
        seeds: n_seeds,
        pool: 0,
        peak_mb: 0.0,
        slowest_ms: 0.0,
        findings: Vec::new(),
    };
    let mut seen_findings = std::collections::HashSet::new();
    while o.execs < max_execs && max_time.is_none_or(|m| start.elapsed() < m) {
        // The seeds themselves first, then mutants.
        let input =
            if (o.execs as usize) < pinned { pool[o.execs as usize].clone() } else { mutate::mutate(&mut rng, &pool) };
        CURRENT.lock().expect("not poisoned").clone_from(&input);
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        OVER_HARD.store(false, Ordering::Relaxed);
        HARD_LIMIT.store(base + 4 * limit, Ordering::Relaxed);
        let t0 = Instant::now();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (t.run)(scratch, &input)));
        let dt = t0.elapsed().as_secs_f64();
        HARD_LIMIT.store(usize::MAX, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        o.execs += 1;
        o.peak_mb = o.peak_mb.max(peak as f64 / (1 << 20) as f64);
        o.slowest_ms = o.slowest_ms.max(dt * 1e3);
        let mut finding = |kind: &str, what: String| -> Result<()> {
            if seen_findings.insert(what.clone()) {
                let p = save(&art, kind, &input)?;
                o.findings.push(format!("{kind}: {what} ({})", p.display()));
            }
            Ok(())
        };
        match res {
            Err(_) => {
                let msg = last_panic.lock().map(|m| m.clone()).unwrap_or_default();
                finding("crash", msg)?;
            }
            Ok(accepted) => {
                if accepted {
                    o.accepted += 1;
                    // Accepted inputs reach deeper code: keep some as bases for further mutation.
                    if pool.len() < pinned + 256 {
                        pool.push(input.clone());
                    } else if rng.below(16) == 0 {
                        let i = pinned + rng.below(256);
                        pool[i] = input.clone();
                    }
                }
            }
        }
        if peak > limit {
            finding("mem", format!("one execution allocated {:.0} MiB at its peak", peak as f64 / (1 << 20) as f64))?;
        }
        if dt > a.max_exec_s {
            finding("slow", format!("one execution took {dt:.1} s"))?;
        }
    }
    o.seconds = start.elapsed().as_secs_f64();
    o.pool = pool.len();
    *OOM_FILE.lock().expect("not poisoned") = None;
    let _ = std::fs::remove_file(art.join("oom-last"));
    let _ = std::fs::remove_dir(&art); // only when empty: a folder left behind holds findings
    Ok(o)
}

/// Replaying, a peak past `limit` is a finding, as in a run, and an allocation past 4× it fails (with
/// RUST_BACKTRACE=1 the abort shows where it was made; MEDPICK_FUZZ_TRACE_MB shows every big one).
fn replay(t: &'static Target, scratch: &Scratch, files: &[PathBuf], limit: usize) -> Result<usize> {
    let mut found = 0;
    for f in files {
        let input = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let t0 = Instant::now();
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        HARD_LIMIT.store(LIVE.load(Ordering::Relaxed) + 4 * limit, Ordering::Relaxed);
        let accepted = (t.run)(scratch, &input);
        HARD_LIMIT.store(usize::MAX, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        let over = if peak > limit { " (a finding: over --max-alloc-mb)" } else { "" };
        found += usize::from(peak > limit);
        println!(
            "{}: {} in {:.1} ms, peak {:.1} MiB{over}",
            f.display(),
            if accepted { "accepted" } else { "refused" },
            t0.elapsed().as_secs_f64() * 1e3,
            peak as f64 / (1 << 20) as f64
        );
    }
    Ok(found)
}
