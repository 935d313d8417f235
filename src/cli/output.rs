//! How layerfit talks to people: `error:`/`warning:`/`note:` lines on stderr, coloured only
//! on a terminal and never when `NO_COLOR` is set; tables through comfy-table.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use std::io::IsTerminal;

fn colour(stream_is_tty: bool) -> bool {
    stream_is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn line(label: &str, code: &str, msg: &str) {
    if colour(std::io::stderr().is_terminal()) {
        eprintln!("\x1b[{code}m{label}:\x1b[0m {msg}");
    } else {
        eprintln!("{label}: {msg}");
    }
}

pub fn error(msg: &str) {
    line("error", "1;31", msg);
}

pub fn warning(msg: &str) {
    line("warning", "1;33", msg);
}

/// A table for people: UTF-8 borders on a terminal, plain ASCII when piped.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    if std::io::stdout().is_terminal() {
        t.load_preset(UTF8_FULL_CONDENSED);
    } else {
        t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    }
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(header.iter().copied());
    t
}

/// Prints a serialize-only document as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(doc: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

pub fn note(msg: &str) {
    line("note", "1;36", msg);
}
