//! Where a JKO step's optimizer keeps each coordinate: the layout of the
//! vectors Y, dJ/dY and L-BFGS's history.
//!
//! The particles (all species together, as the energy sees them) sit in
//! the Morton order of their positions X^n at the step's start
//! ([`crate::util::morton`], ties by particle index): slot j holds particle
//! `particle(j)`, coordinate a of particle i is component
//! `k = slot(i) d + a`, and its scale is s_i = sqrt(h / w_i):
//!
//!   X_i = X_i^n + s_i Y_k,   dJ/dY_k = Y_k + s_i dE/dX_{i,a}.
//!
//! Why not the particles' own order: a contiguous range of the vectors is
//! then a region of space, so the members of a team that divide the
//! vectors in ranges ([`crate::util::shard`]) each hold the coordinates of
//! the particles of one region, the particles whose energy gradient the
//! spatial division of the energy's work computes on that member. The
//! order is a function of X^n alone, computed alike on every member and
//! for any team size, so every sum over the vectors (the dot products and
//! norms, the transport cost) adds the same terms in the same order
//! whatever the team: a divided step keeps the single process's bits.
//!
//! The layout lives for one step: what outlives it (the previous step's
//! displacement, the start point, the checkpoints, the output) is in the
//! particles' own order.
//!
//! **The cut** ([`Layout::cut`]). The members hold consecutive ranges of
//! whole chunks of the vectors ([`Cut`]); where the cut falls moves work,
//! never bits (every sum runs over the same chunks in the same order). A
//! member computes the energy's sums for about its own particles (the
//! neighbour lists follow the layout, [`crate::energy::FreeEnergy::frame`]),
//! so the cut weighs each chunk by the work of its particles: c_i =
//! [`PARTICLE_WORK`] + p_i, with p_i the pair evaluations the energy's
//! terms spent on particle i in the previous step
//! ([`crate::energy::FreeEnergy::costs`]), a chunk's cost the sum over its
//! components of c_i / d. The cut of the previous step is kept while the
//! most loaded member carries at most [`Ownership::THRESHOLD`] (1.10)
//! times the mean cost under this step's order, and re-split by cost when
//! it carries more ([`Ownership`]); without costs (the first step, or no
//! term reporting any) it is even by chunk count.

use std::ops::Range;

use rayon::prelude::*;

use crate::util::morton;
use crate::util::parallel::CHUNK;
use crate::util::shard::Cut;
use crate::util::team::Ownership;

/// The work a member does for each of its particles besides the pairs the
/// terms report, in pair evaluations: the optimizer's vector operations on
/// the particle's d numbers (about 50 passes an L-BFGS iteration, each a
/// few flops on memory, against a pair's ~20 flops in two passes) and the
/// meshes' and the coupling's per-particle work for the particles it
/// wants. An estimate, not a measurement per run; it only keeps a member
/// whose region has few pairs per particle from taking too many particles.
/// The lopsided benchmark (BENCHMARKS.md, "MPI: the step's vectors cut by
/// cost") took the same time, within its noise, with 0 to 512.
pub const PARTICLE_WORK: f64 = 32.0;

/// Cells along the longest side of the box, as a power of 2: 2^(32 / d),
/// enough for the order to keep neighbours in space close (2^32 cells in
/// all), few enough that the key's radix sort takes 4 passes, not 8.
const fn layout_bits(d: usize) -> u32 {
    32 / d as u32
}

/// Particles per task of the permuting passes: each reads its inputs in
/// another order (a cache miss per particle), which threads overlap.
const TASK: usize = 4096;

/// The vector layout of one JKO step (module docs).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The particle in each slot.
    particle: Vec<u32>,
    /// The slot of each particle.
    slot: Vec<u32>,
    /// s of the particle in each slot.
    scale: Vec<f64>,
    /// s of each particle (kept twice, so that neither order's pass reads
    /// the other order's array).
    particle_scale: Vec<f64>,
}

impl Layout {
    /// The layout of a step of size `h` from `x0`, with particle weights
    /// `weights`: Morton order of `x0`, s_i = sqrt(h / w_i).
    pub fn new<const D: usize>(x0: &[[f64; D]], weights: &[f64], h: f64) -> Layout {
        assert_eq!(x0.len(), weights.len());
        assert!(
            u32::try_from(x0.len()).is_ok(),
            "more particles than u32 indexes"
        );
        let mut keys = Vec::new();
        Self::frame_of(x0).sorted_keys(x0, layout_bits(D), &mut keys);
        let particle: Vec<u32> = keys.into_iter().map(|(_, i)| i).collect();
        let mut slot = vec![0u32; particle.len()];
        for (j, &i) in particle.iter().enumerate() {
            slot[i as usize] = j as u32;
        }
        let particle_scale: Vec<f64> = weights.iter().map(|w| (h / w).sqrt()).collect();
        let scale = particle
            .iter()
            .map(|&i| particle_scale[i as usize])
            .collect();
        Layout {
            particle,
            slot,
            scale,
            particle_scale,
        }
    }

