//! Writes the JSON Schema of every `--json` document to `docs/schemas/NAME.schema.json`
//! (`cargo run --example json_schemas`). The tests fail when the files and the code disagree.

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas");
    std::fs::create_dir_all(&dir)?;
    for (name, schema) in layerfit::cli::json_schemas() {
        let path = dir.join(format!("{name}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n";
        std::fs::write(&path, text)?;
        println!("{}", path.display());
    }
    Ok(())
}
