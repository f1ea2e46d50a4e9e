//! How the graph scores nodes: the store's vectors under cosine (unit vectors, inner product) or
//! negative squared L2, with the inner-product kernel the whole graph spends its time in.
//!
//! Graph search is memory-bound: each step reads the vectors of a node's unvisited neighbours,
//! scattered over the store. [`Space::prefetch`] asks the CPU for a vector's cache lines before it
//! is scored (as hnswlib and faiss do), and the kernel runs through `pulp`'s runtime dispatch, so
//! it is compiled for AVX-512 or AVX2 where the CPU has them. Neither changes a single bit of a
//! score: the lanes and their summation order are the same on every path.

use pulp::{Arch, Simd, WithSimd};

use super::graph::Node;
use crate::pairwise_sum::pairwise_sum;
use crate::{FlatIndex, Similarity, VectorIndex};

/// Lanes of the dot-product kernel: independent partial sums the compiler keeps in SIMD registers.
const LANES: usize = 16;

/// ⟨a, b⟩ with [`LANES`] independent accumulators: the scalar reference of [`DotKernel`], which
/// the graph calls. The summation order is fixed, so the result is the same on every run, thread
/// and instruction set: the products and sums are rounded one by one, never fused.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let ((chunks_a, tail_a), (chunks_b, tail_b)) = (a.as_chunks::<LANES>(), b.as_chunks::<LANES>());
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    for (x, y) in chunks_a.iter().zip(chunks_b) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    pairwise_sum(acc) + tail
}

/// The [`LANES`] partial sums held in SIMD registers, as plain lanes.
#[inline(always)]
fn lanes_of<S: Simd>(registers: &[S::f32s]) -> [f32; LANES] {
    let mut lanes = [0.0; LANES];
    lanes.copy_from_slice(pulp::bytemuck::cast_slice(registers));
    lanes
}

/// [`dot`] in the SIMD registers of the instruction set `pulp` dispatches to: the same
/// [`LANES`] partial sums, held as one AVX-512 register, two AVX2 registers or sixteen scalars,
/// each summing the same rounded products in the same order, then added up in the tree order of
/// [`dot`] ([`pairwise_sum`]), so every path gives the same bits.
struct DotKernel<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl WithSimd for DotKernel<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let width = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        if width > LANES || !LANES.is_multiple_of(width) {
            return dot(self.a, self.b);
        }
        let registers = LANES / width;
        let mut acc = [simd.splat_f32s(0.0); LANES];
        let ((chunks_a, tail_a), (chunks_b, tail_b)) =
            (self.a.as_chunks::<LANES>(), self.b.as_chunks::<LANES>());
        for (x, y) in chunks_a.iter().zip(chunks_b) {
            let (xs, ys) = (S::as_simd_f32s(x).0, S::as_simd_f32s(y).0);
            for r in 0..registers {
                acc[r] = simd.add_f32s(acc[r], simd.mul_f32s(xs[r], ys[r]));
            }
        }
        let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
        pairwise_sum(lanes_of::<S>(&acc[..registers])) + tail
    }
}

/// [`DotKernel`] for one query against many stored rows, four rows at a time: the four rows'
/// partial sums are independent, so their additions overlap in the pipeline instead of waiting
/// on one another (faiss scores graph neighbours in groups of four the same way). Each row's
/// lanes, products and reduction are exactly [`dot`]'s, so a score is the same bits in a group,
/// alone, or through [`DotKernel`].
struct DotManyKernel<'a, 'b> {
    query: &'a [f32],
    space: &'a Space<'b>,
    nodes: &'a [Node],
    out: &'a mut [f32],
}

