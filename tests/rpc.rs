//! Several machines over llama.cpp's RPC back-end, on one machine: two real
//! `layerfit rpc-server` processes on 127.0.0.1, each offering little memory (`--memory`, the
//! figure the server reports for its CPU device) so that the model is split three ways:
//! the first blocks on the local CPU, the next on RPC0, the last and the output on RPC1.
//! Then plan vs what llama.cpp allocates on every device, the answer against the local
//! one, a server killed mid-answer, hostile servers, and a cluster described in YAML.

mod common;

use common::rpc::{fake, free_port, Fake, Server};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

/// A layerfit process with its output piped, in the tests' private cache.
fn spawn(args: &[&str]) -> std::process::Child {
    common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two servers offering `a` and `b`, and their `--rpc` list.
fn two_servers(a: &str, b: &str) -> ([Server; 2], String) {
    let servers = [Server::start(a), Server::start(b)];
    let rpc = format!("{},{}", servers[0].endpoint(), servers[1].endpoint());
    (servers, rpc)
}

fn json(args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = layerfit(args);
    let d = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, d, err)
}

/// One model split over the CPU and two servers: (model, offers, -ngl, extra run flags).
fn split_three_ways(model: &std::path::Path, offers: [&str; 2], ngl: &str, extra: &[&str]) {
    let (servers, rpc) = two_servers(offers[0], offers[1]);
    let m = model.to_str().unwrap();
    let base = ["--model", m, "--ctx", "4096", "--kv", "f16"];

    let (code, plan, err) =
        json(&[&["plan", "--json", "--rpc", &rpc, "--ngl", ngl][..], &base].concat());
    assert!(code == 0 || code == 10, "{err}");
    let p = &plan["plan"];
    assert_eq!(
        p["rpc"],
        serde_json::json!([servers[0].endpoint(), servers[1].endpoint()])
    );
    let devices = p["devices"].as_array().unwrap();
    let names: Vec<&str> = devices
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["RPC0", "RPC1", "CPU"]);
    for d in devices {
        assert!(d["weights_bytes"].as_u64().unwrap() > 0, "{d}");
        assert!(
            d["total_bytes"].as_u64() <= d["budget_bytes"].as_u64(),
            "{d}"
        );
    }
    assert!(p["cpu_blocks"].as_u64().unwrap() > 0);
    let share = p["speed"]["network_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{share}");

    let prompt = [
        "--prompt",
        "Name three colours.",
        "--temp",
        "0",
        "--max-tokens",
        "24",
    ];
    let args: Vec<&str> = [
        &[
            "run",
            "--json",
            "--accept-degraded",
            "--rpc",
            &rpc,
            "--ngl",
            ngl,
        ][..],
        &base,
        &prompt,
        extra,
    ]
    .concat();
    let (code, split, err) = json(&args);
    assert_eq!(code, 0, "{err}");
    let checks = split["self_check"].as_array().unwrap();
    assert_eq!(checks.len(), 9, "{checks:?}");
    for c in checks {
        // Weights and KV cache to the byte on every device; compute within 5% or 16 MiB.
        assert_eq!(c["within_5_percent"], true, "{c}");
        if c["what"] != "compute" {
            assert_eq!(c["planned"], c["allocated"], "{c}");
        }
        assert!(
            c["allocated"].as_u64().unwrap() > 0 || c["what"] == "KV cache",
            "{c}"
        );
    }

    // The same answer at temperature 0 as on this machine alone. llama.cpp repacks Q4_K
    // weights in host memory only (CPU_REPACK), and the repacked kernels round differently
    // from the servers' plain ones, so both runs keep the file's layout (llama.cpp's
    // --no-repack) through run files.
    let answer = |plan_flags: &[&str]| -> String {
        let (code, out, err) =
            layerfit(&[&["plan", "--emit", "profile"][..], plan_flags, &base].concat());
        assert!(code == 0 || code == 10, "{err}");
        assert!(out.contains("no_repack: false"), "{out}");
        let file = common::tempdir("rpc-runfile").join(format!("{}.yaml", plan_flags.len()));
        std::fs::write(&file, out.replace("no_repack: false", "no_repack: true")).unwrap();
        let f = file.to_str().unwrap();
        let (code, d, err) = json(
            &[
                &["run", "--json", "--accept-degraded", "--plan", f][..],
                &prompt,
                extra,
            ]
            .concat(),
        );
        assert_eq!(code, 0, "{err}");
        d["answer"].as_str().unwrap().to_string()
    };
    let split = answer(&["--rpc", &rpc, "--ngl", ngl]);
    let local = answer(&["--ngl", "0"]);
    assert!(!local.trim().is_empty());
    assert_eq!(split, local, "greedy answers differ");
}

