//! `layerfit profiles`: the built-in profiles, what they require and what they target.

use super::{exit, output, Failure};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct Row<'a> {
    name: &'a str,
    description: &'a str,
    source: &'a str,
    min_context: u64,
    models: &'a [String],
    kv_types: &'a [String],
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let all = crate::profile::builtin().map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
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
        output::json(&rows)?;
        return Ok(exit::OK);
    }
    let mut t = output::table(&["profile", "context", "models (best first)", "what it is"]);
    for p in &all {
        t.add_row(vec![
            p.name.clone(),
            p.min_context.to_string(),
            p.models.join(", "),
            p.description.clone(),
        ]);
    }
    println!("{t}");
    println!(
        "plan one on this machine: layerfit plan --profile NAME; on its target: add --on-target"
    );
    Ok(exit::OK)
}
