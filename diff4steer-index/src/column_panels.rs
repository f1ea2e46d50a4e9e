//! Products with a fixed right-hand matrix — a network layer's weight — stored once in the layout
//! the kernel reads: [`ColumnPanels`] and [`matmul_panels`].
//!
//! A general GEMM (`gemm`, [`crate::dense::matmul`]) re-packs its operands on every call; for the
//! host prior's products (one query's 64 rows × a 512 × 512 weight, thousands of times per
//! second) that packing cost ≈ 12% of a sampling trajectory on the development machine. Here the
//! weight is packed once, when the layer is copied, as strips of [`STRIP_COLUMNS`] columns; the
//! register-blocked kernel (the structure of BLIS's micro-kernel: Van Zee & van de Geijn, "BLIS:
//! A Framework for Rapidly Instantiating BLAS Functionality", ACM TOMS 2015) keeps a
//! [`BLOCK_ROWS`] × [`STRIP_COLUMNS`] block of C in registers while a strip streams past, reading
//! A's rows in place. Every element of C is the sum over p of A(i, p)·B(p, j) accumulated in
//! order of p with fused multiply–adds, then added to C's prior value and the bias: its bits
//! depend on neither the number of rows, nor the row's position in its block, nor how the panels
//! are spread over threads, nor the instruction set (a fused multiply–add rounds once
//! everywhere; every AVX2, AVX-512 and ARMv8 CPU has it in hardware — on older x86 CPUs without
//! FMA, `mul_add` is a library routine: the same bits, many times slower).
//!
//! The `unsafe` code is the output pointer shared by the threads that write C's disjoint column
//! panels.
#![allow(unsafe_code)]

use pulp::{Arch, Simd, WithSimd};

use crate::dense::{check_lengths, Threads};
use crate::{IndexError, Result};

/// Columns of one strip: two AVX2 registers (one AVX-512 register) of f32.
pub const STRIP_COLUMNS: usize = 16;

/// Rows of C per register block: 6 × [`STRIP_COLUMNS`] accumulators are 12 AVX2 registers,
/// leaving of the 16 two for the strip's row of B and one for A's broadcast value (the shape of
/// BLIS's Haswell/Zen single-precision kernel).
pub const BLOCK_ROWS: usize = 6;

/// A right-hand matrix B `[k, n]` packed for [`matmul_panels`]: strips of [`STRIP_COLUMNS`]
/// columns (the last one zero-padded), each a contiguous `[k, STRIP_COLUMNS]` row-major block, so
/// that the kernel reads B strictly in order; and column panels of a fixed number of strips, the
/// unit of work a thread takes. C's column panels are computed independently — on one thread, or
/// on several at once — by the same kernel calls, so a product's bits do not depend on how many
/// threads computed it.
///
/// This is how a layer's weight is stored for products with few rows (one query's seeds): the
/// rows alone cannot keep two cores busy without each streaming the whole weight, but its column
/// panels can, each core reading only its own panels.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPanels {
    k: usize,
    n: usize,
    strips_per_panel: usize,
    /// `[strips, k, STRIP_COLUMNS]`.
    values: Vec<f32>,
}

