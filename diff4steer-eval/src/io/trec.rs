//! TREC run and qrels files, as trec_eval, ranx and pytrec_eval read them.
//!
//! - run: `qid Q0 docid rank score tag`, whitespace-separated, one line per retrieved document;
//! - qrels: `qid iteration docid grade`, whitespace-separated, one line per judgment.

use std::path::Path;

use super::{lines_of, write_file};
use crate::error::io_error;
use crate::{EvalError, Qrels, Result, Run};

fn fields<'a>(
    path: &Path,
    number: usize,
    line: &'a str,
    expected: usize,
    what: &str,
) -> Result<Vec<&'a str>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != expected {
        return Err(EvalError::Parse {
            path: path.display().to_string(),
            line: number,
            reason: format!("{} fields, a {what} line has {expected}", fields.len()),
        });
    }
    Ok(fields)
}

fn number<T: std::str::FromStr>(path: &Path, line: usize, field: &str, name: &str) -> Result<T> {
    field.parse().map_err(|_| EvalError::Parse {
        path: path.display().to_string(),
        line,
        reason: format!("{name} `{field}` is not a number"),
    })
}

/// The lines of a run or qrels file's bytes; a file without any line is an error (an empty
/// run or qrels file is almost always a failed export, and evaluating it would score 0 silently).
fn nonempty_lines(path: &Path, bytes: &[u8], what: &str) -> Result<Vec<(usize, String)>> {
    let lines = lines_of(path, bytes)?;
    if lines.is_empty() {
        return Err(EvalError::Parse {
            path: path.display().to_string(),
            line: 1,
            reason: format!("empty file: a {what} file needs at least one line"),
        });
    }
    Ok(lines)
}

/// Reads a TREC run. Each query's documents are ranked by score (descending), ties by the rank
/// column, then by line order.
///
/// # Errors
/// [`EvalError::Io`] when it cannot be read; otherwise as [`parse_run`].
pub fn read_run(path: &Path) -> Result<Run> {
    parse_run(path, &std::fs::read(path).map_err(|e| io_error(path, e))?)
}

/// Parses the bytes of a TREC run file (`path` names it in errors); as [`read_run`].
///
/// # Errors
/// [`EvalError::Parse`] (with the line) for an empty file, a missing or extra field, a
/// non-numeric rank or score, a NaN/Inf score, a (qid, docid) listed twice, or non-UTF-8 bytes.
pub fn parse_run(path: &Path, bytes: &[u8]) -> Result<Run> {
    let mut lines = Vec::new();
    for (n, line) in nonempty_lines(path, bytes, "run")? {
        let f = fields(path, n, &line, 6, "run")?;
        let rank: i64 = number(path, n, f[3], "rank")?;
        let score: f64 = number(path, n, f[4], "score")?;
        if !score.is_finite() {
            return Err(EvalError::Parse {
                path: path.display().to_string(),
                line: n,
                reason: format!("score `{}` is not finite", f[4]),
            });
        }
        lines.push((f[0].to_owned(), f[2].to_owned(), rank, score, n));
    }
    lines.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.3.total_cmp(&a.3))
            .then(a.2.cmp(&b.2))
            .then(a.4.cmp(&b.4))
    });
    let mut run = Run::new();
    for (qid, doc, _, score, n) in lines {
        run.push(&qid, &doc, score).map_err(|e| EvalError::Parse {
            path: path.display().to_string(),
            line: n,
            reason: e.to_string(),
        })?;
    }
    Ok(run)
}

/// Writes a TREC run: per query (in id order) its list in order, ranks from 1, `tag` in the last
/// column (temporary file, then rename).
///
/// # Errors
/// [`EvalError::InvalidParameter`] for a tag with whitespace; [`EvalError::Io`] naming the file.
pub fn write_run(path: &Path, run: &Run, tag: &str) -> Result<()> {
    if tag.is_empty() || tag.contains(char::is_whitespace) {
        return Err(EvalError::InvalidParameter {
            name: "tag",
            reason: format!("`{tag}` must be one non-empty word"),
        });
    }
    let mut text = String::new();
    for query in run.queries() {
        for (i, (doc, score)) in run.ranking(query).unwrap_or_default().iter().enumerate() {
            text.push_str(&format!("{query} Q0 {doc} {} {score} {tag}\n", i + 1));
        }
    }
    write_file(path, text.as_bytes())
}

/// Reads TREC qrels.
///
/// # Errors
/// [`EvalError::Io`] when it cannot be read; otherwise as [`parse_qrels`].
pub fn read_qrels(path: &Path) -> Result<Qrels> {
    parse_qrels(path, &std::fs::read(path).map_err(|e| io_error(path, e))?)
}

/// Parses the bytes of a TREC qrels file (`path` names it in errors).
///
/// # Errors
/// [`EvalError::Parse`] (with the line) for an empty file, a missing or extra field, a
/// non-integer grade, a (qid, docid) judged twice, or non-UTF-8 bytes.
pub fn parse_qrels(path: &Path, bytes: &[u8]) -> Result<Qrels> {
    let mut qrels = Qrels::new();
    for (n, line) in nonempty_lines(path, bytes, "qrels")? {
        let f = fields(path, n, &line, 4, "qrels")?;
        let grade: i32 = number(path, n, f[3], "grade")?;
        qrels
            .insert(f[0], f[2], grade)
            .map_err(|e| EvalError::Parse {
                path: path.display().to_string(),
                line: n,
                reason: e.to_string(),
            })?;
    }
    Ok(qrels)
}

/// Writes TREC qrels, iteration column 0 (temporary file, then rename).
///
/// # Errors
/// [`EvalError::Io`] naming the file.
pub fn write_qrels(path: &Path, qrels: &Qrels) -> Result<()> {
    let mut text = String::new();
    for (query, doc, grade) in qrels.iter() {
        text.push_str(&format!("{query} 0 {doc} {grade}\n"));
    }
    write_file(path, text.as_bytes())
}
