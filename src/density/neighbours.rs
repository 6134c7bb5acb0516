//! Verlet neighbour lists from kd-tree (kiddo) radius searches.
//!
//! A list built at reference positions with radius `cutoff + skin` holds
//! every pair closer than `cutoff` for as long as no particle has moved more
//! than skin/2 from its reference position (two particles then close by at
//! most `skin`). Within a JKO step the optimizer's iterates move particles by
//! a fraction of the kernel radius, so one kd-tree search serves many energy
//! evaluations; the O(N) displacement check decides when to rebuild.
//!
//! How a build goes, and why:
//! - The particles are put in Morton (Z-curve) order of their reference
//!   positions, and the list speaks of *slots* in that order ([`order`],
//!   [`rank`] map slots to particles and back). Neighbours in space are then
//!   mostly neighbours in memory, for the tree search and even more for the
//!   sums that run over the list at every evaluation.
//! - The kd-tree is searched once per *cluster* of at most `CLUSTER`
//!   consecutive slots in one small Morton cell (`CLUSTER_CELL`), not once per
//!   particle: the ball around the cluster's box center of
//!   radius `cutoff + skin` plus the cluster's own radius holds every
//!   neighbour of each of its particles (triangle inequality).
//! - The list stores these *cluster candidates* (ascending slots) and no
//!   per-particle rows: the sums ([`crate::density`], the diffusion
//!   gradient) gather a cluster's candidates once into contiguous lanes and
//!   run every member against all of them, the kernel's compact support
//!   zeroing the pairs out of reach. That evaluates more pairs than
//!   per-particle rows but loads them contiguously instead of by an 8-lane
//!   gather per pair group, which was what the sums waited on; and a build
//!   no longer filters candidates per particle, and the list holds a
//!   candidate per cluster, not per particle (BENCHMARKS.md, "Energy
//!   terms" and "Neighbour-list clusters").
//! - Clusters are stored per fixed chunk of `CHUNK` slots (a cluster never
//!   straddles two), each chunk filled by one task into its own buffers
//!   (kept between builds): no per-particle allocation, and the list is the
//!   same whatever the thread count.
//!
//! [`order`]: NeighbourList::order
//! [`rank`]: NeighbourList::rank

use std::ops::Range;

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

use crate::density::dist2;
use crate::util::morton::Frame;
use crate::util::parallel::{CHUNK, bounding_box};

/// At most this many slots per kd-tree search. Larger clusters mean fewer
/// searches but more candidates to filter per particle.
const CLUSTER: usize = 16;

/// A cluster's slots also share one Morton cell of side at most this times
/// the search radius r (cells of a key prefix): its bounding ball then has a
/// radius below 0.5 r in 2D (0.61 r in 3D). Runs of consecutive slots alone
/// would not do: the Z curve jumps. 0.7 r gives each particle the fewest
/// candidates to filter (BENCHMARKS.md, "Neighbour-list clusters").
const CLUSTER_CELL: f64 = 0.7;

/// Points from which the kd-tree is built in parallel (kiddo's default,
/// 262 144, leaves a 1e5 build serial; BENCHMARKS.md, "Neighbour-list
/// clusters").
const PARALLEL_TREE_BUILD: usize = 16_384;

/// kiddo is asked for each search ball widened by this factor, so that its
/// pruning misses no slot of the exact ball; `reachable` marks the same
/// widened balls, so that a member's kd-tree holds every such slot.
const SEARCH_WIDENING: f64 = 1.0 + 1e-9;

/// The clusters of one chunk of slots and their candidates, in
/// compressed-row form.
#[derive(Debug, Clone, Default)]
struct ChunkClusters {
    /// First slot of each cluster, plus the end of the last.
    starts: Vec<u32>,
    /// Start of each cluster's candidates in `indices`, plus the end of the last.
    offsets: Vec<u32>,
    /// Candidate slots of each cluster, ascending.
    indices: Vec<u32>,
}

/// A cluster of consecutive slots and its candidate neighbours (module docs).
#[derive(Debug, Clone)]
pub struct Cluster<'a> {
    /// The member slots.
    pub slots: Range<usize>,
    /// Ascending slots: a superset of every slot within `cutoff` of any
    /// member while the list is valid, the members themselves included.
    pub candidates: &'a [u32],
}

