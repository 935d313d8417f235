//! `layerfit catalog list|show|verify`: the built-in model catalog, and checking an entry
//! against a real file's header.

use super::output::Printer;
use super::{exit, Failure};
use crate::catalog::{self, verify::verify};
use crate::gguf::open_model;
use crate::memory::weights;
use crate::model::projector::projector_shape;
use crate::model_source::{default_models_dir, resolve};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List catalog models and their variants with weight sizes.
    List {
        /// Print one JSON document (`entries[]`) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Compare a real GGUF file with its catalog entry (hyperparameters, then every tensor).
    /// Exit 0 when they agree, 3 when they differ.
    Verify {
        /// The GGUF file to compare (any shard of a split set).
        file: PathBuf,
        /// The entry to compare with (default: the one with the same architecture and size).
        #[arg(long)]
        entry: Option<String>,
        /// Print one JSON document (the comparison) instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// Exit code of `catalog verify` when the entry and the file disagree.
pub const DISAGREES: u8 = exit::DISAGREES;

/// Whether the command prints JSON (the printer is made before the command runs).
pub fn wants_json(args: &Args) -> bool {
    match &args.action {
        Action::List { json } | Action::Verify { json, .. } => *json,
    }
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    match args.action {
        Action::List { json } => list(json, printer),
        Action::Verify { file, entry, json } => verify_file(file, entry, json, printer),
    }
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ListDoc<'a> {
    entries: &'a [catalog::Entry],
}

fn list(json: bool, printer: &Printer) -> Result<u8, Failure> {
    let entries = catalog::entries().map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    if json {
        printer.json(&ListDoc { entries: &entries })?;
        return Ok(exit::OK);
    }
    let dir = default_models_dir();
    let mut t = printer.table(&[
        "model",
        "arch",
        "blocks",
        "trained ctx",
        "variants (weights)",
    ]);
    for e in &entries {
        let mut variants: Vec<String> = resolve(&e.name, &dir)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let w = weights(&s.tensors, e.block_count as usize);
                // Each variant and its size are one unit when a cell wraps.
                format!(
                    "{}\u{a0}{}",
                    s.catalog_name
                        .as_deref()
                        .and_then(|n| n.rsplit('-').next())
                        .unwrap_or(""),
                    w.total
                )
            })
            .collect();
        // The published vision projector's weights, as --mmproj counts a real file's.
        if let Ok(Some((meta, tensors))) = e.projector_parts() {
            if let Ok(p) = projector_shape(&meta, &tensors) {
                variants.push(format!("mmproj\u{a0}f16\u{a0}{}", p.weight_bytes));
            }
        }
        printer.row(
            &mut t,
            vec![
                e.name.clone(),
                e.architecture.clone(),
                e.block_count.to_string(),
                e.context_length.to_string(),
                variants.join(", "),
            ],
        );
    }
    printer.print_table(t);
    Ok(exit::OK)
}

fn verify_file(
    file: PathBuf,
    entry: Option<String>,
    json: bool,
    printer: &Printer,
) -> Result<u8, Failure> {
    let f = open_model(&file).map_err(|e| Failure::BadInput(e.to_string()))?;
    let entries = catalog::entries().map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    let tensors: Vec<_> = f.tensors().cloned().collect();
    let chosen = match entry {
        Some(name) => entries
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Failure::BadInput(format!("no catalog entry '{name}'")))?,
        None => {
            // The entry of the same architecture that agrees best with the file (fewest
            // differences; then closest in parameter count: SmolLM and SmolLM2 135M have the
            // same count and differ in their trained context).
            let arch = f
                .metadata()
                .get("general.architecture")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            let n: u64 = tensors
                .iter()
                .fold(0u64, |a, t| a.saturating_add(t.n_elements()));
            entries
                .into_iter()
                .filter(|e| e.architecture == arch)
                .min_by_key(|e| {
                    let m: u64 = e
                        .tensors(catalog::quant::Ftype::F16)
                        .map(|ts| ts.iter().map(|t| t.n_elements()).sum())
                        .unwrap_or(0);
                    let differences = verify(e, f.metadata(), &tensors, f.tensor_vocab())
                        .map_or(usize::MAX, |r| r.differences.len());
                    (differences, m.abs_diff(n))
                })
                .ok_or_else(|| {
                    Failure::BadInput(format!(
                        "{}: no catalog entry has architecture '{arch}' (name one with --entry)",
                        file.display()
                    ))
                })?
        }
    };
    let report = verify(&chosen, f.metadata(), &tensors, f.tensor_vocab())
        .map_err(|e| Failure::BadInput(format!("{}: {e}", file.display())))?;
    if json {
        printer.json(&report)?;
    } else if report.agrees() {
        printer.line(&format!(
            "{}: agrees with catalog entry {} ({} tensors compared{})",
            file.display(),
            report.entry,
            report.tensors_compared,
            report
                .variant
                .as_ref()
                .map(|v| format!(", variant {v}"))
                .unwrap_or_else(|| {
                    ", hyperparameters only: the file's type is not a catalog variant".into()
                })
        ));
    } else {
        let mut t = printer.table(&["field", "catalog", "file"]);
        for d in &report.differences {
            printer.row(
                &mut t,
                vec![d.what.clone(), d.catalog.clone(), d.file.clone()],
            );
        }
        printer.print_table(t);
        printer.warning(&format!(
            "{}: {} difference(s) from catalog entry {}",
            file.display(),
            report.differences.len(),
            report.entry
        ));
    }
    Ok(if report.agrees() { exit::OK } else { DISAGREES })
}
