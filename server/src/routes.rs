//! The routes: MONAI Label 0.8.5's paths and shapes (trailing slashes included: its clients do not follow
//! redirects), plus `?count=N` on active learning. Every route but `/` and the sign-in routes needs the token
//! when one is configured ([`crate::auth`]); every request's Host header is checked on a loopback server.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::datastore::{check_name, now_ts, to_id, FINAL};
use crate::train::{BOX_MODEL, HEAD_MODEL};
use crate::{ApiError, ApiResult, Shared};

pub(crate) type Q = Query<HashMap<String, String>>;

pub fn router(app: Shared) -> Router {
    let limit = app.cfg.max_body;
    Router::new()
        .route("/", get(root))
        .route("/info/", get(info))
        .route("/datastore/", get(datastore).put(upload_image))
        .route("/datastore/image", get(image_get).head(image_head).put(upload_image))
        .route("/datastore/image/info", get(image_info))
        .route("/datastore/label", get(label_get).put(label_put).delete(label_delete))
        .route("/activelearning/{strategy}", post(next_sample))
        .route("/train/", get(train_status).post(train_all).delete(train_stop))
        .route("/train/{model}", post(train_start))
        .route("/infer/{model}", post(infer))
        .route("/session/", put(crate::session::create_route))
        .route("/session/{id}", get(crate::session::get_route).delete(crate::session::delete_route))
        .route("/scoring/", get(scoring_status).delete(scoring_stop))
        .route("/scoring/{method}", post(scoring_start))
        .merge(crate::dicomweb::routes())
        .merge(crate::ohif::routes())
        .merge(crate::auth::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Host check (loopback servers answer only their own names: no DNS rebinding) and the Bearer token.
async fn guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if !medpick_core::serve::host_allowed(host, &app.cfg.host, app.port.load(std::sync::atomic::Ordering::SeqCst)) {
        return ApiError::new(StatusCode::MISDIRECTED_REQUEST, format!("Host {host:?} is not this server"))
            .into_response();
    }
    // A web page elsewhere must not drive this server through the user's browser (it would send the right Host):
    // requests a browser marks cross-site, or whose Origin is not this server, are refused. The annotation
    // clients send neither header.
    let cross_site = req.headers().get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
    let foreign_origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_some_and(|o| {
        let host = o.split_once("://").map(|(_, h)| h).unwrap_or(o);
        let port = app.port.load(std::sync::atomic::Ordering::SeqCst);
        !(medpick_core::serve::host_allowed(Some(host), &app.cfg.host, port) && crate::is_loopback(&app.cfg.host)
            || host.eq_ignore_ascii_case(req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("")))
    });
    if cross_site || foreign_origin {
        return ApiError::new(StatusCode::FORBIDDEN, "cross-site requests are refused").into_response();
    }
    if let (Some(token), false) = (&app.cfg.token, crate::auth::is_open(req.uri().path())) {
        if !crate::auth::authorized(req.headers(), token) {
            return crate::auth::refused(req.method(), req.uri().path());
        }
    }
    next.run(req).await
}

fn lock<T>(m: &std::sync::Mutex<T>) -> ApiResult<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| ApiError::internal("a server lock was poisoned"))
}

async fn root() -> impl IntoResponse {
    Json(json!({"name": "medpick", "api": "MONAI Label 0.8.5", "info": "/info/"}))
}

/// One line per strategy, for the Slicer dropdown.
fn strategy_description(s: &str) -> &'static str {
    match s {
        "random" => "Random (seeded) order",
        "first" => "The datastore's order",
        "coreset" => "Core-set: greedy k-center on the features (diverse)",
        "alps" => "ALPS: k-means on the features, the image nearest each centre",
        "typiclust" => "TypiClust: the most typical image of each cluster",
        "typiclust-knn" => "TypiClust with kNN typicality",
        "probcover" => "ProbCover: maximum coverage of δ-balls (evidence default for segmentation)",
        "fps" => "Farthest-point sampling",
        "bal" => "BAL: balanced cluster picks",
        "repdiv" => "Representativeness + diversity (facility location)",
        "repdiv-maxmin" => "Representativeness + max-min diversity",
        "kmeans-centroid" => "k-means centroids' nearest images",
        "usl" => "USL: regularised k-means picks",
        "usl-medcal" => "USL as MedCAL-Bench runs it",
        "probcover-delta" => "ProbCover with the authors' δ rule",
        "typiclust-spread" => "TypiClust spread over coarse modes",
        "stratified" => "Random picks stratified over coarse modes (the hedge)",
        _ => "medpick strategy",
    }
}

