//! The visited set of a graph search, reused across searches without clearing.

use super::graph::Node;

/// Marks nodes visited during one search. Each search bumps a generation number instead of
/// clearing the marks, so a set reused by one thread costs nothing to reset.
#[derive(Debug, Clone, Default)]
pub(crate) struct Visited {
    marks: Vec<u32>,
    generation: u32,
    /// Scratch space of the layer search: the unvisited neighbours of the node it expands.
    pub(super) fresh: Vec<Node>,
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
