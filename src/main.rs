//! The `apidns` command: parses the command line and hands over to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use apidns::config::{Config, ConfigError};
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

impl Command {
    /// The configuration file every subcommand reads.
    fn config_path(&self) -> &Path {
        match self {
            Command::Serve { config, .. }
            | Command::Probe { config }
            | Command::Drain { config, .. }
            | Command::Undrain { config, .. }
            | Command::Check { config } => config,
        }
    }
}

/// Why a command failed; reported once, by [`main`].
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{}: [server] http is not set, so there is no admin endpoint to ask", .0.display())]
    NoAdminEndpoint(PathBuf),
    #[error(transparent)]
    Admin(#[from] apidns::http::client::ClientError),
    #[error("apidns answered {status}: {body}")]
    AdminRefused { status: u16, body: String },
    #[error(transparent)]
    Start(#[from] apidns::app::StartError),
    /// The command has said what went wrong already (e.g. a pool is down in `probe`'s table).
    #[error("")]
    Reported,
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    // `serve` logs through tracing, so its log starts first: its errors, the configuration's
    // among them, go where an operator reads the daemon's log.
    let logs = match &command {
        Command::Serve {
            log_format,
            log_level,
            ..
        } => match logging::init(*log_format, log_level) {
            Ok(()) => true,
            Err(error) => return report(&Failure::from(error), false),
        },
        _ => false,
    };
    let result = apidns::config::load(command.config_path())
        .map_err(Failure::from)
        .and_then(|config| run(command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure, logs),
    }
}

/// Reports `failure`, on the log when `serve` has started it, else on stderr.
fn report(failure: &Failure, logs: bool) -> ExitCode {
    match failure {
        Failure::Reported => {}
        failure if logs => error!("{failure}"),
        failure => eprintln!("error: {failure}"),
    }
    ExitCode::FAILURE
}

fn run(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Check { .. } => {
            print!("{}", apidns::config::summary(&config));
            Ok(())
        }
        Command::Probe { .. } => probe(&config),
        Command::Drain { pool, member, .. } => drain(&config, &pool, &member, true),
        Command::Undrain { pool, member, .. } => drain(&config, &pool, &member, false),
        Command::Serve {
            config: path,
            query_log,
            ..
        } => serve(path, config, query_log.unwrap_or(0)),
    }
}

fn drain(config: &Config, pool: &str, member: &str, drain: bool) -> Result<(), Failure> {
    let address = config
        .server
        .http
        .ok_or_else(|| Failure::NoAdminEndpoint(config.path.clone()))?;
    let action = if drain { "drain" } else { "undrain" };
    let target = format!("/{action}?pool={pool}&member={member}");
    match apidns::http::client::post(address, &target, config.server.admin_token.as_deref())? {
        (200, body) => {
            print!("{body}");
            Ok(())
        }
        (status, body) => Err(Failure::AdminRefused {
            status,
            body: body.trim().to_string(),
        }),
    }
}

fn probe(config: &Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new().map_err(Failure::Runtime)?;
    let results = runtime.block_on(apidns::health::probe_round(config));
    let (table, every_pool_up) = apidns::health::round_table(config, &results);
    print!("{table}");
    if every_pool_up {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

fn serve(path: PathBuf, config: Config, query_log_every: u64) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new().map_err(Failure::Runtime)?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let options = apidns::app::ServeOptions { query_log_every };
        apidns::app::serve(path, config, options, shutdown).await?;
        Ok(())
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
