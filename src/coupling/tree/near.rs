//! Mutual near field (P2P): every unordered pair of near leaves, and every leaf with
//! itself, is summed once, each kernel evaluation serving both particles of a pair.
//!
//! Math: the kernels are even with odd gradients, `k(u) = k(-u)`,
//! `grad k(u) = -h(u) u` with `h(-u) = h(u)` ([`PairKernel::mutual_terms`]), so for a pair
//! `(i, j)` with `u = x_i - x_j`
//!
//! ```text
//! phi_i += q_j k(u),   grad_i -= q_j h(u) u,   phi_j += q_i k(u),   grad_j += q_i h(u) u:
//! ```
//!
//! one `k` and one `h` for two particles. In 3D that is 26 vector operations per
//! `2 x LANES` interactions against 40 when each leaf sums its near leaves as sources.
//! This needs the leaf-pair lists to be symmetric (`(A, B)` near iff `(B, A)` near),
//! which the traversal guarantees (`traversal::classify`).
//!
//! Layout: the particles are copied leaf by leaf into packs of `LANES` (structure of
//! arrays; every leaf starts a pack). Padding lanes have charge 0 and the position of
//! the leaf's last particle, so every kernel value stays finite and the padding adds
//! exact zeros to real particles. A row leaf `A` takes its particles `ROWS` at a time,
//! broadcast, against the column packs of `A` itself (lanes above the row only) and
//! of every near leaf `B > A`: the row sums stay in registers for the whole sweep and
//! are reduced (lanes in order) once at its end; each column pack's sums are loaded
//! and stored once per `ROWS` rows, as in `coupling::direct`.
//!
//! Schedule (deterministic): the leaves are cut into contiguous ranges of about equal
//! pair work, [`NEAR_TASKS`] of them or one per `leaves_per_task` leaves if that is
//! more ([`task_count`]: a count fixed by the tree, not by the number of threads or
//! ranks; growing with N so that a divided evaluation has a task for each of many
//! ranks, where 16 left every rank past the 16th without near-field work). Task `k` sums
//! the pairs `(A, B)`, `A <= B`, with `A` in its range: sums for leaves of its range go
//! straight to their accumulators, those for leaves `B` beyond the range (its halo)
//! to a buffer of its own. Then each range adds the halo buffers of the tasks before
//! it in task order. Every accumulator thus receives its terms in an order fixed by
//! the tree and its lists alone, whatever the number of threads. The halo buffers
//! cost memory, not compute: written once and read once, against `~1e4`
//! interactions per particle. With more tasks the halos grow (ranges of ~1/k of
//! the leaves, whose near leaves reach about 4 leaf widths out at 1e-6), and
//! peak memory with them at no gain in time (BENCHMARKS.md, "Multipole tree
//! parameters").

use super::octree::{Cell, Octree};
use crate::coupling::pair_kernel::{LANES, PairKernel, V};
use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};
use rayon::prelude::*;

/// Fewest near-field tasks (ranges of leaves); with [`task_count`], a count
/// that depends on the tree alone, so results do not depend on the number of
/// threads or ranks.
const NEAR_TASKS: usize = 16;

/// Leaves per near-field task beyond [`NEAR_TASKS`] tasks (the default of
/// `FmmParams::near_leaves_per_task`): 16 tasks up to 32 768 leaves (at
/// accuracy 1e-6, 2D clouds have ~36 leaves per 1 000 particles, 3D ones
/// ~11), so runs up to ~9e5 particles in 2D and ~3e6 in 3D keep their
/// tasks and bits; ~540 tasks at 1e8 particles in 3D, several for each of
/// 64 ranks. More tasks cost a halo buffer each, not time (BENCHMARKS.md,
/// "Multipole tree parameters").
pub const NEAR_LEAVES_PER_TASK: usize = 2048;

/// The number of near-field tasks for `leaves` leaves: [`NEAR_TASKS`], or one
/// per `leaves_per_task` leaves if that is more, and never more than the
/// leaves.
pub fn task_count(leaves: usize, leaves_per_task: usize) -> usize {
    (leaves / leaves_per_task.max(1))
        .max(NEAR_TASKS)
        .min(leaves)
}

/// Rows (particles of the row leaf) per sweep, held in registers; divides `LANES`.
const ROWS: usize = 2;

/// `LANES` particles: positions per axis and charges.
#[derive(Clone, Copy)]
struct Pack<const D: usize> {
    x: [V; D],
    q: V,
}

/// Near-field sums of one pack: potential and gradient.
#[derive(Clone, Copy)]
struct Acc<const D: usize> {
    phi: V,
    grad: [V; D],
}

impl<const D: usize> Acc<D> {
    const ZERO: Self = Self {
        phi: V::ZERO,
        grad: [V::ZERO; D],
    };

    #[inline(always)]
    fn add(&mut self, o: &Self) {
        self.phi += o.phi;
        for d in 0..D {
            self.grad[d] += o.grad[d];
        }
    }
}

