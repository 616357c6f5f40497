//! `mscr models list` and `mscr models info MODEL`.

use mscr::model::spec::{self, DEFAULT_MODEL};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Known model aliases: what each is, where it comes from, whether it is present.
    List,
    /// Architecture, size and quantisation of a model (alias, .gguf file or HF folder).
    Info {
        /// Alias, .gguf path, Hugging Face folder or `mscr transform` folder,
        /// with build options as other commands take them (`MODEL?weights=q4`).
        #[arg(default_value = DEFAULT_MODEL)]
        model: String,
    },
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    match a.command {
        Sub::List => list(),
        Sub::Info { model } => info(&model),
    }
}

fn list() -> anyhow::Result<ExitCode> {
    println!(
        "{:<28} {:<19} {:<8} {:<38} description",
        "alias", "kind", "present", "source"
    );
    for a in spec::aliases() {
        let present = if a.is_present() { "yes" } else { "no" };
        let name = if a.name == DEFAULT_MODEL {
            format!("{} *", a.name)
        } else {
            a.name.to_string()
        };
        println!(
            "{name:<28} {:<19} {present:<8} {:<38} {}",
            a.role.name(),
            a.origin(),
            a.description
        );
    }
    println!(
        "\n* default model. Models live in {}",
        mscr::paths::models_dir().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn info(model: &str) -> anyhow::Result<ExitCode> {
    // The spec as `generate` and the others take it: build options after `?`.
    let parsed = mscr::runtime::load::parse_options(model)?;
    let target = parsed.target.as_str();
    if let Some(a) = spec::find_alias(target)
        && a.role != spec::Role::Decoder
    {
        // Encoders (the attack's similarity filter and masked LM) have no decoder config.
        println!("model            {}", a.name);
        println!("kind             {}", a.role.name());
        println!("description      {}", a.description);
        println!("source           {}", a.origin());
        println!(
            "present          {} ({})",
            if a.is_present() { "yes" } else { "no" },
            a.local_path().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let resolved = spec::resolve(target)?;
    let i = spec::describe(&resolved)?;
    let c = &i.config;
    let heads = spec::heads_text(&i.heads_per_layer);
    let types: Vec<String> = i.types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    println!("model            {}", i.source);
    println!(
        "format           {} ({:.1} MB)",
        i.format,
        i.file_bytes as f64 / 1e6
    );
    println!("architecture     {}", c.arch.name());
    println!(
        "parameters       {} ({:.1} M)",
        i.params,
        i.params as f64 / 1e6
    );
    println!("layers           {}", c.n_layers);
    println!("hidden size      {}", c.hidden);
    println!("ffn size         {}", c.intermediate);
    println!("heads            {heads}");
    println!("kv heads         {}", c.n_kv_heads);
    println!("head dim         {}", c.head_dim);
    println!("context          {}", c.max_position);
    println!("vocab            {}", c.vocab_size);
    println!("rope theta       {}", c.rope_theta);
    if let Some(rs) = &c.rope_scaling {
        println!(
            "rope scaling     llama3 factor {} (original context {})",
            rs.factor, rs.original_max_position
        );
    }
    println!(
        "tied embeddings  {}",
        if c.tie_embeddings { "yes" } else { "no" }
    );
    println!("tensor types     {}", types.join(", "));
    if target != model.trim() {
        println!(
            "graph weights    {} (as built for `{model}`)",
            parsed.build.format.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}
