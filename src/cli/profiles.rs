//! `layerfit profiles`: the built-in profiles, what they require and what they target.

use super::output::Printer;
use super::{exit, Failure};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON document (`profiles[]`) instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Doc<'a> {
    profiles: Vec<Row<'a>>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Row<'a> {
    name: &'a str,
    description: &'a str,
    source: &'a str,
    min_context: u64,
    models: &'a [String],
    kv_types: &'a [String],
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let all = crate::profile::builtin().map_err(|e| Failure::Internal(e.into()))?;
    if args.json {
        let rows: Vec<Row> = all
            .iter()
            .map(|p| Row {
                name: &p.name,
                description: &p.description,
                source: &p.source,
                min_context: p.min_context,
                models: &p.models,
                kv_types: &p.kv_types,
            })
            .collect();
        printer.json(&Doc { profiles: rows })?;
        return Ok(exit::OK);
    }
    let mut t = printer.table(&["profile", "context", "models (best first)", "what it is"]);
    for p in &all {
        printer.row(
            &mut t,
            vec![
                p.name.clone(),
                p.min_context.to_string(),
                p.models.join(", "),
                p.description.clone(),
            ],
        );
    }
    printer.print_table(t);
    printer.line(
        "plan one on this machine: layerfit plan --profile NAME; on its target: add --on-target",
    );
    Ok(exit::OK)
}
