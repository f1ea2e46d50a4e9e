//! The per-thread scratch of a graph search: the visited set, reused across searches without
//! clearing, and the search's heaps and buffers, so that a search allocates nothing but its
//! result (as hnswlib's `VisitedListPool` and faiss's `VisitedTable` do).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::graph::{Node, Scored};

/// Marks nodes visited during one search. Each search bumps a 16-bit generation number instead
/// of clearing the marks (2 bytes per node keep the marks of a large graph in cache), and clears
/// them only when the number wraps, once every 65,535 searches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
    /// The unvisited neighbours of the node being expanded.
    pub(super) fresh: Vec<Node>,
    /// Their scores.
    pub(super) scores: Vec<f32>,
    /// Candidates still to expand (best on top).
    pub(super) candidates: BinaryHeap<Scored>,
    /// The best `ef` found so far (worst on top).
    pub(super) results: BinaryHeap<Reverse<Scored>>,
}

impl Visited {
    /// Starts a new search over a graph of `len` nodes.
    pub(crate) fn start(&mut self, len: usize) {
        if self.marks.len() < len {
            self.marks.resize(len, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `node`; `true` if it was not yet visited in this search.
    pub(crate) fn insert(&mut self, node: Node) -> bool {
        let mark = &mut self.marks[node as usize];
        if *mark == self.generation {
            false
        } else {
            *mark = self.generation;
            true
        }
    }
}

thread_local! {
    /// One scratch per thread, kept between searches.
    static SCRATCH: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Runs `f` with this thread's search scratch (a fresh one if the thread's is in use).
pub(crate) fn with_visited<R>(f: impl FnOnce(&mut Visited) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut visited) => f(&mut visited),
        Err(_) => f(&mut Visited::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_within_a_search_and_reset_across_searches_and_wraps() {
        let mut v = Visited::default();
        v.start(10);
        assert!(v.insert(3));
        assert!(!v.insert(3));
        // Across 70,000 searches (the generation wraps once), a node is new in each.
        for _ in 0..70_000 {
            v.start(10);
            assert!(v.insert(3));
            assert!(!v.insert(3));
            assert!(v.insert(9));
        }
    }
}
