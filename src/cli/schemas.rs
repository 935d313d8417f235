//! The JSON Schema of every `--json` document, generated from the same serialize-only types
//! the commands print, so the contract cannot drift from the code. `docs/schemas/` holds them
//! (written by `cargo run --example json_schemas`); the tests check the files equal these and
//! validate real output against the files with a JSON Schema validator.

use schemars::JsonSchema;
use serde::Serialize;

/// Every document as printed: `schema_version` at the top level, then the command's fields.
#[derive(Serialize, JsonSchema)]
struct Versioned<T> {
    /// The layout version of this document (see docs/json-schema.md).
    schema_version: u32,
    #[serde(flatten)]
    document: T,
}

fn schema<T: JsonSchema>(title: &str) -> serde_json::Value {
    let mut s = schemars::schema_for!(Versioned<T>).to_value();
    if let Some(map) = s.as_object_mut() {
        map.insert("title".into(), title.into());
        if let Some(required) = map.get_mut("required").and_then(|r| r.as_array_mut()) {
            if !required.iter().any(|r| r == "schema_version") {
                required.push("schema_version".into());
            }
        }
    }
    s
}

/// `(file stem, schema)` for every document, e.g. `("plan", ...)` for `plan --json`.
pub fn json_schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "inspect",
            schema::<crate::inspect::Inspection>("layerfit inspect --json"),
        ),
        (
            "hardware",
            schema::<crate::hardware::Snapshot>("layerfit hardware --json"),
        ),
        (
            "plan",
            schema::<super::plan::PlanDoc<'static>>("layerfit plan --json"),
        ),
        (
            "check-requirements",
            schema::<super::check_requirements::Doc<'static>>("layerfit check-requirements --json"),
        ),
        (
            "run",
            schema::<super::run::RunDoc<'static>>("layerfit run --prompt ... --json"),
        ),
        (
            "profiles",
            schema::<super::profiles::Doc<'static>>("layerfit profiles --json"),
        ),
        (
            "catalog-list",
            schema::<super::catalog::ListDoc<'static>>("layerfit catalog list --json"),
        ),
        (
            "bench",
            schema::<super::bench::Doc>("layerfit bench --json"),
        ),
        (
            "models",
            schema::<super::models::ModelsReport>("layerfit models --json"),
        ),
        (
            "pull",
            schema::<super::pull::PullReport>("layerfit pull MODEL --json"),
        ),
        (
            "catalog-verify",
            schema::<crate::catalog::verify::Report>("layerfit catalog verify FILE --json"),
        ),
    ]
}
