//! The `apidns` command: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use apidns::logging::{self, LogFormat};

/// Authoritative DNS for a Kubernetes API server name: answers it with the API servers that are
/// up right now, rotated on every query, with a low TTL.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  apidns serve --config apidns.toml\n  dig @127.0.0.1 -p 5353 api.k8s.example.com A"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS on the configured addresses until SIGINT or SIGTERM.
    #[command(
        after_help = "Example:\n  apidns serve --config /etc/apidns/apidns.toml --log-format json"
    )]
    Serve {
        /// The main configuration file; zone files are read from its `zones` directory.
        #[arg(long, short)]
        config: PathBuf,
        /// Log as human-readable text or as one JSON object per line.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Log level or filter directives (RUST_LOG, when set, takes precedence).
        #[arg(long, default_value = "info")]
        log_level: String,
    },
    /// Probe every pool member once and print the results; exit status 0 when every pool has
    /// at least one member up. Useful when setting up a node.
    #[command(after_help = "Example:\n  apidns probe --config apidns.toml")]
    Probe {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the configuration and print a summary; exit status 1 when it is invalid.
    #[command(after_help = "Example:\n  apidns check --config apidns.toml")]
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check(&config),
        Command::Probe { config } => probe(&config),
        Command::Serve {
            config,
            log_format,
            log_level,
        } => serve(&config, log_format, &log_level),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match apidns::config::load(path) {
        Ok(config) => {
            print!("{}", apidns::config::summary(&config));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn probe(path: &std::path::Path) -> ExitCode {
    let config = match apidns::config::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let results = runtime.block_on(apidns::health::probe_round(&config));
    let (table, every_pool_up) = apidns::health::round_table(&config, &results);
    print!("{table}");
    if every_pool_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(path: &std::path::Path, format: LogFormat, level: &str) -> ExitCode {
    if let Err(message) = logging::init(format, level) {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let config = match apidns::config::load(path) {
        Ok(config) => config,
        Err(error) => {
            error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        match apidns::app::serve(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                error!("{error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        error!("cannot install signal handlers; stop apidns with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    info!(signal = name, "shutting down");
    shutdown.cancel();
}
