//! How results reach stdout: the engine's objects as pretty JSON (a list as one array, for
//! `jq`), or a table for people.

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde::Serialize;

/// The `--output` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns with a header row.
    Table,
    /// The engine's objects as pretty JSON; a list is one JSON array.
    Json,
}

/// Writes `text` to stdout. A reader that has gone (`hatchet runs list | head`) is not an
/// error: what it did not read was not wanted.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json(value: &impl Serialize) -> anyhow::Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Prints `items` as JSON, or as the table `table` makes of them.
pub(crate) fn show<T: Serialize>(format: Format, items: &T, table: impl FnOnce(&T) -> Table) -> anyhow::Result<()> {
    match format {
        Format::Json => json(items),
        Format::Table => emit(&table(items).render()),
    }
}

/// Rows under a header, each column as wide as its widest cell.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table under `headers` (its width: rows are fitted to it).
    pub(crate) fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// A `FIELD VALUE` table of one object's fields.
    pub(crate) fn fields<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let mut t = Self::new(&["FIELD", "VALUE"]);
        for (name, value) in fields {
            t.row([name.to_owned(), value]);
        }
        t
    }

    /// Adds a row (missing cells are blank, extra ones dropped).
    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().take(self.headers.len()).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text: columns two spaces apart, no trailing blanks, each line ended.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for cells in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (cell, width) in cells.iter().zip(&widths) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A time as tables show it: UTC to the second.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional time, blank when absent.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> String {
    at.map(time).unwrap_or_default()
}

/// Milliseconds as tables show them (`850ms`, `12.3s`, `4m05s`).
pub(crate) fn millis(ms: Option<i64>) -> String {
    match ms {
        None => String::new(),
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1_000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1_000),
    }
}

/// `n` of `noun`, plural unless one (`1 run`, `3 runs`).
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `key=value` pairs of a metadata object, comma separated.
pub(crate) fn pairs(map: &serde_json::Map<String, serde_json::Value>) -> String {
    map.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&["ID", "STATUS", "NAME"]);
        t.row(["1".to_owned(), "COMPLETED".to_owned(), "a".to_owned()]);
        t.row(["12345".to_owned(), "FAILED".to_owned(), "long name".to_owned()]);
        assert_eq!(
            t.render(),
            "ID     STATUS     NAME\n1      COMPLETED  a\n12345  FAILED     long name\n"
        );
    }

    #[test]
    fn rows_are_fitted_to_the_header() {
        let cases: [(&[&str], &str); 3] = [
            (&["x"], "A  B\nx\n"),
            (&["x", "y", "z"], "A  B\nx  y\n"),
            (&["é", "ü"], "A  B\né  ü\n"),
        ];
        for (cells, want) in cases {
            let mut t = Table::new(&["A", "B"]);
            t.row(cells.iter().map(|c| (*c).to_owned()));
            assert_eq!(t.render(), want, "{cells:?}");
        }
        assert_eq!(Table::new(&["ONLY"]).render(), "ONLY\n");
    }

    #[test]
    fn field_tables() {
        let t = Table::fields([("id", "7".to_owned()), ("status", "RUNNING".to_owned())]);
        assert_eq!(t.render(), "FIELD   VALUE\nid      7\nstatus  RUNNING\n");
    }

    #[test]
    fn durations_read_at_a_glance() {
        let cases = [
            (None, ""),
            (Some(850), "850ms"),
            (Some(12_340), "12.3s"),
            (Some(245_000), "4m05s"),
        ];
        for (ms, want) in cases {
            assert_eq!(millis(ms), want, "{ms:?}");
        }
    }

    #[test]
    fn counts() {
        let cases = [(0, "0 runs"), (1, "1 run"), (1234, "1234 runs")];
        for (n, want) in cases {
            assert_eq!(count(n, "run"), want);
        }
        assert_eq!(count(2, "task run"), "2 task runs");
    }

    #[test]
    fn metadata_pairs() {
        let map = serde_json::json!({"batch": "7", "n": 3});
        assert_eq!(pairs(map.as_object().unwrap()), "batch=7,n=3");
    }
}
