//! `layerfit serve`: an OpenAI-compatible HTTP endpoint (axum on tokio) in front of the
//! batch engine (engine::batch, on its own thread). Every response says whether the server
//! runs degraded (a header and a `layerfit` field); keys are compared in constant time and
//! never logged; bodies, prompts and `max_tokens` are bounded; SIGTERM and SIGINT end it
//! cleanly. docs/serve.md.

mod answer;
pub mod embeddings;
mod generic_tools;
mod handlers;
mod log;
mod messages;
pub mod openai;
mod prepare;
pub mod request;
mod responses;
mod responses_out;
mod status;

use crate::engine::batch::{self, EngineStats, Job};
use crate::engine::session::Session;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Everything the server needs besides the loaded model.
pub struct ServeSettings {
    pub host: String,
    pub port: u16,
    pub api_key: Option<String>,
    /// Put the degraded banner into the answer text too.
    pub banner_in_text: bool,
    pub model_name: String,
    /// The degradations of the plan, in words; empty when it runs as planned.
    pub degraded: Vec<String>,
    /// The plan (`GET /v1/layerfit/plan`).
    pub plan: Value,
    pub parallel: u32,
    pub max_body_bytes: usize,
    /// Read VRAM in the memory monitor (the plan put something on a GPU).
    pub watch_vram: bool,
    /// Planned bytes per device: (device, weights, kv, compute), for `/metrics`.
    pub planned: Vec<(String, u64, u64, u64)>,
    /// The model has no chat template and no chat or instruct tag (`model::purpose`).
    pub base_model: bool,
    /// `/v1/chat/completions` completes the messages as plain text (`plain_text`) instead
    /// of formatting them with a chat template: a base model, unless `serve --chat`.
    pub chat_as_plain_text: bool,
    /// After SIGTERM or SIGINT, how long answers in flight may go on (`--drain-timeout`).
    pub drain_timeout: std::time::Duration,
    /// A vision projector is loaded: chat messages may carry images.
    pub vision: bool,
    /// Embedding mode, with its pooling: `/v1/embeddings` answers and the generation
    /// endpoints refuse (`serve --embeddings`, or an embedding model).
    pub embeddings: Option<crate::engine::embed::Pooling>,
}

/// The loaded model, shared: the engine thread alone decodes; request handlers only format
/// chat templates and tokenize, which read the vocabulary and nothing the decoder changes.
pub(crate) struct Shared(pub Session);
// SAFETY: see above: llama.cpp's tokenizer and template functions read immutable model data.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: shared references only tokenize and format, which read immutable
// model data; only the engine thread decodes.
unsafe impl Sync for Shared {}

/// The vision projector, moved to the engine thread, the only one that uses it.
struct EngineVision(crate::engine::vision::Vision);
// SAFETY: the projector's context is created on the main thread and then used only by the
// engine thread it is moved to (never by two threads at once).
unsafe impl Send for EngineVision {}

pub(crate) struct App {
    pub settings: ServeSettings,
    pub model: Arc<Shared>,
    pub jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    pub stats: Arc<EngineStats>,
    pub submitted: AtomicU64,
    pub n_ctx_seq: u32,
    pub memory_alert: Mutex<Option<String>>,
    key_hash: Option<[u8; 32]>,
    pub started: u64,
    /// Embedding mode: the engine thread's job channel, the vectors' width, and the most
    /// tokens one input may hold (a batch, at most a sequence's context).
    pub embed_jobs: Option<Mutex<std::sync::mpsc::Sender<crate::engine::embed::EmbedJob>>>,
    pub embed_width: u32,
    pub max_input_tokens: u32,
}

impl App {
    /// Constant-time check of a presented key (hashes compared byte by byte with no early
    /// exit, so neither the key's content nor its length shows in the timing).
    pub fn key_ok(&self, presented: Option<&str>) -> bool {
        let Some(want) = &self.key_hash else {
            return true;
        };
        let got: [u8; 32] = Sha256::digest(presented.unwrap_or("").as_bytes()).into();
        want.iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
            && presented.is_some()
    }

