//! Container memory limits. A process in a container sees the host's RAM in `/proc/meminfo`
//! but is killed at its cgroup limit, so the limit caps what layerfit reports.

use std::path::Path;

/// A limit in force: bytes, current usage, and which file said so.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub limit: u64,
    pub usage: Option<u64>,
    pub source: &'static str,
}

/// cgroup v2 `memory.max`: a number, or `max` for none.
pub fn parse_v2_max(s: &str) -> Option<u64> {
    let t = s.trim();
    if t == "max" {
        return None;
    }
    t.parse().ok()
}

/// cgroup v1 `memory.limit_in_bytes`: "no limit" is a page-rounded `i64::MAX`
/// (9223372036854771712), anything at or above 2^62 means unlimited.
pub fn parse_v1_limit(s: &str) -> Option<u64> {
    let v: u64 = s.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

/// Reads the limit under a cgroup filesystem root (normally `/sys/fs/cgroup`).
pub fn read_limit(root: &Path) -> Option<Limit> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    if let Some(limit) = read("memory.max").as_deref().and_then(parse_v2_max) {
        return Some(Limit {
            limit,
            usage: read("memory.current").and_then(|s| s.trim().parse().ok()),
            source: "cgroup v2 memory.max",
        });
    }
    if let Some(limit) = read("memory/memory.limit_in_bytes")
        .as_deref()
        .and_then(parse_v1_limit)
    {
        return Some(Limit {
            limit,
            usage: read("memory/memory.usage_in_bytes").and_then(|s| s.trim().parse().ok()),
            source: "cgroup v1 memory.limit_in_bytes",
        });
    }
    None
}
