//! What `--model` names: a GGUF file (or shard of a split set), or a catalog model
//! (`qwen2.5-coder:7b-q4_k_m`, or `qwen2.5-coder:7b` for every variant). A catalog variant
//! whose usual file is in the models folder is read from that file: a real header wins.

use crate::bytes::Bytes;
use crate::catalog::{self, quant::Ftype};
use crate::fetch::{self, name::RemoteName};
use crate::gguf::{open_model, Metadata, TensorInfo};
use crate::memory::model_weights;
use crate::model::Shape;
use crate::plan::choose::ModelOption;
use crate::plan::PlanInput;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why `--model` could not be turned into a header.
#[derive(Debug, thiserror::Error)]
pub enum ModelSourceError {
    /// The file's own error already names the file and the offset.
    #[error(transparent)]
    File(#[from] crate::gguf::GgufError),
    /// One line: the shape error names the key and the value.
    #[error("{model}: {cause}")]
    Shape {
        model: String,
        cause: crate::model::ShapeError,
    },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("{name}: no such file, and not a catalog name{} (catalog names look like qwen2.5-coder:7b-q4_k_m; see `layerfit catalog list`)", crate::catalog::did_you_mean(.nearest))]
    Unknown { name: String, nearest: Vec<String> },
    #[error(transparent)]
    Name(#[from] crate::fetch::name::NameError),
    #[error(transparent)]
    Net(#[from] crate::fetch::http::NetError),
    #[error(transparent)]
    Remote(#[from] crate::fetch::range::RemoteError),
}

/// Where a model's header came from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    File {
        path: PathBuf,
    },
    Catalog {
        entry: String,
        variant: String,
    },
    /// A file not on this machine whose header was read over the network.
    Remote {
        /// The name that finds it again (`hf://ORG/REPO:QUANT`, `ollama://NAME:TAG`, a URL).
        name: String,
        /// The (first shard's) URL.
        url: String,
        /// Bytes to download, every shard.
        size: u64,
    },
}

/// A model header, real or from the catalog.
#[derive(Clone, Debug)]
pub struct ModelSource {
    /// How the model is named in reports: the path, or `name-variant`.
    pub label: String,
    pub origin: Origin,
    /// The catalog name, also for a file found through the catalog (Ollama's tag).
    pub catalog_name: Option<String>,
    /// The file llama.cpp will load: the real one, or where the catalog's would be.
    pub path: PathBuf,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub tensor_vocab: Option<u64>,
    /// Tensor data the file on disk lacks (a partial download); 0 for a complete file and
    /// for a catalog model.
    pub missing_bytes: u64,
    /// Where the catalog says a real file of this variant is published (sourced).
    pub upstream: Option<String>,
    /// A remote model's files (shards in order), for `pull`; empty otherwise.
    pub downloads: Vec<fetch::Download>,
}

impl ModelSource {
    pub fn from_file(path: &Path) -> Result<ModelSource, ModelSourceError> {
        let f = open_model(path)?;
        Ok(ModelSource {
            label: path.display().to_string(),
            origin: Origin::File {
                path: path.to_path_buf(),
            },
            catalog_name: None,
            path: path.to_path_buf(),
            metadata: f.metadata().clone(),
            tensor_vocab: f.tensor_vocab(),
            tensors: f.tensors().cloned().collect(),
            missing_bytes: f.missing_bytes(),
            upstream: None,
            downloads: Vec::new(),
        })
    }

    /// The same file, reported under the name that found it.
    pub fn named(mut self, name: &str) -> ModelSource {
        self.label = name.to_string();
        self.catalog_name = Some(name.to_string());
        self
    }