/// Leaves in pre-order and their packs (rebuilt with the tree topology).
#[derive(Default)]
struct Layout {
    /// Leaf cells in pre-order (= particle order).
    leaves: Vec<u32>,
    /// First pack of each leaf; `leaves.len() + 1` entries.
    first_pack: Vec<u32>,
    /// Per cell: index in `leaves` (leaves only).
    leaf_index: Vec<u32>,
}

impl Layout {
    fn packs(&self, a: usize) -> std::ops::Range<usize> {
        self.first_pack[a] as usize..self.first_pack[a + 1] as usize
    }
}

/// The column packs of one leaf: `len` packs from `first` (in `packs`) and where
/// their sums go, from pack `dest` of the task's halo buffer (`halo`) or of its own
/// accumulators.
#[derive(Clone, Copy)]
struct Columns {
    first: u32,
    len: u32,
    dest: u32,
    halo: bool,
}

/// Per-task buffers, reused across evaluations.
struct Scratch<const D: usize> {
    /// Halo leaves (indices into `Layout::leaves`, ascending) and their first pack in `buf`.
    halo: Vec<u32>,
    halo_slot: Vec<u32>,
    buf: Vec<Acc<D>>,
    /// The current row leaf's column leaves (itself first), their packs gathered
    /// in that order, and the packs' sums over the row leaf.
    cols: Vec<Columns>,
    gx: Vec<Pack<D>>,
    gs: Vec<Acc<D>>,
}

impl<const D: usize> Default for Scratch<D> {
    fn default() -> Self {
        Self {
            halo: Vec::new(),
            halo_slot: Vec::new(),
            buf: Vec::new(),
            cols: Vec::new(),
            gx: Vec::new(),
            gs: Vec::new(),
        }
    }
}

/// The mutual near-field evaluator (see module docs).
pub struct NearField<const D: usize> {
    /// Leaves per task beyond [`NEAR_TASKS`] tasks ([`task_count`]).
    leaves_per_task: usize,
    layout: Layout,
    /// Value of `tree.builds` the layout was made for.
    build: usize,
    /// The packs of the leaves the summed tasks touch (their row leaves and
    /// those rows' near leaves), in leaf order: every leaf for a single
    /// process, a member's share of them in a divided evaluation.
    packs: Vec<Pack<D>>,
    /// Per leaf: its first pack in `packs` (`u32::MAX`: not packed).
    slot: Vec<u32>,
    /// Per task boundary: the first pack in `packs` of the leaves from it on.
    slot_bounds: Vec<u32>,
    /// The tasks last packed (then summed and finished).
    summed: std::ops::Range<usize>,
    /// The sums of the packs of the `summed` tasks' own leaves, from the
    /// first pack of the first of them.
    acc: Vec<Acc<D>>,
    /// Pair work per leaf, then task boundaries (indices into `Layout::leaves`).
    work: Vec<u64>,
    bounds: Vec<usize>,
    tasks: Vec<Scratch<D>>,
}

impl<const D: usize> Default for NearField<D> {
    fn default() -> Self {
        Self::new(NEAR_LEAVES_PER_TASK)
    }
}

