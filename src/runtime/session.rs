//! Running a built decoder graph on ONNX Runtime: batched prefill and decode
//! with a shared-buffer KV cache (IO binding), greedy and seeded sampling, and
//! teacher-forced scoring. Token-level: text, chat templates and stop strings
//! are the caller's.

use super::decoder::GraphInfo;
use super::env::Device;
use crate::error::{Error, Result};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::Tensor;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::Mutex;

/// Session settings.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    pub device: Device,
    /// Intra-op threads; 0 = ONNX Runtime's default.
    pub threads: usize,
}

/// Token-level sampling settings.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub max_new_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    /// Keep generating through end-of-sequence tokens (benchmarks).
    pub ignore_eos: bool,
}

/// One generated sequence, token level.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenOutput {
    pub tokens: Vec<u32>,
    /// Log-probability of each token under the model (temperature 1).
    pub logprobs: Vec<f32>,
    /// True when generation ended on an end-of-sequence token.
    pub hit_eos: bool,
}

pub struct DecoderSession {
    session: Mutex<Session>,
    pub info: GraphInfo,
}

/// Logit rows past this many floats are computed in several passes.
const MAX_LOGIT_FLOATS: usize = 64 << 20;

impl DecoderSession {
    /// Opens `dir/model.onnx` with `info` describing it.
    pub fn open(dir: &Path, info: GraphInfo, options: &SessionOptions) -> Result<Self> {
        let path = dir.join("model.onnx");
        let session = super::env::open_session(&path, options.device, options.threads, true)?;
        Ok(DecoderSession {
            session: Mutex::new(session),
            info,
        })
    }

