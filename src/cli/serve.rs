//! `layerfit serve`: the plan of `run`, held open as an OpenAI-compatible endpoint. Planned
//! exactly like `run` (same choice, exit 20 when it does not fit, degraded only with
//! `--accept-degraded`: a server does not prompt), loaded with `--parallel` sequences, checked
//! against what llama.cpp allocated, then served until SIGTERM.

use super::output::{self, Printer};
use super::planning::PlanArgs;
use super::run_prepare::{base_model_note, PromptFormat};
use super::{exit, Failure};
use crate::engine::embed::Pooling;
use crate::engine::session::Session;
use crate::plan::Verdict;
use crate::serve::{serve, ServeSettings};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// A run file from `layerfit plan --emit profile` (no planning; its settings are used).
    #[arg(long = "plan", conflicts_with_all = ["model", "profile"])]
    pub plan_file: Option<PathBuf>,
    /// Address to listen on; anything but loopback without --api-key is warned about.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port, printed when listening).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// A key clients must send as `Authorization: Bearer KEY` (also `LAYERFIT_API_KEY`).
    #[arg(long, env = "LAYERFIT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Serve a degraded plan (without it, a degraded plan exits 10).
    #[arg(long)]
    pub accept_degraded: bool,
    /// Also put the degraded-mode banner at the start of every answer's text, for clients
    /// that show only the text.
    #[arg(long)]
    pub banner_in_text: bool,
    /// After SIGTERM or SIGINT, how long answers in flight may go on (e.g. 10s, 500ms, 2m; a
    /// number is seconds); then each ends with finish_reason "shutdown" and serve exits 0.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=(256 << 20)))]
    pub max_body: u64,
    /// Lock the weights in RAM (mlock).
    #[arg(long)]
    pub mlock: bool,
    /// Format `/v1/chat/completions` messages with a chat template even for a base model
    /// (without it a base model's messages are completed as plain text; docs/serve.md).
    #[arg(long)]
    pub chat: bool,
    /// Serve embeddings (`/v1/embeddings`) instead of chat and completions (llama-server's
    /// --embeddings). An embedding model (its file declares a pooling, or non-causal
    /// attention) is served so without the flag.
    #[arg(long, alias = "embedding")]
    pub embeddings: bool,
    /// How an input's token vectors become one vector in embedding mode [default: the
    /// model's own]: mean, cls or last (none and rank, which llama-server also takes, are
    /// refused: neither gives one embedding per input).
    #[arg(long, value_parser = crate::engine::embed::Pooling::NAMES)]
    pub pooling: Option<String>,
}