/// Neighbours of every particle of one cloud, as cluster candidates over
/// Morton-ordered slots.
#[derive(Debug, Clone)]
pub struct NeighbourList<const D: usize> {
    cutoff: f64,
    skin: f64,
    reference: Vec<[f64; D]>,
    /// Particle in each slot.
    order: Vec<u32>,
    /// Slot of each particle (inverse of `order`).
    rank: Vec<u32>,
    /// Reference positions in slot order, during a build only.
    sorted: Vec<[f64; D]>,
    /// Morton key and particle of each slot, during a build only (like
    /// `sorted`: freed at its end, 32-40 B per particle that nothing else
    /// reads).
    keys: Vec<(u64, u32)>,
    chunks: Vec<ChunkClusters>,
    /// The chunks whose clusters the last build searched (all of them but
    /// in a divided evaluation, where each member searches its own).
    built: Range<usize>,
    /// The slots the last build's kd-tree held, ascending, when fewer than
    /// all ([`searched_slots`](Self::searched_slots)).
    searched: Vec<u32>,
    builds: usize,
    /// The frame of the slots' Morton keys when it holds every position
    /// ([`set_frame`](Self::set_frame)); else their bounding box's.
    frame: Option<Frame<D>>,
}

impl<const D: usize> NeighbourList<D> {
    /// A list for pairs closer than `cutoff`, rebuilt when a particle moves
    /// more than `skin / 2`.
    pub fn new(cutoff: f64, skin: f64) -> Self {
        assert!(cutoff > 0.0 && skin >= 0.0);
        NeighbourList {
            cutoff,
            skin,
            reference: Vec::new(),
            order: Vec::new(),
            rank: Vec::new(),
            sorted: Vec::new(),
            keys: Vec::new(),
            chunks: Vec::new(),
            built: 0..0,
            searched: Vec::new(),
            builds: 0,
            frame: None,
        }
    }

    /// Key the slots of the next builds in `frame` (`None`: the bounding
    /// box of the positions), when it holds every position; else in the
    /// bounding box. Lists of several species keyed in one frame, a JKO
    /// step's ([`crate::stepper::layout`]), each follow the step's Morton
    /// order restricted to their species, so that a member's range of the
    /// step's vectors is a range of each list's slots.
    pub fn set_frame(&mut self, frame: Option<Frame<D>>) {
        self.frame = frame;
    }

    /// Force a rebuild at the next [`update`](Self::update) (buffers are kept).
    /// The slot order, and so the order of every sum over the list, is that of
    /// the positions at the last build: a caller that needs results depending
    /// on the current positions alone (a resumed run) invalidates first.
    pub fn invalidate(&mut self) {
        self.reference.clear();
    }

    /// Make the list valid for positions `x`; returns whether it was rebuilt.
    pub fn update(&mut self, x: &[[f64; D]]) -> bool {
        self.update_chunks(x, |chunks| 0..chunks)
    }

    /// [`update`](Self::update) that, when it rebuilds, searches the
    /// clusters of the chunks `owned(number of chunks)` only (a member of a
    /// divided evaluation, whose sums run over its own chunks). Whether it
    /// rebuilds, and so the slot order, does not depend on `owned`.
    pub fn update_chunks(
        &mut self,
        x: &[[f64; D]],
        owned: impl FnOnce(usize) -> Range<usize>,
    ) -> bool {
        if self.is_valid_for(x) {
            return false;
        }
        self.rebuild(x, owned(x.len().div_ceil(CHUNK)));
        true
    }

    /// The chunks whose clusters the last build searched.
    pub fn built_chunks(&self) -> Range<usize> {
        self.built.clone()
    }

    fn is_valid_for(&self, x: &[[f64; D]]) -> bool {
        if self.reference.len() != x.len() || self.builds == 0 {
            return false;
        }
        let limit = 0.25 * self.skin * self.skin;
        x.par_chunks(CHUNK)
            .zip(self.reference.par_chunks(CHUNK))
            .all(|(xc, rc)| {
                xc.iter().zip(rc).all(|(p, r)| {
                    let d2: f64 = (0..D).map(|a| (p[a] - r[a]).powi(2)).sum();
                    d2 <= limit
                })
            })
    }