    /// Writes ONNX Runtime's profile of this session (started when
    /// `MSCR_ORT_PROFILE` was set at open) and returns its path.
    pub fn end_profiling(&self) -> Result<String> {
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("decoder session lock poisoned".into()))?;
        Ok(session.end_profiling()?)
    }

    fn max_len_for(&self, needed: usize) -> Result<usize> {
        if needed > self.info.max_positions {
            return Err(Error::Config(format!(
                "prompt plus completion needs {needed} positions but the model's context is {} \
                 tokens: shorten the prompt or lower max new tokens",
                self.info.max_positions
            )));
        }
        Ok(needed)
    }

    /// Generates for a batch of tokenised prompts. `stop` is called after each
    /// step with the row and its tokens so far; returning true ends that row
    /// (stop strings). Rows end on EOS or `max_new_tokens`.
    pub fn generate(
        &self,
        prompts: &[Vec<u32>],
        sampling: &Sampling,
        stop: &mut dyn FnMut(usize, &[u32]) -> bool,
    ) -> Result<Vec<TokenOutput>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
            return Err(Error::Config(format!("prompt {i} encodes to no tokens")));
        }
        let b = prompts.len();
        let longest = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        let max_len = self.max_len_for(longest + sampling.max_new_tokens)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned".into()))?;
        let mut state = KvState::new(&session, &self.info, b, max_len, true)?;
        let mut rows = Rows::new(prompts, sampling);
        let mut lens: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
        let pad = self.info.pad_token_id.unwrap_or(0) as i64;

        // Prefill: right-padded prompts, each row's logits at its last real token.
        let mut ids = vec![pad; b * longest];
        for (r, p) in prompts.iter().enumerate() {
            for (j, t) in p.iter().enumerate() {
                ids[r * longest + j] = *t as i64;
            }
        }
        let seqlens: Vec<i32> = lens.iter().map(|l| *l as i32 - 1).collect();
        let index: Vec<i64> = lens
            .iter()
            .enumerate()
            .map(|(r, l)| (r * longest + l - 1) as i64)
            .collect();
        let prompt_lens = lens.iter().map(|&l| l as i64).collect();
        state.step(
            &mut session,
            Step::prefill(ids, b, longest, seqlens, index, prompt_lens),
        )?;

        let vocab = self.info.vocab_size;
        let eos = &self.info.eos_token_ids;
        // `slots[i]` is the prompt row held in batch slot i. Finished rows are
        // dropped from the batch (their cache rows copied out) so the steps
        // that follow cost what the rows still generating need: outputs range
        // from a few dozen tokens to the limit, and a batch that kept stepping
        // finished rows ran at the cost of its longest one throughout.
        let mut slots: Vec<usize> = (0..b).collect();
        let mut slot_of: Vec<usize> = (0..b).collect();
        loop {
            let logits = state.fixed_logits()?;
            let Some(next) = rows.advance(
                |r| {
                    let s = slot_of[r];
                    &logits[s * vocab..(s + 1) * vocab]
                },
                sampling,
                eos,
                pad,
                stop,
            ) else {
                break;
            };
            let keep: Vec<usize> = (0..slots.len())
                .filter(|&s| !rows.is_done(slots[s]))
                .collect();
            if keep.len() < slots.len() {
                state = state.keep_rows(&session, &self.info, &keep, max_len)?;
                slots = keep.iter().map(|&s| slots[s]).collect();
                for (s, &r) in slots.iter().enumerate() {
                    slot_of[r] = s;
                }
            }
            // Decode step: every row still generating appends one token at its own position.
            let seqlens: Vec<i32> = slots.iter().map(|&r| lens[r] as i32).collect();
            let positions = seqlens.iter().map(|&p| p as i64).collect();
            let prompt_lens = slots.iter().map(|&r| prompts[r].len() as i64).collect();
            for &r in &slots {
                lens[r] += 1;
            }
            let total = slots.iter().map(|&r| lens[r]).max().unwrap_or(1) as i32;
            let n = slots.len();
            let step = Step {
                ids: slots.iter().map(|&r| next[r]).collect(),
                batch: n,
                seq: 1,
                seqlens,
                total,
                index: (0..n as i64).collect(),
                positions,
                prompt_lens,
            };
            state.step(&mut session, step)?;
        }
        Ok(rows.outs)
    }

    /// Log-probability of each target token given its prefix, per sequence:
    /// `seqs[i] = (tokens, start)` scores `tokens[start..]` given `tokens[..start]`.
    pub fn score(&self, seqs: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(seqs.len());
        // Group rows so each pass's logits stay bounded in memory.
        let vocab = self.info.vocab_size;
        let mut i = 0;
        while i < seqs.len() {
            let mut j = i;
            let mut floats = 0;
            while j < seqs.len() {
                let n = seqs[j].0.len().saturating_sub(seqs[j].1);
                if j > i && floats + n * vocab > MAX_LOGIT_FLOATS {
                    break;
                }
                floats += n * vocab;
                j += 1;
            }
            out.extend(self.score_batch(&seqs[i..j])?);
            i = j;
        }
        Ok(out)
    }

    /// Raw logits at every position of one sequence (`[len][vocab]`), for
    /// comparing graphs; `score` is the bounded-memory way to rate text.
    pub fn logits(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let n = tokens.len();
        let max_len = self.max_len_for(n)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned".into()))?;
        let mut state = KvState::new(&session, &self.info, 1, max_len, false)?;
        let ids = tokens.iter().map(|t| *t as i64).collect();
        let index = (0..n as i64).collect();
        let flat = state.run(
            &mut session,
            // The whole sequence is the prompt.
            Step::prefill(ids, 1, n, vec![n as i32 - 1], index, vec![n as i64]),
        )?;
        Ok(flat
            .chunks_exact(self.info.vocab_size)
            .map(<[f32]>::to_vec)
            .collect())
    }

    fn score_batch(&self, seqs: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        let b = seqs.len();
        for (k, (t, s)) in seqs.iter().enumerate() {
            if *s == 0 || *s > t.len() {
                return Err(Error::Config(format!(
                    "scoring row {k}: the prefix must hold at least one token and fit the sequence"
                )));
            }
        }
        let longest = seqs.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        let max_len = self.max_len_for(longest)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Runtime("session lock poisoned".into()))?;
        let mut state = KvState::new(&session, &self.info, b, max_len, false)?;
        let pad = self.info.pad_token_id.unwrap_or(0) as i64;
        let mut ids = vec![pad; b * longest];
        let mut index = Vec::new();
        for (r, (t, s)) in seqs.iter().enumerate() {
            for (j, tok) in t.iter().enumerate() {
                ids[r * longest + j] = *tok as i64;
            }
            // Logits at position p predict token p + 1.
            for p in (*s - 1)..(t.len() - 1) {
                index.push((r * longest + p) as i64);
            }
        }
        let seqlens: Vec<i32> = seqs.iter().map(|(t, _)| t.len() as i32 - 1).collect();
        if index.is_empty() {
            return Ok(vec![Vec::new(); b]);
        }
        // The prefix is the prompt; the scored tokens are generated ones.
        let prompt_lens = seqs.iter().map(|(_, s)| *s as i64).collect();
        let logits = state.run(
            &mut session,
            Step::prefill(ids, b, longest, seqlens, index, prompt_lens),
        )?;
        let vocab = self.info.vocab_size;
        let mut out = Vec::with_capacity(b);
        let mut row = 0;
        for (t, s) in seqs {
            let mut lps = Vec::with_capacity(t.len() - s);
            for target in &t[*s..] {
                let l = &logits[row * vocab..(row + 1) * vocab];
                lps.push(log_softmax_at(l, *target as usize));
                row += 1;
            }
            out.push(lps);
        }
        Ok(out)
    }
}

