//! The CPU backend's threads: a rayon pool on native targets, sized by [`set_threads`] (default: every core);
//! the calling thread alone in the browser (wasm32 has no threads there). Kernels split their output into
//! disjoint chunks with [`for_chunks`], so results never depend on the thread count except where a kernel says
//! so (none does today: every split is over output rows whose values are computed the same way alone).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requested threads; 0 = every core.
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

/// Cores this process may use (1 where that cannot be read).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Use `n` threads from now on (0: every core). More threads than cores is allowed (they share the cores).
/// Returns the count in effect.
pub fn set_threads(n: usize) -> usize {
    REQUESTED.store(n, Ordering::Relaxed);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
        *g = None;
    }
    threads()
}

/// Threads the CPU backend runs on.
pub fn threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    match REQUESTED.load(Ordering::Relaxed) {
        0 => cores(),
        n => n,
    }
}

#[cfg(not(target_arch = "wasm32"))]
static POOL: std::sync::Mutex<Option<std::sync::Arc<rayon::ThreadPool>>> = std::sync::Mutex::new(None);

#[cfg(not(target_arch = "wasm32"))]
fn pool() -> Option<std::sync::Arc<rayon::ThreadPool>> {
    let mut g = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        let n = threads();
        // A pool that cannot be built (no threads allowed) leaves the work on the calling thread.
        *g = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("medpick-cpu-{i}"))
            .build()
            .ok()
            .map(std::sync::Arc::new);
    }
    g.clone()
}

/// Run `f(first_chunk_index, chunk)` over `out` split into chunks of `chunk` elements (the last may be shorter),
/// in parallel where there are threads. `chunk` 0 is taken as the whole slice.
pub fn for_chunks<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let chunk = if chunk == 0 { out.len().max(1) } else { chunk };
    #[cfg(not(target_arch = "wasm32"))]
    if threads() > 1 && out.len() > chunk {
        if let Some(p) = pool() {
            use rayon::prelude::*;
            p.install(|| out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c)));
            return;
        }
    }
    for (i, c) in out.chunks_mut(chunk).enumerate() {
        f(i, c);
    }
}

/// `f(i)` for i in 0..n, in parallel where there are threads, results in order.
pub fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    if threads() > 1 && n > 1 {
        if let Some(p) = pool() {
            use rayon::prelude::*;
            return p.install(|| (0..n).into_par_iter().map(&f).collect());
        }
    }
    (0..n).map(f).collect()
}

/// Rows per task when splitting `rows` rows of `work_per_row` units: about four tasks per thread (for balance),
/// none smaller than `min_work` units, and one task when there is a single thread.
pub fn rows_per_task(rows: usize, work_per_row: usize, min_work: usize) -> usize {
    let t = threads();
    if t <= 1 || rows <= 1 {
        return rows.max(1);
    }
    let by_balance = rows.div_ceil(4 * t);
    let by_size = min_work.div_ceil(work_per_row.max(1));
    by_balance.max(by_size).clamp(1, rows)
}

/// A raw pointer into an output buffer, shared by tasks that each write a disjoint set of its elements (rows,
/// columns or blocks: each user says which at its `SendPtr(..)`), or read-only input. `get` is a method so that
/// closures capture the whole `SendPtr`, not its field.
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);

impl SendPtr {
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: the tasks sharing one never touch the same element mutably (the contract above, kept by each user).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
