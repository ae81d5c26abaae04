//! The command line: every subcommand, flag and argument with its help, declared once with
//! clap. The man page and the shell completions are generated from these definitions
//! (`apidns generate`), so they cannot drift from what the binary accepts.

pub mod generate;
pub mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use apidns::logging::LogFormat;

/// Where the Debian package installs the configuration, and where every subcommand looks
/// unless told otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/apidns/apidns.toml";

/// Authoritative DNS for a Kubernetes API server name: answers it with the API servers that
/// are up right now, rotated on every query, with a low TTL.
#[derive(Parser)]
#[command(
    name = "apidns",
    version,
    long_about = "Authoritative DNS for a Kubernetes API server name.\n\n\
        apidns serves a small zone (e.g. k8s.example.com, delegated from the corporate DNS) and \
        answers the API server's name with the addresses of the API servers whose probes pass \
        right now (TCP, or HTTPS /readyz over held connections that see a killed server in \
        milliseconds), rotated on every query, with a low TTL. It is a complete authoritative \
        server: SOA/NS, NXDOMAIN vs NODATA, UDP and TCP, EDNS, RFC 2136 updates with TSIG.",
    after_help = "Examples:\n  apidns serve --config apidns.toml\n  dig @127.0.0.1 -p 5353 api.k8s.example.com A\n  apidns status --config apidns.toml"
)]
pub struct Cli {
    /// The main configuration file; zone files are read from its `zones` directory.
    #[arg(
        long,
        short,
        global = true,
        value_name = "FILE",
        default_value = DEFAULT_CONFIG
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve DNS on the configured addresses.
    ///
    /// Runs until SIGINT or SIGTERM; reloads on SIGHUP or when a configuration file changes.
    #[command(
        after_help = "Example:\n  apidns serve --config /etc/apidns/apidns.toml --log-format json"
    )]
    Serve {
        /// Log as human-readable text or as one JSON object per line.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Log level or filter directives (RUST_LOG, when set, takes precedence).
        #[arg(long, value_name = "FILTER", default_value = "info")]
        log_level: String,
        /// Log every query (client, name, type, rcode), or with a number N one query in N.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
        query_log: Option<u64>,
    },
    /// Show the running daemon's pools and members.
    ///
    /// Asks the daemon's HTTP endpoint ([server] http). Exit status 0 when every pool has a
    /// member up, 1 when some pool has none, 2 when the daemon cannot be reached.
    #[command(after_help = "Examples:\n  apidns status\n  apidns status --json | jq .")]
    Status {
        /// Print the daemon's /status document as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Probe every pool member once from here and print the results.
    ///
    /// Exit status 0 when every pool has at least one member up. Needs no running daemon:
    /// useful when setting up a node.
    #[command(after_help = "Example:\n  apidns probe --config apidns.toml")]
    Probe,
    /// Take a member out of the answers now.
    ///
    /// The running daemon's admin endpoint does it; the member is still probed and shown by
    /// `status`. Lasts until `undrain` or a restart.
    #[command(
        after_help = "Example:\n  apidns drain --config apidns.toml api.k8s.example.com 192.0.2.11"
    )]
    Drain {
        /// The pool's name, e.g. api.k8s.example.com
        pool: String,
        /// The member's address, optionally with its port
        member: String,
    },
    /// Put a drained member back into the answers.
    #[command(
        after_help = "Example:\n  apidns undrain --config apidns.toml api.k8s.example.com 192.0.2.11"
    )]
    Undrain {
        /// The pool's name, e.g. api.k8s.example.com
        pool: String,
        /// The member's address, optionally with its port
        member: String,
    },
    /// Validate the configuration and print a summary.
    ///
    /// Exit status 1 when it is invalid, with the file, line and field at fault.
    #[command(after_help = "Example:\n  apidns check --config apidns.toml")]
    Check,
    /// Write the man page or shell completions to standard output.
    ///
    /// Both are generated from this binary's own command-line definitions.
    #[command(
        after_help = "Examples:\n  apidns generate man > apidns.1\n  apidns generate completions bash > /usr/share/bash-completion/completions/apidns"
    )]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Subcommand)]
pub enum Generate {
    /// The man page, apidns(1), in roff.
    Man,
    /// Completions for a shell.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    /// Every subcommand, flag and argument says what it is for: the man page and the
    /// completions are made from these texts.
    #[test]
    fn everything_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() {
                missing.push(path.clone());
            }
            for argument in command.get_arguments() {
                let builtin = matches!(argument.get_id().as_str(), "help" | "version");
                if argument.get_help().is_none() && !builtin {
                    missing.push(format!("{path} {}", argument.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn config_is_accepted_before_or_after_the_subcommand() {
        for args in [
            ["apidns", "--config", "x.toml", "check"],
            ["apidns", "check", "--config", "x.toml"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert_eq!(cli.config, PathBuf::from("x.toml"));
        }
        let cli = Cli::try_parse_from(["apidns", "status"]).expect("parses");
        assert_eq!(cli.config, PathBuf::from(DEFAULT_CONFIG));
    }
}
