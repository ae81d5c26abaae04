//! The `apidns` command: parses the command line and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use apidns::config::{Config, ConfigError};
use apidns::logging;

mod cli;

use cli::status::{Status, StatusError, Verdict};
use cli::{Cli, Command};

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
    #[error("{}: [server] http is not set, so there is no endpoint to ask for the status", .0.display())]
    NoStatusEndpoint(PathBuf),
    #[error("{0} (the daemon's HTTP endpoint, [server] http in {1}); is apidns running?")]
    Unreachable(apidns::http::client::ClientError, PathBuf),
    #[error("apidns at http://{address}/status answered {status}: {body}")]
    StatusRefused {
        address: std::net::SocketAddr,
        status: u16,
        body: String,
    },
    #[error(transparent)]
    StatusDocument(#[from] StatusError),
    #[error("cannot write to standard output: {0}")]
    Output(std::io::Error),
    /// Some pool has no member up; `status` has printed it.
    #[error("")]
    PoolDown,
    /// The command has said what went wrong already (e.g. a pool is down in `probe`'s table).
    #[error("")]
    Reported,
}

fn main() -> ExitCode {
    let Cli { config, command } = Cli::parse();
    if let Command::Generate { what } = &command {
        // Made from the definitions alone: no configuration needed.
        let written = cli::generate::generate(what, &mut std::io::stdout().lock());
        return match written {
            // `apidns generate man | head` is not a failure.
            Ok(()) => ExitCode::SUCCESS,
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(error) => report(&Failure::Output(error), false),
        };
    }
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
    let result = apidns::config::load(&config)
        .map_err(Failure::from)
        .and_then(|loaded| run(command, config, loaded));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure, logs),
    }
}

/// Reports `failure`, on the log when `serve` has started it, else on stderr.
/// The exit status is 1 for every failure but one: `status` exits 2 when it cannot ask the
/// daemon at all, so that a script can tell "a pool is down" from "apidns is not running".
fn report(failure: &Failure, logs: bool) -> ExitCode {
    match failure {
        Failure::Reported | Failure::PoolDown => {}
        failure if logs => error!("{failure}"),
        failure => eprintln!("error: {failure}"),
    }
    match failure {
        Failure::NoStatusEndpoint(_)
        | Failure::Unreachable(..)
        | Failure::StatusRefused { .. }
        | Failure::StatusDocument(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

fn run(command: Command, path: PathBuf, config: Config) -> Result<(), Failure> {
    match command {
        Command::Check => {
            print!("{}", apidns::config::summary(&config));
            Ok(())
        }
        Command::Probe => probe(&config),
        Command::Status { json } => status(&config, json),
        Command::Drain { pool, member, .. } => drain(&config, &pool, &member, true),
        Command::Undrain { pool, member, .. } => drain(&config, &pool, &member, false),
        Command::Serve { query_log, .. } => serve(path, config, query_log.unwrap_or(0)),
        // Answered in `main` before any configuration is read.
        Command::Generate { .. } => Ok(()),
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

/// Asks the daemon for its /status and prints it as tables (or JSON).
fn status(config: &Config, json: bool) -> Result<(), Failure> {
    let address = config
        .server
        .http
        .ok_or_else(|| Failure::NoStatusEndpoint(config.path.clone()))?;
    let (code, body) = apidns::http::client::get(address, "/status")
        .map_err(|error| Failure::Unreachable(error, config.path.clone()))?;
    if code != 200 {
        let body = body.trim().to_string();
        return Err(Failure::StatusRefused {
            address,
            status: code,
            body,
        });
    }
    let status = Status::parse(&body)?;
    if json {
        println!("{}", status.json());
    } else {
        print!("{}", status.table(std::time::SystemTime::now()));
    }
    match status.verdict() {
        Verdict::EveryPoolUp => Ok(()),
        Verdict::SomePoolDown => Err(Failure::PoolDown),
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