    fn rebuild(&mut self, x: &[[f64; D]], owned: Range<usize>) {
        let n = x.len();
        assert!(n < u32::MAX as usize, "neighbour indices are u32");
        self.reference.clear();
        self.reference.extend_from_slice(x);
        self.builds += 1;
        let cell = self.sort_slots(x);
        let r = self.cutoff + self.skin;
        // Key bits below the cluster cells: 2^level cells of the key make a
        // side of at most CLUSTER_CELL r.
        let level = if cell > 0.0 {
            ((CLUSTER_CELL * r / cell).log2().floor().max(0.0) as u32).min(64 / D as u32)
        } else {
            0
        };
        let cell_shift = D as u32 * level;
        self.chunks
            .resize_with(n.div_ceil(CHUNK), ChunkClusters::default);
        self.built = owned.clone();
        let own_slots = (owned.start * CHUNK).min(n)..(owned.end * CHUNK).min(n);
        if own_slots.is_empty() {
            // A member with no chunk of its own searches nothing.
            self.chunks
                .iter_mut()
                .for_each(|c| *c = ChunkClusters::default());
            self.searched.clear();
            (self.keys, self.sorted) = (Vec::new(), Vec::new());
            return;
        }
        // The kd-tree holds every slot, or for a member searching its own
        // chunks, the slots its searches can find: its own and its ghosts.
        self.searched = if own_slots.len() < n {
            reachable(&self.sorted, &self.keys, own_slots, cell_shift, r)
        } else {
            Vec::new()
        };
        if self.searched.len() == n {
            self.searched.clear();
        }
        let points: Vec<[f64; D]> = self
            .searched
            .iter()
            .map(|&s| self.sorted[s as usize])
            .collect();
        // kiddo builds in parallel above the threshold, the same tree as
        // its serial build (`same_list_on_one_and_two_threads`).
        let tree: ImmutableKdTree<f64, D> = ImmutableKdTree::builder()
            .with_parallel_construction_threshold(PARALLEL_TREE_BUILD)
            .build_from_slice(if self.searched.is_empty() {
                &self.sorted
            } else {
                &points
            })
            .expect("finite positions");
        let (tree, sorted, keys) = (&tree, &self.sorted[..], &self.keys[..]);
        let slot_of = &self.searched[..];
        self.chunks.par_iter_mut().enumerate().for_each(|(c, out)| {
            if !owned.contains(&c) {
                *out = ChunkClusters::default();
                return;
            }
            ChunkBuild {
                tree,
                slot_of,
                sorted,
                keys,
                cell_shift,
                slots: c * CHUNK..((c + 1) * CHUNK).min(n),
                reach: r,
                out,
            }
            .run()
        });
        (self.keys, self.sorted) = (Vec::new(), Vec::new());
    }

    /// The slots the last build's kd-tree held, ascending, when it held
    /// fewer than all (a member of a divided evaluation: its own slots and
    /// its ghosts); empty when it held every slot.
    pub fn searched_slots(&self) -> &[u32] {
        &self.searched
    }

    /// Morton order of the reference positions: the bounding box's longest
    /// side is cut into 2^32 (3D: 2^21) cells, the same cell size on every
    /// axis (so that the cells of a key prefix are squares or cubes, which
    /// the clusters rely on), and the cells' bit-interleaved coordinates
    /// sorted, ties by particle index (so the order is unique). Returns the
    /// side of one cell.
    fn sort_slots(&mut self, x: &[[f64; D]]) -> f64 {
        let n = x.len();
        let frame = (self.frame)
            .filter(|f| f.holds(x))
            .unwrap_or_else(|| Frame::of(x));
        let side = frame.sorted_keys(x, (64 / D as u32).min(32), &mut self.keys);
        self.order.clear();
        self.order.extend(self.keys.iter().map(|&(_, i)| i));
        self.rank.resize(n, 0);
        for (s, &i) in self.order.iter().enumerate() {
            self.rank[i as usize] = s as u32;
        }
        self.sorted.clear();
        self.sorted
            .extend(self.order.iter().map(|&i| x[i as usize]));
        side
    }

    /// The particle in each slot.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// The slot of each particle.
    pub fn rank(&self) -> &[u32] {
        &self.rank
    }

    /// The clusters of the slots `c * CHUNK..(c + 1) * CHUNK` (the chunks
    /// the sums run in parallel over), in slot order.
    pub fn clusters_of_chunk(&self, c: usize) -> impl Iterator<Item = Cluster<'_>> + '_ {
        let chunk = &self.chunks[c];
        (0..chunk.starts.len().saturating_sub(1)).map(move |k| Cluster {
            slots: chunk.starts[k] as usize..chunk.starts[k + 1] as usize,
            candidates: &chunk.indices[chunk.offsets[k] as usize..chunk.offsets[k + 1] as usize],
        })
    }