fn strategies() -> Vec<&'static str> {
    let mut v: Vec<&str> = medpick_core::select::COLD_START.to_vec();
    v.push("first");
    v
}

async fn info(State(app): State<Shared>) -> ApiResult<Json<Value>> {
    let labels = app.cfg.labels.clone();
    let trained = crate::train::load_head(&app).is_ok();
    let label_map: Map<String, Value> = labels.iter().take(1).map(|l| (l.clone(), json!(1))).collect();
    let mut models = Map::new();
    // Listed once trained: 3D Slicer runs the first model whose labels match right after "Next Sample", and an
    // untrained head would answer every one with an error.
    if trained {
        models.insert(
        HEAD_MODEL.into(),
        json!({"type": "segmentation", "labels": label_map, "dimension": 2,
               "description": "medpick's segmentation head on the foundation model's features, fine-tuned on the final labels",
               "config": {"device": [device_name(&app)]}, "trained": trained}),
        );
    }
    models.insert(
        BOX_MODEL.into(),
        json!({"type": "segmentation", "labels": {"object": 1}, "dimension": 2,
               "description": "LiteMedSAM: the object inside a box (params box = [x0, y0, x1, y1] in pixels)",
               "config": {"device": [device_name(&app)]}}),
    );
    let mut strategies: Map<String, Value> =
        strategies().iter().map(|s| (s.to_string(), json!({"description": strategy_description(s)}))).collect();
    let mut scoring = Map::new();
    for (m, _, d) in crate::scoring::METHODS {
        if trained {
            scoring.insert(m.to_string(), json!({"description": d}));
        }
        if app.sel.scores(m).is_some() {
            strategies.insert(m.to_string(), json!({"description": d}));
        }
    }
    let ds = lock(&app.ds)?;
    Ok(Json(json!({
        "name": format!("medpick ({})", ds.model.name),
        "description": "medpick: cold-start active learning on foundation-model features (MONAI Label API)",
        "version": env!("CARGO_PKG_VERSION"),
        "labels": labels,
        "models": models,
        "trainers": {HEAD_MODEL: {"description": "Fine-tune medpick's segmentation head on the final labels",
                                  "config": {"max_epochs": app.cfg.epochs}}},
        "strategies": strategies,
        "scoring": scoring,
        "train_stats": {HEAD_MODEL: app.train.stats()},
        "datastore": ds.stats(),
        "medpick": {"embedding": app.sel.status(), "plans": app.sel.plans_summary(),
                    "leases": app.sel.leases_by_client(), "model": app.cfg.model.model},
    })))
}

fn device_name(app: &Shared) -> String {
    if app.gpu.is_some() {
        "gpu".into()
    } else {
        format!("cpu ({} threads)", medpick_core::cpu::par::threads())
    }
}

/// Auth: 404 when no token is configured (MONAI Label does not mount the route then).
async fn datastore(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let ds = lock(&app.ds)?;
    match q.get("output").map(|s| s.as_str()).unwrap_or("stats") {
        "stats" => Ok(Json(ds.stats())),
        "all" => Ok(Json(serde_json::to_value(&ds.model).map_err(|e| ApiError::internal(e.to_string()))?)),
        "train" => Ok(Json(ds.train_list())),
        o => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("output {o:?}: use stats, all or train"))),
    }
}

fn param<'a>(q: &'a Q, name: &str) -> ApiResult<&'a str> {
    q.get(name)
        .map(|s| s.as_str())
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("query parameter {name} is required")))
}