impl<const D: usize> NearField<D> {
    /// An evaluator planning one task per `leaves_per_task` leaves, and at
    /// least [`NEAR_TASKS`] ([`task_count`]).
    pub fn new(leaves_per_task: usize) -> Self {
        Self {
            leaves_per_task,
            layout: Layout::default(),
            build: 0,
            packs: Vec::new(),
            slot: Vec::new(),
            slot_bounds: Vec::new(),
            summed: 0..0,
            acc: Vec::new(),
            work: Vec::new(),
            bounds: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// Adds the near field to `phi`, `grad` (sorted particle order, unscaled).
    /// `near(c)` lists the leaves near leaf `c` (cell indices, `c` itself included);
    /// the lists must be symmetric.
    pub fn evaluate<'n, K: PairKernel<D>>(
        &mut self,
        kernel: &K,
        tree: &Octree<D>,
        near: impl Fn(u32) -> &'n [u32] + Sync,
        phi: &mut [f64],
        grad: &mut [[f64; D]],
    ) {
        let nl = self.prepare(tree);
        let mut work = std::mem::take(&mut self.work);
        work.resize(nl, 0);
        self.leaf_work(tree, &near, 0..nl, &mut work);
        self.plan(work);
        let tasks = 0..self.tasks.len();
        self.pack(tree, &near, tasks.clone());
        self.sum(kernel, tree, &near, tasks.clone());
        self.finish(tree, tasks, phi, grad);
    }

    /// Lays out the leaves of `tree` (after a topology change); returns the
    /// number of leaves. The leaves in pre-order are the particles' order.
    pub fn prepare(&mut self, tree: &Octree<D>) -> usize {
        let cells = &tree.cells[..];
        if self.build != tree.builds || self.layout.leaf_index.len() != cells.len() {
            self.relayout(cells);
            self.build = tree.builds;
        }
        self.layout.leaves.len()
    }

    /// The leaf cells in pre-order (after [`prepare`](Self::prepare)).
    pub fn leaves(&self) -> &[u32] {
        &self.layout.leaves
    }

    /// Pair work of the row leaves `leaves` (indices into [`leaves`](Self::leaves)):
    /// their self pairs and their pairs with later leaves, into `out`.
    pub fn leaf_work<'n>(
        &self,
        tree: &Octree<D>,
        near: &(impl Fn(u32) -> &'n [u32] + Sync),
        leaves: std::ops::Range<usize>,
        out: &mut [u64],
    ) {
        let (cells, lay) = (&tree.cells[..], &self.layout);
        out[..leaves.len()]
            .par_iter_mut()
            .zip(leaves)
            .for_each(|(w, a)| {
                let c = lay.leaves[a];
                let n = cells[c as usize].count as u64;
                let later: u64 = near(c)
                    .iter()
                    .filter(|&&s| s > c)
                    .map(|&s| cells[s as usize].count as u64)
                    .sum();
                *w = n * (n + 1) / 2 + n * later;
            });
    }

    /// Cuts the leaves into the tasks (ranges of about equal pair work)
    /// from the work of every leaf.
    pub fn plan(&mut self, work: Vec<u64>) {
        self.work = work;
        let nl = self.work.len();
        let total: u64 = self.work.iter().sum();
        let ntasks = task_count(nl, self.leaves_per_task);
        self.bounds.clear();
        self.bounds.push(0);
        let mut sum = 0u64;
        for (a, &w) in self.work.iter().enumerate() {
            // Leaf `a` starts task `k` when the work before it reaches k / ntasks.
            while self.bounds.len() < ntasks
                && sum * ntasks as u64 >= total * self.bounds.len() as u64
            {
                self.bounds.push(a);
            }
            sum += w;
        }
        while self.bounds.len() <= ntasks {
            self.bounds.push(nl);
        }
        self.tasks.resize_with(ntasks, Scratch::default);
    }

    /// The leaves (indices into [`leaves`](Self::leaves)) of tasks `tasks`.
    pub fn task_leaves(&self, tasks: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        self.bounds[tasks.start]..self.bounds[tasks.end]
    }

    /// The pair work of every leaf of the current plan.
    pub fn work(&self) -> &[u64] {
        &self.work
    }

    /// The number of tasks of the current plan.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Packs the particles of the leaves that tasks `tasks` touch: their row
    /// leaves and the near leaves of those (every leaf when `tasks` are all
    /// tasks), range by range; `near` must list the near leaves of their
    /// leaves. The next [`sum`](Self::sum) and [`finish`](Self::finish) are
    /// for the same tasks.
    pub fn pack<'n>(
        &mut self,
        tree: &Octree<D>,
        near: &(impl Fn(u32) -> &'n [u32] + Sync),
        tasks: std::ops::Range<usize>,
    ) {
        let (cells, lay, bounds) = (&tree.cells[..], &self.layout, &self.bounds);
        let nl = lay.leaves.len();
        // Which leaves are needed: all of them for all tasks (every leaf is a
        // row leaf), else the rows of `tasks` and their later near leaves.
        const NEEDED: u32 = 0;
        self.slot.clear();
        if tasks == (0..self.tasks.len()) {
            self.slot.resize(nl, NEEDED);
        } else {
            self.slot.resize(nl, u32::MAX);
            for a in self.task_leaves(&tasks) {
                self.slot[a] = NEEDED;
                let c = lay.leaves[a];
                for &s in near(c).iter().filter(|&&s| s > c) {
                    self.slot[lay.leaf_index[s as usize] as usize] = NEEDED;
                }
            }
        }
        // Slots in leaf order, so that each task's range of leaves has a
        // contiguous range of packs.
        self.slot_bounds.clear();
        let mut total = 0u32;
        let mut next_bound = bounds.iter().peekable();
        for (a, slot) in self.slot.iter_mut().enumerate() {
            while next_bound.next_if(|&&b| b <= a).is_some() {
                self.slot_bounds.push(total);
            }
            if *slot == NEEDED {
                *slot = total;
                total += lay.first_pack[a + 1] - lay.first_pack[a];
            }
        }
        self.slot_bounds.extend(next_bound.map(|_| total));
        resize_to_fit(
            &mut self.packs,
            total as usize,
            Pack {
                x: [V::ZERO; D],
                q: V::ZERO,
            },
        );
        self.summed = tasks;
        let (slot, slot_bounds) = (&self.slot, &self.slot_bounds);
        let src = tree.sources();
        split_at_bounds(&mut self.packs, slot_bounds)
            .into_par_iter()
            .enumerate()
            .for_each(|(k, packs)| {
                let p0 = slot_bounds[k] as usize;
                for a in (bounds[k]..bounds[k + 1]).filter(|&a| slot[a] != u32::MAX) {
                    let cell = &cells[lay.leaves[a] as usize];
                    let (start, n) = (cell.start as usize, cell.count as usize);
                    let first = slot[a] as usize - p0;
                    for (b, p) in packs[first..first + lay.packs(a).len()]
                        .iter_mut()
                        .enumerate()
                    {
                        let i = |l: usize| start + (b * LANES + l).min(n - 1);
                        let real = |l: usize| b * LANES + l < n;
                        *p = Pack {
                            x: std::array::from_fn(|d| V::from_fn(|l| src.pos[d][i(l)])),
                            q: V::from_fn(|l| if real(l) { src.q[i(l)] } else { 0.0 }),
                        };
                    }
                }
            });
    }

    /// The pair sums of tasks `tasks` (into their accumulators and halo
    /// buffers); `near` must list the near leaves of their leaves.
    pub fn sum<'n, K: PairKernel<D>>(
        &mut self,
        kernel: &K,
        tree: &Octree<D>,
        near: &(impl Fn(u32) -> &'n [u32] + Sync),
        tasks: std::ops::Range<usize>,
    ) {
        assert_eq!(tasks, self.summed, "sum: the tasks packed last");
        let (cells, lay, bounds) = (&tree.cells[..], &self.layout, &self.bounds);
        let (packs, slot) = (&self.packs[..], &self.slot[..]);
        let len = lay.first_pack[bounds[tasks.end]] - lay.first_pack[bounds[tasks.start]];
        resize_to_fit(&mut self.acc, len as usize, Acc::ZERO);
        split_ranges(&mut self.acc, &bounds[tasks.start..=tasks.end], lay)
            .into_par_iter()
            .zip(self.tasks[tasks.clone()].par_iter_mut())
            .enumerate()
            .for_each(|(i, (acc, scratch))| {
                let k = tasks.start + i;
                with_best_isa(RangeTask {
                    kernel,
                    cells,
                    lay,
                    near,
                    packs,
                    slot,
                    range: bounds[k]..bounds[k + 1],
                    acc,
                    scratch,
                    _n: std::marker::PhantomData,
                })
            });
    }

    /// The halo sums of tasks `tasks` (summed here) for the leaves `leaves`,
    /// as numbers: per task, its index, the number h of its halo leaves in
    /// `leaves`, those leaves, then their packs' sums (phi, then the
    /// gradient per axis, `LANES` values each).
    pub fn halo_message(
        &self,
        tasks: std::ops::Range<usize>,
        leaves: std::ops::Range<usize>,
    ) -> Vec<f64> {
        let mut out = Vec::new();
        for j in tasks {
            let t = &self.tasks[j];
            let from = t.halo.partition_point(|&a| (a as usize) < leaves.start);
            let to = t.halo.partition_point(|&a| (a as usize) < leaves.end);
            out.push(j as f64);
            out.push((to - from) as f64);
            out.extend(t.halo[from..to].iter().map(|&a| a as f64));
            for h in from..to {
                let np = self.layout.packs(t.halo[h] as usize).len();
                let slot = t.halo_slot[h] as usize;
                for b in &t.buf[slot..slot + np] {
                    out.extend_from_slice(&b.phi.0);
                    for g in &b.grad {
                        out.extend_from_slice(&g.0);
                    }
                }
            }
        }
        out
    }

    /// Takes the halo sums of tasks summed elsewhere ([`halo_message`](Self::halo_message)).
    pub fn receive_halo(&mut self, msg: &[f64]) {
        let lay = &self.layout;
        let mut it = msg.iter().copied().peekable();
        while it.peek().is_some() {
            let mut next = || it.next().expect("a halo message cut short");
            let j = next() as usize;
            let h = next() as usize;
            let t = &mut self.tasks[j];
            t.halo.clear();
            t.halo_slot.clear();
            t.buf.clear();
            for _ in 0..h {
                t.halo.push(next() as u32);
            }
            for k in 0..h {
                t.halo_slot.push(t.buf.len() as u32);
                for _ in lay.packs(t.halo[k] as usize) {
                    let mut b = Acc::ZERO;
                    for v in b.phi.0.iter_mut() {
                        *v = next();
                    }
                    for g in b.grad.iter_mut() {
                        for v in g.0.iter_mut() {
                            *v = next();
                        }
                    }
                    t.buf.push(b);
                }
            }
        }
    }

    /// Adds the halo buffers of the tasks before each task of `tasks` (in
    /// task order) to its accumulators and adds them to the outputs of its
    /// particles (`phi`, `grad`: all particles, sorted order, holding the far
    /// field).
    pub fn finish(
        &mut self,
        tree: &Octree<D>,
        tasks: std::ops::Range<usize>,
        phi: &mut [f64],
        grad: &mut [[f64; D]],
    ) {
        assert_eq!(tasks, self.summed, "finish: the tasks summed last");
        let (cells, lay, bounds) = (&tree.cells[..], &self.layout, &self.bounds);
        let all = &self.tasks;
        let outs = split_particles(phi, grad, bounds, lay, cells);
        split_ranges(&mut self.acc, &bounds[tasks.start..=tasks.end], lay)
            .into_par_iter()
            .zip(outs.into_par_iter().skip(tasks.start))
            .enumerate()
            .for_each(|(i, (acc, (phi, grad)))| {
                let j = tasks.start + i;
                let (lo, hi) = (bounds[j], bounds[j + 1]);
                // A task may own no leaf (fewer leaves than tasks): nothing
                // to write, and `leaves[lo]` would be past the end.
                if lo == hi {
                    return;
                }
                let p0 = lay.first_pack[lo] as usize;
                for t in &all[..j] {
                    let from = t.halo.partition_point(|&a| (a as usize) < lo);
                    let to = t.halo.partition_point(|&a| (a as usize) < hi);
                    for h in from..to {
                        let r = lay.packs(t.halo[h] as usize);
                        let slot = t.halo_slot[h] as usize;
                        for (o, b) in acc[r.start - p0..r.end - p0].iter_mut().zip(&t.buf[slot..]) {
                            o.add(b);
                        }
                    }
                }
                let first = cells[lay.leaves[lo] as usize].start as usize;
                for a in lo..hi {
                    let cell = &cells[lay.leaves[a] as usize];
                    let packs = &acc[lay.packs(a).start - p0..];
                    for m in 0..cell.count as usize {
                        let (p, l) = (&packs[m / LANES], m % LANES);
                        let i = cell.start as usize + m - first;
                        phi[i] += p.phi.0[l];
                        for (g, pg) in grad[i].iter_mut().zip(&p.grad) {
                            *g += pg.0[l];
                        }
                    }
                }
            });
    }

    fn relayout(&mut self, cells: &[Cell<D>]) {
        let lay = &mut self.layout;
        lay.leaves.clear();
        lay.first_pack.clear();
        lay.leaf_index.clear();
        lay.leaf_index.resize(cells.len(), u32::MAX);
        let mut p = 0u32;
        for (c, cell) in cells.iter().enumerate() {
            if cell.is_leaf {
                lay.leaf_index[c] = lay.leaves.len() as u32;
                lay.leaves.push(c as u32);
                lay.first_pack.push(p);
                p += (cell.count as usize).div_ceil(LANES) as u32;
            }
        }
        lay.first_pack.push(p);
    }
}

/// Resizes `v` to `len`, giving memory back when it holds much more: a
/// member's share of the packs changes with the ownership of the tasks.
fn resize_to_fit<T: Clone>(v: &mut Vec<T>, len: usize, fill: T) {
    v.resize(len, fill);
    if v.capacity() > len + len / 4 {
        v.shrink_to(len);
    }
}

/// Splits `data` into consecutive pieces of the lengths `lens`.
fn split_lengths<T>(data: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut rest = data;
    lens.map(|len| {
        let (mine, r) = std::mem::take(&mut rest).split_at_mut(len);
        rest = r;
        mine
    })
    .collect()
}

/// Splits `data` at the offsets `bounds` (ascending, the first at 0).
fn split_at_bounds<'a, T>(data: &'a mut [T], bounds: &[u32]) -> Vec<&'a mut [T]> {
    split_lengths(data, bounds.windows(2).map(|w| (w[1] - w[0]) as usize))
}

