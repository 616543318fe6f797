//! The `ferry` binary: a thin command line over the job runner.
//!
//! `ferry run JOB_FILE` runs a migration job in the foreground with live progress;
//! `ferry check JOB_FILE` runs the pre-check items; `ferry validate JOB_FILE` checks a job file
//! and prints what it would do; `ferry serve` runs the HTTP API server (Tencent Cloud API 3.0
//! compatible) and `ferry api ACTION` calls it.

mod api;
mod check;
mod loadgen;
mod progress;
mod run;
mod serve;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's malloc: the replay allocates row images on the reader's thread and
/// frees them on the apply workers', where glibc's arenas spend a quarter of Ferry's CPU
/// (measured with `perf` during `benches/replay.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ferry: move a live MySQL/MariaDB database to another server, and prove nothing was lost.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    /// Log format on stderr [default: text; `ferry serve`: `[log] format` of its config file].
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A live bar on a terminal, plain lines otherwise.
    Auto,
    /// Always the live bar.
    Bar,
    /// Plain lines every few seconds.
    Plain,
    /// Only the final summary.
    None,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a migration job (a CreateMigrateJob request in JSON or TOML) in the foreground.
    ///
    /// Exit status 0 on success, 1 on failure. Interrupting (Ctrl-C, kill) is safe: run the
    /// same command again to resume from the last finished chunk. Send SIGHUP to re-read the
    /// job file's Ferry.RowsPerSecond / Ferry.BytesPerSecond while it runs.
    ///
    /// MigrateType 3 (full + incremental) keeps replaying the source's changes after the full
    /// load and shows the lag live, until it is told to complete (cut over): send SIGUSR1
    /// (`kill -USR1 PID`), or type `complete` and Enter on the terminal, or start it with
    /// --complete-when-caught-up. Completing drains the changes up to the source's position at
    /// that moment, creates the triggers and events, and prints the final binlog position and
    /// GTID. Ctrl-C stops the replay safely without completing: the next run resumes from the
    /// replay checkpoint (nothing lost, nothing applied twice).
    Run {
        /// The job file (.json or .toml).
        job_file: PathBuf,
        /// Forget this job's earlier progress on the target and start over.
        #[arg(long)]
        restart: bool,
        /// Progress display.
        #[arg(long, value_enum, default_value = "auto")]
        progress: ProgressMode,
        /// Start without the pre-check (it normally runs first and stops on FAILED items).
        #[arg(long)]
        skip_check: bool,
        /// MigrateType 3: complete (cut over) as soon as the replay has caught up with the
        /// source, instead of waiting for SIGUSR1 or `complete` on the terminal.
        #[arg(long)]
        complete_when_caught_up: bool,
        /// Advanced: run as the owner of the job at this ownership epoch (the hook a cluster of
        /// `ferry serve` nodes uses; for tests and scripts). The epoch is recorded on the target
        /// (refused when the target holds a newer one) and every checkpoint commit checks it: a
        /// run with an older epoch fails instead of applying anything.
        #[arg(long, hide = true, value_name = "N")]
        epoch: Option<u64>,
    },
    /// Run the pre-check items of a job: PASSED / WARNING / FAILED, with what to fix.
    ///
    /// Exit status 0 when no item failed, 1 otherwise. Read-only on both servers.
    Check {
        /// The job file (.json or .toml).
        job_file: PathBuf,
        /// Print the items as JSON.
        #[arg(long)]
        json: bool,
        /// Print the message of every item, not only of warnings and failures.
        #[arg(long)]
        all: bool,
    },
    /// Compare source and target through the job's name mapping: row counts, chunked checksums,
    /// row-level differences and, with --repair-sql, the statements that make the target equal.
    ///
    /// Exit status 0 when consistent, 2 when differences were found, 1 on error. The mode comes
    /// from MigrateOption.ConsistencyType (2 full, 3 sample, 4 tables found inconsistent before)
    /// unless --mode says otherwise.
    Verify {
        /// The job file (.json or .toml).
        job_file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Write INSERT / REPLACE / DELETE statements that repair the target to this file.
        #[arg(long, value_name = "FILE")]
        repair_sql: Option<PathBuf>,
        /// full | objects | sample:ROWS_PERCENT[:TABLES_PERCENT] | tables:db.t,db.t2
        #[arg(long)]
        mode: Option<String>,
        /// The JobId of a job that `ferry serve` runs (its checkpoints on the target are kept
        /// under the JobId, not the JobName): needed to wait for its live replay.
        #[arg(long, value_name = "ID")]
        job_id: Option<String>,
        /// Digest every chunk, forgetting the chunks an interrupted full verification of the job
        /// stored (by default a run resumes from them while the source is unchanged).
        #[arg(long)]
        restart: bool,
    },
    /// Sample data and a write load (sysbench-like tables and oltp_write_only-like transactions)
    /// for demos, tests and benchmarks.
    Loadgen(loadgen::LoadgenArgs),
    /// Check a job file and print the validated job (passwords are never printed).
    Validate {
        /// The job file (.json or .toml).
        job_file: PathBuf,
    },
    /// Run the HTTP API server: the DTS migration API (2018-03-30 and 2021-12-06), wire-compatible
    /// with Tencent Cloud API 3.0 clients and SDKs.
    ///
    /// Prints `ferry serve: listening on http://ADDR (…)` once it accepts calls. When no API key
    /// pair is configured it generates one into DATA_DIR/credentials.toml and says so. SIGTERM or
    /// SIGINT stops it: running jobs stop at a safe point and resume on the next start.
    Serve(serve::ServeArgs),
    /// Call an API action of `ferry serve` (signed with TC3-HMAC-SHA256) and print the Response.
    ///
    /// Exit status 0 on success, 1 when the Response has an Error (code and message also on
    /// stderr) or the server cannot be reached.
    Api(api::ApiArgs),
}

