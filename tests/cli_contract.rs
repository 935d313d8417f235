//! The command-line contract through the binary: pipes, signals, environment variables,
//! numbers that need units, one report on one stream, output that fits an 80-column terminal,
//! help for every flag, `--version`, completions. No model engine runs here: catalog models
//! and described machines keep every case fast and independent of the real models.

mod common;

use serde::Deserialize;
use std::io::Read;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_layerfit");

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(BIN, args)
}

fn layerfit_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    common::isolate(&mut c);
    c.args(args)
        .env_remove("LAYERFIT_HARDWARE")
        .env_remove("LAYERFIT_SOFTWARE_GPU")
        .env_remove("GGML_VK_VISIBLE_DEVICES")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A described machine file.
fn machine_file(tag: &str, yaml: &str) -> String {
    let p = common::tempdir("contract").join(format!("{tag}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

/// `cmd | head -c N`: the reader closes the pipe early; layerfit must end quietly with 0.
fn closed_pipe(args: &[&str]) -> (i32, String) {
    let mut child = common::isolate(&mut Command::new(BIN))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("LAYERFIT_HARDWARE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    let _ = out.read(&mut first).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    for args in [
        &["catalog", "list"][..],
        &["catalog", "list", "--json"],
        &["hardware", "--no-gpu"],
        &["profiles"],
        &["completions", "bash"],
        &["--help"],
    ] {
        let (code, err) = closed_pipe(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// `check-requirements | head -1` (and `plan`): the reader stops early, and the exit code is
/// still the verdict's, as without the pipe (a degraded answer is 10, never 0). Through a real
/// shell pipeline with `pipefail`: `head -1`, and `true`, which closes the pipe before
/// layerfit has planned, so that every write meets a closed pipe.
#[test]
fn the_verdict_exit_code_survives_a_closed_pipe() {
    let model = "smollm2:135m-q4_1";
    let degraded = format!("{BIN} check-requirements --model {model} --no-gpu --ram 8G");
    let (alone, _, _) = layerfit(&[
        "check-requirements",
        "--model",
        model,
        "--no-gpu",
        "--ram",
        "8G",
    ]);
    assert_eq!(alone, 10);
    for line in [
        format!("{degraded} | head -1"),
        format!("{degraded} | true"),
        format!("{degraded} --json | head -c 10"),
        format!("{BIN} plan --model {model} --no-gpu --ram 8G | true"),
        format!("{BIN} plan --model {model} --no-gpu --ram 8G --emit llama-server | true"),
    ] {
        let out = common::isolate(&mut Command::new("bash"))
            .args(["-o", "pipefail", "-c", &line])
            .env("NO_COLOR", "1")
            .env_remove("LAYERFIT_HARDWARE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(10), "{line}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{line}: {err}"
        );
    }
}

/// SIGINT while a command waits (here: reading a machine description from a pipe that stays
/// open) ends it quietly with the documented 130.
#[test]
fn sigint_ends_with_130() {
    let child = common::isolate(&mut Command::new(BIN))
        .args(["hardware", "--hardware", "/dev/stdin"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid, which is not reaped yet (no reuse).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn every_documented_variable_accepts_the_documented_values() {
    let big = machine_file("env-big", "ram: 32G\n");
    let plan = |env: &[(&str, &str)]| {
        layerfit_env(&["plan", "--model", "smollm2:135m-q4_1", "--json"], env)
    };
    // LAYERFIT_HARDWARE: a path; empty is unset (the probe answers).
    let (code, out, err) = plan(&[("LAYERFIT_HARDWARE", &big)]);
    assert!(code == 0 || code == 10, "{err}");
    let doc: PlanDoc = serde_json::from_str(&out).unwrap();
    assert!(doc.plan.devices.iter().any(|d| d.budget_bytes > 0));
    let (code, _, err) = plan(&[("LAYERFIT_HARDWARE", "")]);
    assert!(
        code == 0 || code == 10,
        "empty LAYERFIT_HARDWARE is unset: {err}"
    );
    // LAYERFIT_SOFTWARE_GPU and LAYERFIT_ENGINE_LOG: switches.
    for var in ["LAYERFIT_SOFTWARE_GPU", "LAYERFIT_ENGINE_LOG"] {
        for v in [
            "1", "true", "yes", "0", "false", "", "TRUE", "no", "on", "off",
        ] {
            let (code, _, err) = plan(&[(var, v), ("LAYERFIT_HARDWARE", &big)]);
            assert!(code == 0 || code == 10, "{var}={v:?}: {err}");
        }
        let (code, _, err) = plan(&[(var, "maybe")]);
        assert_eq!(code, 2, "{var}=maybe: {err}");
        assert!(err.contains(var) && err.contains("maybe"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // LAYERFIT_MODELS: a folder that must exist; empty is unset.
    let (code, _, err) = plan(&[("LAYERFIT_MODELS", ""), ("LAYERFIT_HARDWARE", &big)]);
    assert!(code == 0 || code == 10, "{err}");
    let (code, _, err) = plan(&[("LAYERFIT_MODELS", "/nonexistent/models")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("LAYERFIT_MODELS") && err.contains("/nonexistent/models"),
        "{err}"
    );
    // NO_COLOR: any value turns colour off (the pipe has none anyway); never an error.
    for v in ["1", "", "0", "anything"] {
        let (code, _, err) = plan(&[("NO_COLOR", v), ("LAYERFIT_HARDWARE", &big)]);
        assert!(code == 0 || code == 10, "NO_COLOR={v:?}: {err}");
    }
}

/// The plan document, typed: a renamed field breaks this test instead of reading null.
#[derive(Deserialize)]
struct PlanDoc {
    schema_version: u32,
    model: String,
    plan: Plan,
}

#[derive(Deserialize)]
struct Plan {
    verdict: String,
    context: u64,
    devices: Vec<Device>,
}

#[derive(Deserialize)]
struct Device {
    device: String,
    budget_bytes: u64,
}

#[test]
fn sizes_need_a_unit_and_meaningless_values_are_refused_by_layerfit() {
    let cases: &[(&[&str], &str)] = &[
        (&["--ram", "16"], "16: add a unit, e.g. 16G"),
        (&["--vram", "8"], "8: add a unit, e.g. 8G"),
        (&["--vram", "0"], "zero"),
        (&["--ram", "0G"], "zero"),
        (&["--ram", "-4G"], "negative"),
        (&["--ctx", "-5"], "negative"),
        (&["--ctx", "0"], "out of range"),
        (&["--reserve", "1"], "add a unit"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["plan", "--model", "smollm2:135m-q4_1"];
        args.extend_from_slice(flags);
        let (code, out, err) = layerfit(&args);
        assert_eq!(code, 2, "{flags:?}: {out}{err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{flags:?}: {err}");
    }
    let yaml = machine_file("unitless", "ram: 32\n");
    let (code, _, err) = layerfit(&["plan", "--model", "smollm2:135m-q4_1", "--hardware", &yaml]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("32: add a unit, e.g. 32G"), "{err}");
    let yaml = machine_file("zero-cores", "ram: 8G\ncpu: {cores: 0}\n");
    let (code, _, err) = layerfit(&["hardware", "--hardware", &yaml]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cores"), "{err}");
    for (flag, value, expected) in [
        ("--threads", "0", "0"),
        ("--temp", "nan", "not a usable temperature"),
        ("--temp", "inf", "not a usable temperature"),
        ("--temp", "-1", "not a usable temperature"),
        ("--max-tokens", "0", "0"),
    ] {
        let (code, _, err) = layerfit(&["run", "--model", "smollm2:135m-q4_1", flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
    let (code, _, err) = layerfit(&[
        "plan",
        "--model",
        "smollm2:135m-q4_1",
        "--models-dir",
        "/nonexistent/dir",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--models-dir /nonexistent/dir: no such folder"),
        "{err}"
    );
}

/// The whole answer goes to stdout: redirecting it to a file keeps the verdict, the warnings,
/// the tips and what is missing; stderr holds only notes.
#[test]
fn check_requirements_report_is_one_stream() {
    // 512 MB: not even the KV cache and buffers fit in what the OS leaves (384 MiB); 1 GB
    // (768 MiB) would run it from disk, degraded.
    let small = machine_file("small", "ram: 512M\n");
    let (code, out, err) = layerfit(&[
        "check-requirements",
        "--model",
        "qwen2.5-coder:7b-q4_k_m",
        "--hardware",
        &small,
    ]);
    assert_eq!(code, 20, "{out}{err}");
    assert!(out.contains("verdict: INCOMPATIBLE"), "{out}");
    assert!(out.contains("missing: "), "{out}");
    for line in err.lines() {
        assert!(
            line.starts_with("note: "),
            "stderr carries only notes here: {line}"
        );
    }
    let degraded = machine_file("cpu-only", "ram: 32G\n");
    let (code, out, err) = layerfit(&[
        "check-requirements",
        "--model",
        "smollm2:135m-q4_1",
        "--hardware",
        &degraded,
        "--yes",
    ]);
    assert_eq!(code, 10, "{out}{err}");
    assert!(out.contains("warning: no GPU"), "{out}");
    assert!(!err.contains("warning:"), "{err}");
}

/// Runs a command under a pseudo-terminal of `cols` columns (Python's pty module sets the
/// window size on the terminal before the program starts) and returns what it showed.
fn on_terminal(cols: u16, args: &[&str]) -> String {
    let script = r#"
import os, pty, sys, fcntl, termios, struct
cols = int(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 40, cols, 0, 0))
    os.environ['NO_COLOR'] = '1'
    os.environ.pop('LAYERFIT_HARDWARE', None)
    os.execv(argv[0], argv)
out = b''
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .arg(cols.to_string())
        .arg(BIN)
        .args(args);
    let out = cmd.output().expect("python3 runs the pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn assert_fits(text: &str, cols: usize, what: &str) {
    for line in text.lines() {
        let width = line.chars().count();
        assert!(width <= cols, "{what}: {width} columns: {line:?}\n{text}");
    }
    // A number never ends a line when its unit starts the next one.
    let lines: Vec<&str> = text.lines().collect();
    for w in lines.windows(2) {
        let end = w[0].trim_end_matches(['│', '|', ' ']);
        let next = w[1].trim_start_matches(['│', '|', ' ']);
        let split = end.ends_with(|c: char| c.is_ascii_digit())
            && ["GiB", "MiB", "KiB", "B ", "tokens"]
                .iter()
                .any(|u| next.starts_with(u));
        assert!(
            !split,
            "{what}: a number and its unit parted:\n{}\n{}",
            w[0], w[1]
        );
    }
    // Nor is a unit itself cut ("762.49 M" / "iB"): no cell ends in a unit's first letters.
    for line in &lines {
        for cell in line.split(['│', '┆', '|']) {
            let c = cell.trim();
            let words: Vec<&str> = c.split(' ').collect();
            let cut = words.len() >= 2
                && words[words.len() - 2]
                    .chars()
                    .last()
                    .is_some_and(|ch| ch.is_ascii_digit())
                && ["G", "M", "K", "Gi", "Mi", "Ki", "t", "to", "tok"]
                    .contains(&words[words.len() - 1]);
            assert!(
                !cut && !c.starts_with("iB"),
                "{what}: a unit was cut: {line:?}"
            );
        }
    }
}

#[test]
fn output_fits_80_columns_on_a_terminal() {
    let machine = machine_file(
        "term",
        "ram: 16G\ngpus: [{name: RTX 3060}]\ncpu: {cores: 8, memory_bandwidth_gbps: 50}\n",
    );
    for args in [
        vec!["catalog", "list"],
        vec!["hardware", "--hardware", &machine],
        vec!["profiles"],
        vec![
            "check-requirements",
            "--model",
            "qwen2.5-coder:7b",
            "--hardware",
            &machine,
            "--yes",
        ],
        vec![
            "plan",
            "--model",
            "smollm2:135m-q4_1",
            "--hardware",
            &machine,
        ],
    ] {
        let shown = on_terminal(80, &args);
        assert!(shown.lines().count() > 2, "{args:?}: {shown}");
        assert_fits(&shown, 80, &args.join(" "));
    }
}

/// Piped, a table keeps whole rows: one line per catalog entry.
#[test]
fn piped_tables_keep_whole_rows() {
    let (code, out, _) = layerfit(&["catalog", "list"]);
    assert_eq!(code, 0);
    let rows = out.lines().filter(|l| l.starts_with("| ")).count();
    let (_, json, _) = layerfit(&["catalog", "list", "--json"]);
    #[derive(Deserialize)]
    struct Doc {
        entries: Vec<serde::de::IgnoredAny>,
    }
    let doc: Doc = serde_json::from_str(&json).unwrap();
    assert_eq!(rows, doc.entries.len() + 1, "header + one row each:\n{out}");
}

#[test]
fn every_flag_has_help_and_version_names_the_engine() {
    let (_, top, _) = layerfit(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 8, "{top}");
    let mut subcommands: Vec<Vec<String>> = commands.iter().map(|c| vec![c.clone()]).collect();
    subcommands.push(vec!["catalog".into(), "list".into()]);
    subcommands.push(vec!["catalog".into(), "verify".into()]);
    for sub in subcommands {
        let mut args: Vec<&str> = sub.iter().map(String::as_str).collect();
        args.push("--help");
        let (code, help, _) = layerfit(&args);
        assert_eq!(code, 0, "{sub:?}");
        let mut in_options = false;
        for line in help.lines() {
            // A default written in the doc comment and one added by clap read twice.
            assert!(
                line.matches("[default:").count() <= 1,
                "{sub:?}: default shown twice: {line:?}"
            );
            if line.starts_with("Options:") || line.starts_with("Arguments:") {
                in_options = true;
                continue;
            }
            if in_options && line.trim_start().starts_with('-') || line.starts_with("  <") {
                // "  --flag <V>  Help text": a flag line has its help on the same line
                // (short help) or the next (long help).
                let parts: Vec<&str> = line.trim().splitn(2, "  ").collect();
                let has_inline = parts.len() == 2 && !parts[1].trim().is_empty();
                assert!(
                    has_inline || line.trim().starts_with("-h, --help"),
                    "{sub:?}: no help text: {line:?}\n{help}"
                );
            }
        }
    }
    let (code, version, _) = layerfit(&["--version"]);
    assert_eq!(code, 0);
    assert!(version.contains("engine back-ends: cpu"), "{version}");
    assert!(
        version.contains("bundled llama.cpp: llama-cpp-sys-2 0.1."),
        "{version}"
    );
    assert!(!version.contains("unknown"), "{version}");
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef layerfit"),
        ("fish", "complete -c layerfit"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let (code, out, err) = layerfit(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}");
        assert!(out.contains("check-requirements"), "{shell}");
    }
    let (code, _, _) = layerfit(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn plan_json_is_typed_and_versioned() {
    let m = machine_file("typed", "ram: 16G\ngpus: [{name: RTX 3060}]\n");
    let (code, out, err) = layerfit(&[
        "plan",
        "--model",
        "qwen2.5-coder:7b-q4_k_m",
        "--hardware",
        &m,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: PlanDoc = serde_json::from_str(&out).unwrap();
    assert_eq!(doc.schema_version, 1);
    assert_eq!(doc.model, "qwen2.5-coder:7b-q4_k_m");
    assert_eq!(doc.plan.verdict, "compatible");
    assert_eq!(doc.plan.context, 32768);
    assert!(doc
        .plan
        .devices
        .iter()
        .any(|d| d.device.contains("RTX 3060")));
}

/// One core and one thread read "1 core", "1 thread", never "1 cores" or "1 threads".
#[test]
fn a_count_of_one_takes_the_singular() {
    let cases: [&[&str]; 2] = [
        &["hardware", "--cpu-cores", "1", "--ram", "8G", "--no-gpu"],
        &[
            "check-requirements",
            "--model",
            "smollm2:135m-q4_1",
            "--cpu-cores",
            "1",
            "--ram",
            "8G",
            "--no-gpu",
            "--threads",
            "1",
        ],
    ];
    for args in cases {
        let (_, out, err) = layerfit(args);
        assert!(
            out.contains("1 core") || out.contains("1 thread"),
            "{args:?}: {out}{err}"
        );
        for wrong in ["1 cores", "1 threads", "1 physical cores"] {
            assert!(!out.contains(wrong), "{args:?}: {wrong:?} in\n{out}");
        }
    }
    let (_, hw, _) = layerfit(cases[0]);
    let cpu = hw.lines().find(|l| l.contains("| CPU")).unwrap();
    assert!(cpu.contains("1 core / 1 thread"), "{cpu}");
    assert!(
        !cpu.trim_end_matches(['|', ' ']).ends_with(','),
        "dangling comma: {cpu}"
    );
}

/// Two `--gpu` flags naming one model describe a two-GPU machine: both GPUs stay, and their
/// rows are told apart by device number in `hardware` and in the plan's device table; the
/// JSON keeps both entries under the name the user gave.
#[test]
fn two_identical_gpus_are_two_numbered_rows() {
    let gpus = [
        "--gpu", "RTX 3060", "--gpu", "RTX 3060", "--gpu", "RTX 4090",
    ];
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| RTX"))
            .map(|l| l.split('|').nth(1).unwrap().trim().to_string())
            .collect()
    };
    let (code, hw, err) = layerfit(&[&["hardware", "--ram", "64G"][..], &gpus].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&hw),
        ["RTX 3060 #0", "RTX 3060 #1", "RTX 4090"],
        "{hw}"
    );
    let (code, json, err) =
        layerfit(&[&["hardware", "--ram", "64G", "--json"][..], &gpus].concat());
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(d["gpus"].as_array().unwrap().len(), 3, "{json}");
    for (i, name) in ["RTX 3060", "RTX 3060", "RTX 4090"].iter().enumerate() {
        assert_eq!(d["gpus"][i]["name"], *name, "{json}");
    }

    let plan = [
        "plan",
        "--model",
        "smollm2:135m-q4_1",
        "--ram",
        "16G",
        "--gpu",
        "RTX 3060",
        "--gpu",
        "RTX 3060",
    ];
    let (code, out, err) = layerfit(&plan);
    assert!(code == 0 || code == 10, "{err}");
    assert_eq!(rows(&out), ["RTX 3060 #0", "RTX 3060 #1"], "{out}");
    let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning:")).collect();
    let mut unique = warnings.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(warnings.len(), unique.len(), "a warning repeated:\n{out}");
}
