//! The attacker: clean generation, candidates, filters, search, record.

use super::config::AttackConfig;
use super::filters::{Filters, Judged};
use super::goal;
use super::record::{AttackRecord, Change, Outcome};
use super::search::{Evaluated, Oracle, SearchInput, Slot, leave_one_out};
use super::sources::{CandidateSource, gather};
use super::words::{Stopwords, Word, delete_word, split_words};
use super::{Labels, Resources};
use crate::data::Item;
use crate::data::prompt::PromptTemplate;
use crate::error::{Error, Result};
use crate::lm::{Decoding, LanguageModel};
use crate::score::AnswerStyle;
use crate::transform::decode::{Answerer, Decision};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// A question split into words with every attackable word's judged candidates.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub words: Vec<Word>,
    /// Indices of attackable words, in question order.
    pub targets: Vec<usize>,
    /// `judged[i]` holds the candidates of word `targets[i]`.
    pub judged: Vec<Vec<Judged>>,
}

pub struct Attacker {
    config: AttackConfig,
    resources: Resources,
    model: Arc<dyn LanguageModel>,
    sources: Vec<Box<dyn CandidateSource>>,
    filters: Filters,
    stopwords: Stopwords,
    answerer: Answerer,
}

impl Attacker {
    /// Builds sources and filters; errors name any part the config needs but
    /// the resources lack.
    pub fn new(config: AttackConfig, resources: Resources) -> Result<Self> {
        let model = resources.model.clone().ok_or_else(|| {
            Error::Config("the attack needs a model to attack (Resources.model is empty)".into())
        })?;
        if config.judge.is_some() && resources.judge.is_none() {
            return Err(Error::Config(format!(
                "attack `{}` configures a judge model but none was loaded",
                config.name
            )));
        }
        let (sources, filters, stopwords) = build_parts(&config, &resources)?;
        Ok(Attacker {
            config,
            resources,
            model,
            sources,
            filters,
            stopwords,
            answerer: Answerer::plain(),
        })
    }

    /// Answers through a decoding transform (self-consistency, best-of-n,
    /// ...): the clean answer and every perturbed answer are its decisions,
    /// and every sample counts as a query.
    pub fn with_answerer(mut self, answerer: Answerer) -> Self {
        self.answerer = answerer;
        self
    }

    pub fn answerer(&self) -> &Answerer {
        &self.answerer
    }

    pub fn config(&self) -> &AttackConfig {
        &self.config
    }

    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Words, attackable targets and their judged candidates for a question.
    pub fn prepare(&self, question: &str, all_verdicts: bool) -> Result<Prepared> {
        prepare(
            &self.sources,
            &self.filters,
            &self.stopwords,
            question,
            all_verdicts,
        )
    }