/// The rows of a generating batch: each row's sampler, output so far, and
/// whether it has ended (EOS, max new tokens or a stop string). Shared by
/// the fused-graph and Optimum decoders.
pub(crate) struct Rows {
    rngs: Vec<ChaCha8Rng>,
    pub outs: Vec<TokenOutput>,
    done: Vec<bool>,
}

impl Rows {
    pub fn new(prompts: &[Vec<u32>], sampling: &Sampling) -> Self {
        Rows {
            rngs: prompts.iter().map(|p| row_rng(sampling.seed, p)).collect(),
            outs: prompts
                .iter()
                .map(|_| TokenOutput {
                    tokens: Vec::new(),
                    logprobs: Vec::new(),
                    hit_eos: false,
                })
                .collect(),
            done: vec![sampling.max_new_tokens == 0; prompts.len()],
        }
    }

    /// Whether row `r` has ended.
    pub fn is_done(&self, r: usize) -> bool {
        self.done[r]
    }

    /// Picks every unfinished row's next token from its logits (`logits_of(row)`)
    /// and records it. Returns the ids to feed next (`pad` for finished rows),
    /// or None once every row has ended.
    pub fn advance<'a>(
        &mut self,
        logits_of: impl Fn(usize) -> &'a [f32],
        sampling: &Sampling,
        eos: &[u32],
        pad: i64,
        stop: &mut dyn FnMut(usize, &[u32]) -> bool,
    ) -> Option<Vec<i64>> {
        let mut next = vec![pad; self.outs.len()];
        for (r, out) in self.outs.iter_mut().enumerate() {
            if self.done[r] {
                continue;
            }
            let (tok, lp) = pick_token(logits_of(r), sampling, &mut self.rngs[r]);
            next[r] = tok as i64;
            if eos.contains(&tok) && !sampling.ignore_eos {
                out.hit_eos = true;
                self.done[r] = true;
                continue;
            }
            out.tokens.push(tok);
            out.logprobs.push(lp);
            if out.tokens.len() >= sampling.max_new_tokens || stop(r, &out.tokens) {
                self.done[r] = true;
            }
        }
        (!self.done.iter().all(|d| *d)).then_some(next)
    }
}

/// The inputs of one run: `ids` `[batch, seq]`, each row's total length
/// after this run − 1 (`seqlens`), the batch's longest (`total`), and the
/// flat positions whose logits are wanted (`index`); each token's position
/// and each row's prompt length, for graphs with a position-dependent adapter.
struct Step {
    ids: Vec<i64>,
    batch: usize,
    seq: usize,
    seqlens: Vec<i32>,
    total: i32,
    index: Vec<i64>,
    positions: Vec<i64>,
    prompt_lens: Vec<i64>,
}