impl WithSimd for DotManyKernel<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let width = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let (query, space) = (self.query, self.space);
        if width > LANES || !LANES.is_multiple_of(width) {
            for (o, &n) in self.out.iter_mut().zip(self.nodes) {
                *o = dot(query, space.row(n));
            }
            return;
        }
        let registers = LANES / width;
        let (chunks_q, tail_q) = query.as_chunks::<LANES>();
        let finish = |acc: &[S::f32s; LANES], tail_b: &[f32]| -> f32 {
            let tail: f32 = tail_q.iter().zip(tail_b).map(|(x, y)| x * y).sum();
            pairwise_sum(lanes_of::<S>(&acc[..registers])) + tail
        };
        let mut groups = self.nodes.chunks_exact(4);
        let mut outs = self.out.chunks_exact_mut(4);
        for (group, out) in (&mut groups).zip(&mut outs) {
            let rows = [
                space.row(group[0]).as_chunks::<LANES>(),
                space.row(group[1]).as_chunks::<LANES>(),
                space.row(group[2]).as_chunks::<LANES>(),
                space.row(group[3]).as_chunks::<LANES>(),
            ];
            let mut acc = [[simd.splat_f32s(0.0); LANES]; 4];
            for (c, x) in chunks_q.iter().enumerate() {
                let xs = S::as_simd_f32s(x).0;
                for (acc, row) in acc.iter_mut().zip(&rows) {
                    let ys = S::as_simd_f32s(&row.0[c]).0;
                    for r in 0..registers {
                        acc[r] = simd.add_f32s(acc[r], simd.mul_f32s(xs[r], ys[r]));
                    }
                }
            }
            for ((o, acc), row) in out.iter_mut().zip(&acc).zip(&rows) {
                *o = finish(acc, row.1);
            }
        }
        for (o, &n) in outs.into_remainder().iter_mut().zip(groups.remainder()) {
            let (chunks_b, tail_b) = space.row(n).as_chunks::<LANES>();
            let mut acc = [simd.splat_f32s(0.0); LANES];
            for (x, y) in chunks_q.iter().zip(chunks_b) {
                let (xs, ys) = (S::as_simd_f32s(x).0, S::as_simd_f32s(y).0);
                for r in 0..registers {
                    acc[r] = simd.add_f32s(acc[r], simd.mul_f32s(xs[r], ys[r]));
                }
            }
            *o = finish(&acc, tail_b);
        }
    }
}

/// Bytes per cache line, the unit of a prefetch.
const CACHE_LINE: usize = 64;

/// A query prepared for scoring: its (normalised, under cosine) values and squared norm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    values: &'a [f32],
    squared_norm: f32,
}

impl<'a> Query<'a> {
    /// A query as the store prepares it.
    pub(crate) fn new(values: &'a [f32]) -> Self {
        Self {
            values,
            squared_norm: dot(values, values),
        }
    }
}

