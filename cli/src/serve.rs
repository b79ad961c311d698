//! `mclrec-cli serve`: recommendations over HTTP.
//!
//! - `POST /recommend` with `{"history": ["token", ...], "k": 10}` (tokens as strings, or
//!   integers for integer tokens; optional `"include_history": true`);
//! - `GET /users/{user}/recommend?k=10` for a user of the dataset given with `--dataset`;
//! - `GET /health`, `GET /metadata`.
//!
//! Answers are `{"items": [{"item": "token", "score": 1.23}, ...]}`; every bad request gets
//! a JSON `{"error": "..."}` with its 4xx status (400 malformed, 404 unknown route or user,
//! 413 body too large, 422 unknown item or `k` out of range), never a crash. Requests that
//! arrive together are scored together: one thread owns the model and takes every request
//! waiting (up to `--max-batch`, optionally waiting `--max-wait-ms` for more) into one
//! forward pass, so concurrent clients share it. SIGTERM or Ctrl-C stops accepting, answers what is
//! in flight, and exits 0.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use mclrec_models::Recommender;
use mclrec_trainer::evaluate::recommend;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Weights: a run's checkpoint, official safetensors or a PyTorch `.pth`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The dataset (`beauty`, `sports` or a file): its users for `/users/{user}/recommend`
    /// and its item tokens [default: the item tokens stored in the checkpoint; for weights
    /// without them, an item's token is its row].
    #[arg(long)]
    dataset: Option<String>,
    /// The address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// The most requests scored in one forward pass.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    max_batch: usize,
    /// How long the first request of a batch waits for others, in milliseconds [default:
    /// 0: a pass takes the requests already waiting, and those that arrive while it runs
    /// make the next one].
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    max_wait_ms: u64,
    /// The largest `k` a request may ask for.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    max_k: usize,
}

/// The largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// Requests waiting for the model before new ones are refused with 503.
const QUEUE: usize = 4096;

/// A request for the model thread.
struct Job {
    /// The user's row (0 for a history without a user: only read by the models with a
    /// user table, which refuse such requests).
    user: usize,
    input: Vec<usize>,
    exclude: Vec<usize>,
    k: usize,
    reply: oneshot::Sender<Vec<(usize, f32)>>,
}

/// Requests scored and forward passes run, for `/metadata`.
#[derive(Default)]
struct Served {
    requests: AtomicUsize,
    passes: AtomicUsize,
}

/// What the handlers share.
struct App {
    served: Arc<Served>,
    jobs: mpsc::SyncSender<Job>,
    item_ids: HashMap<String, usize>,
    items: Vec<String>,
    users: HashMap<String, usize>,
    sequences: Vec<Vec<usize>>,
    max_len: usize,
    max_k: usize,
    /// BPR and Caser score users, not histories.
    needs_known_user: bool,
    metadata: serde_json::Value,
}

/// A JSON error with its status.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn unprocessable(m: String) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, m)
}

/// An item token in a request: a string, or an integer for integer tokens.
#[derive(Deserialize)]
#[serde(untagged)]
enum Token {
    Str(String),
    Int(u64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendRequest {
    history: Vec<Token>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    include_history: bool,
}

fn default_k() -> usize {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KQuery {
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    include_history: bool,
}

pub fn run(args: &ServeArgs) -> Result<(), String> {
    if args.max_batch == 0 || args.max_k == 0 {
        return Err("--max-batch and --max-k must be at least 1".into());
    }
    // The dataset (or none), then the weights with the dataset's tokens mapped onto them.
    let mut data = match &args.dataset {
        Some(d) => crate::datasets::load_dataset(d)?,
        None => mclrec_trainer::Dataset {
            name: "(none)".into(),
            users: vec![],
            items: vec!["[PAD]".into()],
            sequences: vec![],
        },
    };
    // Read (and for a `.pth`, converted) once: the encoder and the training record.
    let bytes =
        mclrec_models::weights::read_weights_file(&args.checkpoint).map_err(|e| e.to_string())?;
    let label = args.checkpoint.display().to_string();
    let (encoder, items) = if args.dataset.is_some() {
        let e = crate::eval::encoder_for(&bytes, &label, &mut data, None)?;
        (e, data.items.clone())
    } else {
        crate::eval::encoder_alone(&bytes, &label)?
    };
    let n_items = encoder.n_items();
    let needs_known_user = encoder.needs_known_user();
    let max_k = args.max_k.min(n_items);
    let trained = std::fs::metadata(&args.checkpoint)
        .and_then(|m| m.modified())
        .ok()
        .map(humantime_utc);
    // A checkpoint of this project says what trained it.
    let config = mclrec_models::weights::inspect(&bytes)
        .ok()
        .and_then(|(_, meta)| meta.get("config").cloned())
        .and_then(|c| toml::from_str::<mclrec_trainer::TrainConfig>(&c).ok());
    drop(bytes);
    let model = config.as_ref().map_or(
        "sasrec encoder (weights without a training record)".to_string(),
        |c| c.model.name().to_string(),
    );
    let metadata = json!({
        "checkpoint": args.checkpoint.display().to_string(),
        "model": model,
        "trained_on": config.map(|c| c.dataset),
        "dataset": data.name,
        "items": n_items,
        "users": data.n_users(),
        "max_len": encoder.max_len(),
        "max_k": max_k,
        "trained": trained,
    });
    let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
    let (max_batch, wait) = (args.max_batch, Duration::from_millis(args.max_wait_ms));
    let served = Arc::new(Served::default());
    let counts = served.clone();
    std::thread::Builder::new()
        .name("model".into())
        .spawn(move || model_thread(&*encoder, rx, max_batch, wait, &counts))
        .map_err(|e| format!("cannot start the model thread: {e}"))?;
    let app = Arc::new(App {
        served,
        jobs: tx,
        item_ids: items
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, t)| (t.clone(), i))
            .collect(),
        items,
        users: data
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.clone(), i))
            .collect(),
        sequences: std::mem::take(&mut data.sequences),
        max_len: metadata["max_len"].as_u64().unwrap_or(50) as usize,
        max_k,
        needs_known_user,
        metadata,
    });
    let router = Router::new()
        .route("/recommend", post(post_recommend))
        .route("/users/{user}/recommend", get(user_recommend))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/metadata", get(get_metadata))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| format!("--bind {}: {e}", args.bind))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("listening on http://{addr} ({n_items} items; Ctrl-C or SIGTERM to stop)");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| format!("server: {e}"))
    })?;
    eprintln!("stopped");
    Ok(())
}

