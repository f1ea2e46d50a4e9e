//! The command-line bad-input matrix: every case of `tests/bad_input/cli_cases.tsv`, expanded
//! over the broken fixtures of `tests/common/fixtures.rs`, must end in a one-line error naming
//! the file and the problem, a non-zero exit, no panic and no output left behind (or, for the
//! cases marked OK, succeed).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::diff4steer;
use common::fixtures::{self, Broken};

/// What a case must do.
#[derive(Debug)]
enum Expect {
    /// Exit 0 and write `{out}`.
    Success,
    /// Exit non-zero with one line on stderr containing every word, and no `{out}`.
    Refusal(Vec<String>),
}

/// One command line of the matrix, fully expanded.
#[derive(Debug)]
struct Case {
    name: String,
    args: Vec<String>,
    out: String,
    expect: Expect,
}

/// The placeholders that expand a row once per broken fixture.
const FAMILIES: [&str; 4] = ["{NPY}", "{RUN}", "{QRELS}", "{MODEL}"];

/// Replaces every `{file}` by `data/file` and `{out}` by `out`.
fn substitute(text: &str, data: &Path, out: &str) -> String {
    let mut result = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let end = start + rest[start..].find('}').expect("a closed placeholder");
        result.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        if name == "out" {
            result.push_str(out);
        } else {
            result.push_str(&data.join(name).to_string_lossy());
        }
        rest = &rest[end + 1..];
    }
    result.push_str(rest);
    result
}

/// Parses the table and expands each row over its family of broken fixtures.
fn cases(table: &str, data: &Path, outs: &Path, broken: &BTreeMap<&str, Vec<Broken>>) -> Vec<Case> {
    let mut cases = Vec::new();
    let rows = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1); // the header
    for (row, line) in rows.enumerate() {
        let columns: Vec<&str> = line.split('\t').collect();
        let [name, args, expect] = columns[..] else {
            panic!(
                "row {}: three tab-separated columns expected: {line}",
                row + 1
            );
        };
        let family = FAMILIES.iter().find(|f| args.contains(*f));
        let variants: Vec<(String, String, String)> = match family {
            None => vec![(name.to_owned(), args.to_owned(), expect.to_owned())],
            Some(family) => broken[family]
                .iter()
                .map(|b| {
                    let file = format!("{{{}}}", b.name);
                    (
                        format!("{name} [{}]", b.name),
                        args.replace(family, &file),
                        expect.replace(family, &format!("{} & {}", b.name, b.problem)),
                    )
                })
                .collect(),
        };
        for (name, args, expect) in variants {
            let out = outs
                .join(format!("out-{}", cases.len()))
                .to_string_lossy()
                .into_owned();
            let args = args
                .split(' ')
                .filter(|a| !a.is_empty())
                .map(|a| substitute(a, data, &out))
                .collect();
            let expect = if expect == "OK" {
                Expect::Success
            } else {
                Expect::Refusal(expect.split(" & ").map(str::to_owned).collect())
            };
            cases.push(Case {
                name,
                args,
                out,
                expect,
            });
        }
    }
    cases
}

/// Runs one case; `Err` says how it broke its expectation.
fn check(case: &Case) -> Result<(), String> {
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let result = diff4steer(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    if stderr.contains("panicked") || result.status.code() == Some(101) {
        return Err(format!("panicked: {stderr}"));
    }
    let out_exists = Path::new(&case.out).exists();
    match &case.expect {
        Expect::Success if result.status.success() && out_exists => Ok(()),
        Expect::Success => Err(format!(
            "should succeed and write its output: exit {:?}, output written: {out_exists}, stderr: {stderr}",
            result.status.code()
        )),
        Expect::Refusal(words) => {
            if result.status.success() {
                return Err("succeeded".into());
            }
            if out_exists {
                return Err(format!("left {} behind", case.out));
            }
            let message = stderr.trim_end();
            if message.lines().count() != 1 {
                return Err(format!("message is not one line: {message}"));
            }
            match words.iter().find(|w| !message.contains(w.as_str())) {
                Some(word) => Err(format!("message `{message}` lacks `{word}`")),
                None => Ok(()),
            }
        }
    }
}

#[test]
fn every_command_refuses_bad_input_with_a_one_line_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outs = dir.path().join("outputs");
    std::fs::create_dir_all(&outs).unwrap();
    common::world_and_tiny_models(&data);
    common::seeds_and_run(&data);
    for (name, rows, cols) in [
        ("rows5_d64.npy", 5, 64),
        ("rows5_d48.npy", 5, 48),
        ("rows1_d64.npy", 1, 64),
        ("rows1_d48.npy", 1, 48),
    ] {
        diff4steer_eval::io::npy::write_f32_matrix(&data.join(name), &fixtures::matrix(rows, cols))
            .unwrap();
    }
    let broken = BTreeMap::from([
        ("{NPY}", fixtures::broken_npy_files(&data, 48)),
        ("{RUN}", fixtures::broken_runs(&data)),
        ("{QRELS}", fixtures::broken_qrels(&data)),
        (
            "{MODEL}",
            fixtures::broken_checkpoints(&data.join("prior"), &data),
        ),
    ]);
    let table = include_str!("bad_input/cli_cases.tsv");
    let cases = cases(table, &data, &outs, &broken);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(case)
                .err()
                .map(|e| format!("{}: {e}\n    {:?}", case.name, case.args))
        })
        .collect();
    common::assert_matrix_passed(cases.len(), &failures);
}
