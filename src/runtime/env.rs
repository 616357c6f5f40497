//! Loading the ONNX Runtime shared library once per process and choosing the
//! execution device.

use crate::error::{Error, Result};
use std::sync::OnceLock;

/// Where sessions run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(i32),
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "cpu" {
            return Ok(Device::Cpu);
        }
        if s == "cuda" {
            return Ok(Device::Cuda(0));
        }
        if let Some(n) = s.strip_prefix("cuda:") {
            let id = n
                .parse()
                .map_err(|_| Error::Config(format!("device {s:?}: expected cuda:N")))?;
            return Ok(Device::Cuda(id));
        }
        Err(Error::Config(format!(
            "unknown device {s:?}: use cpu, cuda or cuda:N"
        )))
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads `libonnxruntime` (from `ORT_DYLIB_PATH` or the setup's cache) once and
/// returns the process-wide environment. The CUDA build is loaded when the first
/// caller asks for CUDA and it is installed (`mscr setup --cuda`).
pub fn environment(device: Device) -> Result<&'static ort::environment::Environment> {
    ENV.get_or_init(|| {
        let cuda = matches!(device, Device::Cuda(_));
        let mut lib = crate::setup::ort_library(cuda);
        if cuda && !lib.is_file() {
            lib = crate::setup::ort_library(false);
        }
        if !lib.is_file() {
            return Err(format!(
                "the ONNX Runtime library is missing at {}: run `mscr setup` (or `make setup`), \
                 or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or later",
                lib.display()
            ));
        }
        let builder = ort::init_from(&lib)
            .map_err(|e| format!("could not load ONNX Runtime from {}: {e}", lib.display()))?;
        builder
            .with_name("mscr")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("could not create the ONNX Runtime environment: {e}"))
    })
    .as_ref()
    .map_err(|e| Error::Runtime(e.clone()))
}

/// Opens an ONNX graph on `device` with `threads` intra-op threads (0 = ORT's
/// default). CUDA is registered with `error_on_failure`, so asking for it where
/// it cannot start is an error, never a silent fall-back to CPU. `spin` keeps
/// idle intra-op threads spinning (faster for a model that runs back to back;
/// off for encoders whose calls alternate with the language model's).
pub fn open_session(
    path: &std::path::Path,
    device: Device,
    threads: usize,
    spin: bool,
) -> Result<ort::session::Session> {
    use ort::session::Session;
    use ort::session::builder::GraphOptimizationLevel;
    let env = environment(device)?;
    let mut b = Session::builder(env)?.with_optimization_level(GraphOptimizationLevel::All)?;
    if !spin {
        b = b.with_intra_op_spinning(false)?;
    }
    if threads > 0 {
        b = b.with_intra_threads(threads)?;
    }
    // Per-node timings and placement (which execution provider ran each node),
    // for checking where a graph really runs: MSCR_ORT_PROFILE names a file
    // prefix; the profile is written by `DecoderSession::end_profiling`.
    if let Some(p) = std::env::var_os("MSCR_ORT_PROFILE").filter(|p| !p.is_empty()) {
        b = b.with_profiling(p)?;
    }
    if let Device::Cuda(id) = device {
        let ep = ort::ep::CUDA::default()
            .with_device_id(id)
            .build()
            .error_on_failure();
        b = b.with_execution_providers([ep]).map_err(|e| {
            Error::Runtime(format!(
                "CUDA device {id} could not start for {}: {e}. Install the CUDA build with \
                 `mscr setup --cuda`; it needs an NVIDIA driver and the CUDA 13 and cuDNN 9 \
                 libraries on the loader path (LD_LIBRARY_PATH); or use --device cpu",
                path.display()
            ))
        })?;
    }
    b.commit_from_file(path)
        .map_err(|e| Error::file(path, format!("ONNX Runtime could not load this graph: {e}")))
}