/// Splits a per-pack array into the packs of the task ranges.
fn split_ranges<'a, T>(data: &'a mut [T], bounds: &[usize], lay: &Layout) -> Vec<&'a mut [T]> {
    let len = |w: &[usize]| (lay.first_pack[w[1]] - lay.first_pack[w[0]]) as usize;
    split_lengths(data, bounds.windows(2).map(len))
}

/// Splits the outputs (sorted order) into the particles of the task ranges.
#[allow(clippy::type_complexity)]
fn split_particles<'a, const D: usize>(
    mut phi: &'a mut [f64],
    mut grad: &'a mut [[f64; D]],
    bounds: &[usize],
    lay: &Layout,
    cells: &[Cell<D>],
) -> Vec<(&'a mut [f64], &'a mut [[f64; D]])> {
    let start = |a: usize| {
        lay.leaves.get(a).map_or(cells[0].count as usize, |&c| {
            cells[c as usize].start as usize
        })
    };
    let mut out = Vec::with_capacity(bounds.len());
    for w in bounds.windows(2) {
        let len = start(w[1]) - start(w[0]);
        let (p, pr) = std::mem::take(&mut phi).split_at_mut(len);
        let (g, gr) = std::mem::take(&mut grad).split_at_mut(len);
        out.push((p, g));
        (phi, grad) = (pr, gr);
    }
    out
}

