//! `prune-heads`: removes the least important attention heads physically (rows
//! of q — and of k/v for whole key/value groups — and the matching columns of
//! o), so the built graph is smaller and faster, then optionally refits each
//! pruned layer's output projection by closed-form layer-wise least squares
//! against the unpruned teacher.
//!
//! Importance of a query head = `w_norm · n̂ + w_entropy · ê` where
//! - `n` is the Frobenius norm of the head's weight slices (its q rows, o
//!   columns, and the k/v rows of its key/value group), and
//! - `e = 1 − H̄`, with `H̄` the head's mean attention entropy on calibration
//!   text normalised by `ln(context)`. Low entropy = focused attention = more
//!   important (the choice made here; diffuse heads are the ones pruned first).
//!
//! Both terms are divided by their maximum over the heads ranked together (the
//! whole model for `scope = "global"`, one layer for `"per-layer"`).
//!
//! Grouped-query attention: `gqa = "query-heads"` (default) removes query heads
//! within groups, the same number from every group of a layer, so the layer
//! keeps all its key/value heads and `n_heads` stays a multiple of
//! `n_kv_heads`; `gqa = "kv-groups"` removes whole groups (a key/value head and
//! all its query heads). Every layer keeps at least one head per group
//! (query-heads) or one group (kv-groups).