    /// The candidates of the cluster of slot `s` (itself included), as
    /// slots: a superset of the slots closer than `cutoff` to it.
    pub fn of(&self, s: usize) -> &[u32] {
        let chunk = &self.chunks[s / CHUNK];
        let k = chunk.starts.partition_point(|&first| first as usize <= s) - 1;
        &chunk.indices[chunk.offsets[k] as usize..chunk.offsets[k + 1] as usize]
    }

    /// The chunks of `CHUNK` slots the list is stored in.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// How many times the kd-tree search has run.
    pub fn builds(&self) -> usize {
        self.builds
    }

    /// Mean number of candidates per particle: the pairs a sum over the
    /// list evaluates, per particle.
    pub fn mean_candidates(&self) -> f64 {
        let total: usize = self
            .chunks
            .iter()
            .map(|r| {
                (0..r.starts.len().saturating_sub(1))
                    .map(|k| {
                        (r.starts[k + 1] - r.starts[k]) as usize
                            * (r.offsets[k + 1] - r.offsets[k]) as usize
                    })
                    .sum::<usize>()
            })
            .sum();
        total as f64 / self.order.len().max(1) as f64
    }
}

/// The clusters of the slots `slots` and their candidates (module docs).
struct ChunkBuild<'a, const D: usize> {
    /// The kd-tree, over all slots or over the slots `slot_of` (then its
    /// items index `slot_of`).
    tree: &'a ImmutableKdTree<f64, D>,
    slot_of: &'a [u32],
    sorted: &'a [[f64; D]],
    /// Morton keys in slot order, and the shift that leaves a cluster cell.
    keys: &'a [(u64, u32)],
    cell_shift: u32,
    slots: Range<usize>,
    reach: f64,
    out: &'a mut ChunkClusters,
}

impl<const D: usize> ChunkBuild<'_, D> {
    fn run(self) {
        let ChunkBuild {
            tree,
            slot_of,
            sorted,
            keys,
            cell_shift,
            slots,
            reach,
            out,
        } = self;
        // On the stack, zero between sorts: no allocation per chunk.
        let mut bits = [0u64; BITMAP_WORDS];
        out.starts.clear();
        out.offsets.clear();
        out.indices.clear();
        out.offsets.push(0);
        for cluster in clusters(keys, slots.clone(), cell_shift) {
            let (center, ball) = search_ball(&sorted[cluster.clone()], reach);
            out.starts.push(cluster.start as u32);
            // The candidates are the slots whose distance (as kiddo computes
            // it, point by point) is within `ball`, from a search of a
            // slightly wider ball: the search's pruning can then miss none
            // of them, so the set is a function of the positions, not of
            // the kd-tree's layout, and a member's tree over its slots and
            // ghosts finds the single process's candidates (the sums'
            // lanes, and so their bits, depend on them).
            let (ball2, wide) = (ball * ball, ball * SEARCH_WIDENING);
            let from = out.indices.len();
            tree.query(&center)
                .within::<SquaredEuclidean<f64>>(wide * wide)
                .unsorted()
                .visit(|nb| {
                    if nb.distance <= ball2 {
                        out.indices.push(match slot_of {
                            [] => nb.item,
                            _ => slot_of[nb.item as usize],
                        });
                    }
                });
            // Ascending slots: the sums' gathers then walk memory forwards,
            // and the order is kiddo's no more.
            sort_distinct(&mut out.indices[from..], &mut bits);
            out.offsets.push(out.indices.len() as u32);
        }
        out.starts.push(slots.end as u32);
    }
}

/// Words of the bitmap of [`sort_distinct`] (32 KiB: slot ranges up to
/// 262 144).
const BITMAP_WORDS: usize = 4096;

