//! Free space on the filesystem that holds a path (the models folder, the install target).

use super::Disk;
use crate::bytes::Bytes;
use std::path::Path;

/// The mount with the longest prefix of `path` (the nearest existing ancestor is resolved).
pub fn probe(path: &Path, notes: &mut Vec<String>) -> Option<Disk> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            break;
        }
    }
    let canonical = std::fs::canonicalize(&p).unwrap_or(p);
    let disks = match sysinfo::Disks::new_with_refreshed_list() {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!("disks could not be listed: {e}"));
            return None;
        }
    };
    let best = disks
        .iter()
        .filter(|d| canonical.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len());
    match best {
        Some(d) => Some(Disk {
            path: path.display().to_string(),
            mount_point: d.mount_point().display().to_string(),
            free_bytes: Bytes(d.available_space()),
            total_bytes: Bytes(d.total_space()),
        }),
        None => {
            notes.push(format!(
                "no mounted filesystem found for {}",
                path.display()
            ));
            None
        }
    }
}
