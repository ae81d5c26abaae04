//! The documentation stays true to the tree: every relative link resolves, and the configuration
//! reference lists every key the parser accepts.
//!
//! The accepted keys come from the real binary rather than from the config structs: every table
//! denies unknown fields, so a bogus key makes `apidns check` print serde's "unknown field
//! `bogus`, expected one of `a`, `b`, ..." with the whole list. The test therefore knows nothing
//! of how the parser is built, only of the files it reads.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, SECURITY.md and every page under docs/.
fn documents() -> Vec<PathBuf> {
    let root = repository();
    let mut documents = vec![root.join("README.md"), root.join("SECURITY.md")];
    let mut pages: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a readable docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "md"))
        .collect();
    pages.sort();
    documents.extend(pages);
    documents
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The lines of a Markdown document outside fenced code blocks, with their line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            lines.push((index + 1, line));
        }
    }
    lines
}

/// A line with every inline code span replaced by `code`, so that brackets and parentheses
/// inside code are not taken for links (while a link whose text is code still is one).
fn without_code_spans(line: &str) -> String {
    let parts: Vec<&str> = line.split('`').collect();
    // An odd number of pieces means every backtick is closed; otherwise the last one is not.
    let all_closed = parts.len() % 2 == 1;
    let mut out = String::new();
    for (index, part) in parts.iter().enumerate() {
        let inside = index % 2 == 1 && (all_closed || index + 1 < parts.len());
        if inside {
            out.push_str("code");
        } else {
            if index > 0 {
                out.push('`');
            }
            out.push_str(part);
        }
    }
    out
}

/// The targets of the inline links `[text](target)` on one line.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                let target = after[..end].split_whitespace().next().unwrap_or("");
                targets.push(target.to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces made hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a document as (level, text).
fn headings(text: &str) -> Vec<(usize, String)> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, line)| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let title = line.get(level..)?;
            (level > 0 && title.starts_with(' ')).then(|| (level, title.trim().to_string()))
        })
        .collect()
}