    /// Answers the clean question (one query per sample), then runs the
    /// search; returns the record.
    pub fn attack(
        &self,
        item: &Item,
        style: AnswerStyle,
        prompt: &PromptTemplate,
        decoding: &Decoding,
        labels: &Labels,
    ) -> Result<AttackRecord> {
        let start = Instant::now();
        let clean = self
            .answerer
            .answer(
                self.model.as_ref(),
                std::slice::from_ref(&item.question),
                &[prompt.render(&item.question)],
                decoding,
                &[item.gold.as_str()],
                style,
            )?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Runtime(format!(
                    "item {}: the model returned no generation",
                    item.id
                ))
            })?;
        self.attack_after_clean(item, clean, style, prompt, decoding, labels, start)
    }

    /// Several items: the clean generations of all items go out as one batch
    /// first, then each clean-correct item is attacked; `on_record` sees each
    /// record as soon as it is done (for progress bars and stores).
    #[allow(clippy::too_many_arguments)]
    pub fn attack_many(
        &self,
        items: &[Item],
        style: AnswerStyle,
        prompt: &PromptTemplate,
        decoding: &Decoding,
        labels: &Labels,
        on_record: &mut dyn FnMut(AttackRecord) -> Result<()>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let prompts: Vec<_> = items.iter().map(|i| prompt.render(&i.question)).collect();
        let questions: Vec<String> = items.iter().map(|i| i.question.clone()).collect();
        let golds: Vec<&str> = items.iter().map(|i| i.gold.as_str()).collect();
        let clean = self.answerer.answer(
            self.model.as_ref(),
            &questions,
            &prompts,
            decoding,
            &golds,
            style,
        )?;
        // The shared clean batch's time is split evenly over its items.
        let clean_share = start.elapsed().as_secs_f64() / items.len() as f64;
        for (item, g) in items.iter().zip(clean) {
            let t = Instant::now();
            let mut r = self.attack_after_clean(item, g, style, prompt, decoding, labels, t)?;
            r.seconds += clean_share;
            on_record(r)?;
        }
        Ok(())
    }

    /// [`Attacker::attack_many`], collecting the records in item order.
    pub fn attack_all(
        &self,
        items: &[Item],
        style: AnswerStyle,
        prompt: &PromptTemplate,
        decoding: &Decoding,
        labels: &Labels,
    ) -> Result<Vec<AttackRecord>> {
        let mut out = Vec::with_capacity(items.len());
        self.attack_many(items, style, prompt, decoding, labels, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn attack_after_clean(
        &self,
        item: &Item,
        clean: Decision,
        style: AnswerStyle,
        prompt: &PromptTemplate,
        decoding: &Decoding,
        labels: &Labels,
        start: Instant,
    ) -> Result<AttackRecord> {
        let clean_correct = clean.correct;
        let mut record = AttackRecord {
            id: item.id.clone(),
            dataset: labels.dataset.clone(),
            model: labels.model.clone(),
            transform: labels.transform.clone(),
            attack: self.config.name.clone(),
            gold: item.gold.clone(),
            original_question: item.question.clone(),
            perturbed_question: item.question.clone(),
            changes: Vec::new(),
            sentence_similarity: None,
            fluency_delta: None,
            clean_output: clean.output.clone(),
            clean_answer: clean.answer.clone(),
            clean_correct,
            clean_tokens: clean.tokens,
            attacked_output: None,
            attacked_answer: None,
            attacked_tokens: None,
            queries: clean.samples,
            result: Outcome::Skipped,
            judge: None,
            seconds: 0.0,
            decoding: self.answerer.record(&clean),
        };
        if !clean_correct {
            record.seconds = start.elapsed().as_secs_f64();
            return Ok(record);
        }
        let prepared = self.prepare(&item.question, false)?;
        let mut oracle = ModelOracle {
            model: self.model.as_ref(),
            answerer: &self.answerer,
            prompt,
            decoding,
            gold: &item.gold,
            style,
            clean_solution: &clean.output,
            used: clean.samples,
            max: self.config.budget.max_queries,
        };
        let mut slots: Vec<Slot> = prepared
            .targets
            .iter()
            .zip(&prepared.judged)
            .map(|(&t, judged)| Slot {
                word_index: t,
                importance: 0.0,
                candidates: judged.iter().filter(|j| j.passed).cloned().collect(),
            })
            .filter(|s| !s.candidates.is_empty())
            .collect();
        let candidates: usize = slots.iter().map(|s| s.candidates.len()).sum();
        let ordered = !self.config.search.one_batch_holds_all(
            candidates,
            self.config.budget.batch,
            oracle.remaining(),
        );
        if self.config.search.uses_importance() && ordered && !slots.is_empty() {
            // One batched score call: the clean question, then each word deleted.
            let mut qs = vec![item.question.clone()];
            qs.extend(
                slots
                    .iter()
                    .map(|s| delete_word(&item.question, &prepared.words[s.word_index])),
            );
            let scores = oracle.score(&qs)?;
            for (s, imp) in slots.iter_mut().zip(leave_one_out(scores[0], &scores[1..])) {
                s.importance = imp;
            }
        }
        let input = SearchInput {
            question: &item.question,
            words: &prepared.words,
            slots,
            filters: &self.filters,
            batch: self.config.budget.batch,
            max_words: self.config.max_words(),
            seed: item_seed(self.config.seed, &item.id),
        };
        let result = self.config.search.run(&input, &mut oracle)?;
        record.queries = oracle.used;
        record.result = if result.success {
            Outcome::Success
        } else {
            Outcome::Failed
        };
        if let Some(q) = &result.question {
            record.perturbed_question = q.clone();
            record.changes = result
                .picks
                .iter()
                .map(|&(s, c)| {
                    let slot = &input.slots[s];
                    let w = &prepared.words[slot.word_index];
                    let j = &slot.candidates[c];
                    Change {
                        word_index: w.index,
                        start: w.start,
                        end: w.end,
                        original: w.text.clone(),
                        replacement: j.candidate.text.clone(),
                        sources: j.candidate.sources.clone(),
                        word_similarity: j.word_similarity,
                    }
                })
                .collect();
            if let [(s, c)] = result.picks.as_slice() {
                record.fluency_delta = input.slots[*s].candidates[*c].evidence.fluency_delta;
            }
            record.sentence_similarity = match result.picks.as_slice() {
                [(s, c)] => input.slots[*s].candidates[*c].sentence_similarity,
                _ => self
                    .filters
                    .sentence_similarities(&item.question, std::slice::from_ref(q))?
                    .and_then(|v| v.first().copied()),
            };
        }
        if let Some(e) = result.evaluated {
            record.attacked_output = Some(e.output);
            record.attacked_answer = e.answer;
            record.attacked_tokens = Some(e.tokens);
            if let Some(d) = record.decoding.as_mut() {
                d.attacked = e.decision;
            }
        }
        if let (true, Some(judge), Some(cfg)) =
            (result.success, &self.resources.judge, &self.config.judge)
        {
            record.judge = Some(goal::judge(
                judge.as_ref(),
                cfg.max_new_tokens,
                cfg.exclude_rejected,
                &item.question,
                &record.perturbed_question,
                &item.gold,
            )?);
        }
        record.seconds = start.elapsed().as_secs_f64();
        Ok(record)
    }
}

/// Built sources, filters and stopwords.
pub(crate) type Parts = (Vec<Box<dyn CandidateSource>>, Filters, Stopwords);

/// Builds the configured sources, filters and stopwords.
pub(crate) fn build_parts(config: &AttackConfig, resources: &Resources) -> Result<Parts> {
    let sources = config
        .sources
        .iter()
        .map(|s| s.build(resources))
        .collect::<Result<Vec<_>>>()?;
    let filters = Filters::new(config.filters.clone(), resources)?;
    let stopwords = config.words.stopwords()?;
    Ok((sources, filters, stopwords))
}

pub(crate) fn prepare(
    sources: &[Box<dyn CandidateSource>],
    filters: &Filters,
    stopwords: &Stopwords,
    question: &str,
    all_verdicts: bool,
) -> Result<Prepared> {
    let words = split_words(question, stopwords);
    let targets: Vec<usize> = words
        .iter()
        .filter(|w| w.attackable())
        .map(|w| w.index)
        .collect();
    let slots = gather(sources, question, &words, &targets)?;
    let judged = filters.judge(question, &words, &targets, slots, all_verdicts)?;
    Ok(Prepared {
        words,
        targets,
        judged,
    })
}

/// The per-item seed: the config's seed mixed with a hash of the item id, so
/// results do not depend on item order.
pub fn item_seed(seed: u64, id: &str) -> u64 {
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    seed ^ u64::from_le_bytes(b)
}

/// The attacked model behind the search's [`Oracle`], counting queries (every
/// sample of a decoding transform is one).
struct ModelOracle<'a> {
    model: &'a dyn LanguageModel,
    answerer: &'a Answerer,
    prompt: &'a PromptTemplate,
    decoding: &'a Decoding,
    gold: &'a str,
    style: AnswerStyle,
    clean_solution: &'a str,
    used: usize,
    max: usize,
}

