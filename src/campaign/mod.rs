//! Campaigns: models × transform chains × datasets × attacks, run into a
//! SQLite store that survives crashes, then reported.

pub mod exec;
pub mod runner;
pub mod spec;
pub mod store;

pub use runner::{RunOptions, RunStats, Shard};
pub use spec::{AttackSource, AttackSpec, CampaignSpec, TransformChain, TransformStep};
pub use store::{CachedModel, CellInfo, CellKey, MergeStats, Store, merge_dirs};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What `mscr campaign run` does, minus argument parsing.
#[derive(Clone, Debug, Default)]
pub struct CampaignRun {
    pub spec: PathBuf,
    /// Overrides the spec's `out`.
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub shard: Option<Shard>,
    pub progress: bool,
    /// Overrides the spec's device (`--device`).
    pub device: Option<crate::runtime::env::Device>,
}

#[derive(Debug)]
pub struct CampaignResult {
    pub out: PathBuf,
    pub stats: RunStats,
    /// The error that stopped the run part-way, when [`run_to_end`] ran it:
    /// the folder holds every question finished before it.
    pub error: Option<Error>,
}

/// The parts of a spec that must not change when a campaign is resumed.
fn fingerprint(spec: &CampaignSpec, shard: Option<Shard>) -> String {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        // Where the spec and output live may move between runs; what runs may not.
        o.remove("out");
        o.remove("base_dir");
        o.remove("threads");
        o.insert(
            "shard".into(),
            serde_json::Value::String(shard.map(|s| s.to_string()).unwrap_or_default()),
        );
    }
    v.to_string()
}

/// Parses, validates and runs a campaign (the caller writes its report).
/// Any error, before or during the run, is an `Err`.
pub fn run(req: &CampaignRun) -> Result<CampaignResult> {
    let mut r = run_to_end(req)?;
    match r.error.take() {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

/// As [`run`], but an error once questions are running comes back in
/// [`CampaignResult::error`] beside the folder, so the caller can still
/// report the partial run (which then says what is missing).
pub fn run_to_end(req: &CampaignRun) -> Result<CampaignResult> {
    let spec = CampaignSpec::from_file(&req.spec)?;
    run_spec_to_end(&spec, req)
}

/// As [`run_to_end`] for a spec built in memory (`mscr attack` runs a
/// one-cell campaign this way); `req.spec` is not read.
pub fn run_spec_to_end(spec: &CampaignSpec, req: &CampaignRun) -> Result<CampaignResult> {
    let mut spec = spec.clone();
    if let Some(d) = req.device {
        spec.device = d;
    }
    let out = req.out.clone().unwrap_or_else(|| spec.out.clone());
    // Everything is checked before the first question.
    let datasets = exec::validate(&spec)?;

    let store = Store::open_dir(&out)?;
    let fp = fingerprint(&spec, req.shard);
    match store.meta("spec")? {
        Some(old) if old != fp && req.resume => {
            return Err(Error::file(
                store.path(),
                "was started from a different campaign spec (or shard); resuming would mix results. \
                 Restore the original spec or choose another --out",
            ));
        }
        _ => {}
    }

    let mut cells = Vec::new();
    for model in &spec.models {
        for chain in &spec.transforms {
            for ds in &datasets {
                let items =
                    runner::select_items(&ds.items, spec.limit, spec.shuffle, spec.seed, req.shard);
                for attack in &spec.attacks {
                    cells.push(runner::CellPlan {
                        info: CellInfo {
                            key: CellKey {
                                model: model.clone(),
                                transform: chain.name.clone(),
                                dataset: ds.name.clone(),
                                attack: attack.name.clone(),
                            },
                            baseline: attack.baseline,
                        },
                        items: items.clone(),
                    });
                }
            }
        }
    }

    let options = RunOptions {
        resume: req.resume,
        progress: req.progress,
    };
    let mut slot = exec::ModelSlot::new();
    let store_for_cells = store.clone();
    // Checked before writing the fingerprint so a refused run leaves no trace.
    let already = store.record_count()?;
    if already > 0 && !req.resume {
        return Err(Error::file(
            store.path(),
            format!(
                "already holds {already} finished questions; pass --resume to continue this campaign, or choose another --out"
            ),
        ));
    }
    store.set_meta("spec", &fp)?;
    store.set_meta("name", &spec.name)?;
    let spec_ref = &spec;
    let datasets_ref = &datasets;
    let ran = runner::run_cells(
        &store,
        &cells,
        move |info| {
            let chain = spec_ref
                .transforms
                .iter()
                .find(|c| c.name == info.key.transform)
                .ok_or_else(|| Error::Other(format!("no transform `{}`", info.key.transform)))?;
            let attack = spec_ref
                .attacks
                .iter()
                .find(|a| a.name == info.key.attack)
                .ok_or_else(|| Error::Other(format!("no attack `{}`", info.key.attack)))?;
            let ds = datasets_ref
                .iter()
                .find(|d| d.name == info.key.dataset)
                .ok_or_else(|| Error::Other(format!("no dataset `{}`", info.key.dataset)))?;
            let model_spec = spec_ref
                .models
                .iter()
                .find(|m| **m == info.key.model)
                .ok_or_else(|| Error::Other(format!("no model `{}`", info.key.model)))?;
            let model = slot.get(spec_ref, model_spec, chain, &store_for_cells)?;
            exec::cell_runner(exec::CellContext {
                model_spec,
                model,
                transform: &chain.name,
                dataset: &ds.name,
                style: ds.style,
                prompt: exec::chain_prompt(spec_ref, chain)?,
                answerer: exec::chain_answerer_on(
                    chain,
                    &crate::runtime::LoadOptions {
                        threads: spec_ref.threads,
                        device: spec_ref.device,
                    },
                )?,
                decoding: &spec_ref.decoding,
                attack,
                threads: spec_ref.threads,
                device: spec_ref.device,
            })
        },
        &options,
    );
    Ok(match ran {
        Ok(stats) => CampaignResult {
            out,
            stats,
            error: None,
        },
        Err(e) => CampaignResult {
            out,
            stats: RunStats {
                interrupted: true,
                ..RunStats::default()
            },
            error: Some(e),
        },
    })
}

/// `mscr campaign merge`: combines shard folders into `out` (the caller
/// writes the report: reports read campaigns, never the reverse).
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeStats> {
    merge_dirs(inputs, out)
}
