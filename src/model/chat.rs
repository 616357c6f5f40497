//! Chat templates: the model's own Jinja template (GGUF `tokenizer.chat_template`
//! or `tokenizer_config.json`) rendered with minijinja, with the Python-isms
//! Hugging Face templates use; ChatML when a model ships none.

use crate::error::{Error, Result};
use crate::lm::ChatMessage;
use crate::model::gguf::GgufFile;
use crate::model::tokenizer::Tokenizer;
use minijinja::{Environment, ErrorKind, context};

/// The template used when a model has none.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .field("fallback", &self.fallback)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles a Jinja chat template. `bos_token`/`eos_token` are the strings
    /// the template may reference.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        // Hugging Face renders chat templates with these two Jinja options.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Other(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::Config(format!("the model's chat template does not parse: {e}")))?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            fallback: false,
        })
    }

    /// ChatML (`<|im_start|>role\ncontent<|im_end|>\n`).
    pub fn chatml() -> Self {
        let mut t = ChatTemplate::new(CHATML, "", "<|im_end|>")
            .expect("the built-in ChatML template parses");
        t.fallback = true;
        t
    }

    /// The template a GGUF file carries, or ChatML.
    pub fn from_gguf(g: &GgufFile, tok: &Tokenizer) -> Result<Self> {
        let name = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i)).unwrap_or_default();
        let bos = name(tok.bos_id());
        let eos = name(tok.eos_ids().first().copied());
        match g.get_str("tokenizer.chat_template") {
            Some(src) => {
                ChatTemplate::new(src, &bos, &eos).map_err(|e| Error::file(g.path(), e.to_string()))
            }
            None => Ok(ChatTemplate::chatml()),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the model shipped no template and ChatML stands in.
    pub fn is_fallback(&self) -> bool {
        self.fallback
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders the conversation; `add_generation_prompt` opens the assistant turn.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Other(format!("chat template: {e}")))?;
        tmpl.render(context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
        })
        .map_err(|e| Error::Other(format!("rendering the chat template failed: {e:#}")))
    }
}

fn raise_exception(msg: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("the chat template raised: {msg}"),
    ))
}

/// Python's `strftime` for the current UTC time (templates put today's date in
/// the system prompt). Supports %Y %m %d %e %B %b %H %M %S %%.
fn strftime_now(fmt: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_time(secs, &fmt)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub(crate) fn format_time(secs: i64, fmt: &str) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:>2}")),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn strftime_formats_utc_dates() {
        assert_eq!(format_time(0, "%d %b %Y"), "01 Jan 1970");
        assert_eq!(
            format_time(1_700_000_000, "%Y-%m-%d %H:%M:%S"),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            format_time(951_782_400, "%e %B %Y %%"),
            "29 February 2000 %"
        );
    }

    /// The constructs Llama 3 / Qwen2.5 templates use: namespace, loop
    /// variables, string methods, tojson, an undefined `tools`, bos_token,
    /// strftime_now and raise_exception.
    #[test]
    fn hf_template_constructs_render() {
        let src = r#"{{- bos_token }}
{%- set ns = namespace(sys="") %}
{%- if messages[0]['role'] == 'system' %}{% set ns.sys = messages[0]['content'] | trim %}{% set messages = messages[1:] %}{% endif %}
{%- if tools is defined and tools %}{{ tools | tojson }}{% endif %}
{{- "<|sys|>" + ns.sys + " date:" + (strftime_now("%Y") | length | string) }}
{%- for m in messages %}
    {%- if m.role not in ['user', 'assistant'] %}{{ raise_exception('bad role ' + m.role) }}{% endif %}
    {{- '<|' + m.role + '|>' + m.content.strip().replace('  ', ' ') }}{% if m.content.startswith('Q') %}?{% endif %}{% if loop.last %}.{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|assistant|>{% endif %}"#;
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        let out = t
            .render(
                &[msg("system", " Be brief. "), msg("user", "Q:  2+2 ")],
                true,
            )
            .unwrap();
        assert_eq!(
            out,
            "<s><|sys|>Be brief. date:4<|user|>Q: 2+2?.<|assistant|>"
        );
        let err = t
            .render(&[msg("tool", "x")], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad role tool"), "{err}");
        // A template that does not parse is a configuration error.
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
        // ChatML fallback.
        let c = ChatTemplate::chatml();
        assert!(c.is_fallback());
        assert_eq!(
            c.render(&[msg("user", "hi")], true).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