impl Step {
    /// A first run over right-padded prompts of length `seq`.
    fn prefill(
        ids: Vec<i64>,
        batch: usize,
        seq: usize,
        seqlens: Vec<i32>,
        index: Vec<i64>,
        prompt_lens: Vec<i64>,
    ) -> Self {
        Step {
            ids,
            batch,
            seq,
            seqlens,
            total: seq as i32,
            index,
            positions: (0..batch).flat_map(|_| 0..seq as i64).collect(),
            prompt_lens,
        }
    }
}

/// The KV cache of one batch, bound as both past and present.
struct KvState {
    binding: ort::session::IoBinding,
    /// Per layer, keys then values `[batch, kv_heads, max_len, head_dim]`,
    /// bound as both past and present; re-packed when rows leave the batch.
    kv: Vec<Tensor<f32>>,
    /// Generation's `[batch, vocab]` logits, bound once: ORT writes each
    /// step's logits into it and the token pick reads them in place (a fresh
    /// output per step cost a 3 MB allocation and copy at batch 16).
    logits: Option<Tensor<f32>>,
    /// The graph takes `position_ids` and `prompt_lens`.
    positions: bool,
}

impl KvState {
    /// `fixed_logits`: every run returns one logits row per batch row
    /// (generation); otherwise each run's output is allocated to its size.
    fn new(
        session: &Session,
        info: &GraphInfo,
        batch: usize,
        max_len: usize,
        fixed_logits: bool,
    ) -> Result<Self> {
        let mut binding = session.create_binding()?;
        let alloc = session.allocator();
        let mut kv = Vec::with_capacity(info.n_layers * 2);
        for l in 0..info.n_layers {
            for (past, present) in [
                (format!("past_key_{l}"), format!("present_key_{l}")),
                (format!("past_value_{l}"), format!("present_value_{l}")),
            ] {
                let mut t =
                    Tensor::<f32>::new(alloc, [batch, info.kv_heads[l], max_len, info.head_dim])?;
                // Fresh buffers hold garbage; zero them so no NaN can leak through masking.
                let (_, data) = t.try_extract_tensor_mut::<f32>()?;
                data.fill(0.0);
                binding.bind_input(&past, &t)?;
                binding.bind_output(&present, &mut t)?;
                kv.push(t);
            }
        }
        let logits = if fixed_logits {
            let mut t = Tensor::<f32>::new(alloc, [batch, info.vocab_size])?;
            binding.bind_output("logits", &mut t)?;
            Some(t)
        } else {
            let cpu = MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::CPUOutput,
            )?;
            binding.bind_output_to_device("logits", &cpu)?;
            None
        };
        Ok(KvState {
            binding,
            kv,
            logits,
            positions: info.positions,
        })
    }

    /// A cache holding only the batch rows `keep` (in that order), with their
    /// keys and values so far; the fixed logits buffer shrinks to match.
    fn keep_rows(
        &self,
        session: &Session,
        info: &GraphInfo,
        keep: &[usize],
        max_len: usize,
    ) -> Result<Self> {
        let mut next = KvState::new(session, info, keep.len(), max_len, self.logits.is_some())?;
        for (old, new) in self.kv.iter().zip(next.kv.iter_mut()) {
            let (_, src) = old.try_extract_tensor::<f32>()?;
            let (_, dst) = new.try_extract_tensor_mut::<f32>()?;
            let row = dst.len() / keep.len().max(1);
            for (i, &k) in keep.iter().enumerate() {
                dst[i * row..(i + 1) * row].copy_from_slice(&src[k * row..(k + 1) * row]);
            }
        }
        Ok(next)
    }

    fn bind_step(&mut self, s: Step) -> Result<()> {
        let n = s.index.len();
        self.binding
            .bind_input("input_ids", &Tensor::from_array(([s.batch, s.seq], s.ids))?)?;
        self.binding
            .bind_input("seqlens_k", &Tensor::from_array(([s.batch], s.seqlens))?)?;
        self.binding.bind_input(
            "total_sequence_length",
            &Tensor::from_array((Vec::<usize>::new(), vec![s.total]))?,
        )?;
        self.binding
            .bind_input("logits_index", &Tensor::from_array(([n], s.index))?)?;
        if self.positions {
            self.binding.bind_input(
                "position_ids",
                &Tensor::from_array(([s.batch, s.seq], s.positions))?,
            )?;
            self.binding.bind_input(
                "prompt_lens",
                &Tensor::from_array(([s.batch], s.prompt_lens))?,
            )?;
        }
        Ok(())
    }

    /// One run into the fixed logits buffer; read it with [`KvState::fixed_logits`].
    fn step(&mut self, session: &mut Session, s: Step) -> Result<()> {
        if self.logits.is_none() || s.index.len() != s.batch {
            return Err(Error::Runtime(
                "internal: a fixed-logits step needs one logits row per batch row".into(),
            ));
        }
        self.bind_step(s)?;
        session.run_binding(&self.binding)?;
        Ok(())
    }

    /// The logits the last [`KvState::step`] wrote, `[batch × vocab]`.
    fn fixed_logits(&self) -> Result<&[f32]> {
        let t = self
            .logits
            .as_ref()
            .ok_or_else(|| Error::Runtime("internal: no fixed logits buffer".into()))?;
        Ok(t.try_extract_tensor::<f32>()?.1)
    }

    /// One run whose logits (one row per `index` entry) are returned.
    fn run(&mut self, session: &mut Session, s: Step) -> Result<Vec<f32>> {
        self.bind_step(s)?;
        let outputs = session.run_binding(&self.binding)?;
        let logits = outputs
            .get("logits")
            .ok_or_else(|| Error::Runtime("graph returned no logits".into()))?;
        let (_, data) = logits.try_extract_tensor::<f32>()?;
        Ok(data.to_vec())
    }
}

