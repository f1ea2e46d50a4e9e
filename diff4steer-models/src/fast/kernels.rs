//! Element-wise kernels of the host inference path, written so that the compiler vectorises them
//! (no branches in the inner loops, fixed-width partial sums) and run through `pulp`'s runtime
//! dispatch, which compiles them for AVX-512 or AVX2 when the CPU has it. They run on whole rows
//! (a tile, or a thread's share of one); the forward pass spreads the rows over threads.

use diff4steer_index::pairwise_sum::pairwise_sum;
use pulp::{Simd, WithSimd};

use super::layers::LAYER_NORM_EPSILON as EPSILON;

/// Layer norm of every row, then SiLU (see [`layer_norm_silu_rows`]).
pub(crate) struct LayerNormSiluKernel<'a> {
    /// `[rows, width]`, the rows to normalise.
    pub input: &'a [f32],
    /// `[rows, width]`, written.
    pub output: &'a mut [f32],
    /// γ, `width` values.
    pub gamma: &'a [f32],
    /// β, `width` values.
    pub beta: &'a [f32],
}

impl WithSimd for LayerNormSiluKernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let width = self.gamma.len();
        layer_norm_silu_rows(
            self.input,
            self.output,
            width,
            self.gamma,
            self.beta,
            EPSILON,
        );
    }
}

/// The second half of a residual block's branch: y = SiLU(LN(y)·(1 + γ_c) + β_c), with FiLM's
/// [γ, β] taken per row from the row's condition.
pub(crate) struct FilmKernel<'a> {
    /// `[rows, width]`, transformed in place.
    pub values: &'a mut [f32],
    /// The layer norm's γ.
    pub gamma: &'a [f32],
    /// The layer norm's β.
    pub beta: &'a [f32],
    /// FiLM [γ_c, β_c] per condition, `[conditions, 2·width]`.
    pub film: &'a [f32],
    /// The condition of each row of `values`.
    pub row_condition: &'a [usize],
}

impl WithSimd for FilmKernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let w = self.gamma.len();
        // One pass per row after its moments: normalise, FiLM, SiLU.
        for (row, &c) in self.values.chunks_exact_mut(w).zip(self.row_condition) {
            let (mean, inv_std) = row_moments(row, EPSILON);
            let (scale, shift) = self.film[c * 2 * w..(c + 1) * 2 * w].split_at(w);
            for ((((v, g), b), s), t) in row
                .iter_mut()
                .zip(self.gamma)
                .zip(self.beta)
                .zip(scale)
                .zip(shift)
            {
                *v = silu(normalise(*v, (mean, inv_std), (*g, *b)) * (s + 1.0) + t);
            }
        }
    }
}

/// Partial sums of [`lane_sum`] and [`lane_dot`]: four AVX registers of f32 (two AVX-512 ones),
/// so that four independent chains of additions hide the adder's latency.
const LANES: usize = 32;

/// e^x for f32 without a libm call, so that loops over it vectorise: Cody–Waite range reduction
/// x = n·ln 2 + r with |r| ≤ ½ln 2, a degree-7 polynomial for e^r (`exp_reduced`, the Cephes
/// `expf` coefficients, relative error ≈ 2·10⁻⁷ on the reduced range), and 2ⁿ built in the
/// exponent bits with integer operations only (a float→integer `as` cast saturates, and its NaN
/// and range checks turned every loop over this function into scalar code). Inputs are clamped
/// to [−87, 88], where e^x stays a normal f32.
///
/// Products that are added are fused (`mul_add`: one rounding, the same bits on every CPU; one
/// instruction where the CPU has FMA, which every AVX2 and AVX-512 CPU has), which halves the
/// instructions of the polynomial: SiLU's exponential is most of the element-wise time of a
/// forward pass.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and subtracting 1.5·2²³ (branch-free, vectorises; |x·log₂e| < 2²²).
    // The sum's exponent is then fixed and its low mantissa bits hold the integer n itself.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x.mul_add(LOG2_E, ROUND);
    let n = shifted - ROUND;
    let e_r = exp_reduced((-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x)));
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    e_r * scale
}

/// e^r for the reduced argument |r| ≤ ½ln 2 of [`exp`]: 1 + r + r²·P(r) with P of degree 5
/// (Cephes' `expf` coefficients), in fused multiply–adds.
#[inline(always)]
fn exp_reduced(r: f32) -> f32 {
    let p = 1.987_569_1e-4_f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 5e-1);
    p.mul_add(r * r, r) + 1.0
}

/// SiLU(x) = x·σ(x) = x / (1 + e^{−x}) (Elfwing et al. 2018).
#[inline(always)]
pub(crate) fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// [`silu`] of every value, in place.
#[inline(always)]
pub(crate) fn silu_in_place(values: &mut [f32]) {
    for v in values.iter_mut() {
        *v = silu(*v);
    }
}

