use anyhow::{Context, bail};
use mscr::lm::{Decoding, Prompt};
use mscr::runtime::LoadOptions;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model: an alias, a .gguf file, a Hugging Face folder, an .onnx file or openai:URL#MODEL.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    model: String,
    /// The prompt (omit with --input).
    #[arg(long)]
    prompt: Option<String>,
    /// Render the prompt through the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long)]
    system: Option<String>,
    /// Most new tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop strings (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// JSONL batch mode (`-` for stdin): lines {"prompt": "...", "chat": bool?,
    /// "system": "..."?}; other fields pass through, and each line gains
    /// "output" (the model's text), "tokens", "prompt_tokens", "finish_reason".
    #[arg(long, requires = "output")]
    input: Option<PathBuf>,
    /// Where --input's results go (`-` for stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace an existing --output file (refused otherwise).
    #[arg(long)]
    force: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads (0 = ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let options = LoadOptions {
        device: a.device.parse()?,
        threads: a.threads,
    };
    let decoding = Decoding {
        max_new_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        stop: a.stop.clone(),
    };
    // Everything checked before the model loads.
    decoding.validate("generate")?;
    if a.system.is_some() && !a.chat && a.input.is_none() {
        bail!("--system is used only with --chat (a chat prompt); add --chat, or drop --system");
    }
    if a.output.is_some() && a.input.is_none() {
        bail!(
            "--output writes the results of --input FILE; with --prompt the completion goes to stdout"
        );
    }
    if let Some(output) = a.output.as_ref().filter(|o| o.as_os_str() != "-") {
        super::refuse_overwrite(std::slice::from_ref(output), a.force)?;
    }
    let model = mscr::runtime::load_model(&a.model, &options)?;
    let make = |text: &str, chat: bool, system: Option<&str>| {
        if chat {
            Prompt::user(system, text)
        } else {
            Prompt::text(text)
        }
    };
    match (&a.prompt, &a.input) {
        (Some(p), None) => {
            let g = model.generate(&[make(p, a.chat, a.system.as_deref())], &decoding)?;
            println!("{}", g[0].text);
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(input)) => {
            let output = a
                .output
                .as_ref()
                .context("--output is required with --input")?;

            let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(input)
                        .with_context(|| format!("opening {}", input.display()))?,
                ))
            };
            let mut rows = Vec::new();
            let mut prompts = Vec::new();
            for (i, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", input.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{}: not valid JSON", input.display(), i + 1))?;
                let Some(text) = v.get("prompt").and_then(|p| p.as_str()) else {
                    bail!(
                        "{}:{}: a line needs a string field \"prompt\"",
                        input.display(),
                        i + 1
                    );
                };
                let chat = v.get("chat").and_then(|c| c.as_bool()).unwrap_or(a.chat);
                let system = v
                    .get("system")
                    .and_then(|s| s.as_str())
                    .or(a.system.as_deref());
                prompts.push(make(text, chat, system));
                rows.push(v);
            }
            let gens = model.generate(&prompts, &decoding)?;
            let mut out: Box<dyn Write> = if output.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(output)
                        .with_context(|| format!("creating {}", output.display()))?,
                ))
            };
            for (mut v, g) in rows.into_iter().zip(gens) {
                if let Some(o) = v.as_object_mut() {
                    // The names eval's items.jsonl uses: `output` (the model's
                    // text, as `answers judge` reads it) and `tokens`.
                    o.insert("output".into(), g.text.into());
                    o.insert("prompt_tokens".into(), g.prompt_tokens.into());
                    o.insert("tokens".into(), g.completion_tokens.into());
                    o.insert(
                        "finish_reason".into(),
                        serde_json::to_value(g.finish_reason)?,
                    );
                }
                writeln!(out, "{}", serde_json::to_string(&v)?)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("give either --prompt TEXT or --input FILE --output FILE"),
    }
}
