//! `layerfit inspect MODEL`: the model's exact memory footprint at a context.

use super::output::Printer;
use super::{exit, parse_tokens, Failure};
use crate::bytes::Bytes;
use crate::fetch::{self, name::RemoteName, Place};
use crate::ggml_type::{GgmlType, KV_CACHE_TYPES};
use crate::gguf::open_model;
use crate::gguf::ModelFile;
use crate::inspect::RemoteSource;
use crate::inspect::{inspect, Inspection};
use crate::memory::CacheConfig;
use crate::model_source::{default_models_dir, Origin};
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A GGUF file, or any shard of a split set (name-00001-of-00003.gguf), a remote model
    /// naming one file (hf://ORG/REPO:QUANT, https://.../x.gguf, ollama://NAME:TAG), or any
    /// other name plan takes (a catalog name, a model in Ollama's store): only its header is
    /// read.
    pub model: String,
    /// Context to size the KV cache for (tokens; 32k = 32768).
    #[arg(long, default_value = "32768", allow_negative_numbers = true, value_parser = parse_tokens)]
    pub ctx: u64,
    /// KV cache type used for the compute estimate (every type is listed anyway).
    #[arg(long, default_value = "f16", value_parser = parse_cache_type)]
    pub cache_type: GgmlType,
    /// Flash attention (llama.cpp turns it on automatically where the device supports it).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub flash_attn: String,
    /// Physical batch size (llama.cpp's -ub), at least 1.
    #[arg(long, default_value_t = 512, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub ubatch: u32,
    /// Logical batch size (llama.cpp's -b), at least 1.
    #[arg(long, default_value_t = 2048, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Give sliding-window layers a full-size cache (llama.cpp's --swa-full).
    #[arg(long)]
    pub swa_full: bool,
    /// Print a JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub projector: super::projector::ProjectorArgs,
}

/// The file a model name stands for: a path as given, the one file a remote name names (its
/// local copy, else its header over the network), or what plan's other names stand for
/// (`catalog_or_store`).
fn open(spec: &str) -> Result<(ModelFile, Option<RemoteSource>, Vec<String>), Failure> {
    let name = RemoteName::parse(spec).map_err(Failure::input)?;
    let Some(name) = name else {
        let path = Path::new(spec);
        if !path.exists() && !spec.ends_with(".gguf") {
            return catalog_or_store(spec);
        }
        let file = open_model(path).map_err(|e| Failure::BadInput(e.to_string()))?;
        return Ok((file, None, Vec::new()));
    };
    let client = fetch::client();
    let models_dir = default_models_dir();
    let mut found = fetch::candidates(&name, &models_dir, &client).map_err(Failure::input)?;
    if found.len() != 1 {
        let names: Vec<String> = found.iter().map(|c| c.name.clone()).collect();
        return Err(Failure::BadInput(format!(
            "{spec} names {} models; inspect one of: {}",
            names.len(),
            names.join(", ")
        )));
    }
    let c = found.remove(0);
    match c.place {
        Place::Local(p) => {
            let file = open_model(&p).map_err(|e| Failure::BadInput(e.to_string()))?;
            Ok((
                file,
                Some(RemoteSource {
                    name: c.name,
                    url: None,
                    local_path: Some(p.display().to_string()),
                    transfer: None,
                }),
                Vec::new(),
            ))
        }
        Place::Remote(d) => {
            let (file, t) = fetch::remote_model(&client, &d).map_err(Failure::input)?;
            Ok((
                file,
                Some(RemoteSource {
                    name: c.name,
                    url: Some(d[0].url.clone()),
                    local_path: None,
                    transfer: Some(t),
                }),
                Vec::new(),
            ))
        }
    }
}

