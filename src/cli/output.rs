//! How layerfit talks: one [`Printer`] per command for the answer on stdout (lines, tables,
//! warnings, tips, or one JSON document), and `error:`/`note:` lines on stderr for what is not
//! part of the answer (errors, progress, probe notes).
//!
//! Why one place: a closed stdout (`layerfit catalog list | head -2`) must end the command
//! quietly with exit 0, as ripgrep does, instead of panicking in `println!`; lines and tables
//! must fit the terminal, wrapping at spaces and never between a number and its unit; piped
//! output keeps whole rows; colours follow `NO_COLOR`.

use comfy_table::{
    presets::UTF8_FULL_CONDENSED, ColumnConstraint, ContentArrangement, Table, Width,
};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

/// The version of every JSON document's layout (`schema_version` at the top level).
pub const SCHEMA_VERSION: u32 = 1;

/// A no-break space: glues a number to its unit so that wrapping never parts them (a
/// command may also glue words it wants kept together). Printed as a plain space.
pub const GLUE: char = '\u{a0}';

fn colour(stream_is_tty: bool) -> bool {
    stream_is_tty && !crate::env_vars::no_color()
}

/// The exit code a closed stdout ends the command with: success, until the command knows its
/// answer (a verdict) and says so with [`answer_code`].
static CLOSED_STDOUT_CODE: AtomicU8 = AtomicU8::new(super::exit::OK);

/// From now on a closed stdout ends the command with `code`: the verdict's exit code holds
/// when the reader stops early (`layerfit check-requirements | head -1` exits 10 on a
/// degraded answer, as without the pipe).
pub fn answer_code(code: u8) {
    CLOSED_STDOUT_CODE.store(code, Ordering::Relaxed);
}

/// Writes to stdout; a closed pipe ends the process quietly (the reader has what it wanted)
/// with the answer's code, exit 0 before there is one; any other write error with exit 1.
fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(CLOSED_STDOUT_CODE.load(Ordering::Relaxed)));
        }
        let _ = writeln!(std::io::stderr(), "error: writing the output: {e}");
        std::process::exit(i32::from(super::exit::INTERNAL));
    }
}

