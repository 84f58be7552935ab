//! `anjia analytics sql`: the analysts' shell. Statements end with `;` and may span lines;
//! `.tables`, `.schema TABLE`, `.help` and `.quit` are the shell's own. Each statement runs under
//! the same limits as the HTTP endpoint (`analytics::sql`).

use std::io::{BufRead, IsTerminal, Write};

use analytics::sql::{Answer, Refusal};
use unicode_width::UnicodeWidthStr;

use command_api::warehouse::WarehouseHandle;

const HELP: &str = "\
每条查询以 ; 结束 / end each query with ;
  .tables          列出表 / list the tables
  .schema TABLE    列出表的列 / list a table's columns
  .help            本帮助 / this help
  .quit            退出 / leave";

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    Table,
    Json,
}

/// Runs `command` if given (exit status 1 if it is refused), else every statement read from
/// standard input, with a prompt when that is a terminal.
pub async fn run(
    warehouse: &WarehouseHandle,
    command: Option<String>,
    output: Output,
) -> anyhow::Result<bool> {
    if let Some(command) = command {
        return execute(warehouse, &command, output).await;
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "安家数据仓库 / Anjia warehouse: {}\n{HELP}",
            warehouse.path().display()
        );
    }
    let mut all_ok = true;
    let mut pending = String::new();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!(
                "{}",
                if pending.is_empty() {
                    "anjia> "
                } else {
                    "  ...> "
                }
            );
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let trimmed = line.trim();
        if pending.is_empty() && trimmed.starts_with('.') {
            let statement = match meta(trimmed) {
                Meta::Quit => break,
                Meta::Help => {
                    writeln!(std::io::stdout().lock(), "{HELP}")?;
                    continue;
                }
                Meta::Run(statement) => statement,
                Meta::Unknown => {
                    eprintln!("未知命令 / unknown command: {trimmed}\n{HELP}");
                    all_ok = false;
                    continue;
                }
            };
            all_ok &= execute(warehouse, &statement, output).await?;
            continue;
        }
        if trimmed.is_empty() && pending.is_empty() {
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut pending);
            all_ok &= execute(warehouse, &statement, output).await?;
        }
    }
    if !pending.trim().is_empty() {
        all_ok &= execute(warehouse, &pending, output).await?;
    }
    Ok(all_ok)
}

enum Meta {
    Quit,
    Help,
    Run(String),
    Unknown,
}

fn meta(line: &str) -> Meta {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some(".quit" | ".exit"), _) => Meta::Quit,
        (Some(".help"), _) => Meta::Help,
        (Some(".tables"), _) => Meta::Run(
            "SELECT table_name, estimated_size AS estimated_rows FROM duckdb_tables() ORDER BY table_name"
                .to_owned(),
        ),
        (Some(".schema"), Some(table)) => Meta::Run(format!(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns
              WHERE table_name = '{}' ORDER BY ordinal_position",
            table.replace('\'', "''")
        )),
        _ => Meta::Unknown,
    }
}

/// Runs one statement and prints its answer or why it was refused; false if refused.
async fn execute(warehouse: &WarehouseHandle, sql: &str, output: Output) -> anyhow::Result<bool> {
    match warehouse
        .query(sql.to_owned(), warehouse.limits().clone())
        .await?
    {
        Ok(answer) => {
            let mut stdout = std::io::stdout().lock();
            match output {
                Output::Json => writeln!(stdout, "{}", serde_json::to_string(&answer)?)?,
                Output::Table => write!(stdout, "{}", table(&answer))?,
            }
            Ok(true)
        }
        Err(refusal) => {
            print_refusal(&refusal);
            Ok(false)
        }
    }
}

fn print_refusal(refusal: &Refusal) {
    eprintln!("拒绝 / refused ({}): {refusal}", refusal.problem());
}

/// A value as the table shows it: strings bare, null empty, anything else as JSON.
fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The answer as an aligned table (wide characters count double), then its row count.
pub fn table(answer: &Answer) -> String {
    let header: Vec<String> = answer
        .columns
        .iter()
        .map(|column| column.name.clone())
        .collect();
    let rows: Vec<Vec<String>> = answer
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|name| name.width()).collect();
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.width());
        }
    }
    let line = |values: &[String]| {
        let cells: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value}{}", " ".repeat(width - value.width())))
            .collect();
        format!("{}\n", cells.join(" | ").trim_end())
    };
    let mut text = line(&header);
    let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    text.push_str(&format!("{}\n", rule.join("-+-")));
    for row in &rows {
        text.push_str(&line(row));
    }
    text.push_str(&format!(
        "({} 行 / rows, {:.1} ms{})\n",
        rows.len(),
        answer.elapsed_ms,
        match answer.truncated_by.as_deref() {
            Some("bytes") => format!(
                "; 已截断，结果超过字节上限 / cut off at {} rows: the answer reached its size limit",
                rows.len()
            ),
            Some(_) => format!("; 已截断 / cut off at {} rows", rows.len()),
            None => String::new(),
        }
    ));
    text
}
