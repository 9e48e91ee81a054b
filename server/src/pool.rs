//! The selection side of the server: the datastore images' features (embedded once in the background by
//! [`crate::embedding`], through core's feature cache keyed by file content), one plan of picks per strategy
//! computed from those features and refreshed when labels change, and leases so that concurrent annotators never
//! get the same image. "Next sample" is a lookup in a plan.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use medpick_core::select::{self, Matrix, SelectInput};

use crate::{ApiError, ApiResult};

pub use crate::embedding::{all_samples, embed_images, samples_of, EmbedProgress, VOLUME_SLICES};

/// Image-level features of the datastore's images.
#[derive(Default)]
pub struct Features {
    pub ids: Vec<String>,
    pub index: HashMap<String, usize>,
    pub dim: usize,
    pub data: Vec<f32>,
    /// Bumped at every change of the features (a plan made on other features is stale).
    pub generation: u64,
}

/// A strategy's ranking of the pool, made on `feats` with the labels of the first `log_len` label events.
#[derive(Clone)]
pub struct Plan {
    /// The features the rows index.
    pub feats: Arc<Features>,
    pub rows: Vec<usize>,
    pub scores: Vec<f64>,
    pub log_len: usize,
    /// Order in which plans were made (set when stored).
    pub seq: u64,
    /// `rows` as a set.
    pub members: HashSet<usize>,
    pub seconds: f64,
    /// The plan covers every unlabelled row (nothing beyond it to extend to).
    pub complete: bool,
    /// Coreset plans: the k-center run behind them, which a longer plan continues instead of starting again, and
    /// how many of its picks this plan holds.
    pub growing: Option<(Arc<Mutex<Growing>>, usize)>,
}

/// A coreset plan's k-center run and every pick it has made (shared by the plans extended from it).
pub struct Growing {
    run: select::exact::KCenterRun,
    picks: Vec<usize>,
    scores: Vec<f64>,
    /// The run stopped: every row is at distance 0 from a centre.
    covered: bool,
}

/// `p` continued to at least `size` rows of picks (the k-center greedy from where it stopped, so the picks are those
/// of one run of that length), or None when `p` is not a coreset plan that can grow.
pub fn extend_plan(p: &Plan, size: usize) -> Option<Plan> {
    let t0 = Instant::now();
    let (g, held) = p.growing.as_ref()?;
    let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
    let x = Matrix::new(&p.feats.data, p.feats.ids.len(), p.feats.dim).ok()?;
    if g.picks.len() < size && !g.covered {
        let want = size - g.picks.len();
        let (picks, scores) = g.run.extend(x, want);
        g.covered = picks.len() < want;
        g.picks.extend(picks);
        g.scores.extend(scores);
    }
    if g.covered {
        // What follows is the strategy's fill of covered rows: a fresh plan makes it.
        return None;
    }
    let mut plan = p.clone();
    for (&r, &sc) in g.picks[*held..].iter().zip(&g.scores[*held..]) {
        if plan.members.insert(r) {
            plan.rows.push(r);
            plan.scores.push(sc);
        }
    }
    plan.complete = plan.members.len() >= x.n;
    plan.growing = Some((p.growing.as_ref()?.0.clone(), g.picks.len()));
    plan.seconds = t0.elapsed().as_secs_f64();
    Some(plan)
}

/// Who holds an image, until when.
struct Lease {
    client: String,
    until: Instant,
}

/// What must change together: the leases and the set of labelled images (so that an image labelled while a
/// request is being answered cannot be handed out again).
#[derive(Default)]
struct Holdings {
    leases: HashMap<String, Lease>,
    labeled: HashSet<String>,
    /// Every label event in order: (image, now labelled). A plan is stale once an event touches an image outside
    /// it: labelling the images a plan picked is what the plan assumed, so it stays valid (and is not remade on
    /// every label, which under many annotators would keep the CPU busy planning).
    log: Vec<(String, bool)>,
    /// When the latest images were handed out (the last [`RATE_WINDOW`]), for the rate plans must keep ahead of.
    handed: std::collections::VecDeque<Instant>,
}