/// Scores between queries and nodes, and between nodes: ⟨q, x⟩ for cosine (unit vectors) and
/// 2⟨q, x⟩ − ‖q‖² − ‖x‖² = −‖q − x‖² for L2, the same formulas as the flat index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space<'a> {
    dim: usize,
    vectors: &'a [f32],
    squared_norms: &'a [f32],
    l2: bool,
    /// The instruction set the dot kernel runs with, detected once.
    arch: Arch,
    /// The prefetch instruction (SSE, on every x86-64 CPU).
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl<'a> Space<'a> {
    /// The space of the vectors stored in `store` (node = position).
    pub(crate) fn of(store: &'a FlatIndex) -> Self {
        Self {
            dim: store.dim(),
            vectors: store.vectors(),
            squared_norms: store.squared_norms(),
            l2: store.similarity() == Similarity::NegativeL2,
            arch: Arch::new(),
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// The stored vector of `node`.
    pub(crate) fn row(&self, node: Node) -> &'a [f32] {
        let start = node as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    /// The node's vector as a query.
    pub(crate) fn node_query(&self, node: Node) -> Query<'a> {
        Query {
            values: self.row(node),
            squared_norm: self.squared_norms[node as usize],
        }
    }

    /// Asks the CPU to start loading `node`'s vector into its cache, so that scoring it soon
    /// after does not wait on memory. A hint only: it changes no result.
    #[inline]
    pub(crate) fn prefetch(&self, node: Node) {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse) = self.sse {
            let row = self.row(node);
            for line in row.chunks(CACHE_LINE / std::mem::size_of::<f32>()) {
                sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = node;
    }

    /// Similarity of `query` and `node`.
    pub(crate) fn score(&self, query: &Query<'_>, node: Node) -> f32 {
        let d = self.arch.dispatch(DotKernel {
            a: query.values,
            b: self.row(node),
        });
        if self.l2 {
            2.0 * d - query.squared_norm - self.squared_norms[node as usize]
        } else {
            d
        }
    }

    /// Similarities of `query` and each of `nodes` into `out` (one per node), in groups of four
    /// ([`DotManyKernel`]): the same bits as [`Space::score`] on each node.
    pub(crate) fn score_many(&self, query: &Query<'_>, nodes: &[Node], out: &mut Vec<f32>) {
        out.clear();
        out.resize(nodes.len(), 0.0);
        self.arch.dispatch(DotManyKernel {
            query: query.values,
            space: self,
            nodes,
            out,
        });
        if self.l2 {
            for (o, &n) in out.iter_mut().zip(nodes) {
                *o = 2.0 * *o - query.squared_norm - self.squared_norms[n as usize];
            }
        }
    }

    /// Similarity of two nodes (the graph's tests' reference).
    #[cfg(test)]
    pub(crate) fn score_nodes(&self, a: Node, b: Node) -> f32 {
        self.score(&self.node_query(a), b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores in groups of four are the bits of one-at-a-time scores, for both similarities,
    /// every group size (remainders included) and lengths with and without a tail.
    #[test]
    fn grouped_scores_give_the_bits_of_single_scores() {
        for dim in [1, 7, 16, 33, 128] {
            let rows: Vec<f32> = (0..20 * dim)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
                .collect();
            for similarity in [Similarity::Cosine, Similarity::NegativeL2] {
                let store = FlatIndex::from_rows(dim, similarity, &rows).unwrap();
                let space = Space::of(&store);
                let query = space.node_query(3);
                let mut out = Vec::new();
                for count in 0..=9 {
                    let nodes: Vec<Node> = (0..count).map(|i| (i * 7 % 20) as Node).collect();
                    space.score_many(&query, &nodes, &mut out);
                    assert_eq!(out.len(), count);
                    for (&n, &got) in nodes.iter().zip(&out) {
                        let single = space.score(&query, n);
                        assert_eq!(got.to_bits(), single.to_bits(), "dim {dim}, node {n}");
                    }
                }
            }
        }
    }

    /// Runtime dispatch picks a SIMD instruction set wherever the CPU has AVX2 (it silently
    /// fell back to scalar code on AVX2-only CPUs while `pulp`'s `x86-v3` feature was off).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn dispatch_uses_avx2_where_the_cpu_has_it() {
        if pulp::x86::V3::try_new().is_some() {
            assert!(!matches!(Arch::new(), Arch::Scalar), "{:?}", Arch::new());
        }
    }

    /// Every instruction set gives the scalar kernel's bits, whatever the length (tails included).
    #[test]
    fn the_dispatched_kernel_gives_the_scalar_kernels_bits() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for len in [0, 1, 7, 15, 16, 17, 31, 64, 100, 128, 257, 768] {
            let a: Vec<f32> = (0..len).map(|_| next()).collect();
            let b: Vec<f32> = (0..len).map(|_| next() * 1e3).collect();
            let scalar = dot(&a, &b);
            let kernel = || DotKernel { a: &a, b: &b };
            let best = Arch::new().dispatch(kernel());
            assert_eq!(
                best.to_bits(),
                scalar.to_bits(),
                "len {len}: best instruction set"
            );
            let plain = Simd::vectorize(pulp::Scalar, kernel());
            assert_eq!(plain.to_bits(), scalar.to_bits(), "len {len}: scalar");
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                let avx2 = Simd::vectorize(v3, kernel());
                assert_eq!(avx2.to_bits(), scalar.to_bits(), "len {len}: AVX2");
            }
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!(
                (scalar as f64 - naive).abs() <= 1e-3 * (1.0 + naive.abs()),
                "len {len}"
            );
        }
    }
}
