//! Dense f32 matrix products on row-major slices: the one GEMM the exact index and the fast
//! denoiser share.
//!
//! It calls the `gemm` crate (the kernels behind burn's CPU backend), built with its AVX-512 path
//! (`x86-v4`) and runtime CPU detection, so the same binary uses AVX-512, AVX2+FMA or SSE as the
//! machine allows. This module holds the project's only `unsafe` code: the call into `gemm`
//! (`sgemm`), whose pointers and strides are derived from slices whose lengths are checked
//! first, and the column panels of [`matmul_panels`], which threads write side by side.
#![allow(unsafe_code)]

use crate::{IndexError, Result};

/// How the left-hand matrix A of a product is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftLayout {
    /// A is `[m, k]`, row-major (activations: one row per sample).
    RowMajor,
    /// A is given as Aᵀ, `[k, m]` row-major (a weight gradient Xᵀ·dY over a batch's rows).
    Transposed,
}

/// How the right-hand matrix B of a product is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightLayout {
    /// B is `[k, n]`, row-major (a weight matrix `[in, out]`).
    RowMajor,
    /// B is given as Bᵀ, `[n, k]` row-major (catalogue rows: scores = Q·Xᵀ).
    Transposed,
}

/// Whether a product may split its work across the rayon pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Run on the calling thread (callers that already parallelise over blocks).
    Single,
    /// Split across rayon's global pool (gemm decides the split).
    Pool,
}

/// C ← A·B, or C ← C + A·B with `accumulate`, for row-major `a` `[m, k]`, `b` as `layout` says
/// and `c` `[m, n]`. A standard single-precision GEMM (BLAS sgemm semantics with α = 1 and
/// β ∈ {0, 1}).
///
/// # Errors
/// [`IndexError::DimMismatch`] when a slice's length is not the product of its shape.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    shape: (usize, usize, usize),
    layout: RightLayout,
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    matmul_layouts(
        c,
        a,
        b,
        shape,
        (LeftLayout::RowMajor, layout),
        accumulate,
        threads,
    )
}

/// As [`matmul`] with the left operand's layout given too: with [`LeftLayout::Transposed`], `a`
/// holds Aᵀ as `[k, m]` row-major, so C = Aᵀᵀ·B sums over the rows of `a` (C = Xᵀ·dY, the
/// gradient of a linear layer's weight over a batch).
///
/// # Errors
/// [`IndexError::DimMismatch`] when a slice's length is not the product of its shape.
#[allow(clippy::too_many_arguments)]
pub fn matmul_layouts(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    (left, right): (LeftLayout, RightLayout),
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    check_lengths([
        ("GEMM left operand", a.len(), m * k),
        ("GEMM right operand", b.len(), k * n),
        ("GEMM output", c.len(), m * n),
    ])?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return Ok(());
    }
    let (a_col_stride, a_row_stride) = match left {
        LeftLayout::RowMajor => (1, k as isize),
        LeftLayout::Transposed => (m as isize, 1),
    };
    let (b_col_stride, b_row_stride) = match right {
        RightLayout::RowMajor => (1, n as isize),
        RightLayout::Transposed => (k as isize, 1),
    };
    let parallelism = match threads {
        Threads::Single => gemm::Parallelism::None,
        Threads::Pool => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: the lengths were checked above, so every element the strides address lies inside
    // its slice: A (i, p) at i·k + p (row-major) or p·m + i (transposed) < m·k; B (p, j) at
    // p·n + j (row-major) or j·k + p (transposed) < k·n; C (i, j) at i·n + j < m·n. `c` is
    // borrowed mutably, so it aliases neither input.
    unsafe {
        sgemm(
            (m, k, n),
            (c.as_mut_ptr(), n as isize),
            accumulate,
            (a.as_ptr(), a_col_stride, a_row_stride),
            (b.as_ptr(), b_col_stride, b_row_stride),
            parallelism,
        );
    }
    Ok(())
}

