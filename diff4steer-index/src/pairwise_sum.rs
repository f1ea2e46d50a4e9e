//! The sum of a SIMD kernel's partial sums in one fixed order, shared by the graph index's
//! distance kernels and the host prior's row reductions.

/// Σ of `lanes` as a pairwise tree: lane i plus lane i + N/2, then i + N/4, …, down to one —
/// log₂ N dependent vector additions instead of N − 1 dependent scalar ones, and one fixed order
/// of additions whatever instruction set computed the lanes. `N` must be a power of two (checked
/// when compiled).
#[inline(always)]
pub fn pairwise_sum<const N: usize>(mut lanes: [f32; N]) -> f32 {
    const {
        assert!(
            N.is_power_of_two(),
            "pairwise_sum needs a power-of-two lane count"
        )
    };
    let mut half = N / 2;
    while half > 0 {
        for i in 0..half {
            lanes[i] += lanes[i + half];
        }
        half /= 2;
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_in_the_pairwise_tree_order() {
        // ((a0 + a2) + (a1 + a3)) for four lanes, bit for bit, where left-to-right differs.
        let lanes = [1.0e8f32, 1.0, -1.0e8, 1.0];
        let tree = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
        assert_eq!(pairwise_sum(lanes).to_bits(), tree.to_bits());
        assert_ne!(lanes.iter().sum::<f32>(), tree);
        assert_eq!(pairwise_sum([3.5f32]), 3.5);
        let sixteen: [f32; 16] = std::array::from_fn(|i| i as f32);
        assert_eq!(pairwise_sum(sixteen), 120.0);
    }
}
