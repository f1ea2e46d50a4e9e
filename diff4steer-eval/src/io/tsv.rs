//! Tab-separated tables with one header line (the format of `../shared/data`): no quoting, lists
//! inside a cell separated by `,`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{read_lines, write_file};
use crate::{EvalError, Result};

/// A table read from a TSV file: a header and rows of cells, every row as wide as the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`EvalError::Io`] when it cannot be read; [`EvalError::Parse`] (with the line) for a missing
    /// header, a repeated column name, a row with another number of cells, or non-UTF-8 bytes.
    pub fn read(path: &Path) -> Result<Self> {
        let mut lines = read_lines(path)?.into_iter();
        let parse = |line: usize, reason: String| EvalError::Parse {
            path: path.display().to_string(),
            line,
            reason,
        };
        let (_, header) = lines
            .next()
            .ok_or_else(|| parse(1, "empty file: no header".into()))?;
        let header: Vec<String> = header.split('\t').map(str::to_owned).collect();
        for (i, name) in header.iter().enumerate() {
            if header[..i].contains(name) {
                return Err(parse(1, format!("column `{name}` appears twice")));
            }
        }
        let rows = lines
            .map(|(number, line)| {
                let cells: Vec<String> = line.split('\t').map(str::to_owned).collect();
                if cells.len() == header.len() {
                    Ok((number, cells))
                } else {
                    Err(parse(
                        number,
                        format!("{} cells, the header has {}", cells.len(), header.len()),
                    ))
                }
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            path: path.to_owned(),
            header,
            rows,
        })
    }

    /// Column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no data row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The position of column `name`.
    ///
    /// # Errors
    /// [`EvalError::Parse`] (line 1) when the header has no such column.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| EvalError::Parse {
                path: self.path.display().to_string(),
                line: 1,
                reason: format!("no column `{name}` (columns: {})", self.header.join(", ")),
            })
    }

    /// Parses one cell (of column `name` on `line`) as `T`.
    fn parse_cell<T: FromStr>(&self, line: usize, name: &str, text: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        text.parse().map_err(|e| EvalError::Parse {
            path: self.path.display().to_string(),
            line,
            reason: format!("column `{name}`: `{text}`: {e}"),
        })
    }

    /// Every cell of column `name`, parsed as `T`.
    ///
    /// # Errors
    /// As [`Table::column`]; [`EvalError::Parse`] naming the line of a cell that does not parse.
    pub fn parse_column<T: FromStr>(&self, name: &str) -> Result<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        let c = self.column(name)?;
        self.rows
            .iter()
            .map(|(line, cells)| self.parse_cell(*line, name, &cells[c]))
            .collect()
    }

    /// Every cell of column `name` as a `,`-separated list of `T` (an empty cell is an empty list).
    ///
    /// # Errors
    /// As [`Table::parse_column`].
    pub fn parse_list_column<T: FromStr>(&self, name: &str) -> Result<Vec<Vec<T>>>
    where
        T::Err: std::fmt::Display,
    {
        let c = self.column(name)?;
        self.rows
            .iter()
            .map(|(line, cells)| {
                cells[c]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|item| self.parse_cell(*line, name, item))
                    .collect()
            })
            .collect()
    }
}

/// Writes a TSV table (temporary file, then rename).
///
/// # Errors
/// [`EvalError::InvalidParameter`] for a row of another width than the header or a cell holding a
/// tab or newline; [`EvalError::Io`] naming the file.
pub fn write_table(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header.join("\t");
    text.push('\n');
    for (i, row) in rows.iter().enumerate() {
        if row.len() != header.len() {
            return Err(EvalError::InvalidParameter {
                name: "rows",
                reason: format!(
                    "row {i} has {} cells for {} columns",
                    row.len(),
                    header.len()
                ),
            });
        }
        if row.iter().any(|c| c.contains(['\t', '\n', '\r'])) {
            return Err(EvalError::InvalidParameter {
                name: "rows",
                reason: format!("row {i} has a cell with a tab or line break"),
            });
        }
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    write_file(path, text.as_bytes())
}
