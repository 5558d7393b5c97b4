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
    /// Creates a plugin project that builds as it is: a sample transform with a unit test, a
    /// sample input, and a pipeline config that runs it on an embedded Kafka.
    New {
        /// The plugin's name, also the project's folder (unless --dir).
        name: String,
        /// The plugin's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: weir::authoring::scaffold::Lang,
        /// Where to create the project (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The `guest-sdk` folder of a weir checkout (default: the one weir was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Runs a plugin on a sample file as a route would and prints its answer as a table;
    /// failed rows are named. With --conformance, checks that the plugin keeps the weir ABI.
    /// Exit code 1: a batch failed, the output differs from --expect, or a conformance check
    /// failed; 2: bad arguments or plugin.
    Test(TestArgs),
    /// Delta table maintenance, safe beside a running worker.
    Delta {
        #[command(subcommand)]
        action: DeltaCommand,
    },
}

#[derive(Subcommand)]
enum DeltaCommand {
    /// Compacts small files: per partition, files under --target-size are rewritten into as
    /// few as fit it, in one commit that live writers' appends do not conflict with.
    Optimize {
        /// The table: a local path or s3://bucket/path.
        table: String,
        /// Files smaller than this are compacted, into files of about this size.
        #[arg(long, default_value = "128MiB", value_parser = parse_size)]
        target_size: u64,
        /// Compression of the new files.
        #[arg(long, value_enum, default_value = "zstd")]
        compression: CompressionArg,
        /// An object_store setting, KEY=VALUE (repeatable; the AWS_* environment is read too).
        #[arg(long = "storage", value_name = "KEY=VALUE")]
        storage: Vec<String>,
    },
    /// Deletes files that no table version within the retention period refers to.
    Vacuum {
        /// The table: a local path or s3://bucket/path.
        table: String,
        /// Keep files still referred to by versions this recent.
        #[arg(long, default_value = "7days", value_parser = humantime::parse_duration)]
        retention: std::time::Duration,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention shorter than the table's minimum (delta.deletedFileRetentionDuration).
        #[arg(long)]
        force: bool,
        /// An object_store setting, KEY=VALUE (repeatable).
        #[arg(long = "storage", value_name = "KEY=VALUE")]
        storage: Vec<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CompressionArg {
    Zstd,
    Snappy,
    None,
}

fn parse_size(s: &str) -> Result<u64, String> {
    weir::config::parse_size(s).ok_or_else(|| format!("`{s}` is not a size; write e.g. 128MiB"))
}

#[derive(clap::Args)]
struct TestArgs {
    /// The plugin: a .wasm (or .wat) file, or `builtin:NAME`.
    #[arg(long)]
    plugin: String,
    /// The plugin's params, as JSON (what `params:` holds in a route).
    #[arg(long, default_value = "{}")]
    params: String,
    /// Sample input: .jsonl (one JSON object per line), .parquet, or .avro (object container
    /// file). Conformance checks default to sample orders of weir's demo.
    #[arg(long)]
    input: Option<PathBuf>,
    /// A file the plugin may read, as a route's `files:` grants it: NAME=PATH (repeatable).
    #[arg(long = "file", value_name = "NAME=PATH")]
    files: Vec<String>,
    /// Rows per batch.
    #[arg(long, default_value_t = 10_000)]
    batch_rows: usize,
    /// Output rows to print.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Also write every output row to this file: .parquet, or JSON lines otherwise.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compare the output rows with this file (JSON lines, one object per row, in order) and
    /// fail (exit 1) when they differ: a golden-file test for a plugin.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Check the plugin against the ABI instead of printing its answer.
    #[arg(long)]
    conformance: bool,
}

/// Exit codes: 0 done, 1 runtime failure, 2 invalid config.
const EXIT_INVALID: u8 = 2;

/// glibc hands freed blocks over 128 KiB back to the kernel at once (and maps large ones
/// afresh), so every batch's Arrow buffers would fault in zeroed pages again. Keeping up to
/// 64 MiB of freed memory for reuse cut page faults by a fifth and CPU by about 2% in the
/// benchmark (docs/BENCHMARKS.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's thresholds; nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate { config } => validate(&config),
        Command::Eval { expression, arrow } => eval(&expression, arrow),
        Command::New {
            name,
            lang,
            dir,
            sdk,
        } => new_plugin(&name, lang, dir, sdk),
        Command::Test(args) => match test_plugin(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("weir test: {e:#}");
                ExitCode::from(EXIT_INVALID)
            }
        },
        Command::Delta { action } => match delta(action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("weir delta: {e:#}");
                ExitCode::FAILURE
            }
        },
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

/// Runs a Delta maintenance command and prints what it did as JSON.
fn delta(action: DeltaCommand) -> anyhow::Result<()> {
    use weir::config::Compression;
    use weir::sink::delta::maintenance;
    let options = |kv: Vec<String>| -> anyhow::Result<std::collections::HashMap<String, String>> {
        kv.into_iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .with_context(|| format!("--storage {s}: expected KEY=VALUE"))
            })
            .collect()
    };
    let report = match action {
        DeltaCommand::Optimize {
            table,
            target_size,
            compression,
            storage,
        } => {
            let c = match compression {
                CompressionArg::Zstd => Compression::Zstd,
                CompressionArg::Snappy => Compression::Snappy,
                CompressionArg::None => Compression::None,
            };
            let done = maintenance::optimize(&table, &options(storage)?, target_size, c)
                .with_context(|| format!("optimizing {table}"))?;
            serde_json::to_string(&done)?
        }
        DeltaCommand::Vacuum {
            table,
            retention,
            dry_run,
            force,
            storage,
        } => {
            let done = maintenance::vacuum(&table, &options(storage)?, retention, dry_run, force)
                .with_context(|| format!("vacuuming {table}"))?;
            serde_json::to_string(&done)?
        }
    };
    println!("{report}");
    Ok(())
}

