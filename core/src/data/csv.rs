//! Every CSV medpick reads or writes goes through this module, on the `csv` crate: RFC 4180, so an id with a
//! comma, a quote or a newline in it survives `select` → `train --labels` → `eval` unchanged.
//!
//! Readers trim cells, skip blank lines and name the file and line of anything wrong; writers quote only where
//! a field needs it, so plain ids read as they always did.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// One record: its 1-based line in the file and its cells, trimmed.
pub type Row = (u64, Vec<String>);

/// Every non-blank record of a CSV file (the header too, if it has one).
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_rows(path, &bytes)
}

/// [`read_rows`] of a CSV held in memory; `path` names it in errors.
pub fn parse_rows(path: &Path, bytes: &[u8]) -> Result<Vec<Row>> {
    let mut rdr =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(::csv::Trim::All).from_reader(bytes);
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
            Error::decode(path, format!("{line}not a valid CSV record: {e}"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        rows.push((line, rec.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}

/// Which column is named `name` in a header row (case-insensitive).
fn column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|c| c.eq_ignore_ascii_case(name))
}

/// id → label. With a header that names `id` and `label` (in any order, among other columns, as in a
/// `picks.csv` whose label column a person filled in), those columns, and rows with an empty label are
/// skipped (not labelled yet). Otherwise `id,label` rows, the first skipped when its first cell is `id`.
/// The same id twice with two different labels is an error; twice with the same label is kept once.
pub fn read_labels(path: &Path) -> Result<HashMap<String, String>> {
    labels_of_rows(path, read_rows(path)?)
}

/// [`read_labels`] of a CSV held in memory; `path` names it in errors.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<HashMap<String, String>> {
    labels_of_rows(path, parse_rows(path, bytes)?)
}

fn labels_of_rows(path: &Path, rows: Vec<Row>) -> Result<HashMap<String, String>> {
    let Some((_, first)) = rows.first() else { return Err(Error::decode(path, "empty file: no id,label rows")) };
    // `named`: the header names both columns, so a row without a label cell is simply not labelled yet.
    let (ci, cl, skip, named) = match (column(first, "id"), column(first, "label")) {
        (Some(i), Some(l)) => (i, l, 1, true),
        (Some(0), None) => (0, 1, 1, false),
        _ => (0, 1, 0, false),
    };
    let mut m: HashMap<String, String> = HashMap::new();
    for (line, cells) in rows.iter().skip(skip) {
        let (Some(id), label) = (cells.get(ci), cells.get(cl)) else {
            return Err(Error::decode(path, format!("line {line}: no id cell")));
        };
        let label = match label {
            Some(l) => l,
            None if named => continue,
            None => return Err(Error::decode(path, format!("line {line}: expected `id,label`, got one cell `{id}`"))),
        };
        if id.is_empty() {
            return Err(Error::decode(path, format!("line {line}: empty id")));
        }
        if label.is_empty() {
            continue;
        }
        if let Some(prev) = m.get(id) {
            if prev != label {
                return Err(Error::decode(
                    path,
                    format!("line {line}: id `{id}` is labelled `{prev}` earlier and `{label}` here"),
                ));
            }
        }
        m.insert(id.clone(), label.clone());
    }
    Ok(m)
}

/// The ids of a CSV: its `id` column when the header names one, otherwise the first column of every row.
/// In file order, each once (a repeated id is kept at its first place).
pub fn read_ids(path: &Path) -> Result<Vec<String>> {
    let rows = read_rows(path)?;
    let Some((_, first)) = rows.first() else { return Ok(Vec::new()) };
    let (col, skip) = match column(first, "id") {
        Some(i) => (i, 1),
        None => (0, 0),
    };
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    for (_, cells) in rows.iter().skip(skip) {
        if let Some(id) = cells.get(col).filter(|c| !c.is_empty()) {
            if seen.insert(id.clone()) {
                ids.push(id.clone());
            }
        }
    }
    Ok(ids)
}

/// A CSV writer over any `Write` (a file from [`crate::manifest::create_new`], a `Vec<u8>`): one record per
/// call, quoted where a field needs it. `path` names the destination in errors.
pub struct Writer<W: Write> {
    inner: ::csv::Writer<W>,
    path: String,
}

impl<W: Write> Writer<W> {
    pub fn new(w: W, path: impl AsRef<Path>) -> Self {
        Writer {
            inner: ::csv::WriterBuilder::new().flexible(true).from_writer(w),
            path: path.as_ref().display().to_string(),
        }
    }

    pub fn row<I, T>(&mut self, fields: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.inner.write_record(fields).map_err(|e| Error::io(&self.path, e))
    }

    /// Flush and hand back the destination.
    pub fn finish(self) -> Result<W> {
        let path = self.path.clone();
        self.inner.into_inner().map_err(|e| Error::io(&path, e.error()))
    }
}

/// A whole CSV document in memory (what the browser offers as a download).
pub fn to_string<R, I, T>(rows: R) -> String
where
    R: IntoIterator<Item = I>,
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = Writer::new(Vec::new(), "<memory>");
    for r in rows {
        // Writing into a Vec cannot fail.
        let _ = w.row(r);
    }
    String::from_utf8(w.finish().unwrap_or_default()).unwrap_or_default()
}

/// A list of ids: the `id` column of a CSV whose header names one (a `picks.csv` of an earlier round, or a list
/// headed `id`), otherwise one id per line, the whole line (a plain list, where an id may hold a comma unquoted).
/// Blank lines skipped.
pub fn read_id_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let has_id_column = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(::csv::Trim::All)
        .from_reader(first.as_bytes())
        .records()
        .next()
        .and_then(|r| r.ok())
        .is_some_and(|r| r.iter().any(|c| c.eq_ignore_ascii_case("id")));
    if has_id_column {
        return read_ids(path);
    }
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
}