fn init_logging(format: LogFormat, verbose: u8) {
    let default = match verbose {
        // mysql_async logs every failed statement at ERROR, expected probes included.
        0 => "warn,mysql_async=off",
        1 => "info,mysql_async=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    install_logging(format, filter, true);
}

/// `ferry serve`'s logging: the level and format of its merged configuration (flags >
/// environment > file), `info` by default so that every API call is logged.
fn init_serve_logging(config: &ferry_api::ServerConfig) -> Result<(), String> {
    let level = config.log.level.as_deref().unwrap_or("info,mysql_async=off");
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
        format!("log.level {level:?} is not a valid filter ({e}); use e.g. \"info\" or \"info,ferry_replay=debug\"")
    })?;
    let format = match config.log.format {
        ferry_api::config::LogFormat::Text => LogFormat::Text,
        ferry_api::config::LogFormat::Json => LogFormat::Json,
    };
    // No colour codes when stderr goes to a file or a log collector.
    install_logging(
        format,
        filter,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    Ok(())
}

fn install_logging(format: LogFormat, filter: tracing_subscriber::EnvFilter, ansi: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let serve_config = match &cli.command {
        Command::Serve(args) => {
            let log_format = cli.log_format.map(|f| match f {
                LogFormat::Text => ferry_api::config::LogFormat::Text,
                LogFormat::Json => ferry_api::config::LogFormat::Json,
            });
            let loaded = serve::load_config(args, log_format, cli.verbose).and_then(|config| {
                init_serve_logging(&config)
                    .map(|()| config)
                    .map_err(anyhow::Error::msg)
            });
            match loaded {
                Ok(config) => Some(config),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        _ => {
            init_logging(cli.log_format.unwrap_or(LogFormat::Text), cli.verbose);
            None
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Run {
                job_file,
                restart,
                progress,
                skip_check,
                complete_when_caught_up,
                epoch,
            } => {
                let flags = run::RunFlags {
                    restart,
                    skip_check,
                    complete_when_caught_up,
                    epoch,
                };
                run::run(&job_file, progress, flags).await
            }
            Command::Check { job_file, json, all } => check::check(&job_file, json, all).await,
            Command::Validate { job_file } => run::validate(&job_file),
            Command::Serve(_) => match serve_config {
                Some(config) => serve::serve(config).await,
                None => Err(anyhow::anyhow!("the server configuration was not loaded")),
            },
            Command::Api(args) => api::api(args).await,
            Command::Loadgen(args) => loadgen::loadgen(args).await,
            Command::Verify {
                job_file,
                json,
                repair_sql,
                mode,
                job_id,
                restart,
            } => match mode.as_deref().map(verify::parse_mode).transpose() {
                Ok(mode) => {
                    let how = verify::How {
                        json,
                        repair_sql: repair_sql.as_deref(),
                        mode,
                        job_id: job_id.as_deref(),
                        restart,
                    };
                    verify::verify(&job_file, how).await
                }
                Err(e) => Err(anyhow::anyhow!("--mode: {e}")),
            },
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