/// The default log filter: weir at info; the libraries' per-snapshot chatter (delta-rs and its
/// kernel log every table load at info) only when it matters.
const DEFAULT_LOG: &str = "info,librdkafka=warn,buoyant_kernel=warn,deltalake_core=warn";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
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
    Runtime::new(Limits::from_config(rt), cache).context("starting the wasm runtime")
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
        // The second signal exits at once; the first asks for a clean stop.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .context("installing signal handlers")?;
    }
    shutdown_deadline(&stop, cfg.config.runtime.shutdown_timeout)?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .context("installing signal handlers")?;
    let (summary, result) = weir::pipeline::run_config(&cfg, &runtime, &stop, &reload);
    if let Some(summary) = &summary {
        println!("{summary}");
        if let Some(file) = summary_json {
            let json = serde_json::to_string_pretty(summary).context("encoding the summary")?;
            std::fs::write(&file, json).with_context(|| format!("writing {}", file.display()))?;
        }
    }
    result.with_context(|| format!("running {}", path.display()))
}

/// Once `stop` is set, gives the worker `timeout` to drain, flush and commit, then exits with
/// status 1: a stuck sink or broker can't hold a stopping worker forever, and what was not
/// committed is read again by the next run.
fn shutdown_deadline(stop: &Arc<AtomicBool>, timeout: std::time::Duration) -> anyhow::Result<()> {
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("weir-shutdown".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            std::thread::sleep(timeout);
            tracing::error!(
                "shutdown took over {} (runtime.shutdown_timeout); exiting without finishing it",
                humantime::format_duration(timeout)
            );
            std::process::exit(1);
        })
        .context("starting the shutdown timer")?;
    Ok(())
}

fn new_plugin(
    name: &str,
    lang: weir::authoring::scaffold::Lang,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> ExitCode {
    use weir::authoring::scaffold;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let sdk = sdk.unwrap_or_else(scaffold::default_sdk);
    match scaffold::scaffold(lang, name, &dir, &sdk) {
        Ok(files) => {
            println!("created {} ({} files)", dir.display(), files.len());
            let build = match lang {
                scaffold::Lang::Rust => "cargo wasm",
                scaffold::Lang::AssemblyScript => "npm install && npm run build",
            };
            println!(
                "next:\n  cd {}\n  {build}\n  (then README.md: weir test, weir run)",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn test_plugin(args: &TestArgs) -> anyhow::Result<ExitCode> {
    use weir::authoring::{conformance, runner, sample};
    let params: serde_json::Value =
        serde_json::from_str(&args.params).context("--params is not JSON")?;
    let cwd = std::env::current_dir().context("the current folder")?;
    let mut grants = std::collections::BTreeMap::new();
    for grant in &args.files {
        let (name, path) = grant
            .split_once('=')
            .with_context(|| format!("--file {grant}: expected NAME=PATH"))?;
        grants.insert(name.to_string(), PathBuf::from(path));
    }
    let files = weir::runtime::FileGrants::read(&args.plugin, &grants, &cwd)?;
    let runtime = Runtime::new(Limits::default(), Runtime::default_cache_dir())
        .context("starting the wasm runtime")?;
    let sample = match &args.input {
        Some(path) => sample::read(path, args.batch_rows)?,
        None if args.conformance => sample::demo_orders(1_000, args.batch_rows)
            .map_err(|e| anyhow::anyhow!("the default sample: {e}"))?,
        None => anyhow::bail!("--input FILE: the sample to run the plugin on"),
    };
    if args.conformance {
        println!(
            "conformance of {} (weir ABI v{})",
            args.plugin,
            weir_guest_sdk::abi::ABI_VERSION
        );
        let report = conformance::check(
            &runtime,
            &args.plugin,
            &cwd,
            &params,
            &files,
            &sample,
            args.input.is_some(),
        );
        println!("{report}");
        return Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let plugin = runtime.load(&args.plugin, &cwd)?;
    let mut instance = plugin.instantiate("test", &params, files)?;
    let manifest = serde_json::to_string(instance.manifest()).context("the manifest")?;
    println!("{}: manifest {manifest}", args.plugin);
    let outcome = runner::run(&mut instance, &sample);
    let mut stdout = std::io::stdout().lock();
    runner::render(&outcome, &sample, args.limit, &mut stdout).context("printing")?;
    if let Some(path) = &args.output {
        runner::write_output(&outcome, path)?;
        println!("wrote {} rows to {}", outcome.rows_out, path.display());
    }
    let mut ok = outcome.failed_batches.is_empty();
    if let Some(path) = &args.expect {
        match runner::expect(&outcome, path)? {
            Ok(rows) => println!("expected: all {rows} rows match {}", path.display()),
            Err(difference) => {
                println!("expected: {difference}");
                ok = false;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