/// The pair sums of one range of row leaves.
struct RangeTask<'a, 'n, const D: usize, K, N> {
    kernel: &'a K,
    cells: &'a [Cell<D>],
    lay: &'a Layout,
    near: &'a N,
    packs: &'a [Pack<D>],
    /// Per leaf: its first pack in `packs`.
    slot: &'a [u32],
    range: std::ops::Range<usize>,
    /// Accumulators of the range's packs.
    acc: &'a mut [Acc<D>],
    scratch: &'a mut Scratch<D>,
    _n: std::marker::PhantomData<&'n ()>,
}

impl<'n, const D: usize, K: PairKernel<D>, N: Fn(u32) -> &'n [u32] + Sync> IsaTask
    for RangeTask<'_, 'n, D, K, N>
{
    type Output = ();

    #[inline(always)]
    fn run<I: Isa>(self) {
        let RangeTask {
            kernel,
            cells,
            lay,
            near,
            packs,
            slot,
            range,
            acc,
            scratch: sc,
            ..
        } = self;
        let (lo, hi) = (range.start, range.end);
        let p0 = lay.first_pack[lo] as usize;
        // Halo: the later near leaves beyond the range, with their buffer slots.
        sc.halo.clear();
        for a in lo..hi {
            let c = lay.leaves[a];
            sc.halo.extend(
                near(c)
                    .iter()
                    .map(|&s| lay.leaf_index[s as usize])
                    .filter(|&b| b as usize >= hi),
            );
        }
        sc.halo.sort_unstable();
        sc.halo.dedup();
        sc.halo_slot.clear();
        let mut slots = 0u32;
        for &b in &sc.halo {
            sc.halo_slot.push(slots);
            slots += lay.first_pack[b as usize + 1] - lay.first_pack[b as usize];
        }
        sc.buf.clear();
        sc.buf.resize(slots as usize, Acc::ZERO);
        acc.fill(Acc::ZERO);

        for a in lo..hi {
            let c = lay.leaves[a];
            sc.cols.clear();
            let own = lay.packs(a);
            sc.cols.push(Columns {
                first: slot[a],
                len: own.len() as u32,
                dest: (own.start - p0) as u32,
                halo: false,
            });
            for &s in near(c) {
                if s <= c {
                    continue;
                }
                let b = lay.leaf_index[s as usize] as usize;
                let r = lay.packs(b);
                let (dest, halo) = if b < hi {
                    ((r.start - p0) as u32, false)
                } else {
                    let h = sc.halo.binary_search(&(b as u32)).unwrap();
                    (sc.halo_slot[h], true)
                };
                sc.cols.push(Columns {
                    first: slot[b],
                    len: r.len() as u32,
                    dest,
                    halo,
                });
            }
            // Gather the column packs, sum over the rows, add the sums to their places.
            sc.gx.clear();
            for col in &sc.cols {
                sc.gx
                    .extend_from_slice(&packs[col.first as usize..][..col.len as usize]);
            }
            sc.gs.clear();
            sc.gs.resize(sc.gx.len(), Acc::ZERO);
            let n = cells[c as usize].count as usize;
            row_leaf::<I, D, K>(kernel, n, &sc.gx, &mut sc.gs);
            let mut sums = &sc.gs[..];
            for col in &sc.cols {
                let dest = if col.halo {
                    &mut sc.buf[..]
                } else {
                    &mut acc[..]
                };
                let (mine, rest) = sums.split_at(col.len as usize);
                for (o, v) in dest[col.dest as usize..].iter_mut().zip(mine) {
                    o.add(v);
                }
                sums = rest;
            }
        }
    }
}