/// The anchors GitHub gives a document's headings; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for (_, title) in headings(text) {
        let base = slug(&title.replace('`', ""));
        let mut anchor = base.clone();
        let mut repeat = 0;
        while anchors.contains(&anchor) {
            repeat += 1;
            anchor = format!("{base}-{repeat}");
        }
        anchors.insert(anchor);
    }
    anchors
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repository();
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = read(&document);
        let name = document
            .strip_prefix(&root)
            .unwrap_or(&document)
            .display()
            .to_string();
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, fragment) = match target.split_once('#') {
                    Some((path, fragment)) => (path, Some(fragment)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    document.clone()
                } else {
                    document.parent().unwrap_or(&root).join(path)
                };
                if !file.exists() {
                    broken.push(format!(
                        "{name}:{number}: {target}: no such file {}",
                        file.display()
                    ));
                    continue;
                }
                let Some(fragment) = fragment else { continue };
                if file.extension().is_none_or(|extension| extension != "md") {
                    broken.push(format!(
                        "{name}:{number}: {target}: an anchor into a file that is not Markdown"
                    ));
                    continue;
                }
                let known = anchors(&read(&file));
                if !known.contains(fragment) {
                    broken.push(format!(
                        "{name}:{number}: {target}: no heading with the anchor #{fragment} in {} (anchors: {})",
                        file.strip_prefix(&root).unwrap_or(&file).display(),
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} relative links found: is the link parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Held HTTP(S) connections"), "held-https-connections");
    assert_eq!(slug("[server.rrl]"), "serverrrl");
    assert_eq!(slug("update: dynamic updates"), "update-dynamic-updates");
    assert_eq!(
        slug("Choosing interval, timeout and fall"),
        "choosing-interval-timeout-and-fall"
    );
    assert_eq!(
        link_targets("see [`[pool.NAME]`](#poolname) and `[a](b)`"),
        ["#poolname"]
    );
}

/// One table of the configuration: how to put a bogus key into it, and the section of
/// docs/configuration.md whose table must have a row for each of its keys.
struct Table {
    name: &'static str,
    main_file: &'static str,
    zone_file: &'static str,
    section: &'static str,
}

const MAIN: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n";

const ZONE: &str = "origin = \"k8s.example.com.\"\n\
records = [ { name = \"@\", type = \"NS\", value = \"ns1\" }, { name = \"ns1\", type = \"A\", value = \"192.0.2.53\" } ]\n\
[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\n\
[pool.api]\nmembers = [\"192.0.2.10\"]\n";

fn tables() -> Vec<Table> {
    vec![
        Table {
            name: "the main file's top level",
            main_file: "bogus = 1\n[server]\nlisten = [\"127.0.0.1:5353\"]\n",
            zone_file: ZONE,
            section: "### Top-level tables",
        },
        Table {
            name: "[server]",
            main_file: "[server]\nlisten = [\"127.0.0.1:5353\"]\nbogus = 1\n",
            zone_file: ZONE,
            section: "### `[server]`",
        },
        Table {
            name: "[server.rrl]",
            main_file: "[server]\nlisten = [\"127.0.0.1:5353\"]\nrrl = { responses_per_second = 20, bogus = 1 }\n",
            zone_file: ZONE,
            section: "### `[server.rrl]`",
        },
        Table {
            name: "[probe]",
            main_file: "[server]\nlisten = [\"127.0.0.1:5353\"]\n[probe]\nbogus = 1\n",
            zone_file: ZONE,
            section: "## Probe settings",
        },
        Table {
            name: "[[tsig]]",
            main_file: "[server]\nlisten = [\"127.0.0.1:5353\"]\n[[tsig]]\nname = \"ops-key\"\nbogus = 1\n",
            zone_file: ZONE,
            section: "### `[[tsig]]`",
        },
        Table {
            name: "a zone file's top level",
            main_file: MAIN,
            zone_file: "bogus = 1\norigin = \"k8s.example.com.\"\n",
            section: "### Top-level keys",
        },
        Table {
            name: "[soa]",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster.example.com.\"\nbogus = 1\n",
            section: "### `[soa]`",
        },
        Table {
            name: "a record in records",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\nrecords = [ { name = \"@\", type = \"NS\", value = \"ns1\", bogus = 1 } ]\n",
            section: "### Records",
        },
        Table {
            name: "update",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\nupdate = { keys = [\"ops-key\"], allow = \"pool-members\", bogus = 1 }\n",
            section: "### `update`: dynamic updates",
        },
        Table {
            name: "primary",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\nprimary = { address = \"127.0.0.1:53\", bogus = 1 }\n",
            section: "### `primary`: a secondary zone",
        },
        Table {
            name: "[pool.NAME]",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\n[pool.api]\nmembers = [\"192.0.2.10\"]\nbogus = 1\n",
            section: "### `[pool.NAME]`",
        },
        Table {
            name: "a pool's probe",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\n[pool.api]\nmembers = [\"192.0.2.10\"]\nprobe = { bogus = 1 }\n",
            section: "## Probe settings",
        },
        Table {
            name: "a member table in a pool's members",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\n[pool.api]\nmembers = [ { address = \"192.0.2.10\", bogus = 1 } ]\n",
            section: "### Member tables",
        },
        Table {
            name: "a pool's discover",
            main_file: MAIN,
            zone_file: "origin = \"k8s.example.com.\"\n[pool.api]\nmembers = [\"192.0.2.10\"]\ndiscover = { kubeconfig = \"k\", allow = [], bogus = 1 }\n",
            section: "### `discover`: members from the cluster",
        },
    ]
}

/// The keys `apidns check` says a table accepts, from serde's unknown-field error.
fn accepted_keys(table: &Table, index: usize) -> Vec<String> {
    let directory =
        std::env::temp_dir().join(format!("apidns-docs-{}-{index}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(directory.join("zones")).expect("create a temporary directory");
    fs::write(directory.join("apidns.toml"), table.main_file).expect("write the main file");
    fs::write(
        directory.join("zones/k8s.example.com.toml"),
        table.zone_file,
    )
    .expect("write the zone file");
    let output = Command::new(env!("CARGO_BIN_EXE_apidns"))
        .arg("check")
        .arg("--config")
        .arg(directory.join("apidns.toml"))
        .output()
        .expect("run apidns check");
    let _ = fs::remove_dir_all(&directory);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let Some((_, list)) = said.split_once("unknown field `bogus`, expected ") else {
        panic!(
            "{}: apidns check did not reject the key `bogus` with serde's list of accepted keys; it said:\n{said}",
            table.name
        );
    };
    // "one of `a`, `b`, `c`", "`a` or `b`" or "`a`": the keys are the quoted words.
    let list = list.lines().next().unwrap_or("");
    let keys: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(
        !keys.is_empty(),
        "{}: no keys in apidns check's answer:\n{said}",
        table.name
    );
    keys
}

/// The lines of a section of docs/configuration.md, from its heading to the next heading of the
/// same or a higher level.
fn section<'a>(reference: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let lines = prose_lines(reference);
    let Some(start) = lines.iter().position(|(_, line)| line.trim() == heading) else {
        panic!("docs/configuration.md has no heading {heading:?}");
    };
    lines[start + 1..]
        .iter()
        .map(|&(_, line)| line)
        .take_while(|line| {
            let depth = line.chars().take_while(|&c| c == '#').count();
            !(depth > 0 && depth <= level && line[depth..].starts_with(' '))
        })
        .collect()
}

#[test]
fn the_configuration_reference_lists_every_key_the_parser_accepts() {
    let reference = read(&repository().join("docs/configuration.md"));
    let mut missing = Vec::new();
    for (index, table) in tables().iter().enumerate() {
        let lines = section(&reference, table.section);
        for key in accepted_keys(table, index) {
            let row = format!("| `{key}` |");
            if !lines.iter().any(|line| line.starts_with(&row)) {
                missing.push(format!(
                    "key `{key}` of {} (accepted by the parser) has no row `{row}` under {:?}",
                    table.name, table.section
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md is missing keys:\n{}",
        missing.join("\n")
    );
}
