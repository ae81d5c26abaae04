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
        /// Log every query (client, name, type, rcode), or with a number N one query in N.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
        query_log: Option<u64>,
    },
    /// Probe every pool member once and print the results; exit status 0 when every pool has
    /// at least one member up. Useful when setting up a node.
    #[command(after_help = "Example:\n  apidns probe --config apidns.toml")]
    Probe {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Take a member out of the answers now (the running daemon's admin endpoint does it);
    /// it is still probed and shown in /status. Lasts until `undrain` or a restart.
    #[command(
        after_help = "Example:\n  apidns drain --config apidns.toml api.k8s.example.com 192.0.2.11"
    )]
    Drain {
        #[arg(long, short)]
        config: PathBuf,
        /// The pool's name, e.g. api.k8s.example.com
        pool: String,
        /// The member's address (optionally with its port)
        member: String,
    },
    /// Put a drained member back into the answers.
    #[command(
        after_help = "Example:\n  apidns undrain --config apidns.toml api.k8s.example.com 192.0.2.11"
    )]
    Undrain {
        #[arg(long, short)]
        config: PathBuf,
        pool: String,
        member: String,
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
        Command::Drain {
            config,
            pool,
            member,
        } => drain(&config, &pool, &member, true),
        Command::Undrain {
            config,
            pool,
            member,
        } => drain(&config, &pool, &member, false),
        Command::Serve {
            config,
            log_format,
            log_level,
            query_log,
        } => serve(&config, log_format, &log_level, query_log.unwrap_or(0)),
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

fn drain(path: &std::path::Path, pool: &str, member: &str, drain: bool) -> ExitCode {
    let config = match apidns::config::load(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let Some(address) = config.server.http else {
        eprintln!(
            "error: {}: [server] http is not set, so there is no admin endpoint to ask",
            path.display()
        );
        return ExitCode::FAILURE;
    };
    let action = if drain { "drain" } else { "undrain" };
    let target = format!("/{action}?pool={pool}&member={member}");
    match apidns::http::client::post(address, &target, config.server.admin_token.as_deref()) {
        Ok((200, body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("error: apidns answered {status}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("error: {message}");
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

fn serve(path: &std::path::Path, format: LogFormat, level: &str, query_log_every: u64) -> ExitCode {
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
        let options = apidns::app::ServeOptions { query_log_every };
        match apidns::app::serve(path.to_path_buf(), config, options, shutdown).await {
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
