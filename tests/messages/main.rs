//! The message table is the one place refusals are worded: every code the sources name is in
//! it, every entry is named somewhere, and no refusal is written inline in two languages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use domain::message::TABLE;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every `.rs` file of `crate_dir/src`, with its text (test modules left out).
fn sources(crate_dir: &str) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![workspace().join(crate_dir).join("src")];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "tests") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|extension| extension == "rs")
                && path.file_name().is_some_and(|name| name != "tests.rs")
            {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let text = text
                    .split("#[cfg(test)]")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                found.push((path, text));
            }
        }
    }
    found
}

const CRATES: [&str; 3] = ["domain", "application", "command-api"];

/// The string literals that follow `marker`, past any white space (`Text::new(\n "…")`).
fn literals_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker)
        .filter_map(|(at, _)| {
            let rest = text[at + marker.len()..].trim_start().strip_prefix('"')?;
            let end = rest.find('"')?;
            Some(&rest[..end])
        })
        .collect()
}

#[test]
fn every_code_named_is_in_the_table_and_every_entry_is_named() {
    let table: BTreeSet<&str> = TABLE.iter().map(|entry| entry.code).collect();
    assert_eq!(table.len(), TABLE.len(), "a code is in the table twice");
    let mut named = BTreeSet::new();
    let mut missing = Vec::new();
    for krate in CRATES {
        for (path, text) in sources(krate) {
            for code in literals_after(&text, "Text::new(") {
                named.insert(code.to_owned());
                if !table.contains(code) {
                    missing.push(format!("{}: {code}", path.display()));
                }
            }
            // Codes chosen by a match (`Text::new(match self { … => "ineligible.unknown" })`)
            // or handed to a helper (`labelled("value.empty", field)`): any literal that is one.
            for literal in text.split('"').skip(1).step_by(2) {
                if table.contains(literal) {
                    named.insert(literal.to_owned());
                }
            }
        }
    }
    assert!(missing.is_empty(), "codes not in the table: {missing:#?}");
    let unnamed: Vec<&str> = table
        .iter()
        .copied()
        .filter(|code| !named.contains(*code))
        .collect();
    assert!(unnamed.is_empty(), "entries no source names: {unnamed:#?}");
}

#[test]
fn every_entry_has_both_languages_and_no_halves() {
    for entry in TABLE {
        assert!(
            !entry.zh.trim().is_empty() && !entry.en.trim().is_empty(),
            "{}",
            entry.code
        );
        assert!(
            entry
                .zh
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{}: the Chinese text has no Chinese",
            entry.code
        );
        assert!(
            !entry
                .en
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{}: the English text has Chinese",
            entry.code
        );
        assert!(
            !entry.zh.contains(" / ") && !entry.en.contains(" / "),
            "{}",
            entry.code
        );
    }
}

/// No refusal is worded where it is raised: the constructors of refusals take a `Text`, and no
/// string literal written in both languages sits inside one.
#[test]
fn no_refusal_is_written_inline_in_two_languages() {
    let raisers = [
        "Error::illegal_state(",
        "Error::invalid(",
        "Error::refused(",
        "ApiError::Invalid(",
        "ApiError::IllegalState(",
        "ApiError::Forbidden(",
        "ApiError::Conflict(",
        "ApiError::BadRequest(",
        "ApiError::NotFound(",
        "detail:",
        "#[error(",
    ];
    let mut inline = Vec::new();
    for krate in CRATES {
        for (path, text) in sources(krate) {
            for raiser in raisers {
                for (at, _) in text.match_indices(raiser) {
                    let window: String = text[at..].chars().take(240).collect();
                    let statement = window.split(';').next().unwrap_or_default();
                    let bilingual = statement.contains(" / ")
                        && statement
                            .chars()
                            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
                    if bilingual {
                        inline.push(format!(
                            "{}: {}",
                            path.display(),
                            statement.lines().next().unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    assert!(inline.is_empty(), "refusals worded inline: {inline:#?}");
}
