//! Every `--json` document: one valid JSON document with no duplicate keys, `schema_version`
//! at the top level, valid against its JSON Schema in docs/schemas/ (checked with the
//! `jsonschema` validator), and the committed schemas equal what the code generates.

mod common;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

const BIN: &str = env!("CARGO_BIN_EXE_layerfit");

/// Walks a JSON document and fails on the first object that repeats a key (serde_json's
/// `Value` would keep the last one silently).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoDuplicateKeys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut seen = HashSet::new();
                while let Some(k) = m.next_key::<String>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key '{k}'")));
                    }
                    m.next_value::<NoDuplicateKeys>()?;
                }
                Ok(NoDuplicateKeys)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<NoDuplicateKeys>()?.is_some() {}
                Ok(NoDuplicateKeys)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(NoDuplicateKeys)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                NoDuplicateKeys::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

fn schema_file(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/docs/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn check_document(name: &str, args: &[&str], codes: &[i32]) -> serde_json::Value {
    let (code, out, err) = common::layerfit(BIN, args);
    assert!(codes.contains(&code), "{args:?}: exit {code}: {err}");
    serde_json::from_str::<NoDuplicateKeys>(&out).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema_version"], 1, "{args:?}");
    let validator = jsonschema::validator_for(&schema_file(name)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{args:?} against {name}.schema.json: {errors:#?}"
    );
    // The schema has teeth: without a required field, or with a wrong type, it fails.
    let schema = schema_file(name);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert!(required.contains(&"schema_version"), "{name}");
    for field in required {
        let mut broken = doc.clone();
        broken.as_object_mut().unwrap().remove(field);
        assert!(
            !validator.is_valid(&broken),
            "{name} without {field} still valid"
        );
    }
    let mut broken = doc.clone();
    broken["schema_version"] = "one".into();
    assert!(
        !validator.is_valid(&broken),
        "{name}: a string schema_version is valid"
    );
    doc
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    for (name, schema) in layerfit::cli::json_schemas() {
        assert_eq!(
            schema_file(name),
            schema,
            "docs/schemas/{name}.schema.json is stale: cargo run --example json_schemas"
        );
    }
}

#[test]
fn every_document_is_valid_against_its_schema() {
    let dir = common::tempdir("json-contract");
    let machine = dir.join("m.yaml");
    std::fs::write(&machine, "ram: 16G\ngpus: [{name: RTX 3060}]\n").unwrap();
    let m = machine.to_str().unwrap();
    let smol = common::smollm2();
    let smol = smol.to_str().unwrap();
    check_document("inspect", &["inspect", smol, "--json"], &[0]);
    check_document("hardware", &["hardware", "--json"], &[0]);
    check_document("hardware", &["hardware", "--hardware", m, "--json"], &[0]);
    check_document(
        "plan",
        &[
            "plan",
            "--model",
            "qwen2.5-coder:7b",
            "--hardware",
            m,
            "--json",
        ],
        &[0, 10],
    );
    check_document("plan", &["plan", "--model", smol, "--json"], &[0, 10]);
    check_document(
        "check-requirements",
        &[
            "check-requirements",
            "--profile",
            "hybrid_8gb",
            "--hardware",
            m,
            "--json",
        ],
        &[0, 10, 20],
    );
    // Without a model: every tier ranked (`profiles[]`), with `this_binary` for the GPU.
    check_document(
        "check-requirements",
        &["check-requirements", "--hardware", m, "--json"],
        &[0, 10, 20],
    );
    // The placements beyond -ngl and the usable context.
    check_document(
        "plan",
        &[
            "plan",
            "--model",
            "qwen2.5-coder:7b-q8_0",
            "--hardware",
            m,
            "--max-context",
            "--json",
        ],
        &[0, 10],
    );
    check_document("profiles", &["profiles", "--json"], &[0]);
    // `bench` measures into its own cache folder (the user's calibration stays as it is).
    let out = std::process::Command::new(BIN)
        .args(["bench", "--quick", "--busy-ok", "--json"])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::validator_for(&schema_file("bench")).unwrap();
    assert!(
        validator.is_valid(&doc),
        "bench --json against bench.schema.json"
    );
    check_document("catalog-list", &["catalog", "list", "--json"], &[0]);
    check_document(
        "catalog-verify",
        &["catalog", "verify", smol, "--json"],
        &[0],
    );
    check_document(
        "run",
        &[
            "run",
            "--model",
            smol,
            "--ctx",
            "1024",
            "--prompt",
            "Hi",
            "--max-tokens",
            "4",
            "--temp",
            "0",
            "--accept-degraded",
            "--json",
        ],
        &[0],
    );
}