pub(crate) fn file_response(path: &std::path::Path, name: &str) -> ApiResult<Response> {
    let bytes = std::fs::read(path).map_err(|e| ApiError::io(path, e))?;
    let ct = match to_id(name).1.as_str() {
        ".png" => "image/png",
        ".jpg" | ".jpeg" => "image/jpeg",
        ".tif" | ".tiff" => "image/tiff",
        ".bmp" => "image/bmp",
        _ => "application/octet-stream",
    };
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    let cd = format!("attachment; filename=\"{}\"", name.replace(['"', '\\', '\r', '\n'], "_"));
    if let Ok(v) = HeaderValue::from_str(&cd) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn image_get(State(app): State<Shared>, q: Q) -> ApiResult<Response> {
    let id = &crate::dicomweb::image_param(&app, &q).await?;
    let (path, name) = {
        let ds = lock(&app.ds)?;
        let p = ds.image_path(id)?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (p, name)
    };
    tokio::task::spawn_blocking(move || {
        if path.is_dir() {
            // A DICOM series: its files as one zip.
            let bytes = crate::datastore::zip_series(&path)?;
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.zip\"")) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            return Ok(r);
        }
        file_response(&path, &name)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `HEAD /datastore/image?image=&check_sum=`: 200 when the image exists (and its SHA-256 is `check_sum`, given
/// as `SHA256:<hex>` or `<hex>`), 404 otherwise.
async fn image_head(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let id = &crate::dicomweb::image_param(&app, &q).await?;
    let path = lock(&app.ds)?.image_path(id)?;
    if let Some(sum) = q.get("check_sum") {
        let want = sum.strip_prefix("SHA256:").unwrap_or(sum).to_ascii_lowercase();
        let bytes = if path.is_dir() {
            crate::datastore::zip_series(&path)?
        } else {
            std::fs::read(&path).map_err(|e| ApiError::io(&path, e))?
        };
        if medpick_core::io::weights::sha256_hex(&bytes) != want {
            return Err(ApiError::not_found("checksum differs"));
        }
    }
    Ok(Json(json!({})))
}

async fn image_info(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let id = &crate::dicomweb::image_param(&app, &q).await?;
    let ds = lock(&app.ds)?;
    let Ok(path) = ds.image_path(id) else { return Ok(Json(json!({}))) }; // as MONAI Label
    let Some(o) = ds.model.objects.get(id) else { return Ok(Json(json!({}))) };
    let mut info = o.image.info.clone();
    info.insert("path".into(), path.display().to_string().into());
    Ok(Json(Value::Object(info)))
}

/// The parts of a multipart body: `params` (JSON text) and the first file part, with its name.
struct Upload {
    params: Map<String, Value>,
    file: Option<(String, Bytes)>,
}

async fn read_multipart(mut mp: Multipart, file_field: &str) -> ApiResult<Upload> {
    let mut up = Upload { params: Map::new(), file: None };
    while let Some(field) =
        mp.next_field().await.map_err(|e| ApiError::new(e.status(), format!("multipart body: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(|s| s.to_string());
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::new(e.status(), format!("multipart part {name}: {}", e.body_text())))?;
        if name == "params" {
            let v: Value = if data.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&data).map_err(|e| ApiError::bad(format!("params is not JSON: {e}")))?
            };
            match v {
                Value::Object(m) => up.params = m,
                Value::Null => {}
                _ => return Err(ApiError::bad("params must be a JSON object")),
            }
        } else if name == file_field && up.file.is_none() {
            // Clients send the whole local path (Windows ones with backslashes): keep the last component.
            let base = filename.unwrap_or_default().rsplit(['/', '\\']).next().unwrap_or("").to_string();
            up.file = Some((base, data));
        }
    }
    Ok(up)
}

use crate::datastore::LABEL_EXTS;

async fn label_put(State(app): State<Shared>, q: Q, mp: Multipart) -> ApiResult<Json<Value>> {
    let id = crate::dicomweb::image_param(&app, &q).await?;
    let tag = q.get("tag").filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| FINAL.to_string());
    check_name("image", &id)?;
    check_name("tag", &tag)?;
    let mut up = read_multipart(mp, "label").await?;
    up.params.retain(|k, _| !crate::stow::OWN_KEYS.contains(&k.as_str()));
    let (fname, bytes) = up.file.ok_or_else(|| ApiError::bad("multipart part 'label' (the label file) is missing"))?;
    let ext = to_id(&fname).1;
    if !LABEL_EXTS.contains(&ext.as_str()) {
        return Err(ApiError::bad(format!("label file {fname:?}: labels are {} files", LABEL_EXTS.join(", "))));
    }
    let image = lock(&app.ds)?.image_path(&id)?;
    let (app2, id2) = (app.clone(), id.clone());
    let saved = tokio::task::spawn_blocking(move || -> ApiResult<Option<std::path::PathBuf>> {
        let dims = crate::labels::image_dims(&image)?;
        let what = format!("label of {id2}");
        let mask = crate::labels::read_mask(&bytes, &ext, &what)?;
        crate::labels::check_against(&mask, dims, &what)?;
        store_label(&app2, &id2, &tag, &ext, &bytes, up.params)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut out = json!({"image": id, "label": id});
    if let Some(v) = saved {
        out["previous_version"] = json!(v.display().to_string());
    }
    Ok(Json(out))
}

/// Store a checked label file (`bytes`, of extension `ext`) as image `id`'s `tag` label, atomically and versioned
/// ([`crate::datastore::Datastore::save_label`]), and tell active learning when it is a final label. Returns the
/// previous version's file, if there was one.
pub(crate) fn store_label(
    app: &Shared,
    id: &str,
    tag: &str,
    ext: &str,
    bytes: &[u8],
    info: Map<String, Value>,
) -> ApiResult<Option<std::path::PathBuf>> {
    // Written and fsynced before the datastore's lock is taken; under it only the rename.
    let dir = lock(&app.ds)?.label_dir(tag)?;
    let staged = crate::datastore::stage(&dir, &format!("{id}{ext}"), bytes)?;
    // Test hook: die between the write and the rename (the crash the atomic write is for).
    if std::env::var("MEDPICK_SERVE_FAILPOINT").is_ok_and(|v| v == "label-staged") {
        std::process::abort();
    }
    let mut ds = lock(&app.ds)?;
    let saved = ds.save_label(id, tag, ext, staged, info)?;
    // Under the datastore's lock: the selector's labelled set follows the disk in the same order.
    if tag == FINAL {
        app.sel.labels_changed(id, true);
    }
    drop(ds);
    crate::dicomweb::labels_changed(app);
    app.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(saved)
}

async fn label_get(State(app): State<Shared>, q: Q) -> ApiResult<Response> {
    let id = param(&q, "label")?;
    let tag = q.get("tag").filter(|t| !t.is_empty()).map(|s| s.as_str()).unwrap_or(FINAL);
    let path = lock(&app.ds)?.label_path(id, tag)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tokio::task::spawn_blocking(move || file_response(&path, &name))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn label_delete(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let id = param(&q, "id")?;
    let tag = q.get("tag").filter(|t| !t.is_empty()).map(|s| s.as_str()).unwrap_or(FINAL);
    {
        let mut ds = lock(&app.ds)?;
        ds.delete_label(id, tag)?;
        if tag == FINAL {
            app.sel.labels_changed(id, false);
        }
    }
    crate::dicomweb::labels_changed(&app);
    app.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(Json(json!({})))
}

/// `PUT /datastore/?image=<id>` (multipart `params`, `file`): a new image; existing ones are never replaced.
async fn upload_image(State(app): State<Shared>, q: Q, mp: Multipart) -> ApiResult<Json<Value>> {
    let up = read_multipart(mp, "file").await?;
    let (fname, bytes) = up.file.ok_or_else(|| ApiError::bad("multipart part 'file' (the image) is missing"))?;
    let (stem, ext) = to_id(&fname);
    let id = q.get("image").filter(|s| !s.is_empty()).cloned().unwrap_or(stem);
    check_name("image", &id)?;
    if !crate::datastore::EXTENSIONS.contains(&ext.as_str()) || ext == ".nrrd" {
        return Err(ApiError::bad(format!("{fname:?}: images are {}", "PNG, JPEG, TIFF, BMP, NIfTI or DICOM files")));
    }
    let app2 = app.clone();
    let id2 = id.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        // Check that medpick can read it before it joins the datastore.
        crate::labels::image_dims_bytes(&fname, &ext, &bytes)?;
        let mut info = up.params;
        info.insert("user".into(), "admin".into());
        lock(&app2.ds)?.add_image(&id2, &ext, &bytes, info)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    app.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
    app.spawn_embedding();
    Ok(Json(json!({"image": id})))
}

async fn next_sample(
    State(app): State<Shared>,
    UrlPath(strategy): UrlPath<String>,
    q: Q,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if let Some((m, _, _)) = crate::scoring::method(&strategy) {
        if app.sel.scores(m).is_none() {
            return Err(ApiError::bad(format!(
                "strategy {m:?} ranks by medpick_seg's uncertainty: train it (POST /train/{HEAD_MODEL}), then score \
                 (POST /scoring/{m})"
            )));
        }
    } else if !strategies().contains(&strategy.as_str()) {
        return Err(ApiError::bad(format!("unknown strategy {strategy:?}: use one of {}", strategies().join(", "))));
    }
    let params: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))?
    };
    let client = match params.get("client_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => "anonymous".to_string(),
    };
    let count = match q.get("count") {
        None => None,
        Some(c) => Some(
            c.parse::<usize>()
                .ok()
                .filter(|&n| (1..=1000).contains(&n))
                .ok_or_else(|| ApiError::bad(format!("count {c:?}: a whole number from 1 to 1000")))?,
        ),
    };
    let sel = app.sel.clone();
    let (s2, c2) = (strategy.clone(), client.clone());
    let picks = tokio::task::spawn_blocking(move || sel.next(&s2, &c2, count.unwrap_or(1)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let ts = now_ts();
    let out = {
        let mut out = Vec::new();
        let mut ds = lock(&app.ds)?;
        for (id, score, rank) in picks {
            let Ok(path) = ds.image_path(&id) else { continue };
            let Some(o) = ds.model.objects.get_mut(&id) else { continue };
            let stamp = json!({"ts": ts, "client_id": client});
            let strat = o.image.info.entry("strategy").or_insert_with(|| json!({}));
            if let Value::Object(m) = strat {
                m.insert(strategy.clone(), stamp);
            }
            let mut sample = o.image.info.clone();
            sample.insert("id".into(), id.clone().into());
            sample.insert("path".into(), path.display().to_string().into());
            sample.entry("name").or_insert_with(|| format!("{id}{}", o.image.ext).into());
            sample.insert(
            "medpick".into(),
            json!({"strategy": strategy, "rank": rank, "score": if score.is_finite() { json!(score) } else { Value::Null },
                   "lease_seconds": app.cfg.lease.as_secs()}),
        );
            out.push(Value::Object(sample));
        }
        out
    };
    app.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = crate::dicomweb::with_sample_fields(out).await;
    Ok(Json(match count {
        Some(_) => Value::Array(out),
        None => out.into_iter().next().unwrap_or_else(|| json!({})),
    }))
}

async fn train_start(
    State(app): State<Shared>,
    UrlPath(model): UrlPath<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if model != HEAD_MODEL {
        return Err(ApiError::bad(format!("trainer {model:?}: medpick trains {HEAD_MODEL}")));
    }
    let params: Value = if body.is_empty() { json!({}) } else { serde_json::from_slice(&body).unwrap_or(json!({})) };
    Ok(Json(crate::train::start(&app, params)?))
}

async fn train_all(State(app): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let params: Value = if body.is_empty() { json!({}) } else { serde_json::from_slice(&body).unwrap_or(json!({})) };
    let task = crate::train::start(&app, params)?;
    Ok(Json(json!({HEAD_MODEL: {"result": task, "detail": null}})))
}

async fn train_status(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let running = app.train.running.load(std::sync::atomic::Ordering::SeqCst);
    task_status(running, app.train.task(), &q, "Train")
}

/// `GET /train/` and `GET /scoring/` as MONAI Label answers them: the latest task (`?all=true`: a list of it), or
/// with `?check_if_running=true` the running one, else 404.
fn task_status(running: bool, task: Option<Value>, q: &Q, what: &str) -> ApiResult<Json<Value>> {
    if q.get("check_if_running").is_some_and(|v| v == "true") {
        return match (running, task) {
            (true, Some(t)) => Ok(Json(t)),
            _ => Err(ApiError::not_found(format!("No {what} Tasks are currently Running"))),
        };
    }
    match task {
        Some(t) if q.get("all").is_some_and(|v| v == "true") => Ok(Json(json!([t]))),
        Some(t) => Ok(Json(t)),
        None => Err(ApiError::not_found(format!("No {what} Tasks Found"))),
    }
}

/// Stop the running training: it ends before its next step (or once its images are embedded) and its head is not
/// saved. Checked and set under the task's lock, as a training starts and ends (`train::start`).
async fn train_stop(State(app): State<Shared>) -> ApiResult<Json<Value>> {
    let mut task = app.train.task.lock().map_err(|_| ApiError::internal("lock"))?;
    if !app.train.running.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Json(Value::Null));
    }
    app.train.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut t = task.clone().unwrap_or(json!({}));
    t["status"] = json!("STOPPED");
    t["end_ts"] = json!(now_ts().to_string());
    t["result"] = json!("stopping: training ends before its next step and its head is not saved");
    *task = Some(t.clone());
    Ok(Json(t))
}

async fn infer(State(app): State<Shared>, UrlPath(model): UrlPath<String>, q: Q, mp: Multipart) -> ApiResult<Response> {
    let output = q.get("output").cloned().unwrap_or_else(|| "all".into());
    let up = read_multipart(mp, "file").await?;
    let params = &up.params;
    let ext = crate::volume::result_extension(params.get("result_extension").and_then(|v| v.as_str()))?;
    let bx = match params.get("box") {
        None => None,
        Some(v) => {
            let b: Option<Vec<f64>> = v.as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect());
            match b.as_deref() {
                Some(&[x0, y0, x1, y1]) => Some([x0, y0, x1, y1]),
                _ => return Err(ApiError::bad("params box must be [x0, y0, x1, y1] in the image's pixels")),
            }
        }
    };
    // A session's image (MONAI Label's `session_id`) in place of a datastore image.
    let mut upload_session = None;
    let (id, image) = match q.get("session_id").filter(|s| !s.is_empty()) {
        Some(sid) => {
            let s = crate::session::get(&crate::session::root(&app.cfg.datastore), sid, true)?;
            let image = s.image_path();
            let stem = image.file_name().map(|n| to_id(&n.to_string_lossy()).0).unwrap_or_default();
            (stem, image)
        }
        // A raw image in the request (MONAI Label's `file` part): a session removed when this request ends (also
        // when it fails or the client goes away).
        None if q.get("image").is_none_or(|s| s.is_empty()) && up.file.is_some() => {
            let (fname, bytes) = up.file.clone().unwrap_or_default();
            let root = crate::session::root(&app.cfg.datastore);
            let max = (app.cfg.max_body as u64).saturating_mul(4);
            let s = tokio::task::spawn_blocking(move || {
                crate::session::create(&root, vec![(fname, bytes.to_vec())], 0, false, max)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
            upload_session = Some(crate::session::Temporary::new(&app.cfg.datastore, &s.name));
            let image = s.image_path();
            (image.file_name().map(|n| to_id(&n.to_string_lossy()).0).unwrap_or_default(), image)
        }
        None => {
            let id = crate::dicomweb::image_param(&app, &q).await?;
            let image = lock(&app.ds)?.image_path(&id)?;
            (id, image)
        }
    };
    let label = app.cfg.labels.first().cloned().unwrap_or_else(|| "foreground".into());
    let app2 = app.clone();
    let model2 = model.clone();
    let t0 = std::time::Instant::now();
    let result = tokio::task::spawn_blocking(move || match model2.as_str() {
        HEAD_MODEL => crate::train::infer_head(&app2, &image),
        BOX_MODEL => match bx {
            Some(b) => crate::train::infer_box(&app2, &image, b),
            None => Err(ApiError::bad(format!("{BOX_MODEL} needs params box = [x0, y0, x1, y1]"))),
        },
        m => Err(ApiError::bad(format!("model {m:?}: use {HEAD_MODEL} or {BOX_MODEL}"))),
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()));
    drop(upload_session);
    let pred = result??;
    let ext = ext.unwrap_or(if pred.grid.is_some() { ".nii.gz" } else { ".png" });
    let [w, h, d] = pred.dims;
    let names = if model == BOX_MODEL { json!({"object": 1}) } else { json!({ label: 1 }) };
    let result = json!({"label_names": names, "latencies": {"total": t0.elapsed().as_secs_f64()},
                        "foreground_pixels": pred.mask.iter().filter(|&&v| v != 0).count(),
                        "width": w, "height": h, "depth": d});
    let (id2, ext2) = (id.clone(), ext);
    let file = tokio::task::spawn_blocking(move || crate::volume::label_file(&pred, ext2, &id2))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let fname =
        format!("{}_{model}{ext}", id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-', "_"));
    match output.as_str() {
        "json" => Ok(Json(result).into_response()),
        "image" => {
            let mut r = Response::new(Body::from(file));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            Ok(r)
        }
        _ => Ok(crate::volume::multipart_response(&result, &fname, &file)),
    }
}

async fn scoring_start(State(app): State<Shared>, UrlPath(method): UrlPath<String>) -> ApiResult<Json<Value>> {
    Ok(Json(crate::scoring::start(&app, &method)?))
}

async fn scoring_status(State(app): State<Shared>, q: Q) -> ApiResult<Json<Value>> {
    let running = app.scoring.running.load(std::sync::atomic::Ordering::SeqCst);
    task_status(running, app.scoring.task(), &q, "Scoring")
}

async fn scoring_stop(State(app): State<Shared>) -> ApiResult<Json<Value>> {
    if !app.scoring.running.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Json(Value::Null));
    }
    app.scoring.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut t = app.scoring.task().unwrap_or(json!({}));
    t["result"] = json!("stopping after the images being scored");
    Ok(Json(t))
}
