//! The layered proximity graph of HNSW (Malkov & Yashunin 2018, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
//! arXiv:1603.09320): link storage, greedy descent, the best-first layer search (their
//! Algorithm 2) and the neighbour-selection heuristic (their Algorithm 4).

use std::cmp::{Ordering, Reverse};

use super::space::{Query, Space};
use super::visited::Visited;
use crate::pages::PageVec;

/// A graph node: the position of its vector in the store.
pub(crate) type Node = u32;

/// The highest layer a node can be drawn into.
pub(crate) const MAX_LEVEL: usize = 15;

/// Kept links scored together against a candidate by the selection heuristic, after the first
/// kept link alone (the nearest to the base point, and the likeliest to reject a candidate).
const KEPT_GROUP: usize = 4;

/// A node with its similarity to some base point (a query or another node); ordered by score,
/// ties broken towards the lower node number so that every ordering is deterministic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    /// Similarity to the base point (higher = nearer).
    pub score: f32,
    /// The node.
    pub node: Node,
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    /// Greater = better: higher score, then lower node.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.node.cmp(&self.node))
    }
}

/// Sorts best first.
pub(crate) fn sort_best_first(list: &mut [Scored]) {
    list.sort_unstable_by(|a, b| b.cmp(a));
}

/// The links of every node on every layer it belongs to. Layer 0 holds up to 2·M links per node,
/// the upper layers up to M (the paper's M_max0 = 2·M, M_max = M). Links live in fixed-size slots
/// (a count, then the links) so that layer 0, where searches spend their time, is one flat array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Graph {
    /// M.
    pub(super) m: usize,
    /// Highest layer of each node.
    pub(super) levels: Vec<u8>,
    /// Layer-0 slots: per node a count and room for 2·M links (on huge pages once large: searches
    /// read them at random).
    pub(super) layer0: PageVec<Node>,
    /// Upper-layer slots: per node, per layer 1…level, a count and room for M links.
    pub(super) upper: Vec<Vec<Node>>,
    /// A node on the highest layer, where searches start.
    pub(super) entry: Option<Node>,
}

impl Graph {
    /// An empty graph with at most `m` links per node on the upper layers (2·m on layer 0).
    pub(crate) fn new(m: usize) -> Self {
        Self {
            m,
            levels: Vec::new(),
            layer0: PageVec::new(),
            upper: Vec::new(),
            entry: None,
        }
    }

    /// Rebuilds a graph from its parts (see `hnsw/file.rs`); `None` when they are inconsistent:
    /// slot arrays of the wrong size, a count above its layer's maximum, a link to a node that
    /// does not exist (or to itself, or above the target's level), or an entry point that is not
    /// a highest node.
    pub(crate) fn from_parts(
        m: usize,
        levels: Vec<u8>,
        layer0: Vec<Node>,
        upper: Vec<Vec<Node>>,
        entry: Option<Node>,
    ) -> Option<Self> {
        let n = levels.len();
        let graph = Self {
            m,
            levels,
            layer0: PageVec::from(layer0),
            upper,
            entry,
        };
        let slots_ok =
            graph.layer0.len() == n * (2 * m + 1)
                && graph.upper.len() == n
                && graph.levels.iter().zip(&graph.upper).all(|(&l, u)| {
                    usize::from(l) <= MAX_LEVEL && u.len() == usize::from(l) * (m + 1)
                });
        if !slots_ok {
            return None;
        }
        let entry_ok = match entry {
            None => n == 0,
            Some(e) => {
                (e as usize) < n && graph.levels.iter().all(|&l| l <= graph.levels[e as usize])
            }
        };
        if !entry_ok {
            return None;
        }
        for node in 0..n as Node {
            for layer in 0..=graph.level(node) {
                let count = graph.count(node, layer);
                if count > graph.max_links(layer) {
                    return None;
                }
                let links_ok = graph
                    .links(node, layer)
                    .iter()
                    .all(|&t| t != node && (t as usize) < n && graph.level(t) >= layer);
                if !links_ok {
                    return None;
                }
            }
        }
        Some(graph)
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.levels.len()
    }