/// The pooling of embedding mode: `--pooling`, else the model's own; none and rank refused
/// (exit 2), as llama-server refuses pooling none for `/v1/embeddings`.
fn pooling(
    flag: Option<&str>,
    shape: &crate::model::Shape,
    label: &str,
) -> Result<Pooling, Failure> {
    let declared = shape.pooling_type.and_then(Pooling::from_gguf);
    match (flag.and_then(Pooling::parse), declared) {
        (Some(Pooling::None), _) => Err(Failure::BadInput(
            "--pooling none gives a vector per token, which /v1/embeddings cannot answer (llama-server refuses it too): use --pooling mean, cls or last".into(),
        )),
        (Some(Pooling::Rank), _) => Err(Failure::BadInput(
            "--pooling rank gives a reranker's scores, not embeddings: use --pooling mean, cls or last".into(),
        )),
        (Some(p), _) => Ok(p),
        (None, Some(Pooling::Rank)) => Err(Failure::BadInput(format!(
            "{label} is a reranker (pooling rank): its scores are not embeddings; pass --pooling mean, cls or last to embed with it anyway"
        ))),
        (None, Some(p)) if p != Pooling::None => Ok(p),
        (None, _) => Err(Failure::BadInput(format!(
            "{label} declares no pooling (a generative model): pass --pooling mean, cls or last with --embeddings (pooling none gives no embedding per input)"
        ))),
    }
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let mut plan_args = args.plan.clone();
    plan_args.embeddings = if args.embeddings {
        super::planning::Embeddings::On
    } else {
        super::planning::Embeddings::Auto
    };
    let prep = super::run_prepare::prepare(&plan_args, args.plan_file.as_deref())?;
    let embeddings = if args.embeddings || prep.shape.is_embedding_model() {
        if prep.plan.draft.is_some() || prep.plan.projector.is_some() {
            return Err(Failure::BadInput(
                "embedding mode reads no images and drafts nothing: leave out --draft and --mmproj"
                    .into(),
            ));
        }
        Some(pooling(args.pooling.as_deref(), &prep.shape, &prep.label)?)
    } else if args.pooling.is_some() {
        return Err(Failure::BadInput(
            "--pooling applies to embedding mode: add --embeddings".into(),
        ));
    } else {
        None
    };
    let format = PromptFormat::choose(&prep.purpose, false, args.chat);
    if let (Some(n), None) = (base_model_note(&prep.purpose, format), embeddings) {
        output::note(&n);
    }
    if prep.verdict == Verdict::Degraded && !args.accept_degraded {
        for d in &prep.degradations {
            printer.warning(d);
        }
        output::error("the plan is degraded: pass --accept-degraded to serve it anyway");
        return Ok(exit::DEGRADED);
    }
    if !loopback(&args.host) && args.api_key.is_none() {
        output::warning(&format!(
            "listening on {} with no --api-key: anyone who can reach this machine can use the model",
            args.host
        ));
    }
    let s = &prep.settings;
    let parallel = prep.plan.parallel.max(1);
    let (mut cfg, _) = prep.session_config(args.plan.threads, args.mlock)?;
    cfg.embeddings = embeddings;
    output::note(&format!(
        "loading {} ({} sequences of {} tokens)",
        prep.label, parallel, s.context
    ));
    let session =
        Session::load(&cfg, &mut |_| {}).map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    if let (Some(n), PromptFormat::ChatTemplate, None) =
        (&session.template_note, format, embeddings)
    {
        output::note(n);
    }
    let checks = crate::engine::self_check::self_check(
        &prep.expected,
        prep.repacked,
        session.output_buffer(),
        &session.breakdown(),
    );
    super::self_check_report::report_self_check(&checks, "self-check", false, printer);
    let driver =
        crate::engine::self_check::driver_check(&prep.baselines, &crate::engine::free_memory());
    super::self_check_report::report_driver_check(&driver, false, printer);
    let draft = match (prep.draft_config(&cfg)?, &prep.plan.draft) {
        (Some(dcfg), Some(dp)) => {
            output::note(&format!(
                "loading the draft {} ({} tokens drafted per step)",
                dp.model, dp.draft_max
            ));
            let d = Session::load(&dcfg, &mut |_| {})
                .map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
            let checks = crate::engine::self_check::self_check(
                &dp.devices,
                dp.ram.repacked_bytes,
                d.output_buffer(),
                &d.breakdown(),
            );
            super::self_check_report::report_self_check(
                &checks,
                "self-check (draft)",
                false,
                printer,
            );
            Some((d, dp.draft_max))
        }
        _ => None,
    };
    if let Some(p) = &prep.plan.projector {
        super::run_images::on_disk(p)?;
    }
    let vision =
        super::run_images::load(prep.plan.projector.as_ref(), &session, cfg.threads, printer)?
            .map(|(v, _)| v);
    for d in &prep.degradations {
        printer.warning(&format!("DEGRADED MODE: {d}"));
    }
    let settings = ServeSettings {
        host: args.host.clone(),
        port: args.port,
        api_key: args.api_key.clone(),
        banner_in_text: args.banner_in_text,
        // A file is named by its stem (`SmolLM2-135M-Instruct.Q4_1`), as clients list it.
        model_name: if std::path::Path::new(&prep.label).is_file() {
            std::path::Path::new(&prep.label)
                .file_stem()
                .map_or(prep.label.clone(), |s| s.to_string_lossy().to_string())
        } else {
            prep.label.clone()
        },
        degraded: if prep.verdict == Verdict::Degraded {
            prep.degradations.clone()
        } else {
            Vec::new()
        },
        plan: serde_json::to_value(&prep.plan).unwrap_or_default(),
        parallel,
        max_body_bytes: args.max_body as usize,
        watch_vram: prep
            .expected
            .iter()
            .any(|d| d.is_gpu && d.total_bytes.get() > 0),
        planned: prep
            .expected
            .iter()
            .map(|d| {
                (
                    d.device.clone(),
                    d.weights_bytes.get(),
                    d.kv_bytes.get(),
                    d.compute_bytes.get(),
                )
            })
            .collect(),
        base_model: prep.purpose.is_base(),
        chat_as_plain_text: format == PromptFormat::Raw,
        drain_timeout: args.drain_timeout,
        vision: vision.is_some(),
        embeddings,
    };
    let label = prep.label.clone();
    // From here SIGINT drains as SIGTERM does (serve/mod.rs, `shutdown`), exit 0: the
    // handler that ends other commands with 130 must not be chained behind tokio's.
    // SAFETY: restoring the default disposition of a signal is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let what = match embeddings {
        Some(p) => format!("embeddings ({} pooling) of ", p.name()),
        None => String::new(),
    };
    serve(settings, session, draft, vision, &|addr| {
        printer.line(&format!(
            "serving {what}{label} at http://{addr}/v1 ({parallel} parallel sequences of {} tokens); Ctrl-C or SIGTERM stops it",
            s.context
        ));
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })
    .map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(exit::OK)
}

/// A duration: a number with `ms`, `s`, `m` or `h`, or a bare number of seconds; at most a
/// day.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "'{s}' is not a duration: use e.g. 10s, 500ms or 2m"
            ))
        }
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 86_400.0 => {
            Ok(std::time::Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "'{s}' is not a duration from 0 to a day: use e.g. 10s, 500ms or 2m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "-1s", "ten", "5d", "NaNs", "2h1m", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
