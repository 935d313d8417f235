//! The emitted configurations read back: llama.cpp arguments (split at spaces) and an Ollama
//! Modelfile with its environment (`NAME=VALUE` lines after a `---` line). Settings that
//! parse must emit again and parse back to the same settings.
#![no_main]
use layerfit::emit::RunSettings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<String> = text.split_whitespace().map(String::from).collect();
    if let Ok(s) = RunSettings::from_llama_args(&args) {
        let again = RunSettings::from_llama_args(&s.llama_args()).expect("emitted args parse");
        assert_eq!(again.context, s.context);
        assert_eq!(again.n_gpu_layers, s.n_gpu_layers);
    }
    let (modelfile, env_text) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = RunSettings::from_ollama(modelfile, &env);
});
