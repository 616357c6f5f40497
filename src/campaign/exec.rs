//! The campaign's calls into dataset loading, model loading (with its size and
//! speed profile), transforms and the attack, gathered in one file so the runner
//! stays independent of them.

use super::runner::QuestionRunner;
use super::spec::{AttackSource, AttackSpec, CampaignSpec, TransformChain};
use super::store::{CachedModel, ModelProfile, Store};
use crate::attack::AttackRecord;
use crate::data::Item;
use crate::data::prompt::PromptTemplate;
use crate::error::{Error, Result};
use crate::lm::{Decoding, LanguageModel, Prompt};
use crate::runtime::LoadOptions;
use crate::score::AnswerStyle;
use crate::transform::decode::Answerer;
use std::path::Path;
use std::sync::Arc;

/// A dataset as the campaign needs it.
pub struct DatasetData {
    pub name: String,
    pub style: AnswerStyle,
    pub items: Vec<Item>,
}

/// Loads a dataset by name, path or URL, with its options.
pub fn load_dataset(entry: &crate::data::DatasetSpec, base_dir: &Path) -> Result<DatasetData> {
    let name = entry.spec.as_str();
    // Relative paths in a spec are relative to the spec's folder.
    let resolved = if looks_like_path(name) && !Path::new(name).is_absolute() {
        base_dir.join(name).to_string_lossy().into_owned()
    } else {
        name.to_string()
    };
    if looks_like_path(name) && !Path::new(&resolved).exists() {
        return Err(Error::file(
            &resolved,
            "dataset file not found (paths in a campaign spec are relative to the spec file)",
        ));
    }
    let ds = crate::data::load(&resolved, &entry.options)?;
    Ok(DatasetData {
        name: ds.name,
        style: ds.style,
        items: ds.items,
    })
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".jsonl") || s.ends_with(".json") || s.ends_with(".csv")
}

/// Checks that a model spec can be found, without loading it, so a campaign
/// fails before any work when a model file is missing.
pub fn check_model(spec: &str, base_dir: &Path) -> Result<()> {
    if spec.starts_with("openai:") {
        return Ok(());
    }
    let is_file_spec = spec.ends_with(".gguf") || spec.ends_with(".onnx") || spec.contains('/');
    if is_file_spec {
        let p = if Path::new(spec).is_absolute() {
            Path::new(spec).to_path_buf()
        } else {
            base_dir.join(spec)
        };
        if !p.exists() {
            return Err(Error::file(
                &p,
                "model not found: give a .gguf/.onnx file, a Hugging Face folder, an alias, or openai:URL#MODEL",
            ));
        }
        return Ok(());
    }
    // Aliases: known, and set-up models present (hub aliases download at load time).
    let target = spec.split('?').next().unwrap_or(spec);
    crate::model::spec::parse(target)?;
    if let Some(a) = crate::model::spec::find_alias(target)
        && matches!(a.source, crate::model::spec::Source::Setup { .. })
        && !a.is_present()
    {
        return Err(Error::file(
            a.local_path(),
            format!("model {target} is missing: run `mscr setup`"),
        ));
    }
    Ok(())
}

/// Loads a model for a campaign cell.
pub fn load_model(spec: &str, base_dir: &Path, threads: usize) -> Result<Arc<dyn LanguageModel>> {
    let options = LoadOptions {
        threads,
        ..LoadOptions::default()
    };
    load_model_on(spec, base_dir, &options)
}

/// As [`load_model`], on `options`' device.
pub fn load_model_on(
    spec: &str,
    base_dir: &Path,
    options: &LoadOptions,
) -> Result<Arc<dyn LanguageModel>> {
    let resolved = if (spec.ends_with(".gguf") || spec.ends_with(".onnx") || spec.contains('/'))
        && !spec.starts_with("openai:")
        && !Path::new(spec).is_absolute()
    {
        base_dir.join(spec).to_string_lossy().into_owned()
    } else {
        spec.to_string()
    };
    crate::runtime::load_model(&resolved, options)
}

/// Loads a model with a transform chain's weight steps applied. Weight
/// transforms edit the in-memory model before the ONNX build (the built graph
/// is cached per chain); prompt and decoding steps act later, at inference.
pub fn load_transformed(
    spec: &str,
    base_dir: &Path,
    chain: &TransformChain,
    threads: usize,
) -> Result<Arc<dyn LanguageModel>> {
    let options = LoadOptions {
        threads,
        ..LoadOptions::default()
    };
    load_transformed_in(spec, base_dir, chain, &options)
}

/// As [`load_transformed`], on `options`' device.
pub fn load_transformed_in(
    spec: &str,
    base_dir: &Path,
    chain: &TransformChain,
    options: &LoadOptions,
) -> Result<Arc<dyn LanguageModel>> {
    if chain.weights_unchanged() {
        return load_model_on(spec, base_dir, options);
    }
    load_transformed_on(spec, chain, options)
}