impl ColumnPanels {
    /// Packs a row-major `[k, n]` matrix as column panels of `panel` columns (a multiple of
    /// [`STRIP_COLUMNS`]; the last panel may be narrower).
    ///
    /// # Errors
    /// [`IndexError::DimMismatch`] when `b.len() != k·n`; [`IndexError::InvalidParameter`] when
    /// `panel` is 0 or not a multiple of [`STRIP_COLUMNS`].
    pub fn from_row_major(b: &[f32], (k, n): (usize, usize), panel: usize) -> Result<Self> {
        check_lengths([("panelled matrix", b.len(), k * n)])?;
        if panel == 0 || !panel.is_multiple_of(STRIP_COLUMNS) {
            return Err(IndexError::InvalidParameter {
                name: "panel",
                reason: format!(
                    "a column panel is a positive multiple of {STRIP_COLUMNS} columns, not {panel}"
                ),
            });
        }
        let strips = n.div_ceil(STRIP_COLUMNS);
        let mut values = vec![0.0f32; strips * k * STRIP_COLUMNS];
        for (s, strip) in values
            .chunks_exact_mut((k * STRIP_COLUMNS).max(1))
            .enumerate()
        {
            let first = s * STRIP_COLUMNS;
            let width = STRIP_COLUMNS.min(n - first);
            for (dst, row) in strip.chunks_exact_mut(STRIP_COLUMNS).zip(b.chunks_exact(n)) {
                dst[..width].copy_from_slice(&row[first..first + width]);
            }
        }
        Ok(Self {
            k,
            n,
            strips_per_panel: panel / STRIP_COLUMNS,
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
        self.n
            .div_ceil(STRIP_COLUMNS)
            .div_ceil(self.strips_per_panel)
    }

    /// Panel `j`: its first column, its width and its strips (`[strips, k, STRIP_COLUMNS]`).
    fn panel(&self, j: usize) -> (usize, usize, &[f32]) {
        let first = j * self.strips_per_panel * STRIP_COLUMNS;
        let width = (self.strips_per_panel * STRIP_COLUMNS).min(self.n - first);
        let strip_len = self.k * STRIP_COLUMNS;
        let first_strip = first / STRIP_COLUMNS;
        let strips = width.div_ceil(STRIP_COLUMNS);
        (
            first,
            width,
            &self.values[first_strip * strip_len..(first_strip + strips) * strip_len],
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
/// when `None`) for row-major `a` `[m, k]` and `c` `[m, n]`, with B packed as [`ColumnPanels`]:
/// one job per panel writes its columns of C in place. With [`Threads::Pool`] the panels are
/// spread over rayon's pool; with [`Threads::Single`] they run one after another on the calling
/// thread. Each panel's work is the same either way, so C's bits are too. (A linear layer's
/// y = x·W + b, and a residual h ← h + x·W + b, in one pass over C.)
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
    if k == 0 {
        // No inner dimension: every sum is 0.
        let zeros = vec![0.0f32; n];
        for row in c.chunks_exact_mut(n) {
            store(row, &zeros, bias, accumulate);
        }
        return Ok(());
    }
    let output = SharedOutput(c.as_mut_ptr());
    let run_panel = |j: usize| {
        let (first, width, strips) = b.panel(j);
        Arch::new().dispatch(PanelProduct {
            a,
            k,
            strips,
            bias: bias.map(|bias| &bias[first..first + width]),
            accumulate,
            output,
            n,
            first,
            width,
        });
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

/// One column panel of [`matmul_panels`]: C's columns `first .. first + width` of every row.
struct PanelProduct<'a> {
    /// `[m, k]`.
    a: &'a [f32],
    k: usize,
    /// The panel's strips, `[strips, k, STRIP_COLUMNS]`.
    strips: &'a [f32],
    /// The panel's `width` values of the bias.
    bias: Option<&'a [f32]>,
    accumulate: bool,
    /// C, `[m, n]` row-major.
    output: SharedOutput,
    n: usize,
    first: usize,
    width: usize,
}

impl WithSimd for PanelProduct<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let k = self.k;
        let m = self.a.len() / k;
        for (s, strip) in self.strips.chunks_exact(k * STRIP_COLUMNS).enumerate() {
            let column = s * STRIP_COLUMNS;
            let columns = STRIP_COLUMNS.min(self.width - column);
            let mut row = 0;
            while row < m {
                let rows = BLOCK_ROWS.min(m - row);
                let block = (row, column, columns);
                match rows {
                    6 => self.block::<6>(strip, block),
                    5 => self.block::<5>(strip, block),
                    4 => self.block::<4>(strip, block),
                    3 => self.block::<3>(strip, block),
                    2 => self.block::<2>(strip, block),
                    _ => self.block::<1>(strip, block),
                }
                row += rows;
            }
        }
    }
}

impl PanelProduct<'_> {
    /// Rows `row .. row + R` of C in the strip's columns `column .. column + columns` (relative
    /// to the panel): their sums over `strip`, added to C's prior value and the bias.
    #[inline(always)]
    fn block<const R: usize>(&self, strip: &[f32], (row, column, columns): (usize, usize, usize)) {
        let k = self.k;
        let sums = block_sums::<R>(&self.a[row * k..(row + R) * k], strip);
        let bias = self.bias.map(|bias| &bias[column..column + columns]);
        for (r, sums) in sums.iter().enumerate() {
            // SAFETY: C is `[m, n]` (checked by `matmul_panels`, which borrows it exclusively
            // until every panel is done); row + r < m, and the strip's columns
            // `first + column .. + columns` lie inside the panel, itself inside `0..n`, so the
            // slice is inside C. Panels cover disjoint columns, so no other job touches these
            // elements, and the slice does not outlive this iteration.
            let out = unsafe {
                std::slice::from_raw_parts_mut(
                    self.output
                        .base()
                        .add((row + r) * self.n + self.first + column),
                    columns,
                )
            };
            store(out, &sums[..columns], bias, self.accumulate);
        }
    }
}

/// `out` ← base + sums, base being out + bias, bias, out or nothing (C's prior value with
/// `accumulate`, then the bias).
#[inline(always)]
fn store(out: &mut [f32], sums: &[f32], bias: Option<&[f32]>, accumulate: bool) {
    match (bias, accumulate) {
        (Some(bias), true) => {
            for ((o, s), b) in out.iter_mut().zip(sums).zip(bias) {
                *o = (*o + b) + s;
            }
        }
        (Some(bias), false) => {
            for ((o, s), b) in out.iter_mut().zip(sums).zip(bias) {
                *o = b + s;
            }
        }
        (None, true) => out.iter_mut().zip(sums).for_each(|(o, s)| *o += s),
        (None, false) => out.copy_from_slice(sums),
    }
}

/// Σ_p A(r, p)·B(p, ·) for the `R` rows of `a` (`[R, k]`) and one strip (`[k, STRIP_COLUMNS]`):
/// the `R` × [`STRIP_COLUMNS`] sums stay in registers while the strip streams past, each added to
/// in order of p with a fused multiply–add.
#[inline(always)]
fn block_sums<const R: usize>(a: &[f32], strip: &[f32]) -> [[f32; STRIP_COLUMNS]; R] {
    let k = strip.len() / STRIP_COLUMNS;
    assert!(a.len() >= R * k, "a register block needs {R} rows of A");
    let rows: [*const f32; R] = std::array::from_fn(|r| a[r * k..].as_ptr());
    let mut sums = [[0.0f32; STRIP_COLUMNS]; R];
    for (p, b) in strip.chunks_exact(STRIP_COLUMNS).enumerate() {
        let b: &[f32; STRIP_COLUMNS] = b.try_into().expect("strips are whole");
        for (sums, row) in sums.iter_mut().zip(rows) {
            // SAFETY: p < k (the strip has k rows), and each of the R rows of `a` holds k values
            // (asserted above), so A(r, p) lies inside `a`.
            let x = unsafe { *row.add(p) };
            for (s, b) in sums.iter_mut().zip(b) {
                *s = x.mul_add(*b, *s);
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::tests::{naive, values};

    #[test]
    fn column_panels_give_the_triple_loop_and_the_same_bits_on_any_thread_count() {
        // Ragged last panels and strips, one panel, panels wider than B, one-strip panels,
        // every remainder of rows past whole register blocks.
        for &(m, k, n, panel) in &[
            (64, 130, 100, 32),
            (7, 9, 5, 16),
            (33, 64, 48, 48),
            (3, 4, 6, 16),
            (11, 40, 70, 64),
            (2, 1, 17, 16),
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
        for panel in [0, 8, 24] {
            assert!(matches!(
                ColumnPanels::from_row_major(&b, (2, 3), panel),
                Err(IndexError::InvalidParameter { .. })
            ));
        }
        let panels = ColumnPanels::from_row_major(&b, (2, 3), 16).unwrap();
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
        let empty = ColumnPanels::from_row_major(&[], (0, 3), 16).unwrap();
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

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_around_it() {
        // Rows fall in different register blocks (and remainders) alone and in the batch.
        let (m, k, n) = (23, 77, 40);
        let a = values(m * k, 6);
        let b = values(k * n, 7);
        let bias = values(n, 8);
        let panels = ColumnPanels::from_row_major(&b, (k, n), 32).unwrap();
        let mut batch = vec![0.0f32; m * n];
        matmul_panels(&mut batch, &a, &panels, Some(&bias), false, Threads::Pool).unwrap();
        for first in 0..m {
            for rows in [1, 2, 5] {
                let rows = rows.min(m - first);
                let mut part = vec![0.0f32; rows * n];
                let a = &a[first * k..(first + rows) * k];
                matmul_panels(&mut part, a, &panels, Some(&bias), false, Threads::Single).unwrap();
                let expected = &batch[first * n..(first + rows) * n];
                assert!(
                    part.iter()
                        .zip(expected)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "rows {first}..{}",
                    first + rows
                );
            }
        }
    }

    #[test]
    fn each_sum_is_the_plain_loop_of_fused_multiply_adds_in_order() {
        // The kernel's contract, bit for bit: Σ_p A(i, p)·B(p, j) accumulated from 0 in order of
        // p with one rounding per term, then added to C's prior value plus the bias.
        for &(m, k, n) in &[(13, 37, 53), (6, 8, 16), (1, 5, 3), (20, 24, 96)] {
            let a = values(m * k, 9);
            let b = values(k * n, 10);
            let bias = values(n, 11);
            let start = values(m * n, 12);
            let panels = ColumnPanels::from_row_major(&b, (k, n), 32).unwrap();
            let mut out = start.clone();
            matmul_panels(&mut out, &a, &panels, Some(&bias), true, Threads::Pool).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let sum = (0..k).fold(0.0f32, |s, p| a[i * k + p].mul_add(b[p * n + j], s));
                    let truth = (start[i * n + j] + bias[j]) + sum;
                    assert_eq!(
                        out[i * n + j].to_bits(),
                        truth.to_bits(),
                        "{m}×{k}×{n} at ({i}, {j})"
                    );
                }
            }
        }
    }
}