/// A row's mean μ and 1/√(σ² + ε) with the biased variance σ² (two passes, as burn's `LayerNorm`).
#[inline(always)]
pub(crate) fn row_moments(row: &[f32], epsilon: f32) -> (f32, f32) {
    let width = row.len() as f32;
    let mean = lane_sum(row, |v| v) / width;
    let variance = lane_sum(row, |v| (v - mean) * (v - mean)) / width;
    (mean, 1.0 / (variance + epsilon).sqrt())
}

/// One value of a layer norm: (v − μ)·(1/√(σ² + ε))·γ + β, in that order of operations.
#[inline(always)]
fn normalise(v: f32, (mean, inv_std): (f32, f32), (gamma, beta): (f32, f32)) -> f32 {
    (v - mean) * inv_std * gamma + beta
}

/// Row-wise layer normalisation (Ba et al. 2016), y = (x − μ)/√(σ² + ε)·γ + β with the biased
/// variance, as burn's `LayerNorm`, then SiLU in the same pass, from `input` to `output` (both
/// `[rows, width]` row-major): the pre-activation of each residual branch and of the output.
#[inline(always)]
pub(crate) fn layer_norm_silu_rows(
    input: &[f32],
    output: &mut [f32],
    width: usize,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
) {
    for (row, out) in input
        .chunks_exact(width)
        .zip(output.chunks_exact_mut(width))
    {
        let (mean, inv_std) = row_moments(row, epsilon);
        for (((o, v), g), b) in out.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = silu(normalise(*v, (mean, inv_std), (*g, *b)));
        }
    }
}

/// Σ f(v) over `row` with [`LANES`] partial sums (vectorisable, and deterministic).
#[inline(always)]
pub(crate) fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    pairwise_sum(lanes) + tail
}

/// Σ a·b over two rows of equal length with [`LANES`] partial sums (vectorisable, deterministic).
#[inline(always)]
pub(crate) fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(ca).zip(cb) {
            *lane += x * y;
        }
    }
    pairwise_sum(lanes) + tail
}

/// Runs `f` compiled for the best instruction set the CPU has (AVX-512, AVX2+FMA, …) through
/// `pulp`'s runtime dispatch, so that the loops inlined into it vectorise to that width. The
/// arithmetic is written out (a fused multiply-add only where `mul_add` is written, which rounds
/// the same everywhere), so the bits do not depend on which one runs.
#[inline(always)]
pub(crate) fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library_to_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in -8700..8800 {
            let x = i as f32 * 0.01 + 0.003;
            let truth = (x as f64).exp();
            let rel = ((exp(x) as f64 - truth) / truth).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn exp_builds_the_same_power_of_two_as_a_cast_would() {
        // The same reduction and polynomial, with n rounded by the standard library and 2ⁿ built
        // from n as an integer (what is under test is n and 2ⁿ): the bits must match on a fine
        // grid over and beyond the clamp.
        fn with_cast(x: f32) -> f32 {
            let x = x.clamp(-87.0, 88.0);
            // x·log₂e is exact in f64 (two 24-bit significands), and so is its rounding, as in
            // the fused x·log₂e + 1.5·2²³ of `exp`.
            let n = (x as f64 * std::f32::consts::LOG2_E as f64).round_ties_even() as f32;
            let e_r = exp_reduced((-n).mul_add(-2.121_944_4e-4, (-n).mul_add(0.693_359_4, x)));
            e_r * f32::from_bits((((n as i32) + 127) as u32) << 23)
        }
        for i in -9_000..=9_000 {
            let x = i as f32 * 0.0101;
            assert_eq!(exp(x).to_bits(), with_cast(x).to_bits(), "x = {x}");
        }
    }

    #[test]
    fn layer_norm_and_silu_match_their_formulas() {
        let width = 19;
        let values: Vec<f32> = (0..2 * width)
            .map(|i| ((i * 7) % 11) as f32 - 3.0)
            .collect();
        let gamma: Vec<f32> = (0..width).map(|i| 0.5 + i as f32 * 0.1).collect();
        let beta: Vec<f32> = (0..width).map(|i| i as f32 * -0.05).collect();
        let mut normed = vec![f32::NAN; values.len()];
        layer_norm_silu_rows(&values, &mut normed, width, &gamma, &beta, 1e-5);
        for (row, out) in values.chunks(width).zip(normed.chunks(width)) {
            let mean: f64 = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
            let var: f64 =
                row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                let y =
                    (row[i] as f64 - mean) / (var + 1e-5).sqrt() * gamma[i] as f64 + beta[i] as f64;
                let silu = y / (1.0 + (-y).exp());
                assert!((out[i] as f64 - silu).abs() < 1e-5, "{} vs {silu}", out[i]);
            }
        }
    }
}