/// Loads `spec` on `options`' device with the chain's weight steps applied
/// (the model as it is when the chain has none).
pub fn load_transformed_on(
    spec: &str,
    chain: &TransformChain,
    options: &LoadOptions,
) -> Result<Arc<dyn LanguageModel>> {
    if chain.weights_unchanged() {
        return crate::runtime::load_model(spec, options);
    }
    let m = crate::transform::load::load_with_transforms(spec, &chain.weight_steps(), options)?;
    Ok(Arc::new(m))
}

/// The prompt template of the chain's prompt step (None without one).
pub fn step_prompt(chain: &TransformChain) -> Result<Option<PromptTemplate>> {
    chain
        .prompt_step()
        .and_then(|s| s.prompt())
        .map(|p| p.template())
        .transpose()
}

/// The answerer of the chain's decoding step (None without one; a verifier
/// model it names is loaded with `options`).
pub fn step_answerer(chain: &TransformChain, options: &LoadOptions) -> Result<Option<Answerer>> {
    match chain.decoding_step() {
        Some(step) => Ok(step.build_decoding(options)?.map(Answerer::new)),
        None => Ok(None),
    }
}

/// The prompt template a chain asks its questions with: its prompt step's,
/// else the campaign's.
pub fn chain_prompt(spec: &CampaignSpec, chain: &TransformChain) -> Result<PromptTemplate> {
    Ok(step_prompt(chain)?.unwrap_or_else(|| spec.prompt.clone()))
}

/// How a chain's questions are answered: its decoding step, else plain
/// decoding with the campaign's settings.
pub fn chain_answerer(chain: &TransformChain, threads: usize) -> Result<Answerer> {
    let options = LoadOptions {
        threads,
        ..LoadOptions::default()
    };
    chain_answerer_on(chain, &options)
}

/// As [`chain_answerer`], loading a verifier model on `options`' device.
pub fn chain_answerer_on(chain: &TransformChain, options: &LoadOptions) -> Result<Answerer> {
    Ok(step_answerer(chain, options)?.unwrap_or_default())
}

/// Everything a cell's questions need, built once per cell.
pub struct CellContext<'a> {
    /// The model spec as the campaign names it (for the attack's embedding source).
    pub model_spec: &'a str,
    /// The attacked model, already wrapped in the store's generation cache.
    pub model: Arc<dyn LanguageModel>,
    pub transform: &'a str,
    pub dataset: &'a str,
    pub style: AnswerStyle,
    /// The chain's prompt template (its prompt transform's, or the campaign's).
    pub prompt: PromptTemplate,
    /// How answers are drawn and decided (the chain's decoding transform).
    pub answerer: Answerer,
    pub decoding: &'a Decoding,
    pub attack: &'a AttackSpec,
    pub threads: usize,
    /// Where the attack's own models (embeddings, masked LM, scorer) run.
    pub device: crate::runtime::env::Device,
}

/// Builds the runner for one cell.
pub fn cell_runner<'a>(ctx: CellContext<'a>) -> Result<Box<dyn QuestionRunner + 'a>> {
    let config = match &ctx.attack.source {
        AttackSource::File(p) => crate::attack::AttackConfig::from_file(p)?,
        AttackSource::Inline(t) => crate::attack::AttackConfig::from_toml_str(t, &ctx.attack.name)?,
    };
    let options = LoadOptions {
        threads: ctx.threads,
        device: ctx.device,
    };
    // Not `load_resources`: that loads its own model; ours is the cached one.
    let resources = crate::attack::resources::resources_around(
        ctx.model_spec,
        ctx.model.clone(),
        &config,
        &options,
    )?;
    let attacker =
        crate::attack::Attacker::new(config, resources)?.with_answerer(ctx.answerer.clone());
    let labels = crate::attack::Labels {
        dataset: ctx.dataset.into(),
        model: ctx.model_spec.into(),
        transform: ctx.transform.into(),
    };
    Ok(Box::new(AttackRunner {
        ctx,
        attacker,
        labels,
    }))
}

struct AttackRunner<'a> {
    ctx: CellContext<'a>,
    attacker: crate::attack::Attacker,
    labels: crate::attack::Labels,
}

impl QuestionRunner for AttackRunner<'_> {
    fn run(&self, item: &Item) -> Result<AttackRecord> {
        self.attacker.attack(
            item,
            self.ctx.style,
            &self.ctx.prompt,
            self.ctx.decoding,
            &self.labels,
        )
    }

    fn prepare(&self, items: &[&Item]) -> Result<()> {
        // One batched pass (per sample, under a decoding transform) fills
        // the generation cache; each attack's clean answer then reads it back.
        // Chunks keep what is done cached if the run stops part-way.
        for chunk in items.chunks(64) {
            let prompts: Vec<_> = chunk
                .iter()
                .map(|i| self.ctx.prompt.render(&i.question))
                .collect();
            self.attacker
                .answerer()
                .warm(self.ctx.model.as_ref(), &prompts, self.ctx.decoding)?;
        }
        Ok(())
    }
}