use super::calib::{self, Needs, from_faer, to_faer};
use super::{Calibration, LayerRecord, Transform, TransformRecord, stable_key};
use crate::error::{Error, Result};
use crate::model::{Layer, Linear, Matrix, Model};
use faer::Mat;
use faer::linalg::solvers::Solve;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// One ratio over all heads of the model; layers lose different numbers.
    #[default]
    Global,
    /// The ratio applied to every layer separately.
    PerLayer,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GqaMode {
    /// Query heads within groups, uniformly per layer.
    #[default]
    QueryHeads,
    /// Whole key/value groups.
    KvGroups,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distill {
    /// No recovery: the kept heads' weights are left as they were.
    None,
    /// Closed-form layer-wise least-squares distillation of o (ridge-regularised).
    #[default]
    LayerwiseLs,
}

fn half() -> f64 {
    0.5
}
fn default_ridge() -> f64 {
    1e-2
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneHeadsConfig {
    /// Fraction of query heads to remove (rounded to whole pruning units).
    pub ratio: f64,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub gqa: GqaMode,
    #[serde(default = "half")]
    pub w_norm: f64,
    #[serde(default = "half")]
    pub w_entropy: f64,
    #[serde(default)]
    pub distill: Distill,
    /// Ridge term of the refit, relative to the mean diagonal of the kept
    /// activations' second-moment matrix.
    #[serde(default = "default_ridge")]
    pub ridge: f64,
}

impl PruneHeadsConfig {
    pub fn new(ratio: f64) -> Self {
        PruneHeadsConfig {
            ratio,
            scope: Scope::default(),
            gqa: GqaMode::default(),
            w_norm: half(),
            w_entropy: half(),
            distill: Distill::default(),
            ridge: default_ridge(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("prune-heads: {m}")));
        if !(0.0..1.0).contains(&self.ratio) {
            return bad(format!("ratio {} must be in [0, 1)", self.ratio));
        }
        if self.w_norm < 0.0 || self.w_entropy < 0.0 || self.w_norm + self.w_entropy <= 0.0 {
            return bad("w_norm and w_entropy must be ≥ 0 and not both 0".into());
        }
        if !(self.ridge >= 0.0 && self.ridge.is_finite()) {
            return bad(format!("ridge {} must be ≥ 0", self.ridge));
        }
        Ok(())
    }

    fn needs_calibration(&self) -> bool {
        self.w_entropy > 0.0 || self.distill == Distill::LayerwiseLs
    }
}

/// A removable unit of one layer: heads removed together.
struct Unit {
    layer: usize,
    heads: Vec<usize>,
    cost: f64,
}

impl Transform for PruneHeadsConfig {
    fn name(&self) -> String {
        let s = serde_json::to_string(self).unwrap_or_default();
        format!("prune-heads{s}")
    }

    fn apply(&self, model: &Model, calib: &Calibration) -> Result<(Model, TransformRecord)> {
        self.validate()?;
        let settings = serde_json::to_value(self).map_err(|e| Error::Other(e.to_string()))?;
        let mut rec = TransformRecord::start("prune-heads", settings, model);
        let hd = model.config.head_dim;

        // Calibration statistics (teacher activations, every layer).
        let mut entropy: Vec<Option<Vec<f64>>> = vec![None; model.layers.len()];
        let mut covs: Vec<Option<Mat<f64>>> = (0..model.layers.len()).map(|_| None).collect();
        if self.needs_calibration() {
            let needs = Needs {
                head_entropy: self.w_entropy > 0.0,
                o_in_cov: self.distill == Distill::LayerwiseLs,
                ..Default::default()
            };
            calib::forward(model, calib, needs, |a| {
                entropy[a.layer] = a.head_entropy;
                covs[a.layer] = a.o_in_cov;
                Ok(())
            })?;
            rec.calibration_tokens = calib.tokens();
        }

        // Raw scores per layer and head.
        let norms: Vec<Vec<f64>> = model.layers.iter().map(|l| head_norms(l, hd)).collect();
        let ent_imp: Vec<Vec<f64>> = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| match &entropy[i] {
                Some(e) => e.iter().map(|h| (1.0 - h).max(0.0)).collect(),
                None => vec![0.0; l.n_heads],
            })
            .collect();
        let importance: Vec<Vec<f64>> = match self.scope {
            Scope::Global => {
                let mn = max_of(norms.iter().flatten());
                let me = max_of(ent_imp.iter().flatten());
                norms
                    .iter()
                    .zip(&ent_imp)
                    .map(|(n, e)| self.combine(n, e, mn, me))
                    .collect()
            }
            Scope::PerLayer => norms
                .iter()
                .zip(&ent_imp)
                .map(|(n, e)| self.combine(n, e, max_of(n.iter()), max_of(e.iter())))
                .collect(),
        };

        // Units per layer, cheapest first.
        let units: Vec<Vec<Unit>> = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer_units(i, l, &importance[i]))
            .collect();
        let mut removed: Vec<Vec<usize>> = vec![Vec::new(); model.layers.len()];
        match self.scope {
            Scope::PerLayer => {
                for (i, l) in model.layers.iter().enumerate() {
                    let Some(size) = units[i].first().map(|u| u.heads.len()) else {
                        continue;
                    };
                    let want = (self.ratio * l.n_heads as f64 / size as f64).round() as usize;
                    for u in units[i].iter().take(want) {
                        removed[i].extend(&u.heads);
                    }
                }
            }
            Scope::Global => {
                let total: usize = model.layers.iter().map(|l| l.n_heads).sum();
                let target = (self.ratio * total as f64).round() as usize;
                let mut next = vec![0usize; model.layers.len()];
                let mut count = 0usize;
                while count < target {
                    let best = (0..model.layers.len())
                        .filter_map(|i| units[i].get(next[i]).map(|u| (i, u)))
                        .min_by(|a, b| a.1.cost.total_cmp(&b.1.cost).then(a.0.cmp(&b.0)));
                    let Some((i, u)) = best else { break };
                    // Stop where one more unit would overshoot by more than it closes.
                    if (count + u.heads.len()).saturating_sub(target) > target - count {
                        break;
                    }
                    removed[u.layer].extend(&u.heads);
                    count += u.heads.len();
                    next[i] += 1;
                }
            }
        }

        let mut out = model.clone();
        for (i, layer) in model.layers.iter().enumerate() {
            let mut rem = removed[i].clone();
            rem.sort_unstable();
            let mut lr = LayerRecord {
                layer: i,
                heads_before: layer.n_heads,
                kv_heads_before: layer.n_kv_heads,
                heads_removed: rem.clone(),
                head_importance: importance[i].clone(),
                ..Default::default()
            };
            if !rem.is_empty() {
                let (mut new, kept_cols) = prune_layer(layer, &rem, self.gqa, hd);
                if let (Distill::LayerwiseLs, Some(g)) = (self.distill, &covs[i]) {
                    let (wo, before, after) = refit_o(&layer.o, g, &kept_cols, self.ridge)?;
                    lr.block_error_pruned = Some(before);
                    lr.block_error_refit = Some(after);
                    new.o = Linear::Dense {
                        w: wo,
                        bias: layer.o.bias().cloned(),
                    };
                }
                out.layers[i] = new;
            }
            lr.heads_after = out.layers[i].n_heads;
            lr.kv_heads_after = out.layers[i].n_kv_heads;
            rec.layers.push(lr);
        }

        rec.notes.push(match self.gqa {
            GqaMode::QueryHeads => "GQA: query heads pruned within groups, the same number per group in a layer; key/value heads kept".into(),
            GqaMode::KvGroups => "GQA: whole key/value groups pruned (a key/value head with all its query heads)".into(),
        });
        rec.notes.push(
            "head importance = w_norm·(Frobenius norm of the head's q/k/v/o slices, normalised by the max) + w_entropy·(1 − normalised attention entropy, normalised by the max): low entropy counts as important"
                .into(),
        );
        match self.distill {
            Distill::LayerwiseLs => rec.notes.push(
                "recovery: closed-form layer-wise least-squares distillation — each pruned layer's o projection refit (ridge) so the attention block output matches the unpruned teacher's on calibration activations; logit distillation by training is not done here"
                    .into(),
            ),
            Distill::None => rec.notes.push("recovery: none".into()),
        }
        if model
            .layers
            .iter()
            .any(|l| matches!(l.o, Linear::LowRank { .. }))
            && self.distill == Distill::LayerwiseLs
        {
            rec.notes
                .push("a factorised o projection was refit as a dense matrix".into());
        }
        let cal = self.needs_calibration().then_some(calib);
        let key = stable_key(&self.name(), cal);
        rec.finish(&mut out, key);
        Ok((out, rec))
    }
}