    pub fn alert(&self) -> Option<String> {
        self.memory_alert.lock().ok().and_then(|a| a.clone())
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves until SIGTERM or SIGINT. `on_listening` gets the bound address (for `--port 0`).
pub fn serve(
    settings: ServeSettings,
    session: Session,
    draft: Option<(Session, u32)>,
    vision: Option<crate::engine::vision::Vision>,
    on_listening: &dyn Fn(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let n_ctx_seq = session.n_ctx_seq();
    let embed_width = session.n_embd_out();
    let max_input_tokens = session.n_batch().min(n_ctx_seq);
    let model = Arc::new(Shared(session));
    let stats = Arc::new(EngineStats::default());
    // Set when the drain time is up: the engine ends every answer in flight.
    let halt = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let (embed_tx, embed_rx) = std::sync::mpsc::channel();
    let embed_jobs = settings.embeddings.map(|_| Mutex::new(embed_tx));
    let engine = if embed_jobs.is_some() {
        let (model, stats, n) = (model.clone(), stats.clone(), settings.parallel);
        std::thread::Builder::new()
            .name("layerfit-embed".into())
            .spawn(move || crate::engine::embed::run(&model.0, n, embed_rx, &stats))?
    } else {
        let (model, stats, n) = (model.clone(), stats.clone(), settings.parallel);
        let halt = halt.clone();
        let draft = draft.map(|(d, n_max)| (Shared(d), n_max));
        let vision = vision.map(EngineVision);
        std::thread::Builder::new()
            .name("layerfit-engine".into())
            .spawn(move || {
                let draft = draft.as_ref().map(|d| (&d.0 .0, d.1));
                let vision = vision.as_ref().map(|v| &v.0);
                batch::run(&model.0, draft, vision, n, rx, &stats, &halt)
            })?
    };
    let app = Arc::new(App {
        key_hash: settings
            .api_key
            .as_ref()
            .map(|k| Sha256::digest(k.as_bytes()).into()),
        settings,
        model,
        jobs: Mutex::new(tx),
        stats,
        submitted: AtomicU64::new(0),
        n_ctx_seq,
        memory_alert: Mutex::new(None),
        started: now(),
        embed_jobs,
        embed_width,
        max_input_tokens,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let addr = format!("{}:{}", app.settings.host, app.settings.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        on_listening(listener.local_addr()?);
        tokio::spawn(watch_memory(app.clone()));
        axum::serve(listener, handlers::router(app.clone()))
            .with_graceful_shutdown(shutdown(app.settings.drain_timeout, halt.clone()))
            .await
            .map_err(anyhow::Error::from)
    });
    // Closing the channel ends the engine once the answers in flight are done.
    if let Ok(mut tx) = app.jobs.lock() {
        *tx = std::sync::mpsc::channel().0;
    }
    if let Some(Ok(mut tx)) = app.embed_jobs.as_ref().map(Mutex::lock) {
        *tx = std::sync::mpsc::channel().0;
    }
    drop(rt);
    let _ = engine.join();
    result
}

/// Resolves at SIGTERM or SIGINT (new connections are refused from then on), and sets
/// `halt` once `drain` has passed: answers still in flight then end (finish_reason
/// "shutdown") and the server exits.
async fn shutdown(drain: std::time::Duration, halt: Arc<std::sync::atomic::AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    self::log::line(&format!(
        "note: shutting down (signal): answers in flight get {:.1} s to finish",
        drain.as_secs_f64()
    ));
    tokio::spawn(async move {
        tokio::time::sleep(drain).await;
        halt.store(true, std::sync::atomic::Ordering::SeqCst);
    });
}

/// The memory monitor: every two seconds, RAM (and VRAM where the plan uses a GPU) against
/// 95%; an alert goes to the log once, to response headers and to `/health` while it lasts.
async fn watch_memory(app: Arc<App>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let watch = app.settings.watch_vram;
        let alert =
            tokio::task::spawn_blocking(move || crate::engine::monitor::memory_alert(watch))
                .await
                .ok()
                .flatten();
        if let Ok(mut a) = app.memory_alert.lock() {
            if alert.is_some() && *a != alert {
                self::log::line(&format!("warning: {}", alert.clone().unwrap_or_default()));
            }
            *a = alert;
        }
    }
}
