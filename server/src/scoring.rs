//! Uncertainty scoring (`POST /scoring/{method}`): once `medpick_seg` is trained, score every unlabelled 2-D image
//! with its probability map — `lc` (GM-ABS bottom-quartile least confidence), `entropy` (mean normalised entropy)
//! or `margin` — in the background, as the warm loop (`medpick bench loop --task seg`) scores. The scores are
//! kept in each image's info (`medpick_scores`) and become strategies of the same names: the least certain first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use medpick_core::embed::{embed_grids, EmbedConfig};
use medpick_core::uncertainty as u;

use crate::{ApiError, ApiResult, App};

/// Scoring methods, and whether a lower score is picked first.
pub const METHODS: &[(&str, bool, &str)] = &[
    ("lc", true, "Least confidence of medpick_seg (bottom-quartile max-probability): the least confident first"),
    ("entropy", false, "Mean normalised entropy of medpick_seg's probability map: the highest first"),
    ("margin", true, "Mean top-1 − top-2 probability margin of medpick_seg: the smallest first"),
];

pub fn method(name: &str) -> Option<(&'static str, bool, &'static str)> {
    METHODS.iter().copied().find(|m| m.0 == name)
}

#[derive(Default)]
pub struct Scorer {
    pub task: Mutex<Option<Value>>,
    pub running: AtomicBool,
    pub stop: Arc<AtomicBool>,
}

impl Scorer {
    pub fn task(&self) -> Option<Value> {
        self.task.lock().ok().and_then(|t| t.clone())
    }
}

/// Start scoring every unlabelled 2-D image with `method` in the background (429 while a scoring runs).
pub fn start(app: &Arc<App>, name: &str) -> ApiResult<Value> {
    let (m, ascending, _) = method(name).ok_or_else(|| {
        let known: Vec<&str> = METHODS.iter().map(|m| m.0).collect();
        ApiError::bad(format!("scoring method {name:?}: use one of {}", known.join(", ")))
    })?;
    let head = crate::train::load_head(app)?;
    if app.scoring.running.swap(true, Ordering::SeqCst) {
        return Err(ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "a scoring is already running"));
    }
    let task = json!({"id": format!("scoring-{m}-{}", crate::datastore::now_ts()), "status": "RUNNING",
                      "request": {"method": m}, "start_ts": crate::datastore::now_ts().to_string(),
                      "details": ["scoring started"]});
    if let Ok(mut t) = app.scoring.task.lock() {
        *t = Some(task.clone());
    }
    app.scoring.stop.store(false, Ordering::SeqCst);
    let app2 = app.clone();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&app2, m, ascending, &head)))
            .unwrap_or_else(|_| Err(ApiError::internal("scoring panicked")));
        let (status, detail) = match r {
            Ok(line) if !app2.scoring.stop.load(Ordering::SeqCst) => ("DONE", line),
            Ok(_) => ("STOPPED", "stopped; earlier scores kept".to_string()),
            Err(e) => ("ERROR", e.message),
        };
        if let Ok(mut t) = app2.scoring.task.lock() {
            if let Some(Value::Object(o)) = t.as_mut() {
                o.insert("status".into(), status.into());
                o.insert("end_ts".into(), crate::datastore::now_ts().to_string().into());
                o.insert("result".into(), detail.clone().into());
                o.insert("details".into(), json!([detail]));
            }
        }
        app2.scoring.running.store(false, Ordering::SeqCst);
    });
    Ok(task)
}

