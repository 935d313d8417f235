//! The server's log: one line on stderr per note or alert, quiet when stderr is closed (a
//! server must not fail because its log went away).

use std::io::Write;

/// Writes one line to the log.
pub fn line(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}
