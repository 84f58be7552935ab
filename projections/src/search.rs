//! Search terms for the admins' searches over orders, customers and workers, Chinese included.
//!
//! pg_trgm cannot help: in the C-locale clusters the platform creates it treats every Chinese
//! character as a separator. Each searchable read model keeps a `search_terms` array under a
//! GIN index instead, and a query matches the rows holding all of its terms:
//! - Latin words and numbers: every prefix (up to 20 characters) is a term, so `clean` finds
//!   `cleaning` and `5678` finds the tail of `139****5678`;
//! - runs of other letters (Chinese): every character and every pair of neighbouring characters
//!   is a term; a query's run is split into its pairs (or its one character), so 保洁 finds
//!   日常保洁 and 深度保洁, and 洁日 finds neither.
//!
//! (Migration 0019 first did this in SQL functions; at about 7 ms a row they made a million-row
//! rebuild take hours, so the terms are computed here, where it costs microseconds.)

use std::collections::BTreeSet;

const LONGEST_PREFIX: usize = 20;

enum Piece {
    Word(String),
    Run(Vec<char>),
}

/// Splits text into lower-case Latin words (letters and digits) and runs of other letters;
/// punctuation and spaces of either script separate them.
fn pieces(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush = |word: &mut String, run: &mut Vec<char>, pieces: &mut Vec<Piece>| {
        if !word.is_empty() {
            pieces.push(Piece::Word(std::mem::take(word)));
        }
        if !run.is_empty() {
            pieces.push(Piece::Run(std::mem::take(run)));
        }
    };
    for character in text.chars() {
        if character.is_ascii_alphanumeric() {
            if !run.is_empty() {
                flush(&mut String::new(), &mut run, &mut pieces);
            }
            word.push(character.to_ascii_lowercase());
        } else if character.is_alphanumeric() {
            if !word.is_empty() {
                flush(&mut word, &mut Vec::new(), &mut pieces);
            }
            run.extend(character.to_lowercase());
        } else {
            flush(&mut word, &mut run, &mut pieces);
        }
    }
    flush(&mut word, &mut run, &mut pieces);
    pieces
}

/// The terms a row is found by.
pub fn index_terms(text: &str) -> Vec<String> {
    let mut terms = BTreeSet::new();
    for piece in pieces(text) {
        match piece {
            Piece::Word(word) => {
                let characters: Vec<char> = word.chars().collect();
                for length in 1..=characters.len().min(LONGEST_PREFIX) {
                    terms.insert(characters[..length].iter().collect::<String>());
                }
            }
            Piece::Run(run) => {
                for (index, character) in run.iter().enumerate() {
                    terms.insert(character.to_string());
                    if let Some(next) = run.get(index + 1) {
                        terms.insert([*character, *next].iter().collect::<String>());
                    }
                }
            }
        }
    }
    terms.into_iter().collect()
}

/// The terms a query needs a row to hold; empty for a query with nothing to search by.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms = BTreeSet::new();
    for piece in pieces(query) {
        match piece {
            Piece::Word(word) => {
                terms.insert(word.chars().take(LONGEST_PREFIX).collect::<String>());
            }
            Piece::Run(run) if run.len() == 1 => {
                terms.insert(run[0].to_string());
            }
            Piece::Run(run) => {
                for pair in run.windows(2) {
                    terms.insert(pair.iter().collect::<String>());
                }
            }
        }
    }
    terms.into_iter().collect()
}

/// Recomputes one row's terms from the text `source` (a SQL expression over the row) reads.
pub(crate) async fn refresh(
    connection: &mut sqlx::PgConnection,
    table: &str,
    id_column: &str,
    id: uuid::Uuid,
    source: &str,
) -> anyhow::Result<()> {
    let text: Option<String> = sqlx::query_scalar(&format!(
        "SELECT {source} FROM {table} WHERE {id_column} = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *connection)
    .await?;
    if let Some(text) = text {
        sqlx::query(&format!(
            "UPDATE {table} SET search_terms = $2 WHERE {id_column} = $1"
        ))
        .bind(id)
        .bind(index_terms(&text))
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(row: &str, query: &str) -> bool {
        let terms = index_terms(row);
        let wanted = query_terms(query);
        !wanted.is_empty() && wanted.iter().all(|term| terms.contains(term))
    }

    #[test]
    fn chinese_is_found_by_any_part_and_latin_by_prefixes() {
        let daily = "日常保洁 Daily cleaning 上海市 浦东新区 王女士 138****5678";
        let deep = "深度保洁 Deep cleaning 上海市 徐汇区 赵先生 139****1234";
        assert!(finds(daily, "保洁") && finds(deep, "保洁"));
        assert!(finds(deep, "深度保洁") && !finds(daily, "深度保洁"));
        assert!(finds(deep, "deep clean") && !finds(daily, "deep"));
        assert!(finds(daily, "浦东") && finds(daily, "王") && finds(daily, "5678"));
        assert!(finds(daily, "保洁 浦东") && !finds(deep, "保洁 浦东"));
        assert!(!finds(daily, "洁日"), "no match across words");
        assert!(!finds(daily, "，。 "), "punctuation alone searches nothing");
        assert!(finds("Ｗang 王", "王"));
    }
}