/// [`IndexError::DimMismatch`] for the first operand whose length is not what its shape says:
/// each entry is (what, length, expected length).
fn check_lengths<const N: usize>(operands: [(&'static str, usize, usize); N]) -> Result<()> {
    match operands
        .into_iter()
        .find(|&(_, len, expected)| len != expected)
    {
        Some((what, got, expected)) => Err(IndexError::DimMismatch {
            what,
            expected,
            got,
        }),
        None => Ok(()),
    }
}

/// C ← C + A·B (with `accumulate`) or C ← A·B (C not read) through `gemm`, for an `[m, k]` A,
/// a `[k, n]` B and an `[m, n]` C given as base pointers with (column, row) strides; C's column
/// stride is 1.
///
/// # Safety
/// Every element the strides address — A (i, p) at `a + i·a_rs + p·a_cs`, B (p, j) at
/// `b + p·b_rs + j·b_cs`, C (i, j) at `c + i·c_rs + j` for i < m, p < k, j < n — must be inside a
/// live allocation; C's elements must not alias A's or B's, nor be accessed by anyone else during
/// the call.
unsafe fn sgemm(
    (m, k, n): (usize, usize, usize),
    (c, c_rs): (*mut f32, isize),
    accumulate: bool,
    (a, a_cs, a_rs): (*const f32, isize, isize),
    (b, b_cs, b_rs): (*const f32, isize, isize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's contract is gemm's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_rs,
            accumulate,
            a,
            a_cs,
            a_rs,
            b,
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A right-hand matrix B `[k, n]` stored as column panels of a fixed width: panel j holds
/// columns `j·panel .. min((j + 1)·panel, n)` as its own contiguous `[k, width]` row-major
/// matrix (the last one may be narrower), so that [`matmul_panels`] can compute C's column
/// panels independently — on one thread, or on several at once — with the *same* `gemm` call per
/// panel either way: a product's bits then do not depend on how many threads computed it.
///
/// This is how a layer's weight is stored for products with few rows (one query's seeds): the
/// rows alone cannot keep two cores busy without each streaming the whole weight, but its column
/// panels can, each core reading only its own panels.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPanels {
    k: usize,
    n: usize,
    panel: usize,
    values: Vec<f32>,
}

impl ColumnPanels {
    /// Re-lays a row-major `[k, n]` matrix as column panels of `panel` columns.
    ///
    /// # Errors
    /// [`IndexError::DimMismatch`] when `b.len() != k·n`; [`IndexError::InvalidParameter`] when
    /// `panel` is 0.
    pub fn from_row_major(b: &[f32], (k, n): (usize, usize), panel: usize) -> Result<Self> {
        if b.len() != k * n {
            return Err(IndexError::DimMismatch {
                what: "panelled matrix",
                expected: k * n,
                got: b.len(),
            });
        }
        if panel == 0 {
            return Err(IndexError::InvalidParameter {
                name: "panel",
                reason: "a column panel needs at least one column".into(),
            });
        }
        let mut values = Vec::with_capacity(k * n);
        for first in (0..n).step_by(panel) {
            let last = (first + panel).min(n);
            for row in b.chunks_exact(n.max(1)).take(k) {
                values.extend_from_slice(&row[first..last]);
            }
        }
        Ok(Self {
            k,
            n,
            panel,
            values,
        })
    }

    /// Rows of B (the inner dimension of a product).
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn columns(&self) -> usize {
        self.n
    }

    /// Number of column panels.
    pub fn panel_count(&self) -> usize {
        self.n.div_ceil(self.panel)
    }

    /// Panel `j`: its first column, its width and its `[k, width]` values.
    fn panel(&self, j: usize) -> (usize, usize, &[f32]) {
        let first = j * self.panel;
        let width = self.panel.min(self.n - first);
        (
            first,
            width,
            &self.values[first * self.k..(first + width) * self.k],
        )
    }
}

/// C's base pointer, shared by the threads that write its disjoint column panels.
#[derive(Clone, Copy)]
struct SharedOutput(*mut f32);

// SAFETY: `matmul_panels` hands each thread a different column panel of C to write, and holds
// C's exclusive borrow until every thread is done.
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not its field).
    fn base(self) -> *mut f32 {
        self.0
    }
}

/// C ← A·B + bias (C ← C + A·B + bias with `accumulate`; bias `[n]` added to every row, none
/// when `None`) for row-major `a` `[m, k]` and `c` `[m, n]`, with B stored as [`ColumnPanels`]:
/// one job per panel writes its columns of C in place — the bias, then one `gemm` call that adds
/// A·B to them. With [`Threads::Pool`] the panels are spread over rayon's pool; with
/// [`Threads::Single`] they run one after another on the calling thread. Each panel's work is the
/// same either way, so C's bits are too. (A linear layer's y = x·W + b, and a residual
/// h ← h + x·W + b, in one pass over C.)
///
/// # Errors
/// [`IndexError::DimMismatch`] when `a` is not a whole number of `k`-wide rows, `c` is not
/// `[m, n]` or the bias is not `n` wide.
pub fn matmul_panels(
    c: &mut [f32],
    a: &[f32],
    b: &ColumnPanels,
    bias: Option<&[f32]>,
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    let (k, n) = (b.k, b.n);
    let m = a.len().checked_div(k).unwrap_or_else(|| c.len() / n.max(1));
    check_lengths([
        ("GEMM left operand", a.len(), m * k),
        ("GEMM output", c.len(), m * n),
        ("GEMM bias", bias.map_or(n, <[f32]>::len), n),
    ])?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let output = SharedOutput(c.as_mut_ptr());
    let run_panel = |j: usize| {
        let (first, width, values) = b.panel(j);
        // SAFETY (every block below): A is `[m, k]` (checked), the panel `[k, width]` (its
        // slice), and C's elements (i, first + j') for i < m, j' < width lie at
        // `i·n + first + j' < m·n`, inside `c`, which this call borrows exclusively; panels cover
        // disjoint columns, so no two jobs touch the same element of C, and no slice made here
        // outlives its job.
        let start = |i: usize| unsafe { output.base().add(i * n + first) };
        if let Some(bias) = bias {
            let bias = &bias[first..first + width];
            for i in 0..m {
                let row = unsafe { std::slice::from_raw_parts_mut(start(i), width) };
                if accumulate {
                    row.iter_mut().zip(bias).for_each(|(c, b)| *c += b);
                } else {
                    row.copy_from_slice(bias);
                }
            }
        }
        let add = accumulate || bias.is_some();
        if k == 0 {
            if !add {
                for i in 0..m {
                    unsafe { std::slice::from_raw_parts_mut(start(i), width) }.fill(0.0);
                }
            }
            return;
        }
        unsafe {
            sgemm(
                (m, k, width),
                (start(0), n as isize),
                add,
                (a.as_ptr(), 1, k as isize),
                (values.as_ptr(), 1, width as isize),
                gemm::Parallelism::None,
            );
        }
    };
    match threads {
        Threads::Single => (0..b.panel_count()).for_each(run_panel),
        Threads::Pool => {
            use rayon::prelude::*;
            (0..b.panel_count()).into_par_iter().for_each(run_panel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, in f64.
    fn naive(a: &[f32], b_kn: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b_kn[p * n + j] as f64)
                    .sum();
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn values(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 31 + salt * 17) % 23) as f32 - 11.0) / 7.0)
            .collect()
    }

    #[test]
    fn agrees_with_the_triple_loop_in_every_layout_and_mode() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (64, 130, 33), (17, 512, 96)] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let mut b_t = vec![0.0f32; k * n];
            for p in 0..k {
                for j in 0..n {
                    b_t[j * k + p] = b[p * n + j];
                }
            }
            let truth = naive(&a, &b, m, k, n);
            let mut a_t = vec![0.0f32; m * k];
            for i in 0..m {
                for p in 0..k {
                    a_t[p * m + i] = a[i * k + p];
                }
            }
            let mut c = vec![f32::NAN; m * n];
            matmul_layouts(
                &mut c,
                &a_t,
                &b_t,
                (m, k, n),
                (LeftLayout::Transposed, RightLayout::Transposed),
                false,
                Threads::Pool,
            )
            .unwrap();
            for i in 0..m * n {
                assert!(
                    (c[i] - truth[i]).abs() <= 1e-4 * (1.0 + truth[i].abs()),
                    "Aᵀ {m}x{k}x{n}"
                );
            }
            for threads in [Threads::Single, Threads::Pool] {
                for (layout, rhs) in [(RightLayout::RowMajor, &b), (RightLayout::Transposed, &b_t)]
                {
                    let mut c = vec![f32::NAN; m * n];
                    matmul(&mut c, &a, rhs, (m, k, n), layout, false, threads).unwrap();
                    let mut acc = vec![1.0f32; m * n];
                    matmul(&mut acc, &a, rhs, (m, k, n), layout, true, threads).unwrap();
                    for i in 0..m * n {
                        let tol = 1e-4 * (1.0 + truth[i].abs());
                        assert!((c[i] - truth[i]).abs() <= tol, "{m}x{k}x{n} {layout:?}");
                        assert!((acc[i] - 1.0 - truth[i]).abs() <= tol);
                    }
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_errors_and_empty_shapes_are_fine() {
        let mut c = vec![0.0; 4];
        let err = matmul(
            &mut c,
            &[1.0; 3],
            &[1.0; 4],
            (2, 2, 2),
            RightLayout::RowMajor,
            false,
            Threads::Single,
        );
        assert!(matches!(err, Err(IndexError::DimMismatch { .. })));
        let mut c = vec![5.0; 4];
        matmul(
            &mut c,
            &[],
            &[],
            (2, 0, 2),
            RightLayout::RowMajor,
            false,
            Threads::Single,
        )
        .unwrap();
        assert_eq!(c, vec![0.0; 4]);
        matmul(
            &mut [],
            &[],
            &[1.0; 3],
            (0, 3, 1),
            RightLayout::RowMajor,
            false,
            Threads::Single,
        )
        .unwrap();
    }

    #[test]
    fn column_panels_give_the_triple_loop_and_the_same_bits_on_any_thread_count() {
        // Ragged last panels, one panel, panels wider than B, and a 1-column panel.
        for &(m, k, n, panel) in &[
            (64, 130, 100, 32),
            (7, 9, 5, 8),
            (33, 64, 48, 48),
            (3, 4, 6, 1),
        ] {
            let a = values(m * k, 3);
            let b = values(k * n, 4);
            let truth = naive(&a, &b, m, k, n);
            let panels = ColumnPanels::from_row_major(&b, (k, n), panel).unwrap();
            assert_eq!(panels.panel_count(), n.div_ceil(panel));
            assert_eq!((panels.rows(), panels.columns()), (k, n));
            let mut results = Vec::new();
            let bias = values(n, 5);
            for threads in [Threads::Single, Threads::Pool] {
                let mut c = vec![f32::NAN; m * n];
                matmul_panels(&mut c, &a, &panels, None, false, threads).unwrap();
                let mut acc = vec![1.0f32; m * n];
                matmul_panels(&mut acc, &a, &panels, None, true, threads).unwrap();
                let mut biased = vec![f32::NAN; m * n];
                matmul_panels(&mut biased, &a, &panels, Some(&bias), false, threads).unwrap();
                let mut residual = vec![1.0f32; m * n];
                matmul_panels(&mut residual, &a, &panels, Some(&bias), true, threads).unwrap();
                for i in 0..m * n {
                    let tol = 1e-4 * (1.0 + truth[i].abs());
                    assert!((c[i] - truth[i]).abs() <= tol, "{m}x{k}x{n} / {panel}");
                    assert!((acc[i] - 1.0 - truth[i]).abs() <= tol);
                    let b = bias[i % n];
                    assert!((biased[i] - b - truth[i]).abs() <= tol);
                    assert!((residual[i] - 1.0 - b - truth[i]).abs() <= tol);
                }
                results.push(
                    [c, biased, residual]
                        .iter()
                        .flatten()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>(),
                );
            }
            assert_eq!(
                results[0], results[1],
                "{m}x{k}x{n} / {panel}: bits depend on threads"
            );
        }
    }

    #[test]
    fn column_panels_reject_bad_shapes() {
        let b = [1.0f32; 6];
        assert!(matches!(
            ColumnPanels::from_row_major(&b, (2, 4), 2),
            Err(IndexError::DimMismatch { .. })
        ));
        assert!(matches!(
            ColumnPanels::from_row_major(&b, (2, 3), 0),
            Err(IndexError::InvalidParameter { .. })
        ));
        let panels = ColumnPanels::from_row_major(&b, (2, 3), 2).unwrap();
        let mut c = vec![0.0f32; 6];
        // Three rows of A (6 values) need nine outputs.
        assert!(matches!(
            matmul_panels(&mut c, &[1.0; 6], &panels, None, false, Threads::Single),
            Err(IndexError::DimMismatch { .. })
        ));
        // A is not a whole number of rows.
        assert!(matches!(
            matmul_panels(&mut c, &[1.0; 5], &panels, None, false, Threads::Single),
            Err(IndexError::DimMismatch { .. })
        ));
        // The bias is not one value per column.
        assert!(matches!(
            matmul_panels(
                &mut c,
                &[1.0; 4],
                &panels,
                Some(&[1.0; 2]),
                false,
                Threads::Pool
            ),
            Err(IndexError::DimMismatch { .. })
        ));
        // No inner dimension: C is the bias (added with `accumulate`), or zero.
        let empty = ColumnPanels::from_row_major(&[], (0, 3), 2).unwrap();
        let mut c = vec![5.0f32; 6];
        matmul_panels(
            &mut c,
            &[],
            &empty,
            Some(&[1.0, 2.0, 3.0]),
            true,
            Threads::Pool,
        )
        .unwrap();
        assert_eq!(c, vec![6.0, 7.0, 8.0, 6.0, 7.0, 8.0]);
        matmul_panels(&mut c, &[], &empty, None, false, Threads::Single).unwrap();
        assert_eq!(c, vec![0.0; 6]);
    }
}
