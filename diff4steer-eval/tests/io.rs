//! .npy, TSV and TREC files: round trips, and every malformed input a typed error naming the
//! file (and line), with no output file left behind by a failed write.

use std::path::Path;

use diff4steer_eval::io::npy::{read_f32_matrix, read_labels, write_f32_matrix, write_labels};
use diff4steer_eval::io::trec::{read_qrels, read_run, write_qrels, write_run};
use diff4steer_eval::io::tsv::{write_table, Table};
use diff4steer_eval::{EvalError, Qrels, Run};
use ndarray::{array, Array1, Array2};
use ndarray_npy::write_npy;

fn is_parse_at(result: Result<impl std::fmt::Debug, EvalError>, line: usize) -> bool {
    matches!(result, Err(EvalError::Parse { line: l, .. }) if l == line)
}

#[test]
fn npy_round_trips_and_rejects_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    let m = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.5]];
    write_f32_matrix(&path, &m).unwrap();
    assert_eq!(read_f32_matrix(&path).unwrap(), m);
    let labels = array![[0u8, 1], [1, 0]];
    let lpath = dir.path().join("l.npy");
    write_labels(&lpath, &labels).unwrap();
    assert_eq!(read_labels(&lpath).unwrap(), labels);
    let bpath = dir.path().join("b.npy");
    write_npy(&bpath, &array![[true, false]]).unwrap();
    assert_eq!(read_labels(&bpath).unwrap(), array![[1u8, 0]]);

    let bytes = std::fs::read(&path).unwrap();
    let case = |name: &str, contents: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    };
    let npy = |name: &str, write: &dyn Fn(&Path)| {
        let p = dir.path().join(name);
        write(&p);
        p
    };
    let broken = [
        case("empty.npy", b""),
        case("header_cut.npy", &bytes[..20]),
        case("data_cut.npy", &bytes[..bytes.len() - 3]),
        npy("f64.npy", &|p| {
            write_npy(p, &array![[1.0f64, 2.0]]).unwrap()
        }),
        npy("i32.npy", &|p| write_npy(p, &array![[1i32, 2]]).unwrap()),
        npy("rank1.npy", &|p| {
            write_npy(p, &Array1::<f32>::zeros(3)).unwrap()
        }),
        npy("nan.npy", &|p| {
            write_npy(p, &array![[1.0f32], [f32::NAN]]).unwrap()
        }),
        npy("inf.npy", &|p| {
            write_npy(p, &array![[f32::NEG_INFINITY]]).unwrap()
        }),
    ];
    for p in &broken {
        assert!(
            matches!(read_f32_matrix(p), Err(EvalError::Npy { .. })),
            "{}",
            p.display()
        );
    }
    assert!(matches!(
        read_f32_matrix(&dir.path().join("missing.npy")),
        Err(EvalError::Io { .. })
    ));
    let two = npy("two.npy", &|p| write_npy(p, &array![[2u8]]).unwrap());
    assert!(matches!(read_labels(&two), Err(EvalError::Npy { .. })));
    assert!(matches!(
        read_labels(&broken[3]),
        Err(EvalError::Npy { .. })
    ));
    // Zero rows or columns read fine; what they mean is for the caller to judge.
    let empty = npy("zero.npy", &|p| {
        write_npy(p, &Array2::<f32>::zeros((0, 4))).unwrap()
    });
    assert_eq!(read_f32_matrix(&empty).unwrap().dim(), (0, 4));
    // An error names the file.
    let message = read_f32_matrix(&broken[3]).unwrap_err().to_string();
    assert!(message.contains("f64.npy"), "{message}");
}

