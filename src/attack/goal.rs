//! The goal: only questions the model answers correctly when clean are
//! attacked; an attack succeeds when the perturbed question's extracted answer
//! is wrong under the answer checker. Under a decoding transform the answer is
//! the transform's decision (the majority answer, the best-of-n pick; for
//! pass@k, whether any sample is right): see `crate::transform::decode`. An
//! optional judge model confirms that the perturbation kept the gold answer.

use super::record::JudgeVerdict;
use crate::error::Result;
use crate::lm::{Decoding, LanguageModel, Prompt};

/// True when the perturbed answer counts as a successful attack.
pub fn is_success(clean_correct: bool, attacked_correct: bool) -> bool {
    clean_correct && !attacked_correct
}

/// The judge's prompt: is the perturbed question the same problem, asking
/// the same thing, with the same answer?
pub fn judge_prompt(original: &str, perturbed: &str, gold: &str) -> Prompt {
    Prompt::user(
        Some(
            "You check whether a reworded math word problem is the same problem as the original: \
             it asks the same thing, every quantity means the same, it reads as natural English, \
             and its correct answer is unchanged. Reply with one word: yes or no.",
        ),
        format!(
            "Original problem:\n{original}\n\nReworded problem:\n{perturbed}\n\n\
             The original problem's answer is {gold}. Is the reworded problem the same problem, \
             with {gold} still its correct answer? Answer yes or no."
        ),
    )
}

/// Reads a yes/no verdict from the judge's output (first yes/no word wins).
pub fn parse_judge(output: &str) -> Option<bool> {
    output
        .split(|c: char| !c.is_alphabetic())
        .map(|w| w.to_lowercase())
        .find_map(|w| match w.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })
}

/// Asks the judge model; an unparseable reply counts as "not preserved".
/// With `exclude_rejected`, a rejection marks the verdict `excluded`.
pub fn judge(
    model: &dyn LanguageModel,
    max_new_tokens: usize,
    exclude_rejected: bool,
    original: &str,
    perturbed: &str,
    gold: &str,
) -> Result<JudgeVerdict> {
    let decoding = Decoding {
        max_new_tokens,
        ..Decoding::default()
    };
    let g = model.generate(&[judge_prompt(original, perturbed, gold)], &decoding)?;
    let output = g.into_iter().next().map(|g| g.text).unwrap_or_default();
    let answer_preserved = parse_judge(&output).unwrap_or(false);
    Ok(JudgeVerdict {
        model: model.id(),
        answer_preserved,
        output,
        excluded: exclude_rejected && !answer_preserved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_replies() {
        assert_eq!(parse_judge("Yes."), Some(true));
        assert_eq!(parse_judge(" no, because"), Some(false));
        assert_eq!(parse_judge("maybe"), None);
        assert!(is_success(true, false));
        assert!(!is_success(false, false));
    }
}