/// Sorts distinct slots ascending. A ball's slots span a short range of
/// the Morton order but for the balls across a Z-curve jump, so they are
/// set as bits of a bitmap over their range (`bits`, all zero on entry and
/// left so), read back in order: O(len + range / 64) against the
/// comparison sort's O(len log len), which was ~60% of a list build
/// (BENCHMARKS.md, "Neighbour-list clusters"). A range of more than
/// `SPARSE` words per slot, or beyond the bitmap, falls back to the
/// comparison sort.
fn sort_distinct(v: &mut [u32], bits: &mut [u64; BITMAP_WORDS]) {
    const SPARSE: usize = 4;
    let (Some(&lo), Some(&hi)) = (v.iter().min(), v.iter().max()) else {
        return;
    };
    let words = ((hi - lo) >> 6) as usize + 1;
    if v.len() < 32 || words > SPARSE * v.len() || words > BITMAP_WORDS {
        v.sort_unstable();
        return;
    }
    for &s in v.iter() {
        let k = s - lo;
        bits[(k >> 6) as usize] |= 1 << (k & 63);
    }
    let mut out = 0;
    for (w, word) in bits[..words].iter_mut().enumerate() {
        let mut b = std::mem::take(word);
        while b != 0 {
            v[out] = lo + (w as u32) * 64 + b.trailing_zeros();
            out += 1;
            b &= b - 1;
        }
    }
    debug_assert_eq!(out, v.len(), "slots must be distinct");
}

/// The clusters of the slots `slots` (module docs): runs of at most
/// `CLUSTER` consecutive slots whose keys agree above `cell_shift` bits.
fn clusters(
    keys: &[(u64, u32)],
    slots: Range<usize>,
    cell_shift: u32,
) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut first = slots.start;
    std::iter::from_fn(move || {
        if first >= slots.end {
            return None;
        }
        let cell = keys[first].0.checked_shr(cell_shift).unwrap_or(0);
        let last = (first + CLUSTER).min(slots.end);
        let end = (first + 1..last)
            .find(|&s| keys[s].0.checked_shr(cell_shift).unwrap_or(0) != cell)
            .unwrap_or(last);
        let cluster = first..end;
        first = end;
        Some(cluster)
    })
}

/// The ball a cluster's search covers: the center of its box and the
/// radius `reach` beyond its farthest member, with a relative margin for
/// the rounding of the distances (a candidate too many only adds a zero
/// term).
fn search_ball<const D: usize>(members: &[[f64; D]], reach: f64) -> ([f64; D], f64) {
    let (center, extent) = bounding_ball(members);
    (center, (reach + extent) * (1.0 + 1e-12))
}

/// The slots (ascending) within the search balls of the clusters of
/// `own`: a member's own slots and its ghosts, all that its searches can
/// find. Not the box of `own`: a Morton range's box can be the whole cloud
/// (4 of 12 chunks of a uniform square are). The balls mark the cells of
/// a grid of side `reach` they overlap (hashed: the cloud's box may hold
/// far more cells than the balls touch), and a slot is kept when its cell
/// is marked; the balls are widened by 1e-9 as the searches are.
fn reachable<const D: usize>(
    sorted: &[[f64; D]],
    keys: &[(u64, u32)],
    own: Range<usize>,
    cell_shift: u32,
    reach: f64,
) -> Vec<u32> {
    let n = sorted.len();
    let (lo, _) = bounding_box(sorted);
    let cell_of = |v: f64, a: usize| ((v - lo[a]) / reach).floor() as i64;
    let mut marked = std::collections::HashSet::new();
    for chunk in own.clone().step_by(CHUNK) {
        let slots = chunk..(chunk + CHUNK).min(own.end);
        for cluster in clusters(keys, slots, cell_shift) {
            let (center, ball) = search_ball(&sorted[cluster], reach);
            let wide = ball * SEARCH_WIDENING;
            let from: [i64; D] = std::array::from_fn(|a| cell_of(center[a] - wide, a));
            let to: [i64; D] = std::array::from_fn(|a| cell_of(center[a] + wide, a));
            let count: i64 = (0..D).map(|a| to[a] - from[a] + 1).product();
            if count > 4096 {
                // A ball of many cells (a reach comparable to the cloud's
                // size): keep every slot.
                return (0..n as u32).collect();
            }
            let mut at = from;
            loop {
                marked.insert(at);
                let Some(a) = (0..D).find(|&a| at[a] < to[a]) else {
                    break;
                };
                at[a] += 1;
                at[..a].copy_from_slice(&from[..a]);
            }
        }
    }
    (0..n as u32)
        .filter(|&s| {
            let p = &sorted[s as usize];
            own.contains(&(s as usize))
                || marked.contains(&std::array::from_fn::<i64, D, _>(|a| cell_of(p[a], a)))
        })
        .collect()
}