pub(crate) fn log_softmax_at(logits: &[f32], target: usize) -> f32 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + sum_exp(logits, max).ln();
    logits.get(target).map_or(f32::NEG_INFINITY, |v| *v - lse)
}

/// Σ e^(v − max) over a vocabulary of logits. Every generated token and every
/// scored position needs one, so this runs tens of thousands of times per
/// token: with [`exp_le0`] and 16 independent partial sums the compiler
/// vectorises it (6× faster than libm's scalar `exp` in a release build).
/// Relative error about 1e-6, far below what log-probs are used for.
fn sum_exp(logits: &[f32], max: f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = logits.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += exp_le0(v - max);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|v| exp_le0(v - max)).sum::<f32>()
}

/// e^x for x ≤ 0 without a library call: 2^n · e^f with n = round(x·log2 e)
/// and |f| ≤ ln2/2, e^f by its Taylor polynomial to degree 6 (relative error
/// under 4e-6 over [−87, 0]; below −87 it returns e^−87 ≈ 1.6e-38, nothing
/// beside the maximum's term of 1).
#[inline(always)]
fn exp_le0(x: f32) -> f32 {
    let t = x.max(-87.0) * std::f32::consts::LOG2_E;
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low
    // mantissa bits (no `round` call, which baseline x86-64 cannot inline).
    const MAGIC: f32 = 12_582_912.0;
    let tr = t + MAGIC;
    let n = tr.to_bits() as i32 - MAGIC.to_bits() as i32;
    let f = (t - (tr - MAGIC)) * std::f32::consts::LN_2;
    let p = 1.0
        + f * (1.0
            + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f / 720.0)))));
    f32::from_bits(((n + 127) as u32) << 23) * p
}

/// The sampler of one row, fixed by the seed and the row's prompt alone, so a
/// prompt's samples do not depend on the batch it runs in (its position, its
/// neighbours, a resumed campaign's regrouping, a server's other requests).
/// The same prompt with the same seed gives the same sample; callers that
/// want several samples of one prompt give each its own seed.
pub(crate) fn row_rng(seed: u64, prompt: &[u32]) -> ChaCha8Rng {
    // SplitMix64 steps over the tokens: stable across Rust releases, unlike
    // the standard library's hasher.
    let mut h = splitmix64(seed);
    for t in prompt {
        h = splitmix64(h ^ *t as u64);
    }
    ChaCha8Rng::seed_from_u64(splitmix64(h ^ prompt.len() as u64))
}