fn run(app: &Arc<App>, m: &str, ascending: bool, head: &medpick_core::train::heads::SegHeadFile) -> ApiResult<String> {
    let t0 = std::time::Instant::now();
    let (images_dir, todo) = {
        let ds = app.ds.lock().map_err(|_| ApiError::internal("lock"))?;
        let labeled: std::collections::HashSet<String> = ds.labeled().into_iter().collect();
        let todo: Vec<(String, std::path::PathBuf)> = ds
            .model
            .objects
            .keys()
            .filter(|id| !labeled.contains(*id))
            .filter_map(|id| ds.image_path(id).ok().map(|p| (id.clone(), p)))
            .collect();
        (ds.images_dir(), todo)
    };
    let cfg = EmbedConfig {
        pool: "grid".into(),
        window: head.window.clone(),
        precision: head.precision,
        ..app.cfg.model.clone()
    };
    let gpu = app.gpu.as_deref();
    let mut scores: HashMap<String, f64> = HashMap::new();
    let mut skipped = 0usize;
    // In chunks, so that a stop request is honoured and progress shows.
    for chunk in todo.chunks(16) {
        if app.scoring.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut samples = Vec::new();
        let mut owner = Vec::new();
        for (id, p) in chunk {
            match crate::pool::samples_of(&images_dir, p) {
                Ok(ss) if ss.len() == 1 => {
                    owner.push(id.clone());
                    samples.extend(ss);
                }
                _ => skipped += 1, // volumes are not scored yet; unreadable files were reported at embedding
            }
        }
        if samples.is_empty() {
            continue;
        }
        let (ids, grids) =
            pollster::block_on(embed_grids(gpu, &cfg, &images_dir, &samples, head.head.grid, head.grid_chw))?;
        let by_sample: HashMap<&str, &String> = samples.iter().map(|s| s.id.as_str()).zip(owner.iter()).collect();
        let refs: Vec<&[f32]> = grids.iter().map(|g| g.as_slice()).collect();
        let mut k = 0;
        pollster::block_on(head.head.predict_each(gpu, &refs, &mut |_, p| {
            let px = p.len();
            let probs: Vec<f32> = p.iter().map(|v| 1.0 - v).chain(p.iter().copied()).collect();
            let s = match m {
                "lc" => u::lc(&probs, 2, px),
                "entropy" => u::he(&probs, 2, px),
                _ => u::margin(&probs, 2, px),
            };
            if let Some(id) = by_sample.get(ids[k].as_str()) {
                scores.insert((*id).clone(), s);
            }
            k += 1;
            Ok(())
        }))?;
        if let Ok(mut t) = app.scoring.task.lock() {
            if let Some(Value::Object(o)) = t.as_mut() {
                o.insert("details".into(), json!([format!("{} of {} images scored", scores.len(), todo.len())]));
            }
        }
    }
    {
        let mut ds = app.ds.lock().map_err(|_| ApiError::internal("lock"))?;
        for (id, s) in &scores {
            if let Some(o) = ds.model.objects.get_mut(id) {
                let e = o.image.info.entry("medpick_scores").or_insert_with(|| json!({}));
                if let Value::Object(map) = e {
                    map.insert(m.to_string(), json!(s));
                }
            }
        }
    }
    app.dirty.store(true, Ordering::SeqCst);
    let n = scores.len();
    if let Ok(mut all) = app.sel.uncertainty.lock() {
        all.insert(m.to_string(), (Arc::new(scores), ascending));
    }
    // Plans of this method are remade from the new scores.
    app.sel.forget_plan(m);
    Ok(format!(
        "scored {n} unlabelled images by {m} in {:.1} s{}",
        t0.elapsed().as_secs_f64(),
        if skipped > 0 { format!(" ({skipped} volumes not scored)") } else { String::new() }
    ))
}

/// A plan by uncertainty: the scored, not yet labelled rows, least certain first (ties by id).
pub fn rank(
    feats: &crate::pool::Features,
    labeled: &std::collections::HashSet<String>,
    scores: &HashMap<String, f64>,
    ascending: bool,
    size: usize,
) -> (Vec<usize>, Vec<f64>, bool) {
    let mut rows: Vec<(usize, f64)> = feats
        .ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !labeled.contains(*id))
        .filter_map(|(r, id)| scores.get(id).map(|&s| (r, s)))
        .collect();
    rows.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        (if ascending { o } else { o.reverse() }).then_with(|| feats.ids[a.0].cmp(&feats.ids[b.0]))
    });
    // Images without a score (uploaded since, volumes) follow the scored ones, in id order.
    rows.extend(
        feats
            .ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !labeled.contains(*id) && !scores.contains_key(*id))
            .map(|(r, _)| (r, f64::NAN)),
    );
    let complete = rows.len() <= size;
    rows.truncate(size);
    (rows.iter().map(|r| r.0).collect(), rows.iter().map(|r| r.1).collect(), complete)
}