    /// The frame of the Morton order of the layout of `x0`: the bounding
    /// box of X^n (which the energy's Morton orders follow during the
    /// step, [`crate::energy::FreeEnergy::frame`]).
    pub fn frame_of<const D: usize>(x0: &[[f64; D]]) -> morton::Frame<D> {
        morton::Frame::of(x0)
    }

    /// The number of particles.
    pub fn len(&self) -> usize {
        self.particle.len()
    }

    /// Whether there are no particles.
    pub fn is_empty(&self) -> bool {
        self.particle.is_empty()
    }

    /// The particle whose coordinates are components `j d .. (j + 1) d`.
    #[inline]
    pub fn particle(&self, j: usize) -> usize {
        self.particle[j] as usize
    }

    /// The slot of particle `i`: its coordinates are components
    /// `slot(i) d .. (slot(i) + 1) d`.
    #[inline]
    pub fn slot(&self, i: usize) -> usize {
        self.slot[i] as usize
    }

    /// s of the particle in slot `j`.
    #[inline]
    pub fn scale_at(&self, j: usize) -> f64 {
        self.scale[j]
    }

    /// s_i of particle `i`.
    #[inline]
    pub fn scale_of(&self, i: usize) -> f64 {
        self.particle_scale[i]
    }

    /// The positions X^n + s Y, in the particles' order, into `x`.
    pub fn positions<const D: usize>(&self, x0: &[[f64; D]], y: &[f64], x: &mut [[f64; D]]) {
        x.par_chunks_mut(TASK).enumerate().for_each(|(t, xs)| {
            for (i, xi) in (t * TASK..).zip(xs.iter_mut()) {
                let (j, s) = (self.slot(i), self.scale_of(i));
                for a in 0..D {
                    xi[a] = x0[i][a] + s * y[j * D + a];
                }
            }
        });
    }

    /// The cut of the step's vectors (`d` numbers a particle) among
    /// `members` (module docs): `balance` holds the previous step's cut in
    /// chunks, kept while balanced under `costs` (per particle, in the
    /// particles' order, the same on every member) and re-split by cost
    /// otherwise; even without costs.
    pub fn cut(
        &self,
        d: usize,
        members: usize,
        costs: Option<&[f64]>,
        balance: &mut Ownership,
    ) -> Cut {
        let len = self.len() * d;
        let chunks = len.div_ceil(CHUNK);
        if members == 1 {
            return Cut::even(len, 1);
        }
        balance.ranges(chunks, members, |_| 1.0);
        if let Some(cost) = costs.filter(|c| c.len() == self.len()) {
            let chunk_cost: Vec<f64> = (0..chunks)
                .into_par_iter()
                .map(|c| {
                    (c * CHUNK..((c + 1) * CHUNK).min(len))
                        .map(|k| (PARTICLE_WORK + cost[self.particle(k / d)]) / d as f64)
                        .sum()
                })
                .collect();
            balance.observe(&chunk_cost);
        }
        Cut::at_chunks(len, balance.ranges(chunks, members, |_| 1.0))
    }

    /// The particles with a component in `components` (a range of the
    /// vectors, of `d` components per particle), ascending: the particles
    /// whose energy gradient a member holding that range reads.
    pub fn particles_in(&self, components: Range<usize>, d: usize) -> Vec<u32> {
        if components.is_empty() {
            return Vec::new();
        }
        let slots = components.start / d..(components.end - 1) / d + 1;
        let mut particles = self.particle[slots].to_vec();
        particles.sort_unstable();
        particles
    }

    /// A per-particle quantity `v` (in the particles' order) in the
    /// layout's order, into `out` (resized): component `slot(i) d + a` is
    /// `v[i][a]`.
    pub fn arrange<const D: usize>(&self, v: &[[f64; D]], out: &mut Vec<f64>) {
        self.arrange_with(out, |i| v[i]);
    }

    /// [`arrange`](Self::arrange) of the values `f(i)`.
    pub fn arrange_with<const D: usize>(
        &self,
        out: &mut Vec<f64>,
        f: impl Fn(usize) -> [f64; D] + Sync,
    ) {
        out.resize(self.len() * D, 0.0);
        out.par_chunks_mut(TASK * D)
            .zip(self.particle.par_chunks(TASK))
            .for_each(|(o, ps)| {
                for (oj, &i) in o.chunks_exact_mut(D).zip(ps) {
                    oj.copy_from_slice(&f(i as usize));
                }
            });
    }