    /// The highest layer of `node`.
    pub(crate) fn level(&self, node: Node) -> usize {
        usize::from(self.levels[node as usize])
    }

    /// The entry point: a node on the highest layer.
    pub(crate) fn entry(&self) -> Option<Node> {
        self.entry
    }

    /// Maximum number of links on `layer`.
    pub(crate) fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    fn slot_start(&self, layer: usize) -> usize {
        (layer - 1) * (self.m + 1)
    }

    fn count(&self, node: Node, layer: usize) -> usize {
        if layer == 0 {
            self.layer0[node as usize * (2 * self.m + 1)] as usize
        } else {
            self.upper[node as usize][self.slot_start(layer)] as usize
        }
    }

    /// The links of `node` on `layer` (which must be at most its level).
    pub(crate) fn links(&self, node: Node, layer: usize) -> &[Node] {
        let count = self.count(node, layer);
        if layer == 0 {
            let start = node as usize * (2 * self.m + 1) + 1;
            &self.layer0[start..start + count]
        } else {
            let start = self.slot_start(layer) + 1;
            &self.upper[node as usize][start..start + count]
        }
    }

    /// Replaces the links of `node` on `layer`; `links` must fit the layer's maximum.
    pub(crate) fn set_links(&mut self, node: Node, layer: usize, links: &[Node]) {
        assert!(
            links.len() <= self.max_links(layer),
            "link list over capacity"
        );
        let slot = if layer == 0 {
            let start = node as usize * (2 * self.m + 1);
            &mut self.layer0[start..start + 2 * self.m + 1]
        } else {
            let start = self.slot_start(layer);
            &mut self.upper[node as usize][start..start + self.m + 1]
        };
        slot[0] = links.len() as Node;
        slot[1..=links.len()].copy_from_slice(links);
    }

    /// Appends a node without links on layers 0…`level`; returns its number.
    pub(crate) fn push_node(&mut self, level: usize) -> Node {
        let node = self.levels.len() as Node;
        self.levels.push(level.min(MAX_LEVEL) as u8);
        self.layer0.extend_with(2 * self.m + 1, 0);
        self.upper
            .push(vec![0; level.min(MAX_LEVEL) * (self.m + 1)]);
        node
    }

    /// Makes `node` the entry point if it reaches higher than the current one.
    pub(crate) fn offer_entry(&mut self, node: Node) {
        if self.entry.is_none_or(|e| self.level(node) > self.level(e)) {
            self.entry = Some(node);
        }
    }

    /// Greedy walk on `layer` from `start` to a local best for `query` (search with ef = 1).
    pub(crate) fn greedy_closest(
        &self,
        space: &Space<'_>,
        query: &Query<'_>,
        start: Scored,
        layer: usize,
    ) -> Scored {
        let mut best = start;
        loop {
            let mut moved = false;
            let links = self.links(best.node, layer);
            for &n in links {
                space.prefetch(n);
            }
            for &n in links {
                let candidate = Scored {
                    score: space.score(query, n),
                    node: n,
                };
                if candidate > best {
                    best = candidate;
                    moved = true;
                }
            }
            if !moved {
                return best;
            }
        }
    }

