//! Graph construction: HNSW insertion (Malkov & Yashunin 2018, Algorithm 1) done in batches, in
//! parallel, with a result that depends only on the vectors, their order and the seed.
//!
//! Each batch of new nodes is planned in parallel against the graph as it stood before the batch
//! (descent to the node's level, `search_layer` with ef_construction on each of its layers), with
//! the batch's earlier nodes added to the candidates by brute force — so every node sees every
//! node inserted before it, as in serial insertion. The new links are then written, and the
//! reverse links are added (and over-full lists pruned with the heuristic) in parallel per target
//! node. No step depends on thread scheduling.

use rayon::prelude::*;

use super::graph::{sort_best_first, Graph, Node, Scored, MAX_LEVEL};
use super::space::Space;
use super::visited::{with_visited, Visited};

/// Upper bound on the nodes planned together.
const MAX_BATCH: usize = 1024;

/// The batch size for a graph of `len` nodes: small while the graph is small (so new nodes see
/// a meaningful graph), at most an eighth of the graph, at most [`MAX_BATCH`].
fn batch_size(len: usize) -> usize {
    (len / 8).clamp(1, MAX_BATCH)
}

/// SplitMix64 (Steele, Lea & Flood 2014): a fixed mixing function from counter to random bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The layer of node `position`: ⌊−ln(u)·m_L⌋ with m_L = 1/ln(M) (the paper's choice) and u
/// uniform on (0, 1] drawn from the seed and the position alone, so adding vectors in several
/// calls gives the same levels as adding them at once.
pub(crate) fn draw_level(seed: u64, position: u64, m: usize) -> usize {
    let bits = splitmix64(seed ^ splitmix64(position)) >> 11;
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
    let m_l = 1.0 / (m.max(2) as f64).ln();
    ((-u.ln() * m_l).floor() as usize).min(MAX_LEVEL)
}

impl Graph {
    /// Inserts the nodes `len()..len() + levels.len()`, whose vectors are already in `space`.
    pub(crate) fn insert(&mut self, space: &Space<'_>, levels: &[usize], ef_construction: usize) {
        let mut done = 0;
        while done < levels.len() {
            let batch_start = self.len() as Node;
            let count = batch_size(self.len()).min(levels.len() - done);
            for &level in &levels[done..done + count] {
                self.push_node(level);
            }
            let batch: Vec<Node> = (batch_start..batch_start + count as Node).collect();
            let plans: Vec<Vec<Vec<Node>>> = batch
                .par_iter()
                .map(|&node| {
                    with_visited(|visited| {
                        self.plan(space, node, batch_start, ef_construction, visited)
                    })
                })
                .collect();
            for (&node, plan) in batch.iter().zip(&plans) {
                for (layer, links) in plan.iter().enumerate() {
                    self.set_links(node, layer, links);
                }
            }
            self.add_reverse_links(space, &batch, &plans);
            for &node in &batch {
                self.offer_entry(node);
            }
            done += count;
        }
    }

    /// The links of a new node on each of its layers: the best `ef_construction` of the
    /// candidates from the graph before the batch and the batch's earlier nodes (what a serial
    /// insertion's search would return), thinned by the selection heuristic.
    fn plan(
        &self,
        space: &Space<'_>,
        node: Node,
        batch_start: Node,
        ef_construction: usize,
        visited: &mut Visited,
    ) -> Vec<Vec<Node>> {
        let query = space.node_query(node);
        let level = self.level(node);
        let mut candidates: Vec<Vec<Scored>> = vec![Vec::new(); level + 1];
        if let Some(entry) = self.entry() {
            let top = self.level(entry);
            let mut nearest = Scored {
                score: space.score(&query, entry),
                node: entry,
            };
            for layer in (level + 1..=top).rev() {
                nearest = self.greedy_closest(space, &query, nearest, layer);
            }
            let mut entries = vec![nearest];
            for layer in (0..=level.min(top)).rev() {
                let found = self.search_layer(
                    space,
                    &query,
                    &entries,
                    ef_construction,
                    layer,
                    visited,
                    None,
                );
                candidates[layer].extend_from_slice(&found);
                entries = found;
            }
        }
        // The batch's earlier nodes, scored in groups of four in the thread's reused buffers.
        let (earlier, scores) = (&mut visited.fresh, &mut visited.scores);
        earlier.clear();
        earlier.extend(batch_start..node);
        space.score_many(&query, earlier, scores);
        for (&earlier, &score) in earlier.iter().zip(scores.iter()) {
            let shared = level.min(self.level(earlier));
            let scored = Scored {
                score,
                node: earlier,
            };
            for layer_candidates in &mut candidates[..=shared] {
                layer_candidates.push(scored);
            }
        }
        candidates
            .iter_mut()
            .enumerate()
            .map(|(layer, list)| {
                sort_best_first(list);
                list.truncate(ef_construction.max(self.max_links(layer)));
                Graph::select_neighbours(space, list, self.max_links(layer))
            })
            .collect()
    }

    /// Adds each new link's reverse direction; a list that overflows is re-selected with the
    /// heuristic among its old links and the new ones. Targets are independent, so they are
    /// computed in parallel, then written.
    fn add_reverse_links(&mut self, space: &Space<'_>, batch: &[Node], plans: &[Vec<Vec<Node>>]) {
        let mut reverse: Vec<(Node, usize, Node)> = Vec::new();
        for (&node, plan) in batch.iter().zip(plans) {
            for (layer, links) in plan.iter().enumerate() {
                reverse.extend(links.iter().map(|&target| (target, layer, node)));
            }
        }
        // Stable: sources stay in insertion order within each (target, layer).
        reverse.sort_by_key(|&(target, layer, _)| (target, layer));
        let groups: Vec<&[(Node, usize, Node)]> =
            reverse.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).collect();
        let updated: Vec<(Node, usize, Vec<Node>)> = groups
            .par_iter()
            .map(|group| {
                let (target, layer, _) = group[0];
                let mut links = self.links(target, layer).to_vec();
                for &(_, _, source) in group.iter() {
                    if !links.contains(&source) {
                        links.push(source);
                    }
                }
                let max = self.max_links(layer);
                if links.len() > max {
                    let mut scores = Vec::new();
                    space.score_many(&space.node_query(target), &links, &mut scores);
                    let mut scored: Vec<Scored> = links
                        .iter()
                        .zip(&scores)
                        .map(|(&node, &score)| Scored { score, node })
                        .collect();
                    sort_best_first(&mut scored);
                    links = Graph::select_neighbours(space, &scored, max);
                }
                (target, layer, links)
            })
            .collect();
        for (target, layer, links) in updated {
            self.set_links(target, layer, &links);
        }
    }
}
