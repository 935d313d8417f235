//! Ollama's form of a plan: a Modelfile (`num_ctx`, `num_gpu`), the server environment it
//! needs (flash attention, cache type and parallel requests are server-wide in Ollama), and
//! the `ollama create` line; and back.

use super::{ConfigError, RunSettings};
use serde::Serialize;
use std::path::PathBuf;

impl RunSettings {
    /// An Ollama Modelfile, the server environment it needs, and the `ollama create` line.
    /// Ollama sets the cache type and flash attention server-wide, not per model.
    pub fn ollama(&self, from: &str, tag: &str) -> OllamaConfig {
        let modelfile = format!(
            "FROM {from}\nPARAMETER num_ctx {}\nPARAMETER num_gpu {}\n",
            self.context, self.n_gpu_layers
        );
        let mut env = vec![(
            "OLLAMA_FLASH_ATTENTION".to_string(),
            if self.flash_attn { "1" } else { "0" }.to_string(),
        )];
        env.push(("OLLAMA_KV_CACHE_TYPE".into(), self.cache_type_k.clone()));
        if self.parallel > 1 {
            // Ollama gives each of its parallel requests num_ctx tokens.
            env.push(("OLLAMA_NUM_PARALLEL".into(), self.parallel.to_string()));
        }
        OllamaConfig {
            modelfile,
            env,
            create: format!("ollama create {tag} -f Modelfile"),
        }
    }

    /// Reads a Modelfile and its environment back.
    pub fn from_ollama(
        modelfile: &str,
        env: &[(String, String)],
    ) -> Result<RunSettings, ConfigError> {
        let mut model = None;
        let (mut ctx, mut ngl) = (None, None);
        for line in modelfile.lines().map(str::trim) {
            let mut w = line.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("FROM"), Some(m), _) => model = Some(PathBuf::from(m)),
                (Some("PARAMETER"), Some("num_ctx"), Some(v)) => ctx = v.parse().ok(),
                (Some("PARAMETER"), Some("num_gpu"), Some(v)) => ngl = v.parse().ok(),
                _ => {}
            }
        }
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let kv = get("OLLAMA_KV_CACHE_TYPE").unwrap_or_else(|| "f16".into());
        let settings = RunSettings {
            model: model.ok_or(ConfigError::Missing("the Modelfile has no FROM line"))?,
            context: ctx.ok_or(ConfigError::Missing("the Modelfile has no num_ctx"))?,
            n_gpu_layers: ngl.ok_or(ConfigError::Missing("the Modelfile has no num_gpu"))?,
            n_cpu_moe: 0,
            n_cpu_ffn: 0,
            no_repack: false,
            cache_type_k: kv.clone(),
            cache_type_v: kv,
            flash_attn: get("OLLAMA_FLASH_ATTENTION").as_deref() == Some("1"),
            tensor_split: Vec::new(),
            // Ollama keeps the GPU out of it entirely at num_gpu 0.
            gpu_unused: ngl == Some(0),
            software_gpu: false,
            parallel: get("OLLAMA_NUM_PARALLEL")
                .and_then(|v| v.parse::<u32>().ok())
                .map_or(1, |n| n.clamp(1, 256)),
            // Ollama has no RPC back-end and no speculative decoding.
            rpc: Vec::new(),
            draft: None,
            // A projector is a layer of the Ollama model, not an environment setting.
            mmproj: None,
        };
        settings.validate()?;
        Ok(settings)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OllamaConfig {
    pub modelfile: String,
    pub env: Vec<(String, String)>,
    pub create: String,
}

impl OllamaConfig {
    /// A shell script: the environment, the Modelfile, and the create line.
    pub fn script(&self) -> String {
        let mut s = String::from(
            "# Ollama reads these when its server starts (restart `ollama serve` after setting them).\n",
        );
        for (k, v) in &self.env {
            s.push_str(&format!("export {k}={v}\n"));
        }
        s.push_str("cat > Modelfile <<'EOF'\n");
        s.push_str(&self.modelfile);
        s.push_str("EOF\n");
        s.push_str(&self.create);
        s.push('\n');
        s
    }

    /// Reads a script written by [`OllamaConfig::script`] back into a Modelfile and env.
    pub fn parse_script(script: &str) -> (String, Vec<(String, String)>) {
        let mut env = Vec::new();
        let mut modelfile = String::new();
        let mut inside = false;
        for line in script.lines() {
            if inside {
                if line == "EOF" {
                    inside = false;
                } else {
                    modelfile.push_str(line);
                    modelfile.push('\n');
                }
            } else if let Some(kv) = line.strip_prefix("export ") {
                if let Some((k, v)) = kv.split_once('=') {
                    env.push((k.to_string(), v.to_string()));
                }
            } else if line.starts_with("cat > Modelfile") {
                inside = true;
            }
        }
        (modelfile, env)
    }
}
