//! The `weir` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir::config::LoadedConfig;
use weir::runtime::{Limits, Runtime};

/// A WebAssembly-pluggable stream transform worker: Kafka -> Arrow -> wasm -> Kafka / Parquet.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the pipeline of a config until SIGINT/SIGTERM (or `until_idle`), then prints a summary.
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Also write the summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
    },
    /// Checks a config, and that each plugin loads and accepts its params, without connecting.
    Validate {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Evaluates an expression on JSON documents from stdin (one per line, or one whole
    /// document) and prints each result as compact JSON, one per line. Exit code 2: the
    /// expression does not parse; 1: a document failed.
    Eval {
        /// The expression: JMESPath, with weir's extensions (docs/EXPRESSIONS.md).
        expression: String,
        /// Evaluate column-wise, as the plugins do: the documents (objects) become one Arrow
        /// batch first, so results carry Arrow's types.
        #[arg(long)]
        arrow: bool,
    },
}

/// Exit codes: 0 done, 1 runtime failure, 2 invalid config.
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate { config } => validate(&config),
        Command::Eval { expression, arrow } => eval(&expression, arrow),
        Command::Run {
            config,
            summary_json,
        } => match run(&config, summary_json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weir: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn runtime_for(cfg: &LoadedConfig) -> anyhow::Result<Runtime> {
    let rt = &cfg.config.runtime;
    let cache = rt
        .cache_dir
        .as_ref()
        .map(|d| cfg.resolve(d))
        .or_else(Runtime::default_cache_dir);
    Runtime::new(
        Limits {
            time_budget: rt.time_budget,
            memory_limit: rt.memory_limit,
        },
        cache,
    )
    .context("starting the wasm runtime")
}

fn validate(path: &std::path::Path) -> ExitCode {
    let cfg = match LoadedConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let result = runtime_for(&cfg).and_then(|rt| {
        weir::pipeline::load_transforms(&cfg, &rt).map_err(anyhow::Error::from)?;
        Ok(())
    });
    match result {
        Ok(()) => {
            let plugins: usize = cfg.config.routes.iter().map(|r| r.transforms.len()).sum();
            println!(
                "{}: valid ({} routes, {plugins} transforms loaded and initialized)",
                path.display(),
                cfg.config.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e:#}", path.display());
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn eval(expression: &str, arrow: bool) -> ExitCode {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match weir::eval::run(expression, stdin, arrow, &mut out, &mut std::io::stderr()) {
        Ok(outcome) if outcome.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e @ weir::eval::EvalCliError::Expression(_)) => {
            eprintln!("weir eval: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("weir eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path, summary_json: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = LoadedConfig::load(path)?;
    let runtime = runtime_for(&cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let (summary, result) = weir::pipeline::run_config(&cfg, &runtime, &stop);
    if let Some(summary) = &summary {
        println!("{summary}");
        if let Some(file) = summary_json {
            let json = serde_json::to_string_pretty(summary).context("encoding the summary")?;
            std::fs::write(&file, json).with_context(|| format!("writing {}", file.display()))?;
        }
    }
    result.with_context(|| format!("running {}", path.display()))
}