    /// A model a remote name stands for: its local copy, or its header read over the
    /// network (with what that cost).
    pub fn from_candidate(
        c: fetch::Candidate,
        client: &fetch::http::Client,
    ) -> Result<(ModelSource, Option<fetch::Transfer>), ModelSourceError> {
        let downloads = match c.place {
            fetch::Place::Local(p) => {
                return Ok((ModelSource::from_file(&p)?.named(&c.name), None))
            }
            fetch::Place::Remote(d) => d,
        };
        let (file, transfer) = fetch::remote_model(client, &downloads)?;
        let size = downloads
            .iter()
            .map(|d| d.size)
            .sum::<Option<u64>>()
            .unwrap_or_else(|| file.expected_size());
        let source = ModelSource {
            label: c.name.clone(),
            origin: Origin::Remote {
                name: c.name.clone(),
                url: downloads[0].url.clone(),
                size,
            },
            catalog_name: Some(c.name.clone()),
            path: downloads[0].dest.clone(),
            metadata: file.metadata().clone(),
            tensor_vocab: file.tensor_vocab(),
            tensors: file.tensors().cloned().collect(),
            missing_bytes: 0,
            upstream: Some(c.name),
            downloads,
        };
        Ok((source, Some(transfer)))
    }

    fn from_catalog(
        entry: &catalog::Entry,
        ftype: Ftype,
        models_dir: &Path,
    ) -> Result<ModelSource, ModelSourceError> {
        let name = format!("{}-{}", entry.name, ftype);
        let file_name = entry
            .variants
            .get(ftype.name())
            .and_then(|v| v.file.clone())
            .unwrap_or_else(|| format!("{}.gguf", name.replace(':', "-")));
        let path = models_dir.join(&file_name);
        let upstream = entry
            .variants
            .get(ftype.name())
            .and_then(|v| v.upstream.clone());
        if path.is_file() {
            let mut s = ModelSource::from_file(&path)?;
            s.catalog_name = Some(name);
            s.upstream = upstream;
            return Ok(s);
        }
        let tensors = entry.tensors(ftype)?;
        let tensor_vocab = tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .and_then(|t| t.dims.get(1).copied());
        Ok(ModelSource {
            label: name.clone(),
            origin: Origin::Catalog {
                entry: entry.name.clone(),
                variant: ftype.name().into(),
            },
            catalog_name: Some(name),
            path,
            metadata: entry.metadata(ftype),
            tensors,
            tensor_vocab,
            missing_bytes: 0,
            upstream,
            downloads: Vec::new(),
        })
    }

    /// The shape llama.cpp reads from this header.
    pub fn shape(&self) -> Result<Shape, ModelSourceError> {
        Shape::from_metadata(&self.metadata, self.tensor_vocab).map_err(|cause| {
            ModelSourceError::Shape {
                model: self.label.clone(),
                cause,
            }
        })
    }

    /// What the planner needs from this model, for a CPU with these SIMD features.
    pub fn plan_input(&self, cpu_simd: &[String]) -> Result<PlanInput, ModelSourceError> {
        let shape = self.shape()?;
        let w = model_weights(&shape, &self.tensors);
        let mut input = PlanInput::new(shape, w, &self.tensors, cpu_simd);
        input.quant = self.quant();
        Ok(input)
    }

    /// Where to get the file and where to put it, for a model that is not on disk.
    pub fn where_to_get(&self) -> String {
        if let Origin::Remote { name, .. } = &self.origin {
            return format!(
                "`layerfit pull {name}` downloads it to {}",
                self.path.display()
            );
        }
        match &self.upstream {
            Some(u) => format!("get it from {u} and put it at {}", self.path.display()),
            None => format!(
                "the catalog names no sourced download for it: put a GGUF of it at {} (`layerfit catalog verify FILE` checks a file against the entry)",
                self.path.display()
            ),
        }
    }

    /// The whole file is on disk.
    pub fn downloaded(&self) -> bool {
        matches!(self.origin, Origin::File { .. }) && self.missing_bytes == 0
    }

