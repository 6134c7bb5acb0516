//! Verlet neighbour lists from kd-tree (kiddo) radius searches.
//!
//! A list built at reference positions with radius `cutoff + skin` holds
//! every pair closer than `cutoff` for as long as no particle has moved more
//! than skin/2 from its reference position (two particles then close by at
//! most `skin`). Within a JKO step the optimizer's iterates move particles by
//! a fraction of the kernel radius, so one kd-tree search serves many energy
//! evaluations; the O(N) displacement check decides when to rebuild.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

use crate::parallel::CHUNK;

/// Neighbours of every particle of one cloud, in compressed-row form.
#[derive(Debug, Clone)]
pub struct NeighbourList<const D: usize> {
    cutoff: f64,
    skin: f64,
    reference: Vec<[f64; D]>,
    offsets: Vec<usize>,
    indices: Vec<u32>,
    builds: usize,
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
            offsets: vec![0],
            indices: Vec::new(),
            builds: 0,
        }
    }

    /// Make the list valid for positions `x`; returns whether it was rebuilt.
    pub fn update(&mut self, x: &[[f64; D]]) -> bool {
        if self.is_valid_for(x) {
            return false;
        }
        self.rebuild(x);
        true
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

    fn rebuild(&mut self, x: &[[f64; D]]) {
        self.reference.clear();
        self.reference.extend_from_slice(x);
        self.builds += 1;
        let n = x.len();
        assert!(n < u32::MAX as usize, "neighbour indices are u32");
        let tree: ImmutableKdTree<f64, D> =
            ImmutableKdTree::new_from_slice(x).expect("finite positions");
        let r = self.cutoff + self.skin;
        let r2 = r * r;
        // Each chunk collects its rows; chunks are stitched in order, so the
        // list (and every sum over it) is the same whatever the thread count.
        let rows: Vec<(Vec<usize>, Vec<u32>)> = x
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut counts = Vec::with_capacity(chunk.len());
                let mut idx = Vec::with_capacity(chunk.len() * 32);
                for p in chunk {
                    let before = idx.len();
                    tree.query(p)
                        .within::<SquaredEuclidean<f64>>(r2)
                        .unsorted()
                        .visit(|nb| idx.push(nb.item));
                    // Ascending order: deterministic and friendlier to the cache.
                    idx[before..].sort_unstable();
                    counts.push(idx.len() - before);
                }
                (counts, idx)
            })
            .collect();
        self.offsets.clear();
        self.offsets.reserve(n + 1);
        self.offsets.push(0);
        self.indices.clear();
        for (counts, idx) in rows {
            for c in counts {
                let last = *self.offsets.last().unwrap();
                self.offsets.push(last + c);
            }
            self.indices.extend_from_slice(&idx);
        }
    }

    /// Candidate neighbours of particle `i` (itself included): a superset of
    /// those closer than `cutoff`.
    #[inline]
    pub fn of(&self, i: usize) -> &[u32] {
        &self.indices[self.offsets[i]..self.offsets[i + 1]]
    }

    /// How many times the kd-tree search has run.
    pub fn builds(&self) -> usize {
        self.builds
    }

    /// Mean number of candidates per particle.
    pub fn mean_candidates(&self) -> f64 {
        self.indices.len() as f64 / (self.offsets.len() - 1).max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for i in 0..n {
            for j in 0..n {
                let d2 = (x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2);
                if d2 < 0.08 * 0.08 {
                    assert!(list.of(i).contains(&(j as u32)), "pair {i},{j} missing");
                }
            }
        }
        x[3][1] += 0.05;
        assert!(list.update(&x));
        assert_eq!(list.builds(), 2);
    }
}