#[test]
fn tsv_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tsv");
    write_table(
        &path,
        &["index", "tag", "list"],
        &[
            vec!["0".into(), "happy".into(), "1,2".into()],
            vec!["1".into(), "sad".into(), "".into()],
        ],
    )
    .unwrap();
    let table = Table::read(&path).unwrap();
    assert_eq!(table.len(), 2);
    assert_eq!(table.parse_column::<usize>("index").unwrap(), vec![0, 1]);
    assert_eq!(
        table.parse_column::<String>("tag").unwrap(),
        vec!["happy", "sad"]
    );
    assert_eq!(
        table.parse_list_column::<usize>("list").unwrap(),
        vec![vec![1, 2], vec![]]
    );
    assert!(is_parse_at(table.column("missing"), 1));
    assert!(is_parse_at(table.parse_column::<f32>("tag"), 2));

    let write = |contents: &[u8]| {
        std::fs::write(&path, contents).unwrap();
        Table::read(&path)
    };
    assert!(is_parse_at(write(b"a\tb\n1\t2\n3\n"), 3));
    assert!(is_parse_at(write(b"a\tb\n1\t2\n\xff\xfe\t2\n"), 3));
    assert!(is_parse_at(write(b""), 1));
    assert!(is_parse_at(write(b"a\ta\n1\t2\n"), 1));
    // A failed write leaves no file.
    let out = dir.path().join("never.tsv");
    assert!(write_table(&out, &["a"], &[vec!["1".into(), "2".into()]]).is_err());
    assert!(write_table(&out, &["a"], &[vec!["tab\there".into()]]).is_err());
    assert!(!out.exists());
}

#[test]
fn trec_runs_and_qrels() {
    let dir = tempfile::tempdir().unwrap();
    let run_path = dir.path().join("run.txt");
    let mut run = Run::new();
    run.push("0", "12", 0.9).unwrap();
    run.push("0", "3", 0.25).unwrap();
    run.push("1", "7", -1.5).unwrap();
    write_run(&run_path, &run, "diff4steer").unwrap();
    assert_eq!(read_run(&run_path).unwrap(), run);
    let text = std::fs::read_to_string(&run_path).unwrap();
    assert_eq!(text.lines().next().unwrap(), "0 Q0 12 1 0.9 diff4steer");
    assert!(write_run(&dir.path().join("x"), &run, "two words").is_err());
    assert!(!dir.path().join("x").exists());

    // Reading sorts by score, then by the rank column.
    std::fs::write(
        &run_path,
        "q Q0 a 2 0.5 t\nq Q0 b 1 0.5 t\nq Q0 c 3 0.9 t\n",
    )
    .unwrap();
    let sorted = read_run(&run_path).unwrap();
    let docs: Vec<&str> = sorted
        .ranking("q")
        .unwrap()
        .iter()
        .map(|(d, _)| d.as_str())
        .collect();
    assert_eq!(docs, ["c", "b", "a"]);

    let qrels_path = dir.path().join("qrels.txt");
    let mut qrels = Qrels::new();
    qrels.insert("0", "12", 2).unwrap();
    qrels.insert("1", "7", 0).unwrap();
    write_qrels(&qrels_path, &qrels).unwrap();
    assert_eq!(read_qrels(&qrels_path).unwrap(), qrels);

    let bad_run = |contents: &[u8]| {
        std::fs::write(&run_path, contents).unwrap();
        read_run(&run_path)
    };
    assert!(is_parse_at(bad_run(b"q Q0 a 1 0.5 t\nq Q0 b 2 0.4\n"), 2));
    assert!(is_parse_at(bad_run(b"q Q0 a one 0.5 t\n"), 1));
    assert!(is_parse_at(bad_run(b"q Q0 a 1 high t\n"), 1));
    assert!(is_parse_at(bad_run(b"q Q0 a 1 NaN t\n"), 1));
    assert!(is_parse_at(bad_run(b"q Q0 a 1 0.5 t\nq Q0 a 2 0.4 t\n"), 2));
    assert!(is_parse_at(bad_run(b"q Q0 \xff 1 0.5 t\n"), 1));
    let bad_qrels = |contents: &[u8]| {
        std::fs::write(&qrels_path, contents).unwrap();
        read_qrels(&qrels_path)
    };
    assert!(is_parse_at(bad_qrels(b"q 0 a\n"), 1));
    assert!(is_parse_at(bad_qrels(b"q 0 a 1\nq 0 b 1.5\n"), 2));
    assert!(is_parse_at(bad_qrels(b"q 0 a 1\nq 0 a 2\n"), 2));
    assert!(is_parse_at(bad_qrels(b"q 0 a 1\n\xc3\x28 0 b 1\n"), 2));
    assert!(matches!(
        read_qrels(&dir.path().join("missing")),
        Err(EvalError::Io { .. })
    ));
    // Blank lines and CRLF line ends are accepted.
    assert_eq!(bad_qrels(b"q 0 a 1\r\n\r\nq 0 b 0\r\n").unwrap().len(), 1);
}