/// One SplitMix64 step: a well-mixed 64-bit value from any input.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The first position of the largest logit, and that logit. Two passes (a
/// 16-lane maximum the compiler vectorises, then the first match) beat one
/// scalar pass that carries the position (batch 16 picks 16 rows a step).
fn argmax(logits: &[f32]) -> (usize, f32) {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = logits.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = if *v > *a { *v } else { *a };
        }
    }
    let max = acc
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m });
    match logits.iter().position(|v| *v == max) {
        Some(i) => (i, max),
        // Empty, or nothing above −∞ (all NaN): the first token, as before.
        None => (0, logits.first().copied().unwrap_or(f32::NEG_INFINITY)),
    }
}

/// Picks the next token: argmax when greedy, else temperature + nucleus sampling.
/// Returns the token and its log-probability at temperature 1.
pub(crate) fn pick_token(logits: &[f32], s: &Sampling, rng: &mut ChaCha8Rng) -> (u32, f32) {
    let (best, max) = argmax(logits);
    let lse = max + sum_exp(logits, max).ln();
    if s.temperature <= 0.0 {
        return (best as u32, logits[best] - lse);
    }
    let t = s.temperature;
    let mut probs: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, v)| (i, (((v - max) / t) as f64).exp()))
        .collect();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = probs.iter().map(|p| p.1).sum();
    let mut keep = probs.len();
    if s.top_p < 1.0 {
        let mut acc = 0.0;
        for (k, p) in probs.iter().enumerate() {
            acc += p.1 / total;
            if acc >= s.top_p as f64 {
                keep = k + 1;
                break;
            }
        }
    }
    let kept = &probs[..keep];
    let mass: f64 = kept.iter().map(|p| p.1).sum();
    let mut u = rng.random::<f64>() * mass;
    for (i, p) in kept {
        u -= p;
        if u <= 0.0 {
            return (*i as u32, logits[*i] - lse);
        }
    }
    let (i, _) = kept[kept.len() - 1];
    (i as u32, logits[i] - lse)
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_finds_the_first_largest_anywhere() {
        for len in [1usize, 15, 16, 17, 49_152, 49_155] {
            for at in [0, len / 2, len - 1] {
                let mut v: Vec<f32> = (0..len).map(|i| ((i * 31) % 97) as f32 / 100.0).collect();
                v[at] = 5.0;
                assert_eq!(super::argmax(&v), (at, 5.0), "len {len}, max at {at}");
                // A tie later on keeps the first position (greedy decoding's rule).
                if at + 1 < len {
                    v[len - 1] = 5.0;
                    assert_eq!(super::argmax(&v).0, at, "len {len}, tie after {at}");
                }
            }
        }
        let mut v = vec![f32::NAN; 40];
        v[33] = -3.0;
        assert_eq!(super::argmax(&v), (33, -3.0), "NaN logits are never picked");
        assert_eq!(super::argmax(&[f32::NEG_INFINITY; 3]).0, 0);
    }

    #[test]
    fn log_softmax_matches_the_f64_definition() {
        let logits: Vec<f32> = (0..49_152)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 9.0)
            .collect();
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max
            + logits
                .iter()
                .map(|v| (*v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        for t in [0, 17, 999, 49_151] {
            let want = logits[t] as f64 - lse;
            let got = super::log_softmax_at(&logits, t) as f64;
            assert!((got - want).abs() < 1e-4, "{t}: {got} vs {want}");
        }
        for x in [0.0f32, -1e-3, -0.5, -1.0, -10.0, -50.0, -86.0] {
            let rel = ((super::exp_le0(x) as f64) - (x as f64).exp()).abs() / (x as f64).exp();
            assert!(rel < 1e-5, "e^{x}: relative error {rel}");
        }
        assert!(
            super::exp_le0(-200.0) < 1e-37,
            "far below the maximum counts as nothing"
        );
    }
}
