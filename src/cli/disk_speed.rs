//! This machine's sequential read speed of the models disk, for weights paged from it (the
//! mmap route): a short read of a model file measured by `bench` and cached per mount point
//! next to the calibration (`$XDG_CACHE_HOME/layerfit/disk-<key>.json`).

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of a file a measurement reads.
const READ_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskSpeed {
    pub mount_point: String,
    pub file: String,
    pub bytes_read: u64,
    pub bytes_per_s: f64,
    pub measured_at: u64,
}

fn path(mount_point: &str) -> PathBuf {
    let h = super::calibration::hash(mount_point);
    crate::hardware::probe::ProbeOptions::default()
        .cache_dir
        .join(format!("disk-{h:016x}.json"))
}

/// The cached speed of the disk at `mount_point`.
pub fn load(mount_point: &str) -> Option<DiskSpeed> {
    let d: DiskSpeed = serde_json::from_slice(&std::fs::read(path(mount_point)).ok()?).ok()?;
    (d.mount_point == mount_point && d.bytes_per_s.is_finite() && d.bytes_per_s > 0.0).then_some(d)
}

/// Reads up to 256 MiB of the largest GGUF file in `models_dir` from the disk (its cached
/// pages dropped first, so the page cache does not answer), caches and returns the speed;
/// `None` when there is no file to read or the read fails.
pub fn measure(models_dir: &Path, mount_point: &str) -> Option<DiskSpeed> {
    let file = std::fs::read_dir(models_dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "gguf"))
        .filter_map(|e| Some((e.metadata().ok()?.len(), e.path())))
        .max()?
        .1;
    let mut f = std::fs::File::open(&file).ok()?;
    drop_cached_pages(&f);
    let mut buf = vec![0u8; 4 << 20];
    let start = std::time::Instant::now();
    let mut read = 0u64;
    while read < READ_BYTES {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    if read < (16 << 20) || secs <= 0.0 {
        return None;
    }
    let d = DiskSpeed {
        mount_point: mount_point.to_string(),
        file: file.display().to_string(),
        bytes_read: read,
        bytes_per_s: read as f64 / secs,
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let p = path(mount_point);
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&p, serde_json::to_vec_pretty(&d).unwrap_or_default());
    Some(d)
}

#[cfg(target_os = "linux")]
fn drop_cached_pages(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only advises the kernel about its pages.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn drop_cached_pages(_: &std::fs::File) {}