/// `ROWS` row particles (broadcast) and their sums over a sweep: potential and
/// *minus* the gradient (see [`step`]).
#[derive(Clone, Copy)]
struct Rows<const D: usize> {
    x: [[V; D]; ROWS],
    q: [V; ROWS],
    phi: [V; ROWS],
    ngrad: [[V; D]; ROWS],
}

/// All pairs of a row leaf (`n` particles, the first packs of `cols`) with itself and
/// with the other column packs; adds the sums of every column pack (the row leaf's
/// own sums included) to `sums`.
#[inline(always)]
fn row_leaf<I: Isa, const D: usize, K: PairKernel<D>>(
    kernel: &K,
    n: usize,
    cols: &[Pack<D>],
    sums: &mut [Acc<D>],
) {
    for g in (0..n).step_by(ROWS) {
        let (pr, l0) = (g / LANES, g % LANES);
        let row = &cols[pr];
        let mut rows = Rows {
            x: std::array::from_fn(|t| std::array::from_fn(|d| V::splat(row.x[d].0[l0 + t]))),
            q: std::array::from_fn(|t| V::splat(row.q.0[l0 + t])),
            phi: [V::ZERO; ROWS],
            ngrad: [[V::ZERO; D]; ROWS],
        };
        // The rows' own pack: only the lanes above each row.
        let above = |t: usize, v: V| V::from_fn(|l| if l > l0 + t { v.0[l] } else { 0.0 });
        let (qc, qr) = (
            std::array::from_fn(|t| above(t, row.q)),
            std::array::from_fn(|t| above(t, rows.q[t])),
        );
        let (mut phi, mut ngrad) = (rows.phi, rows.ngrad);
        step::<I, D, K>(
            kernel,
            &rows.x,
            &qc,
            &qr,
            row,
            &mut sums[pr],
            &mut phi,
            &mut ngrad,
        );
        (rows.phi, rows.ngrad) = (phi, ngrad);
        sweep::<I, D, K>(kernel, &mut rows, &cols[pr + 1..], &mut sums[pr + 1..]);
        let own = &mut sums[pr];
        for t in 0..ROWS.min(n - g) {
            own.phi.0[l0 + t] += rows.phi[t].sum();
            for d in 0..D {
                own.grad[d].0[l0 + t] -= rows.ngrad[t][d].sum();
            }
        }
    }
}

/// The rows against the column packs `cols`, whose sums are `sums[..cols.len()]`.
/// The row state passes through memory (`black_box`) at entry and exit so that LLVM
/// keeps it in registers inside the loop instead of spilling it (as in
/// `Softened::accumulate` callers, measured: the accumulators otherwise round-trip
/// the stack every pair step).
#[inline(always)]
fn sweep<I: Isa, const D: usize, K: PairKernel<D>>(
    kernel: &K,
    rows: &mut Rows<D>,
    cols: &[Pack<D>],
    sums: &mut [Acc<D>],
) {
    let r = std::hint::black_box(*rows);
    let (mut phi, mut ngrad) = (r.phi, r.ngrad);
    for (col, sums) in cols.iter().zip(sums) {
        step::<I, D, K>(
            kernel,
            &r.x,
            &[col.q; ROWS],
            &r.q,
            col,
            sums,
            &mut phi,
            &mut ngrad,
        );
    }
    *rows = std::hint::black_box(Rows { phi, ngrad, ..r });
}

