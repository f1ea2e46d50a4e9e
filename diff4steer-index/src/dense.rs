//! Dense f32 matrix products on row-major slices: the one GEMM the exact index and the fast
//! denoiser share.
//!
//! It calls the `gemm` crate (the kernels behind burn's CPU backend), built with its AVX-512 path
//! (`x86-v4`) and runtime CPU detection, so the same binary uses AVX-512, AVX2+FMA or SSE as the
//! machine allows. Its `unsafe` code is the call into `gemm` (`sgemm`), whose pointers and
//! strides are derived from slices whose lengths are checked first. Products whose right-hand
//! matrix is fixed (a network's weights) have their own kernel in [`crate::column_panels`].
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
pub(crate) fn check_lengths<const N: usize>(
    operands: [(&'static str, usize, usize); N],
) -> Result<()> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The textbook triple loop, in f64.
    pub(crate) fn naive(a: &[f32], b_kn: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
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

    pub(crate) fn values(len: usize, salt: usize) -> Vec<f32> {
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
}
