//! Broken input files for the bad-input matrices: every way an .npy file, a TREC file or a
//! checkpoint folder can be wrong, each with the words its error must contain.
//!
//! The library matrix (`bad_input_library.rs`) and the command-line matrix
//! (`bad_input_cli.rs` with `bad_input_cli.tsv`) both feed these files to every entry point that
//! reads them. To add a way a file can be broken, add it here: both matrices pick it up.

use std::fs;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::WriteNpyExt;

/// A broken file (or folder) and what its error message must contain.
#[derive(Debug, Clone)]
pub struct Broken {
    /// File name inside the fixture folder.
    pub name: &'static str,
    /// Words the error message must contain (besides the file name).
    pub problem: &'static str,
}

fn npy_bytes<T: WriteNpyExt>(array: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    array.write_npy(&mut bytes).expect("in-memory .npy");
    bytes
}

/// A valid `rows × cols` float32 matrix with varied values.
pub fn matrix(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        ((r * 31 + c * 17) % 23) as f32 / 23.0 - 0.4
    })
}

/// An .npy header claiming a `rows × cols` float32 matrix, without the data.
fn header_only(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut header = dict.into_bytes();
    // Magic (6) + version (2) + length (2) + header, padded with spaces to 64, ending in \n.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes
}

/// Writes every broken .npy fixture into `dir`, `cols` columns wide where the shape matters, and
/// returns them (the missing file included, which is not written).
pub fn broken_npy_files(dir: &Path, cols: usize) -> Vec<Broken> {
    let good = npy_bytes(&matrix(6, cols));
    let with = |row: usize, value: f32| {
        let mut m = matrix(6, cols);
        m[[row, 0]] = value;
        npy_bytes(&m)
    };
    let files: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        ("empty.npy", Vec::new(), "empty file"),
        ("header_cut.npy", good[..30].to_vec(), "header"),
        ("data_cut.npy", good[..good.len() - 6].to_vec(), "truncated"),
        (
            "data_padded.npy",
            [good.as_slice(), &[0u8; 8]].concat(),
            "truncated or padded",
        ),
        (
            "f64.npy",
            npy_bytes(&matrix(6, cols).mapv(f64::from)),
            "not float32",
        ),
        (
            "i32.npy",
            npy_bytes(&Array2::<i32>::ones((6, cols))),
            "not float32",
        ),
        ("rank1.npy", npy_bytes(&Array1::<f32>::ones(cols)), "1-D"),
        (
            "rank3.npy",
            npy_bytes(&Array3::<f32>::ones((2, 3, cols))),
            "3-D",
        ),
        ("nan.npy", with(3, f32::NAN), "row 3 holds NaN"),
        ("inf.npy", with(2, f32::INFINITY), "row 2 holds NaN or ±Inf"),
        (
            "neg_inf.npy",
            with(5, f32::NEG_INFINITY),
            "row 5 holds NaN or ±Inf",
        ),
        (
            "zero_rows.npy",
            npy_bytes(&Array2::<f32>::zeros((0, cols))),
            "empty matrix",
        ),
        (
            "zero_cols.npy",
            npy_bytes(&Array2::<f32>::zeros((6, 0))),
            "empty matrix",
        ),
        (
            "huge_shape.npy",
            header_only(1_000_000_000, 1_000_000_000),
            "truncated",
        ),
        ("text.npy", b"query,0.1,0.2\n".to_vec(), "not an .npy file"),
    ];
    let mut broken: Vec<Broken> = files
        .into_iter()
        .map(|(name, bytes, problem)| {
            fs::write(dir.join(name), bytes).expect("fixture written");
            Broken { name, problem }
        })
        .collect();
    broken.push(Broken {
        name: "missing.npy",
        problem: "No such file",
    });
    broken
}

/// Writes every broken TREC run fixture into `dir` and returns them.
pub fn broken_runs(dir: &Path) -> Vec<Broken> {
    text_fixtures(
        dir,
        &[
            ("run_empty.txt", b"", "empty file"),
            ("run_missing_column.txt", b"0 Q0 5 1 0.9\n", "5 fields"),
            ("run_extra_column.txt", b"0 Q0 5 1 0.9 tag x\n", "7 fields"),
            (
                "run_rank_text.txt",
                b"0 Q0 5 first 0.9 tag\n",
                "rank `first`",
            ),
            ("run_score_text.txt", b"0 Q0 5 1 high tag\n", "score `high`"),
            ("run_score_nan.txt", b"0 Q0 5 1 NaN tag\n", "not finite"),
            (
                "run_non_utf8.txt",
                b"0 Q0 5 1 0.9 tag\n0 Q0 \xff\xfe 2 0.8 tag\n",
                "line 2: not valid UTF-8",
            ),
            (
                "run_duplicate.txt",
                b"0 Q0 5 1 0.9 tag\n0 Q0 5 2 0.8 tag\n",
                "listed twice",
            ),
        ],
    )
}