fn write_stderr(text: &str) {
    // A closed stderr leaves nobody to tell: ignore the error rather than panic.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The terminal's width in columns when `fd` is a terminal.
fn terminal_width(fd: libc::c_int) -> Option<usize> {
    // SAFETY: `winsize` is plain integers: all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize; the pointer is to a live, zeroed struct.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// Glues every number to the unit word after it ("23.36 GiB", "32768 tokens") with a no-break
/// space, so that wrapping happens only between such pairs.
pub fn glue_units(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let after_digit = i > 0 && chars[i - 1].is_ascii_digit();
        let before_word = chars
            .get(i + 1)
            .is_some_and(|n| n.is_alphabetic() || *n == '%');
        out.push(if c == ' ' && after_digit && before_word {
            GLUE
        } else {
            c
        });
    }
    out
}

/// A count and its noun, plural unless the count is 1: `count(1, "thread")` is "1 thread".
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Row labels that tell equal names apart: two GPUs of one model (two `--gpu "RTX 3060"`,
/// or two identical cards probed) are a real two-GPU machine, so both rows stay, numbered in
/// device order as llama.cpp numbers its devices: "RTX 3060 #0", "RTX 3060 #1". Unique names
/// are kept as they are.
pub fn distinct_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    names
        .iter()
        .map(|&n| {
            if names.iter().filter(|&&m| m == n).count() == 1 {
                return n.to_string();
            }
            let i = seen.entry(n).or_insert(0);
            *i += 1;
            format!("{n} #{}", *i - 1)
        })
        .collect()
}

/// Wraps a line at spaces to `width` columns; continuation lines are indented by `indent`.
/// A word longer than the width stays whole on its own line.
pub fn wrap(line: &str, width: usize, indent: usize) -> String {
    let glued = glue_units(line);
    let mut out = String::new();
    let mut current = String::new();
    let mut current_len = 0;
    for word in glued.split(' ') {
        let len = word.chars().count();
        if current_len > 0 && current_len + 1 + len > width {
            out.push_str(current.trim_end());
            out.push('\n');
            current = " ".repeat(indent);
            current_len = indent;
        } else if current_len > 0 && !(current_len == indent && current.trim().is_empty()) {
            current.push(' ');
            current_len += 1;
        }
        current.push_str(word);
        current_len += len;
    }
    out.push_str(current.trim_end());
    out.replace(GLUE, " ")
}

/// The answer of one command, for people or as JSON.
pub struct Printer {
    json: bool,
    tty: bool,
    width: Option<usize>,
    colour: bool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        Printer {
            json,
            tty,
            width: if tty { terminal_width(1) } else { None },
            colour: colour(tty),
        }
    }

    /// Stdout is a terminal (block characters and colour may be used).
    pub fn is_terminal(&self) -> bool {
        self.tty
    }

    /// A line of the report, wrapped to the terminal (continuations indented by two). In JSON
    /// mode stdout carries only the document, so report lines go to stderr.
    pub fn line(&self, text: &str) {
        if self.json {
            write_stderr(&format!("{text}\n"));
            return;
        }
        let body = match self.width {
            Some(w) => text
                .split('\n')
                .map(|l| wrap(l, w, 2))
                .collect::<Vec<_>>()
                .join("\n"),
            None => text.to_string(),
        };
        write_stdout(&format!("{body}\n"));
    }

    fn labelled(&self, label: &str, code: &str, text: &str) {
        if self.json {
            write_stderr(&format!("{label}: {text}\n"));
            return;
        }
        write_stdout(&labelled_line(label, code, text, self.width, self.colour));
    }

    /// A warning that is part of the answer (a degradation, a drift).
    pub fn warning(&self, text: &str) {
        self.labelled("warning", "1;33", text);
    }

    /// Advice that follows from the figures.
    pub fn tip(&self, text: &str) {
        self.labelled("tip", "1;32", text);
    }

    /// A remark that is part of the answer (about the model or the plan).
    pub fn note(&self, text: &str) {
        self.labelled("note", "1;36", text);
    }

    /// What is missing for the request to be met (part of an INCOMPATIBLE answer).
    pub fn missing(&self, text: &str) {
        self.labelled("missing", "1;31", text);
    }

    /// Text exactly as given, no newline added, flushed (a streamed answer).
    pub fn raw(&self, text: &str) {
        write_stdout(text);
    }

    /// A table for people: UTF-8 borders and the terminal's width on a terminal (cells wrap at
    /// spaces, numbers stay with their units), plain ASCII rows that never wrap when piped.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        if self.tty {
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_content_arrangement(ContentArrangement::Dynamic);
            if let Some(w) = self.width {
                t.set_width(u16::try_from(w).unwrap_or(u16::MAX));
            }
        } else {
            t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
        t.set_header(header.iter().copied());
        t
    }

    /// Adds a row; on a terminal numbers are glued to their units.
    pub fn row(&self, table: &mut Table, cells: Vec<String>) {
        let cells: Vec<String> = if self.tty {
            cells.iter().map(|c| glue_units(c)).collect()
        } else {
            cells
        };
        table.add_row(cells);
    }

    /// Prints a table. On a terminal no column is narrower than its longest unbreakable word
    /// (a number with its unit), so cells wrap only at spaces.
    pub fn print_table(&self, table: Table) {
        let text = self.render_table(table);
        write_stdout(&format!("{text}\n"));
    }

    fn render_table(&self, mut table: Table) -> String {
        if self.tty {
            let widths: Vec<u16> = table
                .column_iter()
                .map(|c| c.index)
                .map(|i| {
                    table
                        .column_cells_iter(i)
                        .flatten()
                        .flat_map(|cell| {
                            cell.content()
                                .split([' ', '\n'])
                                .map(|w| w.chars().count())
                                .collect::<Vec<_>>()
                        })
                        .max()
                        .unwrap_or(1)
                        .min(24) as u16
                })
                .collect();
            for (i, w) in widths.into_iter().enumerate() {
                if let Some(col) = table.column_mut(i) {
                    // comfy-table's boundaries include the cell padding.
                    let with_padding = w + col.padding_width();
                    col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(with_padding)));
                }
            }
        }
        table.to_string().replace(GLUE, " ")
    }

    /// Prints one JSON document with `schema_version` at the top level.
    pub fn json<T: serde::Serialize>(&self, doc: &T) -> anyhow::Result<()> {
        let mut value = serde_json::to_value(doc)?;
        let map = value
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("a JSON document must be an object"))?;
        let mut with_version = serde_json::Map::new();
        with_version.insert("schema_version".into(), SCHEMA_VERSION.into());
        with_version.append(map);
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(with_version))?;
        write_stdout(&format!("{text}\n"));
        Ok(())
    }
}