    /// Components `components` of [`arrange`](Self::arrange)'s vector, into
    /// `out` (resized to their count).
    pub fn arrange_part<const D: usize>(
        &self,
        v: &[[f64; D]],
        components: Range<usize>,
        out: &mut Vec<f64>,
    ) {
        out.resize(components.len(), 0.0);
        let first = components.start;
        out.par_chunks_mut(TASK * D).enumerate().for_each(|(t, o)| {
            let start = first + t * TASK * D;
            for (k, ok) in (start..).zip(o.iter_mut()) {
                *ok = v[self.particle[k / D] as usize][k % D];
            }
        });
    }

    /// The inverse of [`arrange`](Self::arrange): `v` in the layout's order
    /// as a per-particle quantity in the particles' order.
    pub fn restore<const D: usize>(&self, v: &[f64]) -> Vec<[f64; D]> {
        let mut out = vec![[0.0; D]; self.len()];
        out.par_chunks_mut(TASK).enumerate().for_each(|(t, os)| {
            for (i, o) in (t * TASK..).zip(os.iter_mut()) {
                let j = self.slot(i);
                *o = std::array::from_fn(|a| v[j * D + a]);
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slots are a permutation in Morton order, the scale follows its
    /// particle, and X^n + s Y, dJ/dY and the arranged vectors read each
    /// particle's own components.
    #[test]
    fn each_particle_reads_its_own_slot() {
        // Four corners of a square given out of Z order, and a repeated point.
        let x0 = [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]];
        let w = [1.0, 2.0, 4.0, 8.0, 16.0];
        let layout = Layout::new(&x0, &w, 0.5);
        // Z order, axis 0 most significant: (0,0) twice (ties by index),
        // (0,1), (1,0), (1,1).
        let want = [1, 4, 2, 3, 0];
        for (j, &i) in want.iter().enumerate() {
            assert_eq!(layout.particle(j), i);
            assert_eq!(layout.slot(i), j);
            assert_eq!(layout.scale_at(j), (0.5 / w[i]).sqrt());
            assert_eq!(layout.scale_of(i), (0.5 / w[i]).sqrt());
        }
        let y: Vec<f64> = (0..10).map(|k| k as f64).collect();
        let mut x = [[0.0; 2]; 5];
        layout.positions(&x0, &y, &mut x);
        let grad: Vec<[f64; 2]> = (0..5).map(|i| [i as f64, -(i as f64)]).collect();
        let mut arranged = Vec::new();
        layout.arrange(&grad, &mut arranged);
        for i in 0..5 {
            let (j, s) = (layout.slot(i), layout.scale_of(i));
            for a in 0..2 {
                assert_eq!(x[i][a], x0[i][a] + s * y[2 * j + a]);
                assert_eq!(arranged[2 * j + a], grad[i][a]);
            }
        }
        assert_eq!(layout.restore::<2>(&arranged), grad);
        let mut part = Vec::new();
        layout.arrange_part(&grad, 3..8, &mut part);
        assert_eq!(part, arranged[3..8]);
        // Components 3..8 are slots 1..=3 (slot 1 and slot 3 partly).
        assert_eq!(layout.particles_in(3..8, 2), vec![2, 3, 4]);
        assert_eq!(layout.particles_in(4..4, 2), Vec::<u32>::new());
    }

    /// The cut by cost balances what the members compute. A cloud of half
    /// uniform points and half a tight cluster near one corner, whose
    /// pairs per particle differ 46-fold (104 to 4 791): cut evenly, the member
    /// whose range holds the cluster evaluates most of the neighbour
    /// list's pairs (imbalance 1.5-2 at 2-3 members); cut by the costs
    /// the members' lists report (each member's list following the layout,
    /// as in a JKO step), every member's work, c_i summed over its
    /// particles, is within the threshold of the mean, and so are the
    /// pairs its list then evaluates, within what half a chunk of 1024
    /// slots can move (the lists round the cut to whole chunks; measured
    /// 1.06 and 1.10 against 1.89 and 1.77 cut evenly). The members all
    /// report the same costs, and a cut that is balanced is kept.
    #[test]
    fn the_cut_by_cost_balances_the_lists_pairs() {
        use crate::density::DensityEstimator;
        use crate::density::blob::BlobDensity;
        use crate::util::team::{Team, ThreadTeam};
        use std::sync::Arc;
        let n = 40_000;
        let x0: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let u: [f64; 2] =
                    std::array::from_fn(|a| ((i * (2 * a + 3)) as f64 * 0.618_034).fract());
                if i % 2 == 0 {
                    u
                } else {
                    // About a fifteenth of the square's side across.
                    u.map(|v| 0.15 + 0.07 * (v - 0.5))
                }
            })
            .collect();
        let w = vec![1.0 / n as f64; n];
        let layout = Layout::new(&x0, &w, 0.01);
        let frame = Layout::frame_of(&x0);
        let quadratic = |w: f64, r: f64| (w * r, 1.0);
        // Each member's list follows the layout and wants the member's
        // particles of `cut`: its pairs, and the costs it reports.
        let evaluate = |cut: &Cut| {
            ThreadTeam::run(cut.members(), |team: Arc<dyn Team>| {
                let mut list = BlobDensity::<2>::new(0.004).with_team(team.clone());
                list.frame(Some(&frame));
                list.want(Some(&layout.particles_in(cut.own(&*team), 2)));
                let mut grad = vec![[0.0; 2]; n];
                let e = list.local_functional(&x0, &w, &quadratic, &mut grad);
                assert!(e.is_finite());
                let mut cost = vec![0.0; n];
                list.add_costs(&mut cost);
                (list.own_pairs(), cost)
            })
        };
        let imbalance = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().fold(0.0f64, |m, &x| m.max(x)) / mean
        };
        for members in [2, 3] {
            let mut balance = Ownership::default();
            let even = layout.cut(2, members, None, &mut balance);
            let sizes: Vec<usize> = (0..members).map(|r| even.chunks(r).len()).collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
            let out = evaluate(&even);
            let cost = out[0].1.clone();
            for (rank, o) in out.iter().enumerate() {
                assert!(o.1 == cost, "member {rank} reports other costs");
            }
            let pairs: Vec<f64> = out.iter().map(|o| o.0).collect();
            let total: f64 = cost.iter().sum();
            assert_eq!(pairs.iter().sum::<f64>(), total, "the costs are the pairs");
            let before = imbalance(&pairs);
            assert!(
                before > 1.4,
                "{members} members: evenly cut, imbalance {before}"
            );
            // The per-particle pairs differ widely.
            let (lo, hi) = cost
                .iter()
                .fold((f64::MAX, 0.0f64), |(l, h), &c| (l.min(c), h.max(c)));
            assert!(hi > 8.0 * lo, "pairs per particle from {lo} to {hi}");

            let cut = layout.cut(2, members, Some(&cost), &mut balance);
            assert_eq!(balance.rebalances, 1);
            let work: Vec<f64> = (0..members)
                .map(|r| {
                    let p = layout.particles_in(cut.range(r), 2);
                    p.iter().map(|&i| PARTICLE_WORK + cost[i as usize]).sum()
                })
                .collect();
            assert!(
                imbalance(&work) <= Ownership::THRESHOLD,
                "{members} members: work {work:?}"
            );
            let pairs: Vec<f64> = evaluate(&cut).iter().map(|o| o.0).collect();
            // The lists' cut rounds to whole chunks: half a chunk of slots
            // of the dearest particles, relative to a member's mean.
            let chunk = hi * (CHUNK / 2) as f64 / pairs.iter().sum::<f64>() * members as f64;
            let after = imbalance(&pairs);
            assert!(
                after <= Ownership::THRESHOLD + chunk,
                "{members} members: cut by cost, pairs {pairs:?} ({after}, before {before})"
            );
            // Balanced under the same costs: kept.
            assert_eq!(layout.cut(2, members, Some(&cost), &mut balance), cut);
            assert_eq!(balance.rebalances, 1);
        }
    }