#[test]
fn smollm2_split_over_the_cpu_and_two_servers_allocates_what_the_plan_says() {
    split_three_ways(&common::smollm2(), ["80M", "160M"], "11", &[]);
}

#[test]
fn gemma3_split_over_the_cpu_and_two_servers_allocates_what_the_plan_says() {
    // Gemma's output layer (262144-token logits) needs about 700 MiB on its device.
    split_three_ways(&common::gemma3(), ["50M", "760M"], "15", &["--raw"]);
}

#[test]
fn the_plan_puts_what_fits_on_the_servers_and_checks_it_with_llama_cpp() {
    // Kept alive to the end of the test.
    let (_servers, rpc) = two_servers("50M", "760M");
    let m = common::smollm2();
    let args = |extra: &[&str]| -> Vec<String> {
        let base = [
            "plan",
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "4096",
            "--rpc",
            &rpc,
            // Too little RAM for SmolLM2 on this machine alone: the split is needed to fit
            // (with enough RAM staying local is faster, and recommended).
            "--ram",
            "200M",
        ];
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        layerfit(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // With an f16 cache every block offloaded would be llama.cpp's pipeline parallelism,
    // whose compute buffers (from its own dry run on the servers) do not fit RPC0's 50 MiB:
    // the plan is made again with RPC0's estimate corrected, and keeps a layer home.
    for kv in [&["--kv", "f16"][..], &[]] {
        let (code, out, err) = run(&[&["--json"][..], kv].concat());
        assert!(code == 0 || code == 10, "{err}");
        let d: Value = serde_json::from_str(&out).unwrap();
        let p = &d["plan"];
        assert_ne!(p["verdict"], "incompatible", "{p}");
        for dev in p["devices"].as_array().unwrap() {
            assert!(
                dev["total_bytes"].as_u64() <= dev["budget_bytes"].as_u64(),
                "{dev}"
            );
        }
        let budget = |i: usize| p["devices"][i]["budget_bytes"].as_u64().unwrap();
        assert_eq!(budget(0), 50 << 20);
        assert_eq!(budget(1), 760 << 20);
        if !kv.is_empty() {
            assert!(
                p["n_gpu_layers"].as_u64() <= p["block_count"].as_u64(),
                "{p}"
            );
        }
    }
    // check-requirements' run line carries the servers.
    let (code, out, err) = layerfit(&[
        "check-requirements",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "4096",
        "--rpc",
        &rpc,
        "--ram",
        "200M",
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let start = out
        .lines()
        .find(|l| l.starts_with("start it with:"))
        .unwrap();
    assert!(start.contains(&format!("--rpc {rpc}")), "{start}");
    // The emitted llama.cpp command names the servers and the split.
    let (code, out, err) = run(&["--emit", "llama-server"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("--rpc {rpc}")), "{out}");
    assert!(out.contains("-ts "), "{out}");
}

#[test]
fn a_server_killed_mid_answer_ends_the_run_with_an_error_naming_it() {
    let (mut servers, rpc) = two_servers("2G", "2G");
    let m = common::smollm2();
    let mut run = spawn(&[
        "run",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "4096",
        "--rpc",
        &rpc,
        // Every layer on the servers (staying local is faster here, so it is forced).
        "--ngl",
        "31",
        "--raw",
        "--prompt",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
        "--max-tokens",
        "3000",
        "--temp",
        "0",
        "--accept-degraded",
    ]);
    // Let it load and start answering, then kill the second server.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run ended before the kill"
    );
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the run hangs after the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&servers[1].endpoint()), "{line}");
    assert!(!line.contains(&servers[0].endpoint()), "{line}");
    assert!(line.contains("stopped answering"), "{line}");
}

#[test]
fn servers_that_cannot_serve_get_one_error_line_naming_them() {
    let m = common::smollm2();
    let plan = |rpc: &str| {
        let mut c = common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
            .args(["plan", "--model", m.to_str().unwrap(), "--rpc", rpc])
            .env("LAYERFIT_NET_TIMEOUT", "2")
            .output()
            .unwrap();
        c.stdout.clear();
        let err = String::from_utf8_lossy(&c.stderr).into_owned();
        (c.status.code().unwrap_or(-1), err)
    };
    let down = format!("127.0.0.1:{}", free_port());
    let cases = [
        (down.clone(), "connection refused".to_string()),
        (
            format!("127.0.0.1:{}", fake(Fake::Version(3, 0, 0))),
            "speaks RPC protocol 3.0.0".into(),
        ),
        (
            format!("127.0.0.1:{}", fake(Fake::AbsurdMemory)),
            "absurd".into(),
        ),
        (
            format!("127.0.0.1:{}", fake(Fake::HugeAnswer)),
            "answer where 28 bytes are expected".into(),
        ),
        (
            format!("127.0.0.1:{}", fake(Fake::Silent)),
            "no answer in time".into(),
        ),
    ];
    for (endpoint, why) in cases {
        let t = Instant::now();
        let (code, err) = plan(&endpoint);
        assert_eq!(code, 2, "{endpoint}: {err}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{endpoint} took {:?}",
            t.elapsed()
        );
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains(&format!("RPC server {endpoint}")),
            "{err}"
        );
        assert!(errors[0].contains(&why), "{why}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Bad addresses are bad input before any connection.
    for bad in ["nohost", "h:0", "h:1,h:1", "[::1]:50052"] {
        let (code, err) = plan(bad);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--rpc"), "{err}");
    }
}

#[test]
fn a_cluster_described_in_yaml_is_planned_without_connecting() {
    let dir = common::tempdir("rpc-cluster");
    let yaml = dir.join("cluster.yaml");
    std::fs::write(
        &yaml,
        "ram: 1G\ncpu: {cores: 4, memory_bandwidth_gbps: 20}\nrpc:\n  - endpoint: 10.0.0.2:50052\n    round_trip_ms: 0.3\n    network_gbps: 10\n    devices:\n      - {name: RTX 3090, memory: 24G, bandwidth_gbps: 936}\n",
    )
    .unwrap();
    let y = yaml.to_str().unwrap();
    let (code, hw, err) = json(&["hardware", "--hardware", y, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(hw["gpus"][0]["name"], "RPC0");
    assert_eq!(hw["gpus"][0]["remote"]["endpoint"], "10.0.0.2:50052");
    assert_eq!(hw["gpus"][0]["remote"]["round_trip_ms"], 0.3);

    let m = common::gemma3();
    let plan = || {
        json(&[
            "plan",
            "--hardware",
            y,
            "--model",
            m.to_str().unwrap(),
            "--json",
        ])
    };
    let (code, d, err) = plan();
    assert!(code == 0 || code == 10, "{err}");
    let p = &d["plan"];
    assert_eq!(p["rpc"], serde_json::json!(["10.0.0.2:50052"]));
    assert_eq!(p["gpu_blocks"], p["block_count"]);
    assert_eq!(p["devices"][0]["device"], "RPC0");
    let share = p["speed"]["network_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{share}");

    // A slower link costs more of each token.
    std::fs::write(
        &yaml,
        std::fs::read_to_string(&yaml)
            .unwrap()
            .replace("round_trip_ms: 0.3", "round_trip_ms: 5"),
    )
    .unwrap();
    let (_, slow, _) = plan();
    assert!(slow["plan"]["speed"]["network_share"].as_f64().unwrap() > share);

    // A described host with a bad address is bad input naming the field.
    std::fs::write(
        &yaml,
        "ram: 8G\nrpc:\n  - endpoint: nohost\n    devices: [{memory: 8G}]\n",
    )
    .unwrap();
    let (code, _, err) = layerfit(&["plan", "--hardware", y, "--model", m.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rpc[0].endpoint"), "{err}");
}

/// Remote devices are "RPC" in the report, never "GPU": llama.cpp's RPC server does not say
/// what it offers, and it is often a remote CPU. A local GPU beside them keeps its name.
#[test]
fn remote_devices_are_not_called_gpus() {
    let dir = common::tempdir("rpc-words");
    let m = common::gemma3();
    let report = |tag: &str, yaml: &str, extra: &[&str]| {
        let file = dir.join(format!("{tag}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let mut args = vec![
            "plan",
            "--hardware",
            file.to_str().unwrap(),
            "--model",
            m.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = layerfit(&args);
        assert!(code == 0 || code == 10, "{code}: {out}{err}");
        out.lines()
            .find(|l| l.contains(" blocks "))
            .unwrap_or_else(|| panic!("no blocks line:\n{out}"))
            .to_string()
    };
    let remote = "rpc:\n  - endpoint: 10.0.0.2:50052\n    devices: [{memory: 4G}]\n";
    let only_remote = report("remote", &format!("ram: 384M\n{remote}"), &[]);
    assert!(
        only_remote.starts_with("RPC blocks 18/18") && only_remote.contains("output layer on RPC0"),
        "{only_remote}"
    );
    let local = report("local", "ram: 8G\ngpus: [{name: RTX 3060}]\n", &[]);
    assert!(
        local.starts_with("GPU blocks 18/18") && local.contains("output layer on GPU"),
        "{local}"
    );
    let both = report(
        "both",
        "ram: 8G\ngpus: [{name: small, vram: 2G}]\nrpc:\n  - endpoint: 10.0.0.2:50052\n    devices: [{memory: 2G}]\n",
        &["--ngl", "10"],
    );
    assert!(both.starts_with("GPU+RPC blocks 9/18"), "{both}");
}

#[test]
fn rpc_server_refuses_an_open_address_without_the_flag_and_a_busy_port() {
    let (code, _, err) = layerfit(&["rpc-server", "--host", "0.0.0.0"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--allow-remote") && err.contains("no authentication"),
        "{err}"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let (code, _, err) = layerfit(&["rpc-server", "--port", &port]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
    let (code, _, err) = layerfit(&[
        "rpc-server",
        "--device",
        "NoSuchDevice0",
        "--port",
        &free_port().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--device NoSuchDevice0"), "{err}");
}

#[test]
fn serve_runs_the_plan_across_the_servers() {
    use std::io::{BufRead, BufReader};
    let (_servers, rpc) = two_servers("80M", "160M");
    let m = common::smollm2();
    let mut serve = spawn(&[
        "serve",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "4096",
        "--port",
        "0",
        "--rpc",
        &rpc,
        // Too little RAM on this machine alone: the split is needed to fit.
        "--ram",
        "200M",
        "--accept-degraded",
    ]);
    let mut out = BufReader::new(serve.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "serve ended before listening"
        );
        if let Some(rest) = line.split(" at http://").nth(1) {
            break rest.split("/v1").next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in out.lines() {});
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .arg("-sf")
            .args(args)
            .output()
            .expect("curl");
        assert!(o.status.success(), "curl {args:?}");
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let plan = curl(&[&format!("http://{addr}/v1/layerfit/plan")]);
    let plan = if plan["plan"].is_object() {
        &plan["plan"]
    } else {
        &plan
    };
    let names: Vec<&str> = plan["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["RPC0", "RPC1", "CPU"]);
    let body = r#"{"messages":[{"role":"user","content":"Name a colour."}],"max_tokens":8,"temperature":0}"#;
    let answer = curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        &format!("http://{addr}/v1/chat/completions"),
    ]);
    let text = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.trim().is_empty(), "{answer}");
    let _ = serve.kill();
    let _ = serve.wait();
}

/// With remote devices the placement on this machine alone is always an option, and a
/// split is recommended only when it is faster or needed to fit (issue 32, W1): a slow
/// remote box loses to the local CPU, a fast GPU over a fast link wins, and with too little
/// RAM here the slow box is used after all. Described clusters: nothing connects.
#[test]
fn a_split_is_recommended_only_when_faster_or_needed_to_fit() {
    let dir = common::tempdir("rpc-local-only");
    let m = common::gemma3();
    let plan = |tag: &str, ram: &str, cpu_gbps: u32, remote: &str| {
        let file = dir.join(format!("{tag}.yaml"));
        std::fs::write(
            &file,
            format!("ram: {ram}\ncpu: {{cores: 4, memory_bandwidth_gbps: {cpu_gbps}}}\nrpc:\n  - endpoint: 10.0.0.2:50052\n{remote}"),
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let (code, d, err) = json(&[
            "plan",
            "--hardware",
            f,
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "4096",
            "--json",
        ]);
        assert!(code == 0 || code == 10, "{err}");
        d
    };
    let decode = |p: &Value| {
        p["speed"]["decode_tokens_per_s_at_context"]
            .as_f64()
            .unwrap()
    };
    let slow = "    round_trip_ms: 2\n    network_gbps: 1\n    devices: [{name: slow box, memory: 4G, bandwidth_gbps: 20}]\n";
    let fast = "    round_trip_ms: 0.2\n    network_gbps: 25\n    devices: [{name: RTX 3090, memory: 24G, bandwidth_gbps: 936}]\n";

    // A slow remote box: this machine alone is faster, and recommended.
    let d = plan("slow", "8G", 50, slow);
    let p = &d["plan"];
    assert_eq!(p["local_only"], true, "{p}");
    assert!(p.get("rpc").is_none(), "{p}");
    let names: Vec<&str> = p["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["device"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CPU"]);
    let cands = d["candidates"].as_array().unwrap();
    assert_eq!(cands[0]["local_only"], true);
    let split = cands
        .iter()
        .find(|c| c["local_only"] == false && c["rank"].is_u64())
        .expect("the split is ranked too");
    let why = split["lost_because"].as_str().unwrap();
    assert!(why.starts_with("slower: about"), "{why}");
    assert!(split["decode_tokens_per_s"].as_f64().unwrap() < decode(p));

    // A fast GPU over a fast link beside a slow CPU (one DDR4 channel): the split is
    // faster, and recommended.
    let d = plan("fast", "8G", 10, fast);
    let p = &d["plan"];
    assert_eq!(p["local_only"], false, "{p}");
    assert_eq!(p["rpc"], serde_json::json!(["10.0.0.2:50052"]));
    let local = d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["local_only"] == true)
        .expect("this machine alone is ranked too");
    assert!(
        local["lost_because"]
            .as_str()
            .unwrap()
            .starts_with("slower: about"),
        "{local}"
    );

    // Too little RAM here for the model alone: the slow box is needed to fit.
    let d = plan("tight", "320M", 50, slow);
    let p = &d["plan"];
    assert_eq!(p["local_only"], false, "{p}");
    assert_ne!(p["verdict"], "incompatible", "{p}");
    assert!(p["gpu_blocks"].as_u64().unwrap() > 0, "{p}");
}

/// `plan` sizes the host's RAM under RPC by the rule `run`'s self-check and llama.cpp use
/// (issue 32, W2): with only remote devices the host weights stay in the plain mapped CPU
/// buffer, one file range from the first host tensor to the end of the last, so the plan's
/// CPU weights are what llama.cpp maps (83.65 MiB for SmolLM2 with two servers and
/// `--ram 768M`, where the sum of the host tensors is 41.37 MiB), and its RAM line counts the
/// compute llama.cpp's dry run reserves.
#[test]
fn plan_and_run_size_the_host_by_the_same_rule() {
    let (_servers, rpc) = two_servers("300M", "300M");
    let m = common::smollm2();
    let base = [
        "--model",
        m.to_str().unwrap(),
        "--rpc",
        &rpc,
        "--ram",
        "768M",
    ];
    let (code, d, err) = json(&[&["plan", "--json"][..], &base].concat());
    assert!(code == 0 || code == 10, "{err}");
    let p = &d["plan"];
    assert_eq!(p["local_only"], false, "{p}");
    let cpu = p["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["device"] == "CPU")
        .unwrap();
    let ram = &p["ram"];
    assert_eq!(
        ram["total_bytes"].as_u64(),
        cpu["total_bytes"].as_u64(),
        "{ram} {cpu}"
    );
    let (code, r, err) = json(
        &[
            &["run", "--json", "--accept-degraded", "--threads", "1"][..],
            &base,
            &["--prompt", "Hi", "--max-tokens", "2", "--temp", "0"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let allocated = |what: &str| {
        r["self_check"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["device"] == "CPU" && c["what"] == what)
            .unwrap_or_else(|| panic!("{r}"))["allocated"]
            .as_u64()
            .unwrap()
    };
    let repacked = ram["repacked_bytes"].as_u64().unwrap();
    assert_eq!(
        cpu["weights_bytes"].as_u64().unwrap() + repacked,
        allocated("weights"),
        "{cpu}"
    );
    assert_eq!(cpu["kv_bytes"].as_u64().unwrap(), allocated("KV cache"));
}
