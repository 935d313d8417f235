//! llama.cpp's own `llama-server` as a test fixture (issue 34, item 6), for the tests that
//! compare layerfit with it. The binary is built by `bash tests/build-llama-server.sh` (from
//! llama-cpp-python's source package; 15-28 minutes on 2 cores, so tests/run.sh does not
//! build it) into `~/.cache/layerfit/llama-server/VERSION/llama-server`, or named by
//! `LAYERFIT_LLAMA_SERVER`. Without it a comparison is skipped with one loud line on stderr
//! (written past the test harness's capture, so a passing run shows it); with
//! `LAYERFIT_REQUIRE_LLAMA_SERVER=1` it fails instead.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The fixture binary: `LAYERFIT_LLAMA_SERVER`, else the newest one the build script cached.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LAYERFIT_LLAMA_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "LAYERFIT_LLAMA_SERVER={} is not a file",
            p.display()
        );
        return Some(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"));
    let mut found: Vec<(Vec<u64>, PathBuf)> =
        std::fs::read_dir(cache.join("layerfit/llama-server"))
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let version: Vec<u64> = e
                    .file_name()
                    .to_str()?
                    .split('.')
                    .map(|n| n.parse().ok())
                    .collect::<Option<_>>()?;
                let bin = e.path().join("llama-server");
                bin.is_file().then_some((version, bin))
            })
            .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// The fixture, or `None` after saying loudly that the running test was skipped and why.
pub fn binary_or_skip() -> Option<PathBuf> {
    let found = binary();
    let what = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if found.is_none() {
        let why = "no llama-server: run `bash tests/build-llama-server.sh` (15-28 min on 2 cores) or set LAYERFIT_LLAMA_SERVER";
        assert!(
            std::env::var("LAYERFIT_REQUIRE_LLAMA_SERVER").as_deref() != Ok("1"),
            "LAYERFIT_REQUIRE_LLAMA_SERVER=1 and {why}"
        );
        // Straight to the process's stderr: the harness captures only `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {what}: comparison with llama-server not run ({why})"
        );
    }
    found
}

/// Splits a command line as a POSIX shell does for the quoting layerfit emits (single
/// quotes, `'\''` for a quote inside them, backslash escapes outside).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A running llama-server on 127.0.0.1, stopped when dropped.
pub struct LlamaServer {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    agent: ureq::Agent,
}

impl LlamaServer {
    /// Starts `program` with `args` (leading `NAME=value` words are its environment) plus
    /// `--host 127.0.0.1 --port P`, and waits until `/health` answers 200 (the model loaded).
    pub fn start(program: &Path, args: &[String], log: PathBuf) -> LlamaServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let env_words = args.iter().take_while(|a| {
            a.split_once('=')
                .is_some_and(|(k, _)| !k.starts_with('-') && !k.is_empty())
        });
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(program);
        for w in env_words.clone() {
            let (k, v) = w.split_once('=').unwrap();
            cmd.env(k, v);
        }
        let n_env = env_words.count();
        cmd.args(&args[n_env..])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(1800)))
            .build()
            .into();
        let mut s = LlamaServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!(
                    "llama-server exited ({status}) before serving:\n{}",
                    s.log_tail()
                );
            }
            if s.get("/health").0 == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "llama-server not ready after 300 s:\n{}",
                s.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        s
    }

    /// The server's process id (its `/proc` entry).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET: status and body (JSON, or `null` when the body is not JSON).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        match self.agent.get(format!("{}{path}", self.base)).call() {
            Ok(mut r) => (
                r.status().as_u16(),
                serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
                    .unwrap_or_default(),
            ),
            Err(_) => (0, serde_json::Value::Null),
        }
    }

    /// POST a JSON body: status and body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log_tail()));
        let text = r.body_mut().read_to_string().unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {path}: {e}: {text}\n{}", self.log_tail()));
        (r.status().as_u16(), v)
    }

    /// The last 40 lines of the server's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
