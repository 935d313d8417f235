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

/// `None` (with the reason) when the platform gives no memory figures.
pub fn host_memory() -> Result<HostMemory, String> {
    let mut sys = sysinfo::System::new().map_err(|e| e.to_string())?;
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