/// Center of the bounding box of `pts` and the largest distance from it.
fn bounding_ball<const D: usize>(pts: &[[f64; D]]) -> ([f64; D], f64) {
    let mut lo = pts[0];
    let mut hi = pts[0];
    for p in pts {
        for a in 0..D {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let center = std::array::from_fn(|a| 0.5 * (lo[a] + hi[a]));
    let extent = pts
        .iter()
        .map(|p| dist2(p, &center))
        .fold(0.0, f64::max)
        .sqrt();
    (center, extent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::morton::tests::xorshift;

    #[test]
    fn holds_every_close_pair_until_rebuilt() {
        let n = 500;
        let mut x: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let t = i as f64;
                [(t * 0.618_034).fract(), (t * 0.754_877).fract()]
            })
            .collect();
        let mut list = NeighbourList::<2>::new(0.08, 0.04);
        assert!(list.update(&x));
        // Move everyone by less than skin/2: no rebuild, and the list is still complete.
        for (i, p) in x.iter_mut().enumerate() {
            p[0] += 0.019 * ((i as f64).sin());
        }
        assert!(!list.update(&x));
        let rank = list.rank();
        for i in 0..n {
            for j in 0..n {
                let d2 = (x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2);
                if d2 < 0.08 * 0.08 {
                    assert!(
                        list.of(rank[i] as usize).contains(&rank[j]),
                        "pair {i},{j} missing"
                    );
                }
            }
        }
        x[3][1] += 0.05;
        assert!(list.update(&x));
        assert_eq!(list.builds(), 2);
    }

    /// Every pair within cutoff + skin is a candidate, and every candidate
    /// is within reach of its cluster's ball: within cutoff + skin plus the
    /// cluster's diameter, at most the diagonal CLUSTER_CELL (cutoff + skin)
    /// sqrt(d) of its Morton cell, of each member; in
    /// 1, 2 and 3 dimensions; clusters tile the slots in order.
    #[test]
    fn candidates_hold_the_pairs_within_reach() {
        fn check<const D: usize>(n: usize) {
            let x: Vec<[f64; D]> = (0..n)
                .map(|i| std::array::from_fn(|a| ((i * (2 * a + 3)) as f64 * 0.618_034).fract()))
                .collect();
            let (cutoff, skin) = (0.1, 0.03);
            let reach = cutoff + skin;
            let mut list = NeighbourList::<D>::new(cutoff, skin);
            list.update(&x);
            let (order, rank) = (list.order(), list.rank());
            let mut next = 0;
            for c in 0..n.div_ceil(CHUNK) {
                for cl in list.clusters_of_chunk(c) {
                    assert_eq!(cl.slots.start, next);
                    assert!(!cl.slots.is_empty() && cl.slots.len() <= CLUSTER);
                    next = cl.slots.end;
                    assert!(cl.candidates.is_sorted());
                }
            }
            assert_eq!(next, n);
            let bound = reach * (1.0 + CLUSTER_CELL * (D as f64).sqrt()) * (1.0 + 1e-9);
            let mut total = 0;
            for i in 0..n {
                assert_eq!(order[rank[i] as usize] as usize, i);
                let got = list.of(rank[i] as usize);
                total += got.len();
                for j in 0..n {
                    let d2 = dist2(&x[i], &x[j]);
                    if d2 <= reach * reach {
                        assert!(
                            got.binary_search(&rank[j]).is_ok(),
                            "D={D} pair {i},{j} missing"
                        );
                    }
                }
                for &t in got {
                    let j = order[t as usize] as usize;
                    assert!(
                        dist2(&x[i], &x[j]) <= bound * bound,
                        "D={D} {i},{j} too far"
                    );
                }
            }
            // The pair count a sum evaluates, as `mean_candidates` reports it.
            assert_eq!(list.mean_candidates(), total as f64 / n as f64);
        }
        check::<1>(300);
        check::<2>(2500);
        check::<3>(3000);
    }

    /// The bitmap sort against the comparison sort, on its paths: short
    /// lists, dense ranges (the bitmap, left zero for the next), sparse ones
    /// and ranges beyond the bitmap (the fallback), slots at both ends of
    /// u32, and empty.
    #[test]
    fn distinct_slots_sort_as_the_comparison_sort_does() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut bits = [0u64; BITMAP_WORDS];
        for (len, range) in [
            (0, 1),
            (1, 1),
            (31, 100),
            (32, 32),
            (500, 600),
            (1000, 50_000),
            (1000, 500_000),
            (3000, u32::MAX as u64 + 1),
            (700, 3000),
            (2500, 250_000),
            (20_000, 300_000),
        ] {
            let base = next() % (u32::MAX as u64 + 2 - range);
            let mut set = std::collections::BTreeSet::new();
            while set.len() < len {
                set.insert((base + next() % range) as u32);
            }
            let want: Vec<u32> = set.into_iter().collect();
            let mut v = want.clone();
            for k in (1..v.len()).rev() {
                v.swap(k, (next() % (k as u64 + 1)) as usize);
            }
            sort_distinct(&mut v, &mut bits);
            assert_eq!(v, want, "{len} slots in a range of {range}");
            assert!(bits.iter().all(|&w| w == 0), "the bitmap is left zero");
        }
    }

    /// A member that searches its own chunks, from a kd-tree of its slots
    /// and their ghosts only, finds every cluster's candidates exactly as
    /// the list of all chunks does (the sums' bits depend on them), and its
    /// tree holds fewer slots than all. Clustered clouds too: the Gaussian
    /// core puts many slots on the edge of the members' regions.
    #[test]
    fn a_member_finds_the_candidates_of_the_whole_list_from_its_ghosts() {
        fn check<const D: usize>(x: &[[f64; D]], cutoff: f64, parts: usize) {
            let n = x.len();
            let mut whole = NeighbourList::<D>::new(cutoff, 0.25 * cutoff);
            whole.update(x);
            assert!(whole.searched_slots().is_empty());
            let chunks = n.div_ceil(CHUNK);
            for own in crate::util::team::split_even(chunks, parts) {
                let mut member = NeighbourList::<D>::new(cutoff, 0.25 * cutoff);
                member.update_chunks(x, |_| own.clone());
                assert_eq!(member.order(), whole.order());
                let held = member.searched_slots().len();
                assert!(
                    held > 0 && held < n,
                    "D={D}: chunks {own:?} searched {held} of {n} slots"
                );
                for c in own.clone() {
                    let a: Vec<_> = member
                        .clusters_of_chunk(c)
                        .map(|k| (k.slots, k.candidates))
                        .collect();
                    let b: Vec<_> = whole
                        .clusters_of_chunk(c)
                        .map(|k| (k.slots, k.candidates))
                        .collect();
                    assert!(a == b, "D={D}: chunk {c} of {own:?} differs");
                }
            }
        }
        let spread = |i: usize, a: usize| ((i * (2 * a + 3)) as f64 * 0.618_034).fract();
        let gauss = |i: usize, a: usize| {
            // A Box-Muller pair from two quasi-random uniforms.
            let (u, v) = (spread(i, a).max(1e-12), spread(i, a + 7));
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let x2: Vec<[f64; 2]> = (0..12_000)
            .map(|i| std::array::from_fn(|a| spread(i, a)))
            .collect();
        check(&x2, 0.02, 3);
        let g2: Vec<[f64; 2]> = (0..12_000)
            .map(|i| std::array::from_fn(|a| gauss(i, a)))
            .collect();
        check(&g2, 0.05, 4);
        let x3: Vec<[f64; 3]> = (0..12_000)
            .map(|i| std::array::from_fn(|a| gauss(i, a)))
            .collect();
        check(&x3, 0.2, 2);
        let x1: Vec<[f64; 1]> = (0..5_000).map(|i| [gauss(i, 0)]).collect();
        check(&x1, 0.01, 3);
    }

    #[test]
    fn same_list_on_one_and_two_threads() {
        // Above PARALLEL_TREE_BUILD, so that kiddo's parallel build is used.
        let x: Vec<[f64; 2]> = (0..40_000)
            .map(|i| {
                let t = i as f64;
                [(t * 0.618_034).fract(), (t * 0.754_877).fract()]
            })
            .collect();
        let run = |t: usize| {
            crate::util::parallel::on_threads(t, || {
                let mut list = NeighbourList::<2>::new(0.01, 0.003);
                list.update(&x);
                let rows: Vec<Vec<u32>> = (0..x.len()).map(|s| list.of(s).to_vec()).collect();
                (list.order().to_vec(), rows)
            })
        };
        assert_eq!(run(1), run(2));
    }
}