    /// Best-first search of one layer (Algorithm 2): the `ef` nodes reachable from `entries`
    /// most similar to `query`, best first. With `accept`, only accepted nodes enter the result,
    /// while every node may still be walked through. Each expansion first gathers the node's
    /// unvisited neighbours and prefetches their vectors, then scores them in groups of four
    /// ([`Space::score_many`]) and offers them to the heaps in link order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_layer(
        &self,
        space: &Space<'_>,
        query: &Query<'_>,
        entries: &[Scored],
        ef: usize,
        layer: usize,
        visited: &mut Visited,
        accept: Option<&[bool]>,
    ) -> Vec<Scored> {
        let accepted = |n: Node| accept.is_none_or(|a| a[n as usize]);
        visited.start(self.len());
        let mut fresh = std::mem::take(&mut visited.fresh);
        let mut scores = std::mem::take(&mut visited.scores);
        let mut candidates = std::mem::take(&mut visited.candidates);
        let mut results = std::mem::take(&mut visited.results);
        candidates.clear();
        results.clear();
        for &e in entries {
            if visited.insert(e.node) {
                candidates.push(e);
                if accepted(e.node) {
                    results.push(Reverse(e));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        while let Some(current) = candidates.pop() {
            let full = results.len() >= ef;
            if full && results.peek().is_some_and(|w| current < w.0) {
                break;
            }
            fresh.clear();
            for &n in self.links(current.node, layer) {
                if visited.insert(n) {
                    space.prefetch(n);
                    fresh.push(n);
                }
            }
            space.score_many(query, &fresh, &mut scores);
            for (&n, &score) in fresh.iter().zip(&scores) {
                let candidate = Scored { score, node: n };
                let worst = results.peek().map(|w| w.0);
                if results.len() < ef || worst.is_some_and(|w| candidate > w) {
                    candidates.push(candidate);
                    if accepted(n) {
                        results.push(Reverse(candidate));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut found: Vec<Scored> = results.drain().map(|r| r.0).collect();
        sort_best_first(&mut found);
        visited.fresh = fresh;
        visited.scores = scores;
        visited.candidates = candidates;
        visited.results = results;
        found
    }

    /// The neighbour-selection heuristic (Algorithm 4, without candidate extension): walks the
    /// candidates best first and keeps one only if it is nearer to the base point than to every
    /// neighbour kept so far, up to `max` — links that spread in different directions.
    pub(crate) fn select_neighbours(
        space: &Space<'_>,
        candidates_best_first: &[Scored],
        max: usize,
    ) -> Vec<Node> {
        let mut kept: Vec<Node> = Vec::with_capacity(max);
        let mut scores = Vec::with_capacity(KEPT_GROUP);
        'candidates: for c in candidates_best_first {
            if kept.len() == max {
                break;
            }
            // The kept links are scored against the candidate (as the query) a group at a time
            // ([`Space::score_many`]: independent sums in flight), stopping after the first
            // group with a link at least as near to it as the base point is. Scoring a few links
            // past that one changes no decision.
            let candidate = space.node_query(c.node);
            let (first, rest) = kept.split_at(kept.len().min(1));
            for group in std::iter::once(first).chain(rest.chunks(KEPT_GROUP)) {
                space.score_many(&candidate, group, &mut scores);
                if !scores.iter().all(|&s| s < c.score) {
                    continue 'candidates;
                }
            }
            kept.push(c.node);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FlatIndex, Similarity};

    /// The heuristic as Algorithm 4 states it: one kept link at a time, in the order kept.
    fn select_one_at_a_time(space: &Space<'_>, candidates: &[Scored], max: usize) -> Vec<Node> {
        let mut kept: Vec<Node> = Vec::new();
        for c in candidates {
            if kept.len() == max {
                break;
            }
            if kept.iter().all(|&k| space.score_nodes(c.node, k) < c.score) {
                kept.push(c.node);
            }
        }
        kept
    }

    /// Scoring the kept links in groups keeps and rejects exactly the candidates that the
    /// one-at-a-time heuristic does, on spread-out and on clustered points.
    #[test]
    fn grouped_selection_keeps_what_the_one_at_a_time_heuristic_keeps() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (dim, spread) in [(3, 1.0), (16, 1.0), (16, 0.1), (33, 0.3)] {
            let centre: Vec<f32> = (0..dim).map(|_| next()).collect();
            let rows: Vec<f32> = (0..300 * dim)
                .map(|i| centre[i % dim] + spread * next())
                .collect();
            for similarity in [Similarity::Cosine, Similarity::NegativeL2] {
                let store = FlatIndex::from_rows(dim, similarity, &rows).unwrap();
                let space = Space::of(&store);
                let base = space.node_query(0);
                let mut candidates: Vec<Scored> = (1..300)
                    .map(|n| Scored {
                        score: space.score(&base, n),
                        node: n,
                    })
                    .collect();
                sort_best_first(&mut candidates);
                for max in [1, 2, 5, 16, 64, 300] {
                    assert_eq!(
                        Graph::select_neighbours(&space, &candidates, max),
                        select_one_at_a_time(&space, &candidates, max),
                        "dim {dim}, spread {spread}, {similarity:?}, max {max}"
                    );
                }
            }
        }
    }
}