impl PruneHeadsConfig {
    fn combine(&self, n: &[f64], e: &[f64], max_n: f64, max_e: f64) -> Vec<f64> {
        n.iter()
            .zip(e)
            .map(|(n, e)| {
                let nn = if max_n > 0.0 { n / max_n } else { 0.0 };
                let ee = if max_e > 0.0 { e / max_e } else { 0.0 };
                self.w_norm * nn + self.w_entropy * ee
            })
            .collect()
    }

    fn layer_units(&self, layer: usize, l: &Layer, imp: &[f64]) -> Vec<Unit> {
        let group = l.n_heads / l.n_kv_heads.max(1);
        match self.gqa {
            GqaMode::QueryHeads => {
                // Each group's heads by importance; round r removes every group's r-th weakest.
                let sorted: Vec<Vec<usize>> = (0..l.n_kv_heads)
                    .map(|g| {
                        let mut hs: Vec<usize> = (g * group..(g + 1) * group).collect();
                        hs.sort_by(|&a, &b| imp[a].total_cmp(&imp[b]).then(a.cmp(&b)));
                        hs
                    })
                    .collect();
                let mut units: Vec<Unit> = (0..group.saturating_sub(1))
                    .map(|r| {
                        let heads: Vec<usize> = sorted.iter().map(|s| s[r]).collect();
                        let cost = heads.iter().map(|&h| imp[h]).sum::<f64>() / heads.len() as f64;
                        Unit { layer, heads, cost }
                    })
                    .collect();
                // Later rounds never cost less in a layer (keeps the greedy order valid).
                for r in 1..units.len() {
                    units[r].cost = units[r].cost.max(units[r - 1].cost);
                }
                units
            }
            GqaMode::KvGroups => {
                let mut groups: Vec<Unit> = (0..l.n_kv_heads)
                    .map(|g| {
                        let heads: Vec<usize> = (g * group..(g + 1) * group).collect();
                        let cost = heads.iter().map(|&h| imp[h]).sum::<f64>() / group as f64;
                        Unit { layer, heads, cost }
                    })
                    .collect();
                groups.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.heads[0].cmp(&b.heads[0])));
                groups.pop(); // the most important group always stays
                groups
            }
        }
    }
}

fn max_of<'a>(it: impl Iterator<Item = &'a f64>) -> f64 {
    it.cloned().fold(0.0, f64::max)
}

fn sq_norm(m: &Matrix) -> f64 {
    m.data.iter().map(|v| (*v as f64) * (*v as f64)).sum()
}

/// Frobenius norm of each query head's slices: its q rows, its o columns and
/// its group's k and v rows.
fn head_norms(l: &Layer, hd: usize) -> Vec<f64> {
    let group = l.n_heads / l.n_kv_heads.max(1);
    let (q, k, v, o) = (
        l.q.to_dense(),
        l.k.to_dense(),
        l.v.to_dense(),
        l.o.to_dense(),
    );
    let rows = |h: usize| (h * hd..(h + 1) * hd).collect::<Vec<_>>();
    (0..l.n_heads)
        .map(|h| {
            let g = h / group;
            let s = sq_norm(&q.select_rows(&rows(h)))
                + sq_norm(&k.select_rows(&rows(g)))
                + sq_norm(&v.select_rows(&rows(g)))
                + sq_norm(&o.select_cols(&rows(h)));
            s.sqrt()
        })
        .collect()
}