/// A name `plan` takes that is neither a path nor a remote name: a model in Ollama's store
/// (`smollm2:135m` as `ollama list` shows it) or a catalog name. Of a catalog name's
/// variants, a downloaded one is inspected first, else the best; a note says which. A
/// variant not downloaded is inspected from the catalog's description of its header.
fn catalog_or_store(spec: &str) -> Result<(ModelFile, Option<RemoteSource>, Vec<String>), Failure> {
    let found = crate::model_source::resolve(spec, &default_models_dir())
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let downloaded = |s: &crate::model_source::ModelSource| matches!(s.origin, Origin::File { .. });
    let Some(src) = found.iter().find(|s| downloaded(s)).or(found.first()) else {
        return Err(Failure::BadInput(format!("{spec}: no such model")));
    };
    let name = src
        .catalog_name
        .clone()
        .unwrap_or_else(|| src.label.clone());
    let mut notes = Vec::new();
    if found.len() > 1 {
        let names: Vec<&str> = found
            .iter()
            .filter_map(|s| s.catalog_name.as_deref())
            .collect();
        notes.push(format!(
            "{spec} has {} variants ({}): inspected {name}, {}; name a variant to inspect another",
            found.len(),
            names.join(", "),
            if downloaded(src) {
                "the one downloaded"
            } else {
                "the best"
            }
        ));
    }
    if downloaded(src) {
        let file = open_model(&src.path).map_err(|e| Failure::BadInput(e.to_string()))?;
        let source = RemoteSource {
            name,
            url: None,
            local_path: Some(src.path.display().to_string()),
            transfer: None,
        };
        return Ok((file, Some(source), notes));
    }
    notes.push(format!(
        "not downloaded: figures from layerfit's catalog; `layerfit pull {name}` puts the file at {}",
        src.path.display()
    ));
    let data_bytes = src
        .tensors
        .iter()
        .map(|t| t.offset + t.n_bytes().get())
        .max()
        .unwrap_or(0);
    let header = crate::gguf::Header {
        path: src.path.clone(),
        version: 3,
        metadata: src.metadata.clone(),
        tensors: src.tensors.clone(),
        alignment: 32,
        data_offset: 0,
        data_bytes,
        file_size: data_bytes,
    };
    let file = ModelFile {
        path: src.path.clone(),
        shards: vec![header],
    };
    let source = RemoteSource {
        name,
        url: src.upstream.clone(),
        local_path: None,
        transfer: None,
    };
    Ok((file, Some(source), notes))
}

pub fn parse_cache_type(s: &str) -> Result<GgmlType, String> {
    GgmlType::from_name(s)
        .filter(|t| KV_CACHE_TYPES.contains(t))
        .ok_or_else(|| {
            let names: Vec<_> = KV_CACHE_TYPES.iter().map(|t| t.name()).collect();
            format!("'{s}' is not a KV cache type ({})", names.join(", "))
        })
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let cfg = CacheConfig {
        n_ctx: args.ctx,
        type_k: args.cache_type,
        type_v: args.cache_type,
        flash_attn: args.flash_attn == "on",
        n_batch: args.batch.max(1),
        n_ubatch: args.ubatch.max(1),
        n_seq_max: 1,
        swa_full: args.swa_full,
        ..CacheConfig::default()
    };
    let (file, source, notes) = open(&args.model)?;
    let mut report =
        inspect(&file, &cfg).map_err(|e| Failure::BadInput(format!("{}: {e}", args.model)))?;
    report.source = source;
    report.notes.extend(notes);
    report.projector = super::projector::inspect(
        &args.projector,
        &super::projector_source::ModelRef {
            path: &file.path,
            label: &args.model,
            origin: None,
        },
        report.model.embedding_length,
    )?;
    if args.json {
        printer.json(&report)?;
    } else {
        print_tables(&report, printer);
    }
    Ok(exit::OK)
}

fn print_tables(r: &Inspection, printer: &Printer) {
    print_model(r, printer);
    if let Some(p) = &r.projector {
        let mut t = printer.table(&["projector", ""]);
        let rows = [
            ("file", p.path.clone()),
            ("type", p.shape.projector_type.clone()),
            ("weights", p.shape.weight_bytes.to_string()),
            ("compute (warm-up image)", p.compute_bytes.to_string()),
            ("total", p.total_bytes.to_string()),
            (
                "tokens an image",
                p.image_max_tokens
                    .map_or("unknown (dynamic resolution)".into(), |n| n.to_string()),
            ),
        ];
        for (k, v) in rows {
            printer.row(&mut t, vec![k.to_string(), v]);
        }
        printer.print_table(t);
    }
}