/// A labelled line on stderr, wrapped to the terminal when stderr is one.
fn line(label: &str, code: &str, msg: &str) {
    let tty = std::io::stderr().is_terminal();
    let width = terminal_width(2).filter(|_| tty);
    write_stderr(&labelled_line(label, code, msg, width, colour(tty)));
}

/// `label: text`, wrapped to `width` with continuations under the text, the label coloured.
fn labelled_line(
    label: &str,
    code: &str,
    text: &str,
    width: Option<usize>,
    colour: bool,
) -> String {
    let plain = format!("{label}: {text}");
    let wrapped = match width {
        Some(w) => wrap(&plain, w, label.len() + 2),
        None => plain,
    };
    if colour {
        format!("\x1b[{code}m{label}\x1b[0m{}\n", &wrapped[label.len()..])
    } else {
        format!("{wrapped}\n")
    }
}

/// An error on stderr, with its causes and a hint (uv and cargo's layout).
pub fn error_chain(msg: &str, causes: &[String], hint: Option<&str>) {
    line("error", "1;31", msg);
    for c in causes {
        write_stderr(&format!("  Caused by: {c}\n"));
    }
    if let Some(h) = hint {
        line("hint", "1;36", h);
    }
}

pub fn error(msg: &str) {
    error_chain(msg, &[], None);
}

/// A warning outside the answer (stderr): progress-time events such as memory alerts.
pub fn warning(msg: &str) {
    line("warning", "1;33", msg);
}

/// A note on stderr: progress, probe notes, what layerfit did on the way.
pub fn note(msg: &str) {
    line("note", "1;36", msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_stay_with_numbers() {
        let w = wrap(
            "model uses 23.36 GiB of 24.00 GiB usable at 32768 tokens",
            20,
            2,
        );
        for l in w.lines() {
            assert!(l.chars().count() <= 20, "{l:?}");
            assert!(!l.trim_end().ends_with(|c: char| c.is_ascii_digit()), "{w}");
        }
        assert!(w.contains("23.36 GiB"), "{w}");
    }

    /// A table on an 80-column terminal: glued words (a number and its unit, a variant and
    /// its size) never break, even in a column narrower than the average.
    #[test]
    fn table_cells_keep_glued_words_whole() {
        let p = Printer {
            json: false,
            tty: true,
            width: Some(80),
            colour: false,
        };
        let mut t = p.table(&[
            "model",
            "arch",
            "blocks",
            "trained ctx",
            "variants (weights)",
        ]);
        let variants =
            "f16 1.86 GiB, q8_0 1013.54 MiB, q6_k 958.64 MiB, q5_k_m 805.68 MiB, q4_k_m 762.49 MiB";
        let glued = variants
            .split(", ")
            .map(|v| v.replacen(' ', "\u{a0}", 1))
            .collect::<Vec<_>>()
            .join(", ");
        p.row(
            &mut t,
            vec![
                "qwen2.5-coder:7b".into(),
                "qwen2".into(),
                "28".into(),
                "32768".into(),
                glued,
            ],
        );
        let text = p.render_table(t);
        eprintln!("{text}");
        for l in text.lines() {
            assert!(l.chars().count() <= 80, "{l}");
        }
        for v in variants.split(", ") {
            assert!(text.contains(v), "{v} broken:\n{text}");
        }
    }

    #[test]
    fn long_words_stay_whole_and_short_lines_untouched() {
        assert_eq!(wrap("short line", 80, 2), "short line");
        let w = wrap("a /very/long/path/that/does/not/fit here", 10, 2);
        assert!(
            w.lines()
                .any(|l| l == "  /very/long/path/that/does/not/fit"),
            "{w}"
        );
    }
}
