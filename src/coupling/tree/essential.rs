//! Locally essential trees: what a rank owning a contiguous range of the
//! tree's sorted particles (a range of the Morton order, so a region of
//! space) must receive from the other ranks for its targets, once the
//! positions are distributed (issue 20; docs/mpi.md §3 and §5).
//!
//! The definition is the evaluation's own traversal ([`super::traversal`]):
//! from (root, root), every pair (t, s) reached whose target cell t holds
//! some of the rank's particles is one the rank must process. An accepted
//! pair (M2L) needs the multipole of s, which the rank cannot compute unless
//! every particle of s is its own; a leaf pair (P2P) needs the particles of
//! s that are not its own. The traversal's decisions depend on the two cells
//! alone, so following only targets that hold some of the rank's particles
//! reaches exactly those pairs: the rank's traversal, not the whole one.
//!
//! What this gives today is the measure of a locally essential tree (how
//! many multipoles and particles a rank would receive, `examples/let_volume`),
//! the figure the projection of docs/mpi.md §5 assumed; it is also the
//! receive side of the exchange to come.

use std::ops::Range;

use super::octree::Cell;
use super::traversal::{Action, TraversalParams, children, classify};

/// What the targets of a range of sorted particles read from outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Essential {
    /// Source cells of accepted pairs (M2L) that are not inside the range,
    /// ascending: the multipoles to receive.
    pub multipoles: Vec<u32>,
    /// Source leaves of leaf pairs (P2P) with particles outside the range,
    /// ascending.
    pub leaves: Vec<u32>,
    /// The particles of those leaves outside the range: the positions and
    /// charges to receive.
    pub particles: usize,
}

/// The locally essential tree of the particles `own` (sorted order) in the
/// tree `cells` (pre-order, root first) under the traversal `params`.
pub fn essential<const D: usize>(
    cells: &[Cell<D>],
    params: &TraversalParams,
    own: Range<usize>,
) -> Essential {
    if cells.is_empty() || own.is_empty() {
        return Essential::default();
    }
    let overlaps = |c: u32| {
        let r = cells[c as usize].range();
        r.start < own.end && own.start < r.end
    };
    let inside = |c: u32| {
        let r = cells[c as usize].range();
        own.start <= r.start && r.end <= own.end
    };
    let (mut multipole, mut leaf) = (vec![false; cells.len()], vec![false; cells.len()]);
    let mut stack = vec![(0u32, 0u32)];
    while let Some((t, s)) = stack.pop() {
        match classify(cells, t, s, params) {
            Action::M2l => multipole[s as usize] |= !inside(s),
            Action::P2p => leaf[s as usize] |= !inside(s),
            Action::SplitTarget => {
                stack.extend(children(cells, t).filter(|&c| overlaps(c)).map(|c| (c, s)))
            }
            Action::SplitSource => stack.extend(children(cells, s).map(|c| (t, c))),
        }
    }
    let marked =
        |m: &[bool]| -> Vec<u32> { (0..m.len() as u32).filter(|&c| m[c as usize]).collect() };
    let leaves = marked(&leaf);
    let particles = leaves
        .iter()
        .map(|&c| {
            let r = cells[c as usize].range();
            r.len() - (r.start.max(own.start)..r.end.min(own.end)).len()
        })
        .sum();
    Essential {
        multipoles: marked(&multipole),
        leaves,
        particles,
    }
}

#[cfg(test)]
mod tests {
    use super::super::octree::Octree;
    use super::super::traversal::{Lists, traverse};
    use super::*;
    use crate::util::team::split_even;

    fn cloud<const D: usize>(n: usize) -> Vec<[f64; D]> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..n)
            .map(|_| {
                std::array::from_fn(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Clustered: cubes of uniform numbers.
                    ((state >> 11) as f64 / (1u64 << 53) as f64).powi(3)
                })
            })
            .collect()
    }

    /// Against the whole traversal (every pair, then those whose target
    /// holds some of the range's particles): the same multipoles, leaves
    /// and particle counts, for 1-5 equal ranges and ranges cut anywhere
    /// (mid-leaf), in 2D and 3D; the whole range needs nothing, and a
    /// range that needed nothing would not test the pruning: each of 2+
    /// ranges here needs some of both.
    #[test]
    fn the_pruned_traversal_finds_what_the_whole_one_reads() {
        fn check<const D: usize>(n: usize, leaf: usize) {
            let x = cloud::<D>(n);
            let mut tree = Octree::<D>::new(leaf);
            tree.update(&x, &vec![1.0; n]);
            let cells = &tree.cells;
            let params = TraversalParams {
                theta2: 0.25,
                p2p_max_pairs: 64,
            };
            let mut lists = Lists::default();
            traverse(cells, &params, 0, &[0], &mut lists, |_| false, |_, _| {});
            let mut ranges: Vec<Range<usize>> = Vec::new();
            for parts in 1..=5 {
                ranges.extend(split_even(n, parts));
            }
            ranges.push(17..n / 3 + 5);
            for own in ranges {
                let overlaps = |c: u32| {
                    let r = cells[c as usize].range();
                    r.start < own.end && own.start < r.end
                };
                let outside = |c: u32| {
                    let r = cells[c as usize].range();
                    r.start < own.start || r.end > own.end
                };
                let wanted = |pairs: &[(u32, u32)]| -> Vec<u32> {
                    let set: std::collections::BTreeSet<u32> = pairs
                        .iter()
                        .filter(|&&(t, s)| overlaps(t) && outside(s))
                        .map(|&(_, s)| s)
                        .collect();
                    set.into_iter().collect()
                };
                let got = essential(cells, &params, own.clone());
                assert_eq!(got.multipoles, wanted(&lists.m2l), "D={D} {own:?}");
                assert_eq!(got.leaves, wanted(&lists.p2p), "D={D} {own:?}");
                let foreign: usize = got
                    .leaves
                    .iter()
                    .flat_map(|&c| cells[c as usize].range())
                    .filter(|k| !own.contains(k))
                    .count();
                assert_eq!(got.particles, foreign, "D={D} {own:?}");
                if own.len() == n {
                    assert_eq!(got, Essential::default());
                } else {
                    assert!(
                        !got.multipoles.is_empty() && got.particles > 0,
                        "D={D} {own:?}"
                    );
                }
            }
        }
        check::<2>(6000, 32);
        check::<3>(8000, 64);
    }
}
