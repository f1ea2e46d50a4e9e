//! Bounded top-k selection: O(n log k), no full sort of the candidates.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Hit;

/// A hit ordered so that the heap's top is the *worst* kept hit.
#[derive(Debug, Clone, Copy)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Greater = worse = nearer the top of the max-heap.
        Hit::ranking(&self.0, &other.0)
    }
}

/// Keeps the `k` best hits seen (by [`Hit::ranking`]).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// An empty selection of capacity `k` (memory is reserved for at most a few thousand hits
    /// up front; a larger k grows as hits arrive).
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
        }
    }

    /// The score a new hit must beat to enter (−∞ while not full).
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score)
        }
    }

    /// Offers a hit.
    pub fn push(&mut self, hit: Hit) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else if let Some(worst) = self.heap.peek() {
            if Hit::ranking(&hit, &worst.0) == Ordering::Less {
                self.heap.pop();
                self.heap.push(Worst(hit));
            }
        }
    }

    /// Merges another selection into this one.
    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }

    /// The kept hits, best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        hits.sort_by(Hit::ranking);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_best_with_id_tie_break() {
        let mut top = TopK::new(3);
        for (id, score) in [(5, 0.1), (2, 0.9), (9, 0.5), (1, 0.5), (7, 0.95), (3, 0.2)] {
            top.push(Hit::new(id, score));
        }
        let ids: Vec<u64> = top.into_sorted().iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![7, 2, 1]);
    }
}
