//! System RAM from `sysinfo`, capped by a container limit when one applies.

use super::cgroup::Limit;
use super::Ram;
use crate::bytes::Bytes;

/// Host figures as `sysinfo` reports them.
#[derive(Clone, Copy, Debug)]
pub struct HostMemory {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
}

/// The machine's RAM as a process here sees it: the host's figures capped by the container's
/// cgroup limit. The one reader for the probe and for `run`'s memory monitor, so a 2 GiB
/// container is a 2 GiB machine everywhere (bottom's `get_ram_usage` does the same).
pub fn read(cgroup_root: &std::path::Path, notes: &mut Vec<String>) -> Ram {
    let limit = super::cgroup::read_limit(cgroup_root);
    let host = host_memory().unwrap_or_else(|e| {
        notes.push(format!("RAM could not be read ({e}); reported as 0"));
        HostMemory {
            total: 0,
            available: 0,
            swap_total: 0,
        }
    });
    ram_from(host, limit.as_ref(), notes)
}

/// The default cgroup filesystem root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why the platform gives no memory figures.
#[derive(Debug, thiserror::Error)]
#[error("the platform reports no memory figures: {0}")]
pub struct NoMemoryFigures(String);

/// Host figures, or why there are none.
pub fn host_memory() -> Result<HostMemory, NoMemoryFigures> {
    let mut sys = sysinfo::System::new().map_err(|e| NoMemoryFigures(e.to_string()))?;
    sys.refresh_memory();
    Ok(HostMemory {
        total: sys.total_memory(),
        available: sys.available_memory(),
        swap_total: sys.total_swap(),
    })
}

/// Combines host memory with a cgroup limit (pure, for tests): the limit caps the total and
/// the available memory is what the limit leaves above current usage.
pub fn ram_from(host: HostMemory, limit: Option<&Limit>, notes: &mut Vec<String>) -> Ram {
    match limit {
        Some(l) if l.limit < host.total => {
            let avail = l
                .limit
                .saturating_sub(l.usage.unwrap_or(0))
                .min(host.available);
            notes.push(format!(
                "RAM capped by the container limit ({}): {} of the host's {}",
                l.source,
                Bytes(l.limit),
                Bytes(host.total)
            ));
            Ram {
                total_bytes: Bytes(l.limit),
                available_bytes: Bytes(avail),
                swap_total_bytes: Bytes(host.swap_total),
                limit_source: l.source.to_string(),
            }
        }
        _ => Ram {
            total_bytes: Bytes(host.total),
            available_bytes: Bytes(host.available),
            swap_total_bytes: Bytes(host.swap_total),
            limit_source: "host".to_string(),
        },
    }
}