/// How long a request whose plan ran out waits for the planner thread's plan before making one itself.
const PLANNER_WAIT: Duration = Duration::from_secs(10);

/// The window over which the hand-out rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(2);

pub struct Selector {
    pub progress: Arc<EmbedProgress>,
    pub features: RwLock<Arc<Features>>,
    plans: Mutex<HashMap<String, Arc<Plan>>>,
    /// Strategies queued for a background refresh.
    planning: Mutex<HashSet<String>>,
    /// One plan computed in the foreground at a time (the others wait for it and reuse it).
    computing: Mutex<()>,
    holdings: Mutex<Holdings>,
    pub lease_for: Duration,
    pub plan_size: usize,
    pub seed: u64,
    /// Numbers the plans in the order they are made.
    seq: std::sync::atomic::AtomicU64,
    /// Where stale plans are sent to be made again (the planner thread).
    pub refresh: Mutex<Option<std::sync::mpsc::Sender<RefreshJob>>>,
    /// Uncertainty scores by method (`POST /scoring/{method}`): id → score, and whether lower goes first.
    pub uncertainty: Mutex<HashMap<String, Scores>>,
}

/// One method's scores, and whether the lowest is picked first.
pub type Scores = (Arc<HashMap<String, f64>>, bool);

impl Selector {
    pub fn new(lease_for: Duration, plan_size: usize, seed: u64, labeled: HashSet<String>) -> Selector {
        Selector {
            progress: Arc::new(EmbedProgress::default()),
            features: RwLock::new(Arc::new(Features::default())),
            plans: Mutex::new(HashMap::new()),
            planning: Mutex::new(HashSet::new()),
            computing: Mutex::new(()),
            holdings: Mutex::new(Holdings {
                leases: HashMap::new(),
                labeled,
                log: Vec::new(),
                handed: Default::default(),
            }),
            lease_for,
            plan_size: plan_size.max(1),
            seed,
            refresh: Mutex::new(None),
            seq: std::sync::atomic::AtomicU64::new(0),
            uncertainty: Mutex::new(HashMap::new()),
        }
    }

    pub fn ready(&self) -> bool {
        self.progress.state.lock().map(|s| s.as_str() == "ready").unwrap_or(false)
    }

    pub fn status(&self) -> serde_json::Value {
        let p = &self.progress;
        let state = p.state.lock().map(|s| s.clone()).unwrap_or_default();
        let skipped: Vec<serde_json::Value> = p
            .skipped
            .lock()
            .map(|v| v.iter().map(|(id, why)| serde_json::json!({"id": id, "why": why})).collect())
            .unwrap_or_default();
        serde_json::json!({
            "state": state,
            "total": p.total.load(Ordering::Relaxed),
            "done": p.done.load(Ordering::Relaxed),
            "features": self.features.read().map(|f| f.ids.len()).unwrap_or(0),
            "skipped": skipped,
        })
    }

    /// Image `id` got a final label (`true`) or lost it: its lease ends, and plans that did not pick it are stale.
    pub fn labels_changed(&self, id: &str, labeled: bool) {
        if let Ok(mut h) = self.holdings.lock() {
            h.leases.remove(id);
            if labeled {
                h.labeled.insert(id.to_string());
            } else {
                h.labeled.remove(id);
            }
            h.log.push((id.to_string(), labeled));
        }
    }

    /// Number a plan made now, and take in the images handed out while it was computed (they are being labelled,
    /// as if the plan had seen them leased): their labels then leave it valid instead of remaking it.
    fn adopt(&self, plan: &mut Plan) {
        plan.seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let now = Instant::now();
        let h = self.holdings.lock().unwrap_or_else(|e| e.into_inner());
        for (id, l) in &h.leases {
            if l.until <= now {
                continue;
            }
            if let Some(&r) = plan.feats.index.get(id) {
                if plan.members.insert(r) {
                    plan.rows.push(r);
                    plan.scores.push(f64::NAN);
                }
            }
        }
    }

