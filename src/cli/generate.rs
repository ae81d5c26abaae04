//! `apidns generate`: the man page and shell completions, made from the clap definitions in
//! [`super::Cli`] at the moment they are asked for, so that they always describe this binary.

use std::io::Write;

use clap::CommandFactory;

use super::{Cli, Generate, Shell};

/// Writes what `what` names to `out`.
pub fn generate(what: &Generate, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    match what {
        Generate::Man => clap_mangen::Man::new(command).render(out),
        Generate::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut command, "apidns", out);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(what: Generate) -> String {
        let mut out = Vec::new();
        generate(&what, &mut out).expect("writes into memory");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn the_man_page_names_every_subcommand() {
        let page = text(Generate::Man);
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq"),
            "roff: {}",
            &page[..40]
        );
        assert!(page.contains(".TH apidns 1"), "{page}");
        for subcommand in [
            "serve", "status", "probe", "drain", "undrain", "check", "generate",
        ] {
            assert!(
                page.contains(subcommand),
                "{subcommand} missing from the man page"
            );
        }
        assert!(
            page.contains("\\-\\-config"),
            "the global --config flag is documented"
        );
    }

    #[test]
    fn completions_know_the_subcommands_in_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = text(Generate::Completions { shell });
            // Fish spells the flag `-l config`, the others `--config`.
            for word in ["status", "undrain", "completions", "config"] {
                assert!(script.contains(word), "{word} missing from\n{script}");
            }
        }
    }
}