    /// The permuting passes run in tasks: a layout longer than one task
    /// arranges, restores and positions every particle.
    #[test]
    fn long_layouts_permute_every_particle() {
        let n = 3 * TASK + 17;
        let x0: Vec<[f64; 3]> = (0..n)
            .map(|i| std::array::from_fn(|a| ((i * (a + 2)) as f64 * 0.618_034).fract()))
            .collect();
        let w: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        let layout = Layout::new(&x0, &w, 0.1);
        let mut v = Vec::new();
        layout.arrange(&x0, &mut v);
        assert_eq!(layout.restore::<3>(&v), x0);
        // Parts cut at any component, across tasks.
        let mut part = Vec::new();
        for range in [0..3 * n, 1..3 * TASK + 2, 3 * TASK - 1..3 * n - 4] {
            layout.arrange_part(&x0, range.clone(), &mut part);
            assert_eq!(part, v[range]);
        }
        let y: Vec<f64> = (0..3 * n).map(|k| k as f64).collect();
        let mut x = vec![[0.0; 3]; n];
        layout.positions(&x0, &y, &mut x);
        for i in [0, TASK - 1, TASK, 2 * TASK + 5, n - 1] {
            let j = layout.slot(i);
            assert_eq!(layout.particle(j), i);
            for a in 0..3 {
                assert_eq!(x[i][a], x0[i][a] + layout.scale_of(i) * y[3 * j + a]);
            }
        }
    }
}