    /// The stored plan of `strategy` continued to `size` picks, when it is a coreset plan still valid for `feats`.
    pub fn grown_plan(&self, strategy: &str, feats: &Arc<Features>, size: usize) -> Option<Plan> {
        let p = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(strategy).cloned()?;
        if p.growing.is_none() || self.stale(&p, feats) {
            return None;
        }
        extend_plan(&p, size)
    }

    /// Forget a strategy's plan (its scores changed).
    pub fn forget_plan(&self, strategy: &str) {
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).remove(strategy);
    }

    /// The scores of an uncertainty strategy, when it has been scored.
    pub fn scores(&self, strategy: &str) -> Option<Scores> {
        self.uncertainty.lock().ok().and_then(|u| u.get(strategy).cloned())
    }

    /// Whether `p` no longer reflects the features or the labels.
    fn stale(&self, p: &Plan, feats: &Features) -> bool {
        if p.feats.generation != feats.generation {
            return true;
        }
        let h = self.holdings.lock().unwrap_or_else(|e| e.into_inner());
        h.log
            .get(p.log_len..)
            .unwrap_or(&[])
            .iter()
            .any(|(id, labeled)| !labeled || !feats.index.get(id).is_some_and(|r| p.members.contains(r)))
    }

    /// Leases in force.
    pub fn leased(&self) -> usize {
        let now = Instant::now();
        self.holdings.lock().map(|h| h.leases.values().filter(|v| v.until > now).count()).unwrap_or(0)
    }

    /// Leases in force per client.
    pub fn leases_by_client(&self) -> std::collections::BTreeMap<String, usize> {
        let now = Instant::now();
        let mut m = std::collections::BTreeMap::new();
        if let Ok(h) = self.holdings.lock() {
            for l in h.leases.values().filter(|v| v.until > now) {
                *m.entry(l.client.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    /// The images a new plan takes as done — the labelled ones and those leased now (being labelled: a diversity
    /// strategy starts from them too) — and how many label events that is.
    fn labeled_snapshot(&self) -> ApiResult<Taken> {
        let now = Instant::now();
        let h = self.holdings.lock().unwrap_or_else(|e| e.into_inner());
        let leased = h.leases.iter().filter(|(_, l)| l.until > now).map(|(id, _)| id.clone()).collect();
        Ok(Taken { labeled: h.labeled.clone(), leased, log_len: h.log.len() })
    }

    /// The next `count` images for `client` by `strategy`: the plan's first rows that are neither labelled nor
    /// leased (to anyone), leased to `client` on the way out, all under one lock.
    pub fn next(&self, strategy: &str, client: &str, count: usize) -> ApiResult<Vec<(String, f64, usize)>> {
        if !self.ready() {
            let p = &self.progress;
            return Err(ApiError::unavailable(format!(
                "medpick is still embedding the datastore ({} of {} images): strategies need the features; try again \
                 shortly",
                p.done.load(Ordering::Relaxed),
                p.total.load(Ordering::Relaxed)
            )));
        }
        let feats = self.features.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut after = None;
        for _ in 0..40 {
            let plan = self.plan(strategy, &feats, after)?;
            let now = Instant::now();
            let mut h = self.holdings.lock().unwrap_or_else(|e| e.into_inner());
            h.leases.retain(|_, v| v.until > now);
            let mut out = Vec::new();
            let pf = &plan.feats;
            for (rank, (&r, &s)) in plan.rows.iter().zip(&plan.scores).enumerate() {
                let Some(id) = pf.ids.get(r) else { continue };
                if h.labeled.contains(id) || h.leases.contains_key(id) {
                    continue;
                }
                out.push((id.clone(), s, rank));
                if out.len() == count {
                    break;
                }
            }
            if out.len() == count || plan.complete {
                for (id, _, _) in &out {
                    let until = now.checked_add(self.lease_for).unwrap_or(now + Duration::from_secs(86_400 * 365));
                    h.leases.insert(id.clone(), Lease { client: client.to_string(), until });
                    h.handed.push_back(now);
                }
                while h.handed.front().is_some_and(|&t| now.duration_since(t) > RATE_WINDOW) {
                    h.handed.pop_front();
                }
                let rate = h.handed.len() as f64 / RATE_WINDOW.as_secs_f64();
                // Extend the plan in the background before annotators run out of it.
                let last = out.last().map(|o| o.2 + 1).unwrap_or(0);
                let free_after = plan.rows[last.min(plan.rows.len())..]
                    .iter()
                    .filter_map(|&r| pf.ids.get(r))
                    .filter(|id| !h.labeled.contains(*id) && !h.leases.contains_key(*id))
                    .count();
                // Early enough that the planner finishes before the annotators holding images now come back, and
                // before those asking at the present rate use up what is left while the next plan is made: it is
                // twice this one's size, so about twice its time, and a plan made under load takes longer again
                // (×3).
                let ahead = (6.0 * rate * plan.seconds).ceil() as usize;
                let margin = (self.plan_size / 2).max(4 * h.leases.len()).max(ahead);
                drop(h);
                if !plan.complete && free_after < margin {
                    self.queue_refresh(strategy, &feats, (plan.rows.len() * 2).max(plan.rows.len() + 2 * margin))?;
                }
                return Ok(out);
            }
            // The plan ran out of free images while more are unlabelled: a fresh one now (the images taken since
            // are left out of it), longer if a fresh one ran out too.
            let min_rows = if after.is_some() { plan.rows.len() * 2 } else { 0 };
            after = Some((plan.seq, min_rows));
        }
        Err(ApiError::internal("no plan reached a free image"))
    }

    /// The plan of `strategy`: the stored one (a stale one is served while the planner thread remakes it), or —
    /// `after` = (the sequence number of a plan that ran out, rows wanted) — one made after that plan with at least
    /// that many rows, computed now if none is, one at a time.
    fn plan(&self, strategy: &str, feats: &Arc<Features>, after: Option<(u64, usize)>) -> ApiResult<Arc<Plan>> {
        let existing = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(strategy).cloned();
        if let (Some(p), None) = (&existing, after) {
            if self.stale(p, feats) {
                self.queue_refresh(strategy, feats, p.rows.len())?;
            }
            return Ok(p.clone());
        }
        let (seen, want) = after.unwrap_or((0, 0));
        let usable = |p: &Plan| p.seq > seen && !self.stale(p, feats) && (p.rows.len() >= want || p.complete);
        let stored = || self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(strategy).cloned();
        // A plan the planner thread is making now is waited for rather than made twice (on a busy machine both
        // would take twice as long); without holding `computing`, so other strategies' requests are not held up.
        let t0 = Instant::now();
        while self.planning.lock().map(|p| p.contains(strategy)).unwrap_or(false) && t0.elapsed() < PLANNER_WAIT {
            if let Some(p) = stored().filter(|p| usable(p)) {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _one = self.computing.lock().unwrap_or_else(|e| e.into_inner());
        // Another request (or the planner) may have made one while this one waited.
        if let Some(p) = stored().filter(|p| usable(p)) {
            return Ok(p);
        }
        // At least twice the plan that ran out: annotators used it up faster than a plan could be made.
        let ran_out = existing.as_ref().filter(|p| p.seq == seen).map_or(0, |p| 2 * p.rows.len());
        let size = (self.plan_size + 4 * self.leased()).max(want).max(ran_out);
        // A coreset plan that is still valid is continued (its run goes on from where it stopped).
        let grown = stored().filter(|p| !self.stale(p, feats)).and_then(|p| extend_plan(&p, size));
        let mut plan = match grown {
            Some(p) => p,
            None => {
                let taken = self.labeled_snapshot()?;
                let scores = self.scores(strategy);
                compute_plan(strategy, feats, &taken, size, self.seed, scores)?
            }
        };
        self.adopt(&mut plan);
        let plan = Arc::new(plan);
        if std::env::var_os("MEDPICK_SERVE_TRACE").is_some() {
            eprintln!("plan {strategy}: {} rows (want {want}) in {:.3} s, foreground", plan.rows.len(), plan.seconds);
        }
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(strategy.to_string(), plan.clone());
        Ok(plan)
    }

    fn queue_refresh(&self, strategy: &str, feats: &Arc<Features>, size: usize) -> ApiResult<()> {
        let mut planning = self.planning.lock().unwrap_or_else(|e| e.into_inner());
        if planning.insert(strategy.to_string()) {
            drop(planning);
            let taken = self.labeled_snapshot()?;
            let size = (self.plan_size + 4 * self.leased()).max(size);
            let job = (strategy.to_string(), feats.clone(), taken, size);
            let sent = match self.refresh.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                Some(tx) => tx.send(job).is_ok(),
                None => false,
            };
            // No planner thread to make it: nothing is in flight (a run-out then plans in the foreground at once).
            if !sent {
                self.planning.lock().unwrap_or_else(|e| e.into_inner()).remove(strategy);
            }
        }
        Ok(())
    }

    /// Store a plan made in the background (unless a newer one is there); the strategy may be queued again.
    pub fn store_plan(&self, strategy: &str, mut plan: Option<Plan>) {
        if let Some(plan) = plan.as_mut() {
            self.adopt(plan);
        }
        if let (Some(plan), Ok(mut p)) = (plan, self.plans.lock()) {
            let key = |p: &Plan| (p.feats.generation, p.log_len);
            if p.get(strategy).is_none_or(|old| key(old) <= key(&plan)) {
                p.insert(strategy.to_string(), Arc::new(plan));
            }
        }
        if let Ok(mut s) = self.planning.lock() {
            s.remove(strategy);
        }
    }

    pub fn plans_summary(&self) -> serde_json::Value {
        let p = self.plans.lock().map(|p| p.clone()).unwrap_or_default();
        let feats = self.features.read().map(|f| f.clone()).unwrap_or_default();
        let m: serde_json::Map<String, serde_json::Value> = p
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::json!({"picks": v.rows.len(), "seconds": v.seconds, "current": !self.stale(v, &feats)}),
                )
            })
            .collect();
        serde_json::Value::Object(m)
    }
}

/// What a new plan takes as done: the labelled images, the leased ones (being labelled: diversity strategies start
/// from them too; they go at the plan's end, so an expired lease's image is still reachable), and how many label
/// events that is.
#[derive(Clone, Default)]
pub struct Taken {
    pub labeled: HashSet<String>,
    pub leased: HashSet<String>,
    pub log_len: usize,
}

/// A plan to make in the background: (strategy, features, taken, size).
pub type RefreshJob = (String, Arc<Features>, Taken, usize);

/// Rank up to `size` unlabelled images with `strategy` (labelled and leased images are the diversity strategies'
/// start; the leased ones follow the picks).
pub fn compute_plan(
    strategy: &str,
    feats: &Arc<Features>,
    taken: &Taken,
    size: usize,
    seed: u64,
    scores: Option<Scores>,
) -> ApiResult<Plan> {
    let t0 = Instant::now();
    let n = feats.ids.len();
    let is_taken = |id: &String| taken.labeled.contains(id) || taken.leased.contains(id);
    let lab: Vec<usize> = feats.ids.iter().enumerate().filter(|(_, id)| is_taken(id)).map(|(i, _)| i).collect();
    let leased_rows: Vec<usize> = feats
        .ids
        .iter()
        .enumerate()
        .filter(|(_, id)| taken.leased.contains(*id) && !taken.labeled.contains(*id))
        .map(|(i, _)| i)
        .collect();
    let free = n - lab.len();
    let finish = |mut rows: Vec<usize>, mut scores: Vec<f64>, complete: bool| {
        rows.extend(&leased_rows);
        scores.resize(rows.len(), f64::NAN);
        let members = rows.iter().chain(&lab).copied().collect();
        let seconds = t0.elapsed().as_secs_f64();
        let log_len = taken.log_len;
        Plan { feats: feats.clone(), rows, scores, log_len, seq: 0, members, seconds, complete, growing: None }
    };
    if free == 0 {
        return Ok(finish(vec![], vec![], true));
    }
    let budget = size.min(free);
    if let Some((scores, ascending)) = scores {
        let done: HashSet<String> = taken.labeled.union(&taken.leased).cloned().collect();
        let (rows, scores, complete) = crate::scoring::rank(feats, &done, &scores, ascending, budget);
        return Ok(finish(rows, scores, complete));
    }
    if strategy == "first" {
        // MONAI Label's "first": the datastore's (id) order.
        let mut rows: Vec<usize> = (0..n).filter(|&i| !is_taken(&feats.ids[i])).collect();
        rows.sort_by(|a, b| feats.ids[*a].cmp(&feats.ids[*b]));
        rows.truncate(budget);
        let k = rows.len();
        return Ok(finish(rows, vec![f64::NAN; k], budget == free));
    }
    let x = Matrix::new(&feats.data, n, feats.dim).map_err(|e| ApiError::internal(e.to_string()))?;
    if strategy == "coreset" && n >= select::SCAN_MIN_ROWS {
        // `select("coreset")`'s picks (its first centre when nothing is taken, the pruned k-center from the taken
        // rows), from a run that a longer plan continues ([`extend_plan`]) instead of starting again.
        let first: Vec<usize> =
            if lab.is_empty() { vec![medpick_core::rng::Rng::new(seed).below(n as u32) as usize] } else { vec![] };
        let seeds = if lab.is_empty() { &first } else { &lab };
        if let Some(run) = select::exact::KCenterRun::start(x, seeds) {
            let mut g = Growing { run, picks: first.clone(), scores: vec![0.0; first.len()], covered: false };
            let want = budget - first.len();
            let (picks, scores) = g.run.extend(x, want);
            // A run that covers every row before the budget leaves the rest to `select`'s fill.
            if picks.len() == want {
                g.picks.extend(picks);
                g.scores.extend(scores);
                let held = g.picks.len();
                let mut plan = finish(g.picks.clone(), g.scores.clone(), budget == free);
                plan.growing = Some((Arc::new(Mutex::new(g)), held));
                return Ok(plan);
            }
        }
    }
    let input =
        SelectInput { x, budget, seed, labeled: &lab, scans: Some(medpick_core::exec::Backend::Cpu), weights: None };
    let sel = pollster::block_on(select::select(strategy, &input)).map_err(|e| match e {
        medpick_core::Error::Unknown { .. } => ApiError::bad(e.to_string()),
        e => ApiError::internal(format!("strategy {strategy}: {e}")),
    })?;
    // The plan assumed the taken images done: their labels arriving later do not make it stale.
    Ok(finish(sel.picks, sel.scores, budget == free))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ready selector over `n` random 8-dimensional features.
    fn selector(n: usize) -> Selector {
        let sel = Selector::new(Duration::from_secs(600), 8, 0, HashSet::new());
        let mut rng = medpick_core::rng::Rng::new(3);
        let ids: Vec<String> = (0..n).map(|i| format!("img{i:03}")).collect();
        let index = ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let data = rng.uniform_vec(n * 8, 0.0, 1.0);
        *sel.features.write().unwrap() = Arc::new(Features { ids, index, dim: 8, data, generation: 1 });
        *sel.progress.state.lock().unwrap() = "ready".into();
        sel
    }

    #[test]
    fn annotators_never_share_an_image_and_the_plan_order_is_the_strategy_s() {
        let sel = selector(40);
        let feats = sel.features.read().unwrap().clone();
        let want = compute_plan("coreset", &feats, &Taken::default(), 40, 0, None).unwrap();
        let mut given = Vec::new();
        for round in 0..5 {
            for c in ["a", "b", "c"] {
                let got = sel.next("coreset", c, 1).unwrap();
                given.push(got[0].0.clone());
                if round % 2 == 0 {
                    sel.labels_changed(&got[0].0, true);
                }
            }
        }
        let mut uniq = given.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), given.len(), "no image handed out twice: {given:?}");
        // Labelling the planned picks keeps the plan: the order handed out is coreset's own greedy order.
        let order: Vec<String> = want.rows.iter().take(given.len()).map(|&r| feats.ids[r].clone()).collect();
        assert_eq!(given, order);
        // A label outside the plan makes it stale; one on a planned pick does not.
        let plan = sel.plans.lock().unwrap().get("coreset").cloned().unwrap();
        assert!(!sel.stale(&plan, &feats));
        let outside = feats.ids.iter().enumerate().find(|(r, _)| !plan.members.contains(r)).unwrap().1.clone();
        sel.labels_changed(&outside, true);
        assert!(sel.stale(&plan, &feats));
    }

    /// A coreset plan continued ([`extend_plan`]) equals a plan made at the longer size from the same taken
    /// images, and equals `select("coreset")`; handing out goes on through the grown plan in its order, with no
    /// image given twice.
    #[test]
    fn a_grown_coreset_plan_equals_one_made_at_its_size() {
        let n = select::SCAN_MIN_ROWS + 500;
        let sel = selector(n);
        let feats = sel.features.read().unwrap().clone();
        for taken in
            [Taken::default(), Taken { labeled: ["img007".into(), "img1234".into()].into(), ..Taken::default() }]
        {
            let small = compute_plan("coreset", &feats, &taken, 60, 0, None).unwrap();
            assert!(small.growing.is_some(), "a coreset plan on {n} rows can grow");
            let grown = extend_plan(&small, 300).unwrap();
            let fresh = compute_plan("coreset", &feats, &taken, 300, 0, None).unwrap();
            assert_eq!(grown.rows, fresh.rows);
            assert_eq!(grown.scores, fresh.scores);
            let grown_more = extend_plan(&grown, 450).unwrap();
            let fresh_more = compute_plan("coreset", &feats, &taken, 450, 0, None).unwrap();
            assert_eq!(grown_more.rows, fresh_more.rows);
            // And `select` itself (what non-coreset strategies and small pools go through).
            let x = Matrix::new(&feats.data, n, feats.dim).unwrap();
            let lab: Vec<usize> = taken.labeled.iter().map(|id| feats.index[id]).collect();
            let input = SelectInput {
                x,
                budget: 450,
                seed: 0,
                labeled: &lab,
                scans: Some(medpick_core::exec::Backend::Cpu),
                weights: None,
            };
            let sel_picks = pollster::block_on(select::select("coreset", &input)).unwrap().picks;
            assert_eq!(fresh_more.rows, sel_picks);
        }
        // Through the server: 8-row plans (the selector's size) grow as images are handed out, in coreset's order.
        let want = compute_plan("coreset", &feats, &Taken::default(), 100, 0, None).unwrap();
        let mut given = Vec::new();
        for _ in 0..100 {
            let got = sel.next("coreset", "a", 1).unwrap();
            sel.labels_changed(&got[0].0, true);
            given.push(got[0].0.clone());
        }
        let order: Vec<String> = want.rows.iter().map(|&r| feats.ids[r].clone()).collect();
        assert_eq!(given, order);
    }

    #[test]
    fn count_returns_distinct_images_and_nothing_when_all_are_labelled() {
        let sel = selector(12);
        let got = sel.next("random", "a", 5).unwrap();
        assert_eq!(got.len(), 5);
        let rest = sel.next("random", "b", 100).unwrap();
        assert_eq!(rest.len(), 7, "the other 7 (5 are leased)");
        let ids: HashSet<String> = got.iter().chain(&rest).map(|g| g.0.clone()).collect();
        assert_eq!(ids.len(), 12);
        for id in &ids {
            sel.labels_changed(id, true);
        }
        assert!(sel.next("random", "a", 1).unwrap().is_empty());
    }
}