fn print_model(r: &Inspection, printer: &Printer) {
    let m = &r.model;
    let mut t = printer.table(&["model", ""]);
    printer.row(&mut t, vec!["file".to_string(), m.path.clone()]);
    if let Some(src) = &r.source {
        let how = match (&src.transfer, &src.local_path) {
            (Some(t), _) if t.cached_headers > 0 && t.bytes_transferred == 0 => {
                "header from layerfit's cache".to_string()
            }
            (Some(t), _) => format!(
                "header read over the network: {} transferred for a {} header",
                Bytes(t.bytes_transferred),
                Bytes(t.header_bytes)
            ),
            (None, Some(p)) => format!("the copy at {p}"),
            (None, None) => "layerfit's catalog; not downloaded".to_string(),
        };
        printer.row(
            &mut t,
            vec!["source".to_string(), format!("{} ({how})", src.name)],
        );
    }
    if let Some(n) = &m.name {
        printer.row(&mut t, vec!["name".to_string(), n.clone()]);
    }
    printer.row(
        &mut t,
        vec!["architecture".to_string(), m.architecture.clone()],
    );
    printer.row(
        &mut t,
        vec!["blocks".to_string(), m.block_count.to_string()],
    );
    printer.row(
        &mut t,
        vec!["trained context".to_string(), m.context_length.to_string()],
    );
    printer.row(
        &mut t,
        vec![
            "parameters".to_string(),
            format!("{:.1} M", m.parameters as f64 / 1e6),
        ],
    );
    printer.row(
        &mut t,
        vec!["vocabulary".to_string(), m.vocab_size.to_string()],
    );
    if let Some(s) = &m.sliding_window {
        printer.row(
            &mut t,
            vec![
                "sliding window".to_string(),
                format!(
                    "{} tokens on {} of {} blocks",
                    s.window,
                    s.swa_layers,
                    s.swa_layers + s.full_layers
                ),
            ],
        );
    }
    if m.mla {
        printer.row(
            &mut t,
            vec![
                "attention".to_string(),
                "MLA (compressed latent KV, no V cache)".to_string(),
            ],
        );
    }
    if m.recurrent_layers > 0 {
        printer.row(
            &mut t,
            vec![
                "recurrent blocks".to_string(),
                m.recurrent_layers.to_string(),
            ],
        );
    }
    if let Some(e) = &m.experts {
        printer.row(
            &mut t,
            vec![
                "experts".to_string(),
                format!("{} ({} used per token)", e.count, e.used),
            ],
        );
    }
    let catalog_only = r
        .source
        .as_ref()
        .is_some_and(|s| s.local_path.is_none() && s.transfer.is_none());
    let complete = if catalog_only {
        "not downloaded".to_string()
    } else if m.file_complete {
        "complete".to_string()
    } else {
        format!("INCOMPLETE: {} missing", Bytes(m.missing_bytes))
    };
    printer.row(
        &mut t,
        vec![
            "file".to_string(),
            format!(
                "{} in {} shard(s), {complete}",
                Bytes(m.file_bytes),
                m.shards
            ),
        ],
    );
    printer.print_table(t);

    let w = &r.weights;
    let mut t = printer.table(&["weights", "bytes"]);
    printer.row(
        &mut t,
        vec![
            "total".to_string(),
            format!("{} ({:.2} bits/weight)", w.total_bytes, w.bits_per_weight),
        ],
    );
    if w.not_loaded_bytes.get() > 0 {
        printer.row(
            &mut t,
            vec![
                "not loaded".to_string(),
                format!(
                    "{} (multi-token-prediction blocks: llama.cpp skips them)",
                    w.not_loaded_bytes
                ),
            ],
        );
    }
    printer.row(
        &mut t,
        vec![
            "outside blocks".to_string(),
            w.outside_blocks_bytes.to_string(),
        ],
    );
    printer.row(
        &mut t,
        vec![
            "  token embeddings (host)".to_string(),
            w.token_embd_bytes.to_string(),
        ],
    );
    printer.row(
        &mut t,
        vec!["  output layer".to_string(), w.output_bytes.to_string()],
    );
    let (lo, hi) = (
        w.per_block_bytes.iter().min().copied().unwrap_or_default(),
        w.per_block_bytes.iter().max().copied().unwrap_or_default(),
    );
    let per_block = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo} to {hi}")
    };
    printer.row(
        &mut t,
        vec![
            format!("per block (x{})", w.per_block_bytes.len()),
            per_block,
        ],
    );
    let types: Vec<String> = w.by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
    printer.row(&mut t, vec!["by type".to_string(), types.join(", ")]);
    printer.print_table(t);

    let k = &r.kv_cache;
    let title = format!("KV cache at {} tokens", k.context);
    let mut t = printer.table(&[title.as_str(), "K+V bytes"]);
    for ty in KV_CACHE_TYPES {
        let name = ty.name();
        let v = match k.bytes.get(name).copied().flatten() {
            Some(b) => b.to_string(),
            None => format!(
                "n/a: {}",
                k.unavailable.get(name).map(String::as_str).unwrap_or("")
            ),
        };
        printer.row(&mut t, vec![name.to_string(), v]);
    }
    if k.recurrent_state_bytes > Bytes::ZERO {
        printer.row(
            &mut t,
            vec![
                "(recurrent state, f32, included)".to_string(),
                k.recurrent_state_bytes.to_string(),
            ],
        );
    }
    printer.print_table(t);
    // Sliding-window cells exist only where the model has sliding-window layers.
    let swa = match m.sliding_window {
        Some(_) => format!(", {} sliding-window", k.swa_cells),
        None => String::new(),
    };
    printer.line(&format!(
        "cells: {} full-attention{swa}; flash attention {}",
        k.cells,
        if k.flash_attention { "on" } else { "off" }
    ));

    let c = &r.compute;
    printer.line(&format!(
        "compute buffer: {} (ubatch {}, peak at the {:?} step; logits {}); output buffer {}",
        c.bytes, c.n_ubatch, c.detail.peak, c.detail.logits, c.output_buffer_bytes
    ));
    for n in &r.notes {
        printer.note(n);
    }
}