/// Resolves at Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Takes every waiting request (up to `max_batch`, waiting up to `wait` after the first)
/// into one forward pass. Ends when the server is gone.
fn model_thread(
    model: &dyn Recommender<f32>,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
    wait: Duration,
    served: &Served,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + wait;
        while jobs.len() < max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let exclude: Vec<Vec<usize>> = jobs
            .iter_mut()
            .map(|j| std::mem::take(&mut j.exclude))
            .collect();
        let inputs: Vec<&[usize]> = jobs.iter().map(|j| j.input.as_slice()).collect();
        let users: Vec<usize> = jobs.iter().map(|j| j.user).collect();
        let k = jobs.iter().map(|j| j.k).max().unwrap_or(1);
        let mut recs = recommend(model, &users, &inputs, &exclude, k);
        served.passes.fetch_add(1, Ordering::Relaxed);
        served.requests.fetch_add(jobs.len(), Ordering::Relaxed);
        for (job, mut top) in jobs.into_iter().zip(recs.drain(..)) {
            top.truncate(job.k);
            // A client that went away is no error.
            let _ = job.reply.send(top);
        }
    }
}

impl App {
    /// Scores `history` (item ids, oldest first) on the model thread.
    async fn score(
        &self,
        user: Option<usize>,
        history: Vec<usize>,
        k: usize,
        include_history: bool,
    ) -> Result<Json<serde_json::Value>, ApiError> {
        if k == 0 || k > self.max_k {
            return Err(unprocessable(format!(
                "k must be in 1..={}, got {k}",
                self.max_k
            )));
        }
        if history.is_empty() {
            return Err(unprocessable("history is empty".into()));
        }
        if user.is_none() && self.needs_known_user {
            return Err(unprocessable(
                "this model scores the users it was trained on only: use /users/{user}/recommend"
                    .into(),
            ));
        }
        let input = history[history.len().saturating_sub(self.max_len)..].to_vec();
        let exclude = if include_history { Vec::new() } else { history };
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job {
                user: user.unwrap_or(0),
                input,
                exclude,
                k,
                reply,
            })
            .map_err(|_| {
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests waiting; retry".into(),
                )
            })?;
        let top = answer.await.map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the model thread stopped".into(),
            )
        })?;
        let items: Vec<serde_json::Value> = top
            .iter()
            .map(|(i, s)| json!({"item": self.items[*i], "score": s}))
            .collect();
        Ok(Json(json!({ "items": items })))
    }
}

async fn post_recommend(
    State(app): State<Arc<App>>,
    body: Result<Json<RecommendRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = body.map_err(|e| {
        let status = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.body_text())
    })?;
    let history = req
        .history
        .iter()
        .map(|t| {
            let tok = match t {
                Token::Str(s) => s.clone(),
                Token::Int(v) => v.to_string(),
            };
            app.item_ids
                .get(&tok)
                .copied()
                .ok_or_else(|| unprocessable(format!("unknown item `{tok}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    app.score(None, history, req.k, req.include_history).await
}

async fn user_recommend(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
    query: Result<Query<KQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    if app.users.is_empty() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no dataset was given to the server (--dataset): users are unknown".into(),
        ));
    }
    let u = *app
        .users
        .get(&user)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("unknown user `{user}`")))?;
    app.score(Some(u), app.sequences[u].clone(), q.k, q.include_history)
        .await
}

async fn get_metadata(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let mut m = app.metadata.clone();
    m["served"] = json!({
        "requests": app.served.requests.load(Ordering::Relaxed),
        "forward_passes": app.served.passes.load(Ordering::Relaxed),
    });
    Json(m)
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ`.
fn humantime_utc(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