impl Oracle for ModelOracle<'_> {
    fn generate(&mut self, questions: &[String]) -> Result<Vec<Evaluated>> {
        if questions.len() > self.remaining() {
            return Err(Error::Other(format!(
                "search asked for {} generations with {} queries left (a bug in the search)",
                questions.len(),
                self.remaining()
            )));
        }
        let prompts: Vec<_> = questions.iter().map(|q| self.prompt.render(q)).collect();
        let golds = vec![self.gold; questions.len()];
        let decisions = self.answerer.answer(
            self.model,
            questions,
            &prompts,
            self.decoding,
            &golds,
            self.style,
        )?;
        self.used += questions.len() * self.answerer.samples();
        Ok(decisions
            .into_iter()
            .map(|d| Evaluated {
                // A checker failure is no evidence of a wrong answer.
                wrong: d.judging_error.is_none() && goal::is_success(true, d.correct),
                damage: d.damage(),
                answer: d.answer,
                tokens: d.tokens,
                output: d.output,
                decision: d.record,
            })
            .collect())
    }

    fn score(&mut self, questions: &[String]) -> Result<Vec<f32>> {
        let pairs: Vec<_> = questions
            .iter()
            .map(|q| (self.prompt.render(q), self.clean_solution.to_string()))
            .collect();
        let s = self.model.score(&pairs)?;
        if s.len() != questions.len() {
            return Err(Error::Runtime(format!(
                "model returned {} scores for {} pairs",
                s.len(),
                questions.len()
            )));
        }
        Ok(s)
    }

    /// Perturbed questions that still fit the budget: each costs one query
    /// per sample.
    fn remaining(&self) -> usize {
        self.max.saturating_sub(self.used) / self.answerer.samples().max(1)
    }
}
