//! The hardware probe on this machine (checked against /proc/meminfo, cgroups and df), the
//! cgroup and sysfs parsers on fixture trees copied from real layouts, and what-if hardware
//! end to end through the binary.

mod common;

use layerfit::hardware::cgroup::{parse_v1_limit, parse_v2_max, read_limit};
use layerfit::hardware::gpu_table::{lookup, table};
use layerfit::hardware::probe::{probe, ProbeOptions};
use layerfit::hardware::ram::{ram_from, HostMemory};
use layerfit::hardware::{sysfs, Vendor};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn meminfo_kib(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ram_is_meminfo_or_the_cgroup_limit() {
    let s = probe(&ProbeOptions {
        bandwidth: false,
        adapters: false,
        ..ProbeOptions::default()
    });
    let host_total = meminfo_kib("MemTotal:") * 1024;
    match read_limit(Path::new("/sys/fs/cgroup")) {
        Some(l) if l.limit < host_total => {
            assert_eq!(s.ram.total_bytes.get(), l.limit);
            assert!(s.ram.limit_source.starts_with("cgroup"));
        }
        _ => {
            assert_eq!(s.ram.total_bytes.get(), host_total);
            assert_eq!(s.ram.limit_source, "host");
            let avail = meminfo_kib("MemAvailable:") * 1024;
            let diff = s.ram.available_bytes.get().abs_diff(avail);
            assert!(
                diff < 512 << 20,
                "available {} vs meminfo {avail}",
                s.ram.available_bytes
            );
        }
    }
}

#[test]
fn disk_free_is_what_df_says() {
    let dir = common::tempdir("disk");
    let s = probe(&ProbeOptions {
        bandwidth: false,
        adapters: false,
        models_dir: dir.clone(),
        ..ProbeOptions::default()
    });
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(&dir)
        .output()
        .unwrap();
    let df: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let d = s.disk.expect("disk found");
    // Other processes write while the test runs; both readings are taken within milliseconds.
    assert!(
        d.free_bytes.get().abs_diff(df) < 256 << 20,
        "probe {} vs df {df}",
        d.free_bytes
    );
}

#[test]
fn no_nvidia_driver_is_a_note_and_software_renderers_are_not_gpus() {
    let s = probe(&ProbeOptions {
        bandwidth: false,
        ..ProbeOptions::default()
    });
    for a in &s.adapters {
        if a.device_type == "cpu" {
            assert!(a.software, "{a:?}");
            assert!(
                !s.gpus.iter().any(|g| g.name == a.name),
                "software adapter {} counted as a GPU",
                a.name
            );
        }
    }
    if Path::new("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json").exists() {
        assert!(
            s.adapters
                .iter()
                .any(|a| a.name.contains("llvmpipe") && a.software),
            "{:?}",
            s.adapters
        );
    }
    if !Path::new("/dev/nvidiactl").exists() {
        assert!(s.gpus.iter().all(|g| g.vendor != Vendor::Nvidia));
        assert!(
            s.notes.iter().any(|n| n.contains("no NVIDIA driver")),
            "{:?}",
            s.notes
        );
    }
    if s.gpus.is_empty() {
        assert!(
            s.notes.iter().any(|n| n.contains("CPU-only")),
            "{:?}",
            s.notes
        );
    }
}

#[test]
fn cgroup_files_parse_as_the_kernel_writes_them() {
    assert_eq!(parse_v2_max("max\n"), None);
    assert_eq!(parse_v2_max("4294967296\n"), Some(4 << 30));
    assert_eq!(
        parse_v1_limit("9223372036854771712\n"),
        None,
        "v1 'unlimited'"
    );
    assert_eq!(parse_v1_limit("536870912\n"), Some(512 << 20));

    let v2 = common::tempdir("cg2");
    write(&v2, "memory.max", "4294967296\n");
    write(&v2, "memory.current", "1073741824\n");
    let l = read_limit(&v2).unwrap();
    assert_eq!(
        (l.limit, l.usage, l.source),
        (4 << 30, Some(1 << 30), "cgroup v2 memory.max")
    );

    let v1 = common::tempdir("cg1");
    write(&v1, "memory/memory.limit_in_bytes", "536870912\n");
    write(&v1, "memory/memory.usage_in_bytes", "104857600\n");
    let l = read_limit(&v1).unwrap();
    assert_eq!(l.source, "cgroup v1 memory.limit_in_bytes");

    let mut notes = Vec::new();
    let host = HostMemory {
        total: 16 << 30,
        available: 12 << 30,
        swap_total: 0,
    };
    let r = ram_from(host, Some(&l), &mut notes);
    assert_eq!(r.total_bytes.get(), 512 << 20);
    assert_eq!(r.available_bytes.get(), (512 << 20) - 104857600);
    assert!(notes[0].contains("container limit"));

    let unlimited = common::tempdir("cg-max");
    write(&unlimited, "memory.max", "max\n");
    assert_eq!(read_limit(&unlimited), None);
}

#[test]
fn sysfs_trees_of_amd_intel_and_apus() {
    let root = common::tempdir("sysfs");
    // A discrete AMD card (amdgpu, RX 7900 XTX-like), an AMD APU with a 512 MiB carve-out,
    // an Intel iGPU (i915: no VRAM files) and an NVIDIA card (left to NVML).
    write(&root, "class/drm/card0/device/vendor", "0x1002\n");
    write(&root, "class/drm/card0/device/device", "0x744c\n");
    write(
        &root,
        "class/drm/card0/device/mem_info_vram_total",
        "25753026560\n",
    );
    write(
        &root,
        "class/drm/card0/device/mem_info_vram_used",
        "1073741824\n",
    );
    write(
        &root,
        "class/drm/card0/device/mem_info_gtt_total",
        "33554432000\n",
    );
    write(&root, "class/drm/card1/device/vendor", "0x1002\n");
    write(&root, "class/drm/card1/device/device", "0x15bf\n");
    write(
        &root,
        "class/drm/card1/device/mem_info_vram_total",
        "536870912\n",
    );
    write(&root, "class/drm/card1/device/mem_info_vram_used", "0\n");
    write(
        &root,
        "class/drm/card1/device/mem_info_gtt_total",
        "16777216000\n",
    );
    write(&root, "class/drm/card2/device/vendor", "0x8086\n");
    write(&root, "class/drm/card2/device/device", "0x46a6\n");
    write(&root, "class/drm/card3/device/vendor", "0x10de\n");
    write(&root, "class/drm/card0-DP-1/status", "connected\n");
    let mut notes = Vec::new();
    let g = sysfs::probe(&root, &mut notes);
    assert_eq!(g.len(), 3, "{g:?}");
    assert_eq!(
        (
            g[0].vendor,
            g[0].vram_total_bytes.get(),
            g[0].vram_free_bytes.get()
        ),
        (Vendor::Amd, 25753026560, 25753026560 - (1 << 30))
    );
    assert!(!g[0].unified_memory);
    assert!(g[1].unified_memory, "APU carve-out is system RAM");
    assert!(notes
        .iter()
        .any(|n| n.contains("card1") && n.contains("system RAM")));
    assert_eq!(
        (
            g[2].vendor,
            g[2].unified_memory,
            g[2].vram_total_bytes.get()
        ),
        (Vendor::Intel, true, 0)
    );
}

#[test]
fn gpu_table_covers_the_seeds_gpus() {
    let t = table();
    for name in [
        "RTX 3060",
        "RTX 3080 Ti",
        "RTX 4060 Ti",
        "RTX 4080",
        "RTX 4090",
        "RTX 3090",
        "RTX 3090 Ti",
        "A6000",
        "A100",
    ] {
        let g = lookup(name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            g.vram_gib.is_some_and(|v| v > 0.0) && g.bandwidth_gbps.is_some_and(|b| b > 0.0),
            "{g:?}"
        );
        assert!(g.compute_capability.is_some(), "{name}: compute capability");
    }
    assert!(
        t.iter().any(|g| g.vendor == Vendor::Amd) && t.iter().any(|g| g.vendor == Vendor::Intel)
    );
    assert!(t
        .iter()
        .any(|g| g.vendor == Vendor::Apple && g.unified_memory));
    assert_eq!(lookup("NVIDIA GeForce RTX 4090").unwrap().name, "RTX 4090");
    assert_eq!(lookup("geforce rtx4090").unwrap().name, "RTX 4090");
}

fn hardware_json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_layerfit"));
    common::isolate(&mut c);
    c.arg("hardware")
        .args(args)
        .arg("--json")
        .env_remove("LAYERFIT_HARDWARE");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

#[test]
fn what_if_file_replaces_the_probe() {
    let dir = common::tempdir("whatif");
    let f = dir.join("box.yaml");
    std::fs::write(
        &f,
        "ram: 32G\ngpus:\n  - name: RTX 4090\n  - name: Some Accelerator\n    vram: 6G\n    bandwidth_gbps: 200\ncpu:\n  cores: 16\n  memory_bandwidth_gbps: 60\ndisk_free: 500G\n",
    )
    .unwrap();
    let (code, d, err) = hardware_json(&["--hardware", f.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d["ram"]["total_bytes"].as_u64(), Some(32 << 30));
    assert_eq!(d["ram"]["limit_source"], "described");
    assert_eq!(d["gpus"][0]["name"], "RTX 4090");
    assert_eq!(d["gpus"][0]["vram_total_bytes"].as_u64(), Some(24 << 30));
    assert_eq!(d["gpus"][0]["bandwidth_gbps"].as_f64(), Some(1008.0));
    assert_eq!(d["gpus"][0]["compute_capability"], "8.9");
    assert!(d["gpus"][0]["precision_class"]
        .as_str()
        .unwrap()
        .contains("fp8"));
    assert_eq!(d["gpus"][1]["vram_free_bytes"].as_u64(), Some(6 << 30));
    assert_eq!(d["cpu"]["physical_cores"].as_u64(), Some(16));
    assert_eq!(d["disk"]["free_bytes"].as_u64(), Some(500 << 30));

    // The environment variable the installer uses, amended by flags.
    let (code, d, err) = hardware_json(
        &["--vram", "12G", "--ram", "8G"],
        &[("LAYERFIT_HARDWARE", f.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(d["gpus"][0]["vram_total_bytes"].as_u64(), Some(12 << 30));
    assert_eq!(d["ram"]["total_bytes"].as_u64(), Some(8 << 30));
}

#[test]
fn what_if_flags_amend_the_probe() {
    let (code, d, err) = hardware_json(
        &[
            "--gpu",
            "RTX 3060",
            "--gpu",
            "rtx 4060 ti 16gb",
            "--ram",
            "16G",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let gpus = d["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[1]["name"], "RTX 4060 Ti 16GB");
    assert!(!d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().starts_with("no GPU")));

    let (code, d, _) = hardware_json(&["--vram", "8G", "--vram", "16G"], &[]);
    assert_eq!(code, 0);
    assert!(d["gpus"].as_array().unwrap().len() >= 2);

    let (code, d, _) = hardware_json(&["--no-gpu"], &[]);
    assert_eq!(code, 0);
    assert!(d["gpus"].as_array().unwrap().is_empty());

    let (code, _, err) = hardware_json(&["--gpu", "RTX 4090", "--no-gpu"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("contradict"), "{err}");
}

#[test]
fn bad_what_if_input_is_exit_2() {
    let (code, _, err) = hardware_json(&["--gpu", "Voodoo 5"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown GPU 'Voodoo 5'"), "{err}");
    let (code, _, _) = hardware_json(&["--ram", "lots"], &[]);
    assert_eq!(code, 2);
    let dir = common::tempdir("whatif-bad");
    let f = dir.join("bad.yaml");
    std::fs::write(&f, "ram: 16G\nvram_typo: 8G\n").unwrap();
    let (code, _, err) = hardware_json(&["--hardware", f.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    // One line names the file and the problem; the parser's detail follows as the cause.
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error: ")
            && first.contains("bad.yaml")
            && first.contains("not a machine description"),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.trim_start().starts_with("Caused by:") && l.contains("vram_typo")),
        "{err}"
    );
    let (code, _, err) = hardware_json(&["--hardware", "/nonexistent.yaml"], &[]);
    assert_eq!(code, 2, "{err}");
}

/// In the default (CPU) build the engine cannot run anything on a Vulkan device, so even
/// `--software-gpu` makes no GPU of lavapipe, and the note says why.
#[cfg(not(feature = "vulkan"))]
#[test]
fn software_gpu_opt_in_needs_a_vulkan_engine() {
    let s = probe(&ProbeOptions {
        bandwidth: false,
        software_gpu: true,
        ..ProbeOptions::default()
    });
    assert!(s.gpus.iter().all(|g| !g.software), "{:?}", s.gpus);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("--software-gpu") && n.contains("--features vulkan")),
        "{:?}",
        s.notes
    );
}