/// Validates a whole spec before any work: every model found, every dataset
/// loads, every attack config and prompt template parses. Returns the loaded
/// datasets.
pub fn validate(spec: &CampaignSpec) -> Result<Vec<DatasetData>> {
    let mut problems = Vec::new();
    for m in &spec.models {
        if let Err(e) = check_model(m, &spec.base_dir) {
            problems.push(format!("model `{m}`: {e}"));
        }
    }
    for chain in &spec.transforms {
        if let Err(e) = chain_prompt(spec, chain) {
            problems.push(format!("transform `{}`: {e}", chain.name));
        }
        if let Some(crate::transform::TransformSpec::BestOfN(c)) = chain.decoding_step() {
            if !c.verifier.is_self()
                && let Err(e) = check_model(&c.verifier.model, &spec.base_dir)
            {
                problems.push(format!("transform `{}`: verifier: {e}", chain.name));
            }
            if let Some(t) = &c.verifier.template
                && let Err(e) = crate::transform::decode::best_of_n::JudgeTemplate::from_file(t)
            {
                problems.push(format!("transform `{}`: verifier: {e}", chain.name));
            }
        }
    }
    for a in &spec.attacks {
        if let Err(e) = a.check() {
            problems.push(format!("attack `{}`: {e}", a.name));
        }
    }
    let mut datasets = Vec::new();
    for d in &spec.datasets {
        let d_name = &d.spec;
        match load_dataset(d, &spec.base_dir) {
            Ok(ds) if ds.items.is_empty() => {
                problems.push(format!("dataset `{d_name}`: no questions"))
            }
            Ok(ds) => datasets.push(ds),
            Err(e) => problems.push(format!("dataset `{d_name}`: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(datasets)
    } else {
        Err(Error::Config(format!(
            "campaign `{}` cannot start:\n  - {}",
            spec.name,
            problems.join("\n  - ")
        )))
    }
}

/// New tokens the speed measurement generates (after a short warm-up).
const PROFILE_TOKENS: usize = 64;

/// Size from the backend, and batch-1 greedy generation speed measured on a
/// fixed prompt, bypassing the generation cache. One short run per model and
/// transform: enough to rank transforms, not a benchmark (see `benchmarks/`).
pub fn profile_model(model: &dyn LanguageModel) -> Result<ModelProfile> {
    let prompt = Prompt::Text {
        text: "Count slowly from one to one hundred, writing every number in words: one, two,"
            .into(),
    };
    let warm = Decoding {
        max_new_tokens: 4,
        ..Decoding::default()
    };
    model.generate(std::slice::from_ref(&prompt), &warm)?;
    let decoding = Decoding {
        max_new_tokens: PROFILE_TOKENS,
        ..Decoding::default()
    };
    let t = std::time::Instant::now();
    let g = model.generate(std::slice::from_ref(&prompt), &decoding)?;
    let secs = t.elapsed().as_secs_f64();
    let tokens = g.first().map_or(0, |g| g.completion_tokens);
    let stats = model.stats();
    Ok(ModelProfile {
        params: stats.map(|s| s.params),
        flops_per_token: stats.map(|s| s.flops_per_token),
        decode_tokens_per_s: (tokens > 0 && secs > 0.0).then(|| tokens as f64 / secs),
    })
}

/// Keeps the most recent model loaded, so consecutive cells of one model and
/// weight chain share it (chains that differ only in prompt or decoding
/// transforms reuse the loaded model) and only one sits in memory at a time.
pub struct ModelSlot {
    /// (model spec, weight-steps key, loaded model, its size and speed)
    current: Option<(String, String, Arc<dyn LanguageModel>, ModelProfile)>,
}

impl Default for ModelSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelSlot {
    pub fn new() -> Self {
        ModelSlot { current: None }
    }

    pub fn get(
        &mut self,
        spec: &CampaignSpec,
        model: &str,
        chain: &TransformChain,
        store: &Arc<Store>,
    ) -> Result<Arc<dyn LanguageModel>> {
        let weights = if chain.weights_unchanged() {
            String::new()
        } else {
            serde_json::to_string(&chain.weight_steps()).unwrap_or_default()
        };
        let (loaded, profile) = match &self.current {
            Some((m, w, l, p)) if m == model && *w == weights => (l.clone(), p.clone()),
            _ => {
                self.current = None; // drop the previous model first
                let options = LoadOptions {
                    threads: spec.threads,
                    device: spec.device,
                };
                let l = load_transformed_in(model, &spec.base_dir, chain, &options)?;
                // Measured once per loaded weights (a resumed run reuses the stored one).
                let p = match store.model_profile(model, &chain.name)? {
                    Some(p) => p,
                    None => profile_model(l.as_ref())?,
                };
                self.current = Some((model.into(), weights, l.clone(), p.clone()));
                (l, p)
            }
        };
        if store.model_profile(model, &chain.name)?.is_none() {
            store.put_model_profile(model, &chain.name, &profile)?;
        }
        // The generation cache is per chain: its name and inference steps are in every key.
        Ok(Arc::new(CachedModel::new(
            loaded,
            store.clone(),
            &chain.cache_label(),
        )))
    }
}
