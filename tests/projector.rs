//! Vision projectors (`--mmproj`): planned from the file's header and llama.cpp's own
//! multimodal loader, held out of the budget of the device it goes on, carried by the
//! emitted command, and loaded by `run --image` with the planned bytes checked against what
//! llama.cpp allocated. The projector is synthetic (Gemma 3's layout, zero weights) and
//! pairs with the real Gemma 3 270M.

mod common;

use common::projector::{bmp, Projector};
use common::{gemma3, layerfit, smollm2, tempdir};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_layerfit");

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn projector(tag: &str) -> (std::path::PathBuf, u64) {
    let dir = tempdir(tag);
    let p = dir.join("mmproj-gemma3-F16.gguf");
    let bytes = Projector::for_gemma3_270m().write(&p);
    (p, bytes)
}

#[test]
fn planned_beside_the_model_and_held_out_of_its_budget() {
    let (p, weights) = projector("plan");
    let (m, ps) = (gemma3(), p.display().to_string());
    let args = |extra: &[&str]| {
        let mut v = vec![
            "plan",
            "--model",
            m.to_str().unwrap(),
            "--ram",
            "2G",
            "--no-gpu",
            "--json",
        ];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        layerfit(BIN, &refs)
    };
    // Exit 10: degraded (no GPU), a verdict like 0.
    let (code, out, err) = run(args(&["--mmproj", &ps]));
    assert!(code == 0 || code == 10, "{err}");
    let doc = json(&out);
    let pj = &doc["plan"]["projector"];
    assert_eq!(pj["projector_type"], "gemma3");
    assert_eq!(pj["device"], "CPU");
    assert_eq!(pj["weights_bytes"].as_u64(), Some(weights));
    let compute = pj["compute_bytes"].as_u64().unwrap();
    assert!(compute > 0, "{pj}");
    assert_eq!(pj["total_bytes"].as_u64(), Some(weights + compute));
    assert_eq!(pj["ram_bytes"].as_u64(), Some(weights + compute));
    // 16x16 patches pooled 4x4: 16 tokens an image.
    assert_eq!(pj["image_max_tokens"].as_u64(), Some(16), "{pj}");
    // The projector's bytes come out of the RAM the model is planned in.
    let (code, out, err) = run(args(&[]));
    assert!(code == 0 || code == 10, "{err}");
    let alone = json(&out);
    assert!(alone["plan"].get("projector").is_none());
    let budget = |d: &Value| d["plan"]["ram"]["budget_bytes"].as_u64().unwrap();
    assert_eq!(budget(&alone) - budget(&doc), weights + compute);
    // The emitted command carries it, and reads back.
    let (code, out, err) = run(vec![
        "plan".into(),
        "--model".into(),
        m.display().to_string(),
        "--ram".into(),
        "2G".into(),
        "--no-gpu".into(),
        "--mmproj".into(),
        ps.clone(),
        "--no-mmproj-offload".into(),
        "--emit".into(),
        "llama-server".into(),
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains("llama-server"))
        .unwrap_or_else(|| panic!("{out}"));
    let words = common::llama_server::shell_words(line);
    let at = words.iter().position(|w| w == "--mmproj").expect(line);
    assert_eq!(words[at + 1], ps);
    assert!(words.iter().any(|w| w == "--no-mmproj-offload"), "{line}");
    let back = layerfit::emit::RunSettings::from_llama_args(&words).unwrap();
    let mm = back.mmproj.unwrap();
    assert_eq!(
        (mm.path.display().to_string(), mm.offload),
        (ps.clone(), false)
    );
    // inspect shows the same projector.
    let (code, out, err) = layerfit(
        BIN,
        &["inspect", m.to_str().unwrap(), "--mmproj", &ps, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let i = json(&out);
    let ip = &i["projector"];
    assert_eq!(ip["weight_bytes"].as_u64(), Some(weights));
    assert_eq!(ip["compute_bytes"].as_u64(), Some(compute));
    assert_eq!(ip["projection_dim"].as_u64(), Some(640));
    assert_eq!(ip["image_max_tokens"].as_u64(), Some(16));
    common::assert_schema("inspect", &i);
    common::assert_schema("plan", &doc);
}

#[test]
fn offloaded_to_a_described_gpu() {
    let (p, weights) = projector("gpu");
    let (code, out, err) = layerfit(
        BIN,
        &[
            "plan",
            "--model",
            gemma3().to_str().unwrap(),
            "--gpu",
            "rtx-4060:8G",
            "--ram",
            "16G",
            "--mmproj",
            p.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(code == 0 || code == 10, "{err}");
    let doc = json(&out);
    let pj = &doc["plan"]["projector"];
    assert_eq!(pj["gpu_index"].as_u64(), Some(0), "{pj}");
    assert_eq!(pj["basis"], "engine_cpu");
    assert_eq!(pj["ram_bytes"].as_u64(), Some(0));
    assert!(pj["total_bytes"].as_u64().unwrap() > weights);
}

#[test]
fn refusals_name_the_problem() {
    let (p, _) = projector("refuse");
    // SmolLM2 reads 576-wide embeddings; this projector gives 640.
    let (code, _, err) = layerfit(
        BIN,
        &[
            "plan",
            "--model",
            smollm2().to_str().unwrap(),
            "--mmproj",
            p.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("640") && err.contains("576"), "{err}");
    // A model is not a projector.
    let (code, _, err) = layerfit(
        BIN,
        &[
            "plan",
            "--model",
            gemma3().to_str().unwrap(),
            "--mmproj",
            smollm2().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not clip"), "{err}");
    // auto finds nothing next to a model in a folder without a projector.
    let dir = tempdir("auto-none");
    let m = dir.join("gemma.gguf");
    std::os::unix::fs::symlink(gemma3(), &m).unwrap();
    let (code, _, err) = layerfit(
        BIN,
        &["plan", "--model", m.to_str().unwrap(), "--mmproj", "auto"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no mmproj"), "{err}");
    // An image without a projector.
    let img = dir.join("red.bmp");
    bmp(&img, 32, 32, [255, 0, 0]);
    let (code, _, err) = layerfit(
        BIN,
        &[
            "run",
            "--model",
            gemma3().to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--prompt",
            "hi",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--image needs a vision projector"), "{err}");
}

#[test]
fn run_reads_an_image_with_the_planned_bytes() {
    // `auto` finds the projector next to the model.
    let dir = tempdir("run");
    let m = dir.join("gemma-3-270m-q4_k_m.gguf");
    std::os::unix::fs::symlink(gemma3(), &m).unwrap();
    let weights = Projector::for_gemma3_270m().write(&dir.join("mmproj-gemma-3-270m-f16.gguf"));
    let img = dir.join("blue.bmp");
    bmp(&img, 300, 200, [0, 0, 255]);
    let answer = |extra: &[&str]| {
        let mut a = vec!["run", "--model", m.to_str().unwrap()];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[
            "--prompt",
            "Describe the image.",
            "--chat",
            "--temp",
            "0",
            "--max-tokens",
            "4",
            "--accept-degraded",
            "--json",
        ]);
        let (code, out, err) = layerfit(BIN, &a);
        assert_eq!(code, 0, "{err}");
        json(&out)
    };
    // The check's "start it with" line carries the projector it planned.
    let (_, out, _) = layerfit(
        BIN,
        &[
            "check-requirements",
            "--model",
            m.to_str().unwrap(),
            "--mmproj",
            "auto",
        ],
    );
    let start = out
        .lines()
        .find(|l| l.starts_with("start it with:"))
        .unwrap_or_else(|| panic!("{out}"));
    let mm = dir.join("mmproj-gemma-3-270m-f16.gguf");
    assert!(
        start.contains(&format!("--mmproj {}", mm.display())),
        "{start}"
    );
    assert!(out.contains("projector: "), "{out}");
    let doc = answer(&["--mmproj", "auto", "--image", img.to_str().unwrap()]);
    let pj = &doc["projector"];
    assert_eq!(pj["images"].as_u64(), Some(1), "{pj}");
    assert_eq!(pj["within_5_percent"], true, "{pj}");
    // llama.cpp logs MiB with two decimals.
    let loaded = pj["loaded_weights_bytes"].as_u64().unwrap();
    assert!(loaded.abs_diff(weights) <= 5243, "{loaded} vs {weights}");
    assert!(pj["loaded_compute_bytes"].as_u64().unwrap() > 0);
    common::assert_schema("run", &doc);
    // The image's 16 tokens are part of the prompt.
    let out2 = answer(&[]);
    let text_only = out2["stats"]["prompt_tokens"].as_u64().unwrap();
    let with_image = doc["stats"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        with_image >= text_only + 16,
        "{with_image} prompt tokens with the image, {text_only} without"
    );
}

#[test]
fn auto_finds_the_projector_on_the_hub_and_in_an_ollama_manifest() {
    let s = common::http_server::Server::start();
    let (p, weights) = projector("hub");
    s.file("gemma", &gemma3(), None);
    s.file("mmproj", &p, None);
    let repo = "test-org/vision-GGUF";
    s.hub_file(repo, "gemma-3-270m-Q4_K_M.gguf", "gemma");
    s.hub_file(repo, "mmproj-gemma-3-270m-F16.gguf", "mmproj");
    s.ollama_model("library/vision:1b", "gemma");
    s.ollama_projector("library/vision:1b", "mmproj");
    let h = tempdir("hub-home");
    std::fs::create_dir_all(h.join("models")).unwrap();
    let plan = |model: &str, extra: &[&str]| {
        let o = common::in_home(&h, &s.base)
            .args(["plan", "--model", model, "--mmproj", "auto"])
            .args(["--ram", "2G", "--no-gpu"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(matches!(o.status.code(), Some(0 | 10)), "{err}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The same projector planned locally, for its figures.
    let (_, out, _) = layerfit(
        BIN,
        &[
            "plan",
            "--model",
            gemma3().to_str().unwrap(),
            "--mmproj",
            p.to_str().unwrap(),
            "--ram",
            "2G",
            "--no-gpu",
            "--json",
        ],
    );
    let local = json(&out)["plan"]["projector"].clone();
    let hub = json(&plan(&format!("hf://{repo}:Q4_K_M"), &["--json"]));
    let pj = &hub["plan"]["projector"];
    let url = pj["url"].as_str().unwrap_or_default();
    assert!(
        url.ends_with(&format!(
            "/{repo}/resolve/main/mmproj-gemma-3-270m-F16.gguf"
        )),
        "{pj}"
    );
    assert_eq!(pj["weights_bytes"].as_u64(), Some(weights));
    assert_eq!(pj["compute_bytes"], local["compute_bytes"], "{pj}");
    // Read by range requests (this small file fits in the first chunk), never downloaded.
    let reads = s.requests("/cdn/mmproj");
    assert!(
        !reads.is_empty() && reads.iter().all(|r| r.range.is_some()),
        "{reads:?}"
    );
    assert!(!h.join("models/hf").join(repo).exists());
    // The emitted command lets llama-server download it.
    let cmd = plan(&format!("hf://{repo}:Q4_K_M"), &["--emit", "llama-server"]);
    assert!(cmd.contains(&format!("--mmproj-url {url}")), "{cmd}");
    // Ollama: the manifest's projector layer.
    let host = s.base.trim_start_matches("http://").to_string();
    let ol = json(&plan(
        &format!("ollama://{host}/library/vision:1b"),
        &["--json"],
    ));
    let pj = &ol["plan"]["projector"];
    let url = pj["url"].as_str().unwrap_or_default();
    assert!(url.contains("/v2/library/vision/blobs/sha256:"), "{pj}");
    assert_eq!(pj["compute_bytes"], local["compute_bytes"], "{pj}");
}

/// `serve` with and without a projector, on port 0; the address it listens on.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        use std::io::BufRead;
        let mut c = std::process::Command::new(BIN);
        common::isolate(&mut c);
        let child = c
            .args(["serve", "--model", gemma3().to_str().unwrap()])
            .args(["--ctx", "2048", "--port", "0", "--parallel", "2"])
            .args(["--threads", "2", "--accept-degraded"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Owned at once: dropping it (a failed assertion included) kills and reaps it.
        let mut s = Serve {
            child,
            url: String::new(),
        };
        let mut out = std::io::BufReader::new(s.child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "serve ended");
            if let Some(rest) = line.split(" at http://").nth(1) {
                let addr = rest.split("/v1").next().unwrap().to_string();
                std::thread::spawn(move || for _ in out.lines() {});
                s.url = format!("http://{addr}/v1");
                return s;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official `openai` client sends an image as a data URL, a remote image URL, and the
/// same question without the image; what came back, as JSON.
const CLIENT: &str = r#"
import base64, json, sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", max_retries=0)
img = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
def ask(content):
    try:
        r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": content}],
                                      max_tokens=4, temperature=0)
        return {"status": 200, "prompt_tokens": r.usage.prompt_tokens,
                "finish": r.choices[0].finish_reason}
    except openai.APIStatusError as e:
        return {"status": e.status_code, "message": str(e)}
print(json.dumps({
    "image": ask([{"type": "text", "text": "Describe this:"},
                  {"type": "image_url", "image_url": {"url": "data:image/bmp;base64," + img}}]),
    "remote": ask([{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]),
    "text": ask([{"type": "text", "text": "Describe this:"}]),
}))
"#;

fn client(url: &str, image: &std::path::Path) -> Value {
    let python = std::env::var("LAYERFIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args(["-c", CLIENT, url, image.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{python}: {err} (tests/run.sh prepares a Python with the openai package)"
    );
    json(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn serve_reads_images_with_a_projector_and_refuses_them_without() {
    let (p, _) = projector("serve");
    let img = p.with_file_name("green.bmp");
    bmp(&img, 64, 48, [0, 255, 0]);
    let with = Serve::start(&["--mmproj", p.to_str().unwrap()]);
    let r = client(&with.url, &img);
    assert_eq!(r["image"]["status"], 200, "{r}");
    assert_eq!(r["text"]["status"], 200, "{r}");
    // The image's 16 tokens are in the prompt.
    let (i, t) = (
        r["image"]["prompt_tokens"].as_u64().unwrap(),
        r["text"]["prompt_tokens"].as_u64().unwrap(),
    );
    assert!(i >= t + 16, "{i} prompt tokens with the image, {t} without");
    // The server fetches no URL.
    assert_eq!(r["remote"]["status"], 400, "{r}");
    drop(with);
    let without = Serve::start(&[]);
    let r = client(&without.url, &img);
    assert_eq!(r["image"]["status"], 400, "{r}");
    assert!(
        r["image"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("need a vision projector"),
        "{r}"
    );
    assert_eq!(r["text"]["status"], 200, "{r}");
}