/// `ROWS` row particles (`xr`, broadcast) against one column pack: `qc[t]` are the
/// column charges seen by row `t`, `qr[t]` the charge of row `t` seen by the columns
/// (both zero in masked lanes). The rows sum *minus* their gradients, the columns
/// their gradients: both are then plain multiply-adds of `h u` (module docs).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn step<I: Isa, const D: usize, K: PairKernel<D>>(
    kernel: &K,
    xr: &[[V; D]; ROWS],
    qc: &[V; ROWS],
    qr: &[V; ROWS],
    col: &Pack<D>,
    sums: &mut Acc<D>,
    phi: &mut [V; ROWS],
    ngrad: &mut [[V; D]; ROWS],
) {
    let mut s = *sums;
    for t in 0..ROWS {
        let u: [V; D] = std::array::from_fn(|d| xr[t][d] - col.x[d]);
        let [kr, kc, hr, hc] = kernel.mutual_terms::<I>(&u, qc[t], qr[t]);
        phi[t] += kr;
        s.phi += kc;
        for d in 0..D {
            ngrad[t][d] = I::mul_add(hr, u[d], ngrad[t][d]);
            s.grad[d] = I::mul_add(hc, u[d], s.grad[d]);
        }
    }
    *sums = s;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::pair_kernel::{Correction1d, Softened, TargetBlock};
    use crate::util::simd_dispatch::Portable;

    /// The near lists of the leaf pairs `(a, b)` for which `near(a, b)`
    /// (symmetric), per cell.
    fn lists_where<const D: usize>(
        tree: &Octree<D>,
        near: impl Fn(u32, u32) -> bool,
    ) -> Vec<Vec<u32>> {
        let leaves: Vec<u32> = (0..tree.cells.len() as u32)
            .filter(|&c| tree.cells[c as usize].is_leaf)
            .collect();
        let mut lists = vec![Vec::new(); tree.cells.len()];
        for &a in &leaves {
            for &b in &leaves {
                if near(a, b) {
                    lists[a as usize].push(b);
                }
            }
        }
        lists
    }

    /// A symmetric selection of leaf pairs: every leaf with itself, and about two
    /// thirds of the other pairs.
    fn near_lists<const D: usize>(tree: &Octree<D>) -> Vec<Vec<u32>> {
        lists_where(tree, |a, b| {
            let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
            a == b || (lo * 7919 + hi * 104_729) % 3 != 0
        })
    }

    /// The mutual near field against the one-sided sums of each leaf over its near
    /// leaves ([`PairKernel::accumulate_skip_self`]), on particles in tree order.
    fn check<const D: usize, K: PairKernel<D>>(kernel: K, n: usize, leaf: usize) {
        let x: Vec<[f64; D]> = (0..n)
            .map(|i| {
                std::array::from_fn(|d| ((i * (d + 3)) as f64 * 0.618_034 + 0.1 * d as f64).fract())
            })
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { -0.7 } else { 1.1 })
            .collect();
        let mut tree = Octree::<D>::new(leaf);
        tree.update(&x, &q);
        let lists = near_lists(&tree);
        let nleaves = tree.cells.iter().filter(|c| c.is_leaf).count();
        assert!(
            nleaves > 2 * NEAR_TASKS,
            "{nleaves} leaves: too few for halos"
        );
        let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0; D]; n]);
        NearField::<D>::default().evaluate(
            &kernel,
            &tree,
            |c| &lists[c as usize][..],
            &mut phi,
            &mut grad,
        );

        let src = tree.sources();
        let (mut phi1, mut grad1) = (vec![0.0; n], vec![[0.0; D]; n]);
        for (c, cell) in tree.cells.iter().enumerate().filter(|(_, c)| c.is_leaf) {
            for b in (cell.start as usize..(cell.start + cell.count) as usize).step_by(LANES) {
                let m = (cell.start + cell.count) as usize - b;
                let mut t = TargetBlock::load(&src, b, m.min(LANES));
                for &s in &lists[c] {
                    kernel.accumulate_skip_self::<Portable>(
                        &mut t,
                        &src,
                        tree.cells[s as usize].range(),
                        b,
                    );
                }
                for l in 0..m.min(LANES) {
                    phi1[b + l] = t.phi.0[l];
                    grad1[b + l] = std::array::from_fn(|d| t.grad[d].0[l]);
                }
            }
        }
        let pmax = phi1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let gmax = grad1.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for i in 0..n {
            assert!(
                (phi[i] - phi1[i]).abs() <= 1e-13 * pmax,
                "D={D} i={i}: {} vs {}",
                phi[i],
                phi1[i]
            );
            for d in 0..D {
                assert!(
                    (grad[i][d] - grad1[i][d]).abs() <= 1e-13 * gmax,
                    "D={D} i={i} d={d}"
                );
            }
        }
    }

    /// Two members, each packing and summing half of the tasks (with the
    /// halo of the first sent to the second), give the single evaluation's
    /// bits; each packs only the leaves its tasks touch, fewer than all.
    #[test]
    fn members_pack_their_leaves_only_and_give_the_same_bits() {
        const D: usize = 2;
        let n = 6000;
        let x: Vec<[f64; D]> = (0..n)
            .map(|i| std::array::from_fn(|d| ((i * (d + 3)) as f64 * 0.618_034).fract()))
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { -0.7 } else { 1.1 })
            .collect();
        let mut tree = Octree::<D>::new(20);
        tree.update(&x, &q);
        // Near leaves: centres closer than 0.1, about two leaf widths (local,
        // as the traversal's lists are, so that a member does not touch
        // every leaf).
        let lists = lists_where(&tree, |a, b| {
            let (ca, cb) = (&tree.cells[a as usize], &tree.cells[b as usize]);
            (0..D)
                .map(|d| (ca.center[d] - cb.center[d]).powi(2))
                .sum::<f64>()
                <= 0.01
        });
        let near = |c: u32| &lists[c as usize][..];
        let kernel = Softened::<D>::new(0.01);
        let (mut phi, mut grad) = (vec![0.0; n], vec![[0.0; D]; n]);
        let mut one = NearField::<D>::default();
        one.evaluate(&kernel, &tree, near, &mut phi, &mut grad);
        let all_packs = one.packs.len();

        let mut members: Vec<NearField<D>> = (0..2).map(|_| NearField::default()).collect();
        let halves = [0..NEAR_TASKS / 2, NEAR_TASKS / 2..NEAR_TASKS];
        let mut out = vec![(vec![0.0; n], vec![[0.0; D]; n]); 2];
        for (m, tasks) in members.iter_mut().zip(&halves) {
            let nl = m.prepare(&tree);
            let mut work = vec![0; nl];
            m.leaf_work(&tree, &near, 0..nl, &mut work);
            m.plan(work);
            m.pack(&tree, &near, tasks.clone());
            m.sum(&kernel, &tree, &near, tasks.clone());
        }
        let later = members[1].task_leaves(&halves[1]);
        let msg = members[0].halo_message(halves[0].clone(), later);
        members[1].receive_halo(&msg);
        for ((m, tasks), (p, g)) in members.iter_mut().zip(&halves).zip(&mut out) {
            assert!(
                m.packs.len() < all_packs,
                "a member packed {} of {all_packs} packs",
                m.packs.len()
            );
            m.finish(&tree, tasks.clone(), p, g);
        }
        let first_of_second = {
            let a = members[1].task_leaves(&halves[1]).start;
            tree.cells[members[1].leaves()[a] as usize].start as usize
        };
        for i in 0..n {
            let (p, g) = &out[usize::from(i >= first_of_second)];
            assert_eq!(p[i].to_bits(), phi[i].to_bits(), "phi of particle {i}");
            for d in 0..D {
                assert_eq!(
                    g[i][d].to_bits(),
                    grad[i][d].to_bits(),
                    "grad of particle {i}"
                );
            }
        }
    }

    /// The task count is the tree's: 16, or one per `leaves_per_task`
    /// leaves beyond, never more than the leaves; and the plan cuts that many
    /// ranges covering the leaves in order.
    #[test]
    fn tasks_grow_with_the_leaves_past_sixteen() {
        assert_eq!(task_count(5, 2048), 5);
        assert_eq!(task_count(1000, 2048), 16);
        assert_eq!(task_count(32_768, 2048), 16);
        assert_eq!(task_count(40_960, 2048), 20);
        assert_eq!(task_count(3_000_000, 2048), 1464);
        assert_eq!(task_count(100, 1), 100);
        for (nl, per) in [(40, 8), (1000, 8), (700, 2048), (3, 8)] {
            let mut m = NearField::<2>::new(per);
            m.plan((0..nl as u64).map(|a| 1 + a % 7).collect());
            let k = task_count(nl, per);
            assert_eq!(m.task_count(), k, "{nl} leaves, {per} per task");
            let cuts: Vec<_> = (0..k).map(|t| m.task_leaves(&(t..t + 1))).collect();
            assert_eq!(cuts[0].start, 0);
            assert_eq!(cuts[k - 1].end, nl);
            assert!(cuts.windows(2).all(|w| w[0].end == w[1].start));
            // Cut by work, a task can be empty when a leaf outweighs a
            // task's share; not with 8 leaves or more per task here.
            if nl >= 8 * k {
                assert!(cuts.iter().all(|c| !c.is_empty()), "{nl} leaves: {cuts:?}");
            }
        }
    }

    #[test]
    fn mutual_matches_one_sided() {
        check::<3, _>(Softened::<3>::new(0.01), 3000, 20);
        check::<2, _>(Softened::<2>::new(0.01), 3000, 20);
        check::<1, _>(Correction1d { delta2: 1e-4 }, 3000, 20);
    }
}
