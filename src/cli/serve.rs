use anyhow::Context;
use mscr::runtime::{LoadOptions, load_model};
use mscr::serve::{ServeOptions, Server};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Model to serve: an alias, a .gguf path, a Hugging Face folder, or an openai: spec.
    #[arg(long)]
    model: String,
    /// Address to listen on. Loopback by default; 0.0.0.0:PORT exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Environment variable holding the API key clients must send as a bearer token.
    #[arg(long)]
    api_key_env: Option<String>,
    /// Name clients use for the model (default: the --model value).
    #[arg(long)]
    served_model_name: Option<String>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Intra-op threads for ONNX Runtime (0 = its default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Most prompts batched into one model call.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Larger request bodies are refused with 413.
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Threads reading HTTP requests (the most requests served at once).
    #[arg(long, default_value_t = 64)]
    http_threads: usize,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let api_key = match &a.api_key_env {
        Some(var) => Some(
            std::env::var(var)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .with_context(|| format!("--api-key-env {var}: the variable is not set"))?,
        ),
        None => None,
    };
    // Catch a bad address before the (slow) model load.
    a.addr
        .parse::<std::net::SocketAddr>()
        .with_context(|| format!("--addr {:?}: expected IP:PORT, e.g. 127.0.0.1:8080", a.addr))?;
    let options = LoadOptions {
        device: a.device.parse()?,
        threads: a.threads,
    };
    eprintln!("loading {} ...", a.model);
    let model = load_model(&a.model, &options)?;
    let opts = ServeOptions {
        addr: a.addr,
        model_name: a.served_model_name.unwrap_or(a.model),
        api_key,
        max_batch: a.max_batch,
        max_body_bytes: a.max_body_bytes,
        http_threads: a.http_threads,
        ..ServeOptions::default()
    };
    let server = Server::start(model, opts.clone())?;
    if !server.addr().ip().is_loopback() && opts.api_key.is_none() {
        eprintln!(
            "warning: listening on {} without an API key; anyone who can reach it can use it (--api-key-env)",
            server.addr()
        );
    }
    let stopper = server.stopper();
    ctrlc::set_handler(move || stopper.stop()).context("installing the Ctrl-C handler")?;
    // Tests and scripts wait for this line.
    eprintln!(
        "serving {:?} on {} (Ctrl-C to stop)",
        opts.model_name,
        server.base_url()
    );
    server.wait();
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}
