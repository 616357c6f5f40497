//! Nearest neighbours in a model's input-embedding matrix, over whole-word
//! vocabulary entries only.
//!
//! A word's vector is its single-token entry: byte-level BPE vocabularies hold
//! most common English words as one token with a leading space (`Ġapple`, or
//! ` apple` once decoded), which is the form a word takes inside a question.
//! Words that split into several tokens have no vector here and get no
//! embedding candidates (kept simple on purpose; WordNet and the MLM cover them).

use crate::error::{Error, Result};
use crate::model::Matrix;
use rayon::prelude::*;
use std::collections::HashMap;

/// Whole-word vocabulary entries with L2-normalised embedding rows.
#[derive(Clone, Debug)]
pub struct EmbeddingIndex {
    words: Vec<String>,
    lookup: HashMap<String, usize>,
    /// `words.len() × dim`, rows of unit length (or zero).
    rows: Vec<f32>,
    dim: usize,
}

/// The surface word of a vocabulary entry, if it is a whole word: a leading
/// space (or GPT-2's `Ġ`) followed by at least two letters and nothing else.
pub fn whole_word(entry: &str) -> Option<&str> {
    let rest = entry
        .strip_prefix(' ')
        .or_else(|| entry.strip_prefix('Ġ'))
        .or_else(|| entry.strip_prefix('▁'))?;
    (rest.chars().count() >= 2 && rest.chars().all(|c| c.is_alphabetic())).then_some(rest)
}

impl EmbeddingIndex {
    /// `vocab[i]` names row `i` of `matrix` (token id order). Keeps whole-word
    /// entries (see [`whole_word`]); the first entry wins for duplicates.
    pub fn new(vocab: Vec<String>, matrix: Matrix) -> Result<Self> {
        if vocab.len() != matrix.rows {
            return Err(Error::Config(format!(
                "embedding index: the vocabulary has {} entries but the embedding matrix {} rows; \
                 pass the tokenizer that belongs to the model",
                vocab.len(),
                matrix.rows
            )));
        }
        let dim = matrix.cols;
        let mut words = Vec::new();
        let mut lookup = HashMap::new();
        let mut rows = Vec::new();
        for (i, entry) in vocab.iter().enumerate() {
            let Some(w) = whole_word(entry) else { continue };
            if lookup.contains_key(w) {
                continue;
            }
            lookup.insert(w.to_string(), words.len());
            words.push(w.to_string());
            let row = matrix.row(i);
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            rows.extend(row.iter().map(|x| x * scale));
        }
        Ok(EmbeddingIndex {
            words,
            lookup,
            rows,
            dim,
        })
    }

    /// Number of whole-word entries kept.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    fn id(&self, word: &str) -> Option<usize> {
        self.lookup
            .get(word)
            .or_else(|| self.lookup.get(&word.to_lowercase()))
            .copied()
    }

    /// The unit vector of a word (exact entry, else its lower-case form).
    pub fn vector(&self, word: &str) -> Option<&[f32]> {
        self.id(word)
            .map(|i| &self.rows[i * self.dim..(i + 1) * self.dim])
    }

    /// Cosine of two words, when both have an entry.
    pub fn cosine(&self, a: &str, b: &str) -> Option<f32> {
        let (va, vb) = (self.vector(a)?, self.vector(b)?);
        Some(va.iter().zip(vb).map(|(x, y)| x * y).sum())
    }

    /// The `k` nearest whole words to `word` by cosine, best first, at least
    /// `min_cosine`, excluding the word itself (any case).
    pub fn neighbours(&self, word: &str, k: usize, min_cosine: f32) -> Vec<(String, f32)> {
        self.neighbours_many(&[word], k, min_cosine)
            .pop()
            .unwrap_or_default()
    }

    /// [`EmbeddingIndex::neighbours`] for several words at once: one matrix
    /// product (faer, multi-threaded) of the query rows against the whole
    /// vocabulary, then a partial selection per word. Words without an entry
    /// get no neighbours.
    pub fn neighbours_many(
        &self,
        words: &[&str],
        k: usize,
        min_cosine: f32,
    ) -> Vec<Vec<(String, f32)>> {
        let ids: Vec<Option<usize>> = words.iter().map(|w| self.id(w)).collect();
        let known: Vec<usize> = ids.iter().flatten().copied().collect();
        if known.is_empty() || k == 0 || self.dim == 0 {
            return vec![Vec::new(); words.len()];
        }
        let mut queries = Vec::with_capacity(known.len() * self.dim);
        for &i in &known {
            queries.extend_from_slice(&self.rows[i * self.dim..(i + 1) * self.dim]);
        }
        let vocab = faer::MatRef::from_row_major_slice(&self.rows, self.words.len(), self.dim);
        let q = faer::MatRef::from_row_major_slice(&queries, known.len(), self.dim);
        // scores[v, j] = cos(vocab v, query j); column j is contiguous.
        let mut scores = faer::Mat::<f32>::zeros(self.words.len(), known.len());
        faer::linalg::matmul::matmul(
            scores.as_mut(),
            faer::Accum::Replace,
            vocab,
            q.transpose(),
            1.0f32,
            faer::Par::rayon(0),
        );
        let per_query: Vec<Vec<(String, f32)>> = known
            .par_iter()
            .enumerate()
            .map(|(j, &id)| {
                let col = scores.col(j);
                let lower = self.words[id].to_lowercase();
                let mut hits: Vec<(usize, f32)> = (0..self.words.len())
                    .map(|v| (v, col[v]))
                    .filter(|&(v, c)| c >= min_cosine && v != id)
                    .collect();
                let by_score =
                    |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                // A few spare places for case variants of the word itself.
                let keep = k + 4;
                if hits.len() > keep {
                    hits.select_nth_unstable_by(keep - 1, by_score);
                    hits.truncate(keep);
                }
                hits.sort_by(by_score);
                hits.into_iter()
                    .filter(|&(v, _)| self.words[v].to_lowercase() != lower)
                    .take(k)
                    .map(|(v, c)| (self.words[v].clone(), c))
                    .collect()
            })
            .collect();
        let mut it = per_query.into_iter();
        ids.iter()
            .map(|id| {
                if id.is_some() {
                    it.next().unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect()
    }
}