fn select_rows(l: &Linear, rows: &[usize]) -> Linear {
    let bias = l.bias().map(|b| rows.iter().map(|&r| b[r]).collect());
    match l {
        Linear::Dense { w, .. } => Linear::Dense {
            w: w.select_rows(rows),
            bias,
        },
        Linear::LowRank { u, v, .. } => Linear::LowRank {
            u: u.select_rows(rows),
            v: v.clone(),
            bias,
        },
    }
}

fn select_cols(l: &Linear, cols: &[usize]) -> Linear {
    let bias = l.bias().cloned();
    match l {
        Linear::Dense { w, .. } => Linear::Dense {
            w: w.select_cols(cols),
            bias,
        },
        Linear::LowRank { u, v, .. } => Linear::LowRank {
            u: u.clone(),
            v: v.select_cols(cols),
            bias,
        },
    }
}

/// Removes the listed query heads (and, in kv-groups mode, their groups'
/// key/value heads). Returns the new layer and the kept o-input columns.
pub fn prune_layer(l: &Layer, removed: &[usize], mode: GqaMode, hd: usize) -> (Layer, Vec<usize>) {
    let group = l.n_heads / l.n_kv_heads.max(1);
    let kept: Vec<usize> = (0..l.n_heads).filter(|h| !removed.contains(h)).collect();
    let dims =
        |hs: &[usize]| -> Vec<usize> { hs.iter().flat_map(|&h| h * hd..(h + 1) * hd).collect() };
    let kept_dims = dims(&kept);
    let mut new = l.clone();
    new.q = select_rows(&l.q, &kept_dims);
    new.o = select_cols(&l.o, &kept_dims);
    new.n_heads = kept.len();
    if mode == GqaMode::KvGroups {
        let kept_groups: Vec<usize> = (0..l.n_kv_heads)
            .filter(|g| kept.iter().any(|h| h / group == *g))
            .collect();
        let gd = dims(&kept_groups);
        new.k = select_rows(&l.k, &gd);
        new.v = select_rows(&l.v, &gd);
        new.n_kv_heads = kept_groups.len();
    }
    (new, kept_dims)
}

/// Refits o on the kept columns: minimise ‖A W_oᵀ − A_K W′ᵀ‖² + λ‖W′‖² with
/// `G = AᵀA` (normal equations, Cholesky). Returns W′ and the relative block
/// errors without and with the refit.
fn refit_o(o: &Linear, g: &Mat<f64>, kept: &[usize], ridge: f64) -> Result<(Matrix, f64, f64)> {
    let wo = to_faer(&o.to_dense()); // [hidden, d]
    let k = kept.len();
    let d = g.nrows();
    let gkk = Mat::<f64>::from_fn(k, k, |i, j| g[(kept[i], kept[j])]);
    let gka = Mat::<f64>::from_fn(k, d, |i, j| g[(kept[i], j)]);
    let teacher = trace_prod(&(&wo * g), &wo);
    let err = |wp: &Mat<f64>| -> f64 {
        let cross = trace_prod(&(wp * &gka), &wo);
        let own = trace_prod(&(wp * &gkk), wp);
        if teacher > 0.0 {
            ((teacher - 2.0 * cross + own) / teacher).max(0.0)
        } else {
            0.0
        }
    };
    let w_pruned = Mat::<f64>::from_fn(wo.nrows(), k, |i, j| wo[(i, kept[j])]);
    let before = err(&w_pruned);

    let mean_diag = (0..k).map(|i| gkk[(i, i)]).sum::<f64>() / k.max(1) as f64;
    let lambda = ridge * mean_diag.max(1e-12);
    let mut a = gkk.clone();
    for i in 0..k {
        a[(i, i)] += lambda;
    }
    let mut rhs = &gka * wo.transpose(); // [k, hidden]
    let llt = a.llt(faer::Side::Lower).map_err(|e| {
        Error::Other(format!(
            "prune-heads refit: the kept heads' activation matrix is singular ({e:?}); raise ridge"
        ))
    })?;
    llt.solve_in_place(rhs.as_mut());
    let w_new = rhs.transpose().to_owned();
    let after = err(&w_new);
    // Least squares never does worse than keeping the old columns, up to the ridge.
    if after > before {
        return Ok((from_faer(w_pruned.as_ref()), before, before));
    }
    Ok((from_faer(w_new.as_ref()), before, after))
}

/// `tr(A Bᵀ)` = Σ A∘B for equal shapes.
fn trace_prod(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s
}