    /// What the chooser needs: the planner input and the state of the file.
    pub fn option(&self, cpu_simd: &[String]) -> Result<ModelOption, ModelSourceError> {
        let tensor_bytes = Bytes(self.tensors.iter().map(|t| t.n_bytes().get()).sum());
        Ok(ModelOption {
            input: self.plan_input(cpu_simd)?,
            downloaded: self.downloaded(),
            to_download: match self.origin {
                Origin::Catalog { .. } => tensor_bytes,
                Origin::File { .. } => Bytes(self.missing_bytes),
                Origin::Remote { size, .. } => Bytes(size),
            },
            incomplete: (self.missing_bytes > 0).then_some(Bytes(self.missing_bytes)),
            preference: 0,
        })
    }

    /// The file's quantization name (`q4_k_m`): the catalog variant, else the header's
    /// `general.file_type`.
    pub fn quant(&self) -> Option<String> {
        if let Origin::Catalog { variant, .. } = &self.origin {
            return Some(variant.clone());
        }
        self.metadata
            .get("general.file_type")
            .and_then(|v| v.as_u64())
            .and_then(Ftype::from_id)
            .map(|f| f.name().to_string())
    }

    /// Average bits per weight of the file (the quality axis of variant search).
    pub fn bits_per_weight(&self) -> f64 {
        let bytes: u64 = self.tensors.iter().map(|t| t.n_bytes().get()).sum();
        let n: u64 = self
            .tensors
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.n_elements()));
        if n == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 / n as f64
        }
    }
}

/// Resolves one `--model` value into candidates, best quality first (several only for a
/// catalog name without a variant).
pub fn resolve(spec: &str, models_dir: &Path) -> Result<Vec<ModelSource>, ModelSourceError> {
    let path = Path::new(spec);
    if let Some(name) = RemoteName::parse(spec)? {
        let client = fetch::client();
        return fetch::candidates(&name, models_dir, &client)?
            .into_iter()
            .map(|c| ModelSource::from_candidate(c, &client).map(|(s, _)| s))
            .collect();
    }
    if path.exists() || spec.ends_with(".gguf") {
        return Ok(vec![ModelSource::from_file(path)?]);
    }
    // A model in Ollama's own store, by the name `ollama list` shows, before the catalog.
    if let Ok(Some(RemoteName::Ollama(o))) = RemoteName::parse(&format!("ollama://{spec}")) {
        if let Some((blob, _)) = fetch::ollama::find_local(&o) {
            return Ok(vec![ModelSource::from_file(&blob)?.named(&o.to_string())]);
        }
    }
    match catalog::lookup(spec)? {
        Some(r) => {
            let ftypes = match r.ftype {
                Some(f) => vec![f],
                None => r.entry.ftypes(),
            };
            ftypes
                .into_iter()
                .map(|f| ModelSource::from_catalog(&r.entry, f, models_dir))
                .collect()
        }
        None => Err(ModelSourceError::Unknown {
            name: spec.to_string(),
            nearest: catalog::suggestions(spec),
        }),
    }
}

/// The lower-quality variants of a catalog model, for "Q3_K_M would fit" hints.
pub fn smaller_variants(src: &ModelSource, models_dir: &Path) -> Vec<ModelSource> {
    let Some(name) = &src.catalog_name else {
        return Vec::new();
    };
    let Ok(Some(r)) = catalog::lookup(name) else {
        return Vec::new();
    };
    let Some(current) = r.ftype else {
        return Vec::new();
    };
    r.entry
        .ftypes()
        .into_iter()
        .filter(|f| *f > current)
        .filter_map(|f| ModelSource::from_catalog(&r.entry, f, models_dir).ok())
        .collect()
}

/// Where models are kept: `LAYERFIT_MODELS`, else `~/.cache/layerfit/models`.
pub fn default_models_dir() -> PathBuf {
    crate::env_vars::path("LAYERFIT_MODELS").unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/layerfit/models")
    })
}