/// Writes every broken TREC qrels fixture into `dir` and returns them.
pub fn broken_qrels(dir: &Path) -> Vec<Broken> {
    text_fixtures(
        dir,
        &[
            ("qrels_empty.txt", b"", "empty file"),
            ("qrels_missing_column.txt", b"0 0 5\n", "3 fields"),
            ("qrels_grade_text.txt", b"0 0 5 yes\n", "grade `yes`"),
            ("qrels_grade_fraction.txt", b"0 0 5 0.5\n", "grade `0.5`"),
            ("qrels_non_utf8.txt", b"0 0 \xc3\x28 1\n", "not valid UTF-8"),
            ("qrels_duplicate.txt", b"0 0 5 1\n0 0 5 2\n", "twice"),
        ],
    )
}

fn text_fixtures(dir: &Path, files: &[(&'static str, &[u8], &'static str)]) -> Vec<Broken> {
    files
        .iter()
        .map(|&(name, bytes, problem)| {
            fs::write(dir.join(name), bytes).expect("fixture written");
            Broken { name, problem }
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("folder");
    for entry in fs::read_dir(from).expect("readable") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copied");
        }
    }
}

/// The step folder `latest` names in a checkpoint folder.
pub fn step_folder(checkpoint: &Path) -> PathBuf {
    let name = fs::read_to_string(checkpoint.join("latest")).expect("a checkpoint");
    checkpoint.join(name.trim())
}

/// Copies the good checkpoint folder `good` into `dir` once per way to break it, breaks each
/// copy, and returns them.
pub fn broken_checkpoints(good: &Path, dir: &Path) -> Vec<Broken> {
    type Damage = fn(&Path);
    let damages: [(&'static str, Damage, &'static str); 13] = [
        (
            "model_empty_folder",
            |m| fs::remove_file(m.join("latest")).unwrap(),
            "no checkpoint here",
        ),
        (
            "model_latest_dangling",
            |m| fs::write(m.join("latest"), "step-999999").unwrap(),
            "config.json",
        ),
        (
            "model_latest_escapes",
            |m| fs::write(m.join("latest"), "../elsewhere").unwrap(),
            "invalid folder",
        ),
        (
            "model_no_config",
            |m| fs::remove_file(step_folder(m).join("config.json")).unwrap(),
            "config.json",
        ),
        (
            "model_config_cut",
            |m| truncate(&step_folder(m).join("config.json")),
            "malformed manifest",
        ),
        (
            "model_config_other_width",
            |m| edit_config(m, "/model/network/width", 7.into()),
            "does not match the stored parameter shapes",
        ),
        (
            "model_config_huge_width",
            |m| edit_config(m, "/model/network/width", 1_000_000_000.into()),
            "does not match the stored parameter shapes",
        ),
        (
            "model_config_max_width",
            |m| edit_config(m, "/model/network/width", u64::MAX.into()),
            "does not match the stored parameter shapes",
        ),
        (
            "model_config_huge_shapes",
            |m| {
                edit_config(
                    m,
                    "/parameter_shapes/0",
                    serde_json::json!([1_000_000_000, 1_000_000_000]),
                );
                edit_config(m, "/model/network/width", 1_000_000_000.into());
            },
            "the manifest's parameter shapes need",
        ),
        (
            "model_config_other_format",
            |m| edit_config(m, "/format", 99.into()),
            "unknown layout version 99",
        ),
        (
            "model_no_weights",
            |m| {
                for path in weight_files(m) {
                    fs::remove_file(path).unwrap();
                }
            },
            ".mpk",
        ),
        (
            "model_weights_cut",
            |m| weight_files(m).iter().for_each(|p| truncate(p)),
            "truncated or altered",
        ),
        (
            "model_weights_flipped",
            |m| {
                for path in weight_files(m) {
                    let mut bytes = fs::read(&path).unwrap();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x40;
                    fs::write(path, bytes).unwrap();
                }
            },
            "corrupt: SHA-256",
        ),
    ];
    damages
        .into_iter()
        .map(|(name, damage, problem)| {
            let copy = dir.join(name);
            copy_dir(good, &copy);
            damage(&copy);
            Broken { name, problem }
        })
        .collect()
}

/// The weight files of a checkpoint's newest step that sampling may load: `model.mpk`, and
/// `best.mpk` when the run kept its lowest-validation-loss weights.
fn weight_files(checkpoint: &Path) -> Vec<std::path::PathBuf> {
    ["model.mpk", "best.mpk"]
        .iter()
        .map(|f| step_folder(checkpoint).join(f))
        .filter(|p| p.exists())
        .collect()
}

fn truncate(path: &Path) {
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

/// Sets the value at a JSON pointer (`/model/network/width`) in the manifest (`config.json`) of
/// a checkpoint folder's newest step.
fn edit_config(checkpoint: &Path, pointer: &str, value: serde_json::Value) {
    let path = step_folder(checkpoint).join("config.json");
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    *json
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("manifest has {pointer}")) = value;
    fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}
