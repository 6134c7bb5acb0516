//! The fast multipole engine: tree update, upward pass, traversal, downward pass,
//! near field — for any kernel with Taylor derivatives ([`FarKernel`]).
//!
//! Parallel structure (deterministic: every output value is produced by one task in a
//! fixed order, whatever the number of threads):
//!
//! 1. The tree is cut into *frontier* cells (the largest cells with at most
//!    `max(n / FRONTIER_TASKS, 4 leaf_size)` particles; the floor keeps the serial
//!    top part small at small N); each frontier subtree is one task and owns a
//!    contiguous range of cells and particles. Cells above the frontier are *top* cells.
//! 2. Upward pass: P2M/M2M inside every frontier subtree in parallel, then the top cells.
//!    M2M shifts all children of a cell at once (one child per vector lane).
//! 3. Top traversal (serial, small): pairs whose target is a top cell are processed,
//!    pairs whose target is a frontier cell are queued on that frontier cell.
//!    Top locals are completed (M2L) in pre-order and shifted (L2L, all children of a
//!    cell at once) to their children, down to the frontier cells.
//! 4. Per frontier task in parallel: finish the traversal from the queued pairs, then
//!    walk the subtree in pre-order: M2L from the list into the local inherited from
//!    the parent, then L2L to the children, or at leaves L2P into the task's own slice
//!    of the output. The subtree's locals live in a buffer of the thread for the
//!    task's run only; the engine keeps those of the top and frontier cells.
//! 5. Near field ([`near`](super::near)): each unordered pair of near leaves once, in
//!    its own fixed set of tasks (ranges of leaves of equal pair work), added to the
//!    output.
//!
//! Divided among the members of a [`Team`] (MPI ranks; [`divided`]): the
//! upward pass of step 2 by ranges of frontier subtrees of about equal
//! particle counts, each member then receiving from the others the
//! multipoles its translations read (its locally essential multipoles; the
//! top cells' are computed on every member), the tree and step 3 on every
//! member, steps 4 and 5 by ranges of frontier tasks and of near-field
//! tasks, with the single process's bits.

use super::expansions::{self, Children, M2lScratch, MixedM2l};
use super::multi_index::MultiIndex;
use super::near::NearField;
use super::octree::{Cell, Octree};
use super::taylor::FarKernel;
use super::traversal::{self, Lists, TraversalParams};
use crate::coupling::pair_kernel::{LANES, Sources, TargetBlock, V};

use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};
use crate::util::team::{self, Ownership, Team};
use rayon::prelude::*;
use std::sync::Arc;

mod divided;
mod multipoles;

use multipoles::Multipoles;

/// Target number of parallel tasks (frontier subtrees); fixed, so results do not
/// depend on the number of threads.
const FRONTIER_TASKS: usize = 256;

/// Parameters of the method.
#[derive(Clone, Copy, Debug)]
pub struct FmmParams {
    /// Total expansion degree `p`.
    pub order: usize,
    /// Opening angle of the MAC `r_t + r_s < theta * distance`.
    pub theta: f64,
    /// Maximal number of particles per leaf.
    pub leaf_size: usize,
    /// Accepted leaf pairs with `n_t * n_s <= p2p_max_pairs` are summed directly.
    pub p2p_max_pairs: u64,
    /// Sum the M2L terms of total degree above `expansions::EXACT_DEGREE` in single
    /// precision (dimension >= 2; for accuracies down to about `1e-7`).
    pub mixed_precision: bool,
    /// One near-field task per this many leaves, and at least 16 (the
    /// near field's module docs): the units a divided
    /// evaluation shares among its ranks, and the order of the near field's
    /// sums (so a result's bits depend on it, never on the thread or rank count).
    pub near_leaves_per_task: usize,
}

/// What a frontier task does in this evaluation (a divided evaluation runs
/// the far field of its own tasks and the lists of those its near field needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Traversal, M2L, L2L and L2P; its seconds recorded.
    Full,
    /// The traversal only: its interaction lists.
    Lists,
    /// The traversal of a task whose expansions follow (`Expand`), once the
    /// multipoles its lists read have come: its seconds recorded.
    FarLists,
    /// M2L, L2L and L2P from the lists of a `FarLists` run; its seconds added.
    Expand,
    /// Nothing.
    Skip,
}

impl Mode {
    /// Whether the task runs its traversal.
    fn traverses(self) -> bool {
        matches!(self, Mode::Full | Mode::Lists | Mode::FarLists)
    }

    /// Whether the task runs its expansions (M2L, L2L, L2P).
    fn expands(self) -> bool {
        matches!(self, Mode::Full | Mode::Expand)
    }
}

/// Reusable per-task buffers.
struct TaskScratch {
    pending: Vec<u32>,
    lists: Lists,
    m2l_off: Vec<u32>,
    m2l_src: Vec<u32>,
    p2p_off: Vec<u32>,
    p2p_src: Vec<u32>,
    m2l: M2lScratch,
    mono_v: Vec<V>,
    acc_v: Vec<V>,
    /// A top cell's M2M result, before it is stored at the cell's slot.
    out: Vec<f64>,
}

impl TaskScratch {
    fn new(nterms: usize) -> Self {
        Self {
            pending: Vec::new(),
            lists: Lists::default(),
            m2l_off: Vec::new(),
            m2l_src: Vec::new(),
            p2p_off: Vec::new(),
            p2p_src: Vec::new(),
            m2l: M2lScratch::new(nterms),
            mono_v: vec![V::ZERO; nterms],
            acc_v: vec![V::ZERO; nterms],
            out: Vec::new(),
        }
    }
}

/// Statistics of the last evaluation (interaction counts), for tuning and reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct FmmStats {
    /// Cells of the tree.
    pub cells: usize,
    /// Leaf cells of the tree.
    pub leaves: usize,
    /// Multipole-to-local translations.
    pub m2l: usize,
    /// Particle pairs summed directly (near field).
    pub p2p_pairs: u64,
    /// Near-field tasks of the tree.
    pub near_tasks: usize,
    /// Near-field tasks this member summed: all of them in one process, its
    /// share in a divided evaluation.
    pub near_tasks_summed: usize,
    /// Tree (re)builds since the engine was created.
    pub builds: usize,
    /// Multipoles this member received from the others in the last
    /// evaluation (its locally essential multipoles; 0 on one process).
    pub multipoles_received: usize,
    /// Multipoles this member sent to the others in the last evaluation.
    pub multipoles_sent: usize,
    /// Particles whose far-field values (phi, grad) this member received in
    /// the last evaluation for its near-field tasks (0 on one process).
    pub far_values_received: usize,
    /// Under a team, the gradients (of d numbers) this member received at
    /// gather B: its wanted particles' that others' near tasks computed,
    /// or every other member's when it wants all.
    pub gradients_received: usize,
    /// Under a team, the potentials this member received at gather B:
    /// none when it wants some particles (the energy comes from the near
    /// tasks' sums), every other member's when it wants all.
    pub potentials_received: usize,
    /// Seconds of the last evaluation in the locally essential multipoles'
    /// plan and exchange (waits for the other members included; 0 on one
    /// process).
    pub let_seconds: f64,
    /// Seconds of the last evaluation in the far field's values'
    /// redistribution to the near field's owners (likewise).
    pub redistribute_seconds: f64,
    /// Multipoles this member held in the last evaluation: every cell's on
    /// one process; a member's own range of cells, the top and those it
    /// received.
    pub multipoles_held: usize,
    /// Wall-clock seconds at the end of the phases: tree update, upward, top,
    /// frontier tasks (far field), near field, output.
    pub seconds: [f64; 6],
}

pub struct Engine<const D: usize, K: FarKernel<D>> {
    kernel: K,
    mi: MultiIndex<D>,
    params: FmmParams,
    tparams: TraversalParams,
    tree: Octree<D>,
    /// Multipoles, `nterms` per cell held (one process: every cell).
    mult: Multipoles,
    /// Local expansions of the top and frontier cells, `nterms` each, at
    /// `upper[c]`. A frontier task's other cells' locals live only while it
    /// runs, in a buffer of its thread: each is its parent's shifted (L2L)
    /// plus its own M2L, read by its children and L2P and by nothing after
    /// (one per cell would hold nterms numbers per cell, ~90 B per particle
    /// in 3D at accuracy 1e-6, on every rank).
    local: Vec<f64>,
    /// Frontier cells (pre-order) and top cells (pre-order).
    frontier: Vec<u32>,
    top: Vec<u32>,
    /// Per cell: its slot in `local` if it is a top or frontier cell (in
    /// pre-order, so a child's slot follows its parent's), else `u32::MAX`.
    upper: Vec<u32>,
    /// Per cell: index into `frontier` if it is a frontier cell, else `u32::MAX`.
    frontier_id: Vec<u32>,
    /// Per cell below the frontier: index into `frontier` of its frontier cell.
    cell_task: Vec<u32>,
    /// Value of `tree.builds` when `frontier` was computed.
    frontier_build: usize,
    tasks: Vec<TaskScratch>,
    top_lists: Lists,
    top_m2l: Vec<(u32, u32, u32)>,
    top_scratch: TaskScratch,
    near: NearField<D>,
    /// Outputs in sorted order, unscaled.
    phi_s: Vec<f64>,
    grad_s: Vec<[f64; D]>,
    /// `Some` (largest `|q|`, per-pair degree bound) when the M2L is in mixed precision.
    mixed: Option<MixedM2l>,
    /// Per frontier task: what it does now, and the seconds its last full run took.
    mode: Vec<Mode>,
    seconds: Vec<f64>,
    /// The particles whose gradient the caller reads (`None`: all).
    wanted: Option<Vec<u32>>,
    /// The members dividing the evaluation, and their frontier tasks (`divided`).
    team: Arc<dyn Team>,
    own: Ownership,
    pub stats: FmmStats,
}

impl<const D: usize, K: FarKernel<D>> Engine<D, K> {
    pub fn new(kernel: K, params: FmmParams) -> Self {
        let mi = MultiIndex::<D>::new(params.order);
        let nt = mi.len();
        Self {
            kernel,
            mi,
            params,
            tparams: TraversalParams {
                theta2: params.theta * params.theta,
                p2p_max_pairs: params.p2p_max_pairs,
            },
            tree: Octree::new(params.leaf_size),
            mult: Multipoles::default(),
            local: Vec::new(),
            frontier: Vec::new(),
            top: Vec::new(),
            upper: Vec::new(),
            frontier_id: Vec::new(),
            cell_task: Vec::new(),
            frontier_build: 0,
            tasks: Vec::new(),
            top_lists: Lists::default(),
            top_m2l: Vec::new(),
            top_scratch: TaskScratch::new(nt),
            near: NearField::new(params.near_leaves_per_task),
            phi_s: Vec::new(),
            grad_s: Vec::new(),
            mixed: None,
            mode: Vec::new(),
            seconds: Vec::new(),
            wanted: None,
            team: team::current(),
            own: Ownership::default(),
            stats: FmmStats::default(),
        }
    }

    /// Divides the evaluations among the members of `team` (the process's
    /// team, [`team::current`], by default).
    pub fn set_team(&mut self, team: Arc<dyn Team>) {
        self.team = team;
    }

    /// The members dividing the evaluations.
    pub fn team(&self) -> Arc<dyn Team> {
        self.team.clone()
    }

    /// Which particles' gradient the caller reads (`None`: all; see
    /// `TreeCoupling::want`).
    pub fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
    }

    pub fn params(&self) -> FmmParams {
        self.params
    }

    /// Overwrites `phi[i] = scale * sum_j q_j k(x_i - x_j)` and the gradient
    /// (j != i), and returns sum_i q_i phi_i, summed per near-field task in
    /// the sorted order and then over the tasks in order (the tasks are the
    /// same for any team, so are the bits). Under a team that wants some
    /// particles (`want`) only their gradients are written; `phi` holds
    /// anything.
    pub fn evaluate(
        &mut self,
        x: &[[f64; D]],
        q: &[f64],
        phi: &mut [f64],
        grad: &mut [[f64; D]],
    ) -> f64 {
        let n = x.len();
        assert!(
            q.len() == n && phi.len() == n && grad.len() == n,
            "length mismatch"
        );
        if n == 0 {
            return 0.0;
        }
        let clock = std::time::Instant::now();
        let lap = |k: usize, st: &mut FmmStats| st.seconds[k] = clock.elapsed().as_secs_f64();
        self.tree.update(x, q);
        self.mixed = self.params.mixed_precision.then(|| {
            let qmax = self
                .tree
                .q
                .par_iter()
                .map(|q| q.abs())
                .reduce(|| 0.0, f64::max);
            MixedM2l {
                charge_scale: if qmax > 0.0 && qmax.is_finite() {
                    qmax
                } else {
                    1.0
                },
                // The bound of the worst accepted pair (rho = theta) at full degree.
                log_bound: (self.params.order as f64 + 1.0) * self.params.theta.ln(),
            }
        });
        lap(0, &mut self.stats);
        if self.frontier_build != self.tree.builds {
            self.split_frontier();
        }
        let nt = self.mi.len();
        let ncells = self.tree.cells.len();
        self.local
            .resize((self.top.len() + self.frontier.len()) * nt, 0.0);
        self.phi_s.resize(n, 0.0);
        self.grad_s.resize(n, [0.0; D]);
        let charge_potential = if self.team.size() > 1 {
            self.divided(&mut |k, st| lap(k, st))
        } else {
            self.mult.whole(ncells, nt);
            self.upward_subtrees(0..self.frontier.len());
            self.upward_top();
            lap(1, &mut self.stats);
            self.top_lists();
            self.top_locals();
            lap(2, &mut self.stats);
            self.mode.clear();
            self.mode.resize(self.frontier.len(), Mode::Full);
            self.frontier_tasks();
            lap(3, &mut self.stats);
            self.near_field();
            lap(4, &mut self.stats);
            self.task_charge_potentials(0..self.near.task_count())
                .iter()
                .sum::<f64>()
        };
        let scale = self.kernel.scale();
        let (inv, phi_s, grad_s) = (&self.tree.inv, &self.phi_s, &self.grad_s);
        phi.par_iter_mut()
            .zip(grad.par_iter_mut())
            .zip(inv.par_iter())
            .for_each(|((p, g), &k)| {
                *p = scale * phi_s[k as usize];
                *g = std::array::from_fn(|d| scale * grad_s[k as usize][d]);
            });
        self.stats.cells = ncells;
        self.stats.leaves = self.tree.cells.iter().filter(|c| c.is_leaf).count();
        self.stats.builds = self.tree.builds;
        self.stats.multipoles_held = self.mult.held();
        lap(5, &mut self.stats);
        scale * charge_potential
    }

    /// Per near-field task of `tasks`: sum_k q_k phi_k (unscaled) over its
    /// particles, in the sorted order. Every particle belongs to one task's
    /// leaves, so the tasks' sums add up to the whole sum.
    fn task_charge_potentials(&self, tasks: std::ops::Range<usize>) -> Vec<f64> {
        let (q, phi) = (&self.tree.q, &self.phi_s);
        tasks
            .into_par_iter()
            .map(|t| {
                let particles = self.leaf_particles(&self.near.task_leaves(&(t..t + 1)));
                particles.map(|k| q[k] * phi[k]).sum()
            })
            .collect()
    }

    /// The particles (sorted order) of leaves `a` (indices into the near field's leaves).
    fn leaf_particles(&self, a: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        if a.is_empty() {
            return 0..0;
        }
        let (cells, leaves) = (&self.tree.cells, self.near.leaves());
        let first = &cells[leaves[a.start] as usize];
        let last = &cells[leaves[a.end - 1] as usize];
        first.start as usize..(last.start + last.count) as usize
    }

    /// Recomputes the frontier / top cells after a topology build.
    fn split_frontier(&mut self) {
        let cells = &self.tree.cells;
        let n = cells[0].count as usize;
        let max_count = n.div_ceil(FRONTIER_TASKS).max(4 * self.params.leaf_size) as u32;
        self.frontier.clear();
        self.top.clear();
        self.frontier_id.clear();
        self.frontier_id.resize(cells.len(), u32::MAX);
        self.cell_task.clear();
        self.cell_task.resize(cells.len(), u32::MAX);
        self.upper.clear();
        self.upper.resize(cells.len(), u32::MAX);
        let mut c = 0;
        while c < cells.len() {
            self.upper[c] = (self.top.len() + self.frontier.len()) as u32;
            if cells[c].is_leaf || cells[c].count <= max_count {
                self.cell_task[c..cells[c].end as usize].fill(self.frontier.len() as u32);
                self.frontier_id[c] = self.frontier.len() as u32;
                self.frontier.push(c as u32);
                c = cells[c].end as usize;
            } else {
                self.top.push(c as u32);
                c += 1;
            }
        }
        let nt = self.mi.len();
        self.tasks
            .resize_with(self.frontier.len(), || TaskScratch::new(nt));
        self.seconds.resize(self.frontier.len(), 0.0);
        self.frontier_build = self.tree.builds;
    }

    /// P2M / M2M in the frontier subtrees `tasks` (indices into `frontier`),
    /// whose cells are in the block of cells `mult` holds first.
    fn upward_subtrees(&mut self, tasks: std::ops::Range<usize>) {
        let nt = self.mi.len();
        let (tree, mi) = (&self.tree, &self.mi);
        let (own, block) = self.mult.own_block_mut();
        let pieces = split_by_frontier(
            block,
            own.start,
            &self.frontier[tasks.clone()],
            &tree.cells,
            nt,
        );
        pieces
            .into_par_iter()
            .zip(self.tasks[tasks].par_iter_mut())
            .for_each(|((f, mult), scratch)| {
                with_best_isa(UpwardTask {
                    tree,
                    mi,
                    f,
                    mult,
                    scratch,
                })
            });
    }

    /// M2M for the top cells, children first.
    fn upward_top(&mut self) {
        let nt = self.mi.len();
        let (tree, mi) = (&self.tree, &self.mi);
        let s = &mut self.top_scratch;
        s.out.resize(nt, 0.0);
        for &c in self.top.iter().rev() {
            let c = c as usize;
            let mut children = Children {
                count: 0,
                centers: [[0.0; D]; LANES],
                coeffs: [&[]; LANES],
            };
            for (l, k) in traversal::children(&tree.cells, c as u32).enumerate() {
                children.centers[l] = tree.cells[k as usize].center;
                children.coeffs[l] = self.mult.get(k as usize);
                children.count = l + 1;
            }
            with_best_isa(ShiftUpTask {
                mi,
                children,
                center: tree.cells[c].center,
                mono: &mut s.mono_v,
                acc: &mut s.acc_v,
                out: &mut s.out,
            });
            let (offset, data) = self.mult.data_mut();
            let at = offset(c as u32);
            data[at..at + nt].copy_from_slice(&s.out);
        }
    }

    /// Serial part of the traversal (top cells): the top cells' M2L lists
    /// (`top_m2l`), and the pairs queued on the frontier cells.
    fn top_lists(&mut self) {
        let cells = &self.tree.cells;
        for t in &mut self.tasks {
            t.pending.clear();
        }
        self.top_m2l.clear();
        let lists = &mut self.top_lists;
        lists.m2l.clear();
        lists.p2p.clear();
        let fid = &self.frontier_id;
        let tasks = &mut self.tasks;
        traversal::traverse(
            cells,
            &self.tparams,
            0,
            &[0],
            lists,
            |t| fid[t as usize] != u32::MAX,
            |t, s| tasks[fid[t as usize] as usize].pending.push(s),
        );
        debug_assert!(lists.p2p.is_empty());
        self.top_m2l.extend(
            lists
                .m2l
                .iter()
                .enumerate()
                .map(|(k, &(t, s))| (t, k as u32, s)),
        );
        self.top_m2l.sort_unstable();
    }

    /// The top locals (M2L from `top_lists`, then L2L), down to the frontier
    /// cells' inherited locals.
    fn top_locals(&mut self) {
        let nt = self.mi.len();
        let mut srcs = std::mem::take(&mut self.top_scratch.m2l_src);
        let mut k = 0;
        // Every other cell's local starts as its parent's, shifted (L2L) once the
        // parent's is complete. The root's slot is 0.
        self.local[..nt].fill(0.0);
        let upper = &self.upper[..];
        for ti in 0..self.top.len() {
            let c = self.top[ti] as usize;
            srcs.clear();
            while k < self.top_m2l.len() && self.top_m2l[k].0 as usize == c {
                srcs.push(self.top_m2l[k].2);
                k += 1;
            }
            let at = upper[c] as usize;
            let (head, tail) = self.local.split_at_mut((at + 1) * nt);
            let out = &mut head[at * nt..];
            with_best_isa(M2lTask {
                kernel: &self.kernel,
                mi: &self.mi,
                cells: &self.tree.cells,
                mult: &self.mult,
                mixed: self.mixed,
                target: c,
                sources: &srcs,
                scratch: &mut self.top_scratch.m2l,
                local: out,
            });
            with_best_isa(ShiftDownTask {
                mi: &self.mi,
                cells: &self.tree.cells,
                c,
                slot: |ch| upper[ch] as usize,
                parent: out,
                tail,
                mono: &mut self.top_scratch.mono_v,
            });
        }
        self.top_scratch.m2l_src = srcs;
        self.stats.m2l = self.top_m2l.len();
    }

    /// Parallel part: traversal, M2L, L2L, L2P and near field of every frontier subtree.
    fn frontier_tasks(&mut self) {
        let nt = self.mi.len();
        let tree = &self.tree;
        let cells = &tree.cells;
        let (local, upper) = (&self.local[..], &self.upper[..]);
        let mut phis = Vec::with_capacity(self.frontier.len());
        let mut grads = Vec::with_capacity(self.frontier.len());
        {
            let (mut phi_rest, mut grad_rest) = (&mut self.phi_s[..], &mut self.grad_s[..]);
            for &f in &self.frontier {
                let cnt = cells[f as usize].count as usize;
                let (a, b) = std::mem::take(&mut phi_rest).split_at_mut(cnt);
                let (c, d) = std::mem::take(&mut grad_rest).split_at_mut(cnt);
                phis.push(a);
                grads.push(c);
                phi_rest = b;
                grad_rest = d;
            }
        }
        let shared = Shared {
            kernel: &self.kernel,
            mi: &self.mi,
            tree,
            mult: &self.mult,
            mixed: self.mixed,
            tparams: &self.tparams,
        };
        (self.frontier.par_iter())
            .zip(phis.into_par_iter().zip(grads.into_par_iter()))
            .zip(self.tasks.par_iter_mut())
            .zip(self.mode.par_iter().zip(self.seconds.par_iter_mut()))
            .for_each_init(
                Vec::new,
                |buf, (((&f, (phi, grad)), scratch), (&mode, seconds))| {
                    if mode == Mode::Skip {
                        return;
                    }
                    let clock = std::time::Instant::now();
                    // The subtree's locals, the frontier cell's from the top pass
                    // (the others are written before they are read).
                    if mode.expands() {
                        buf.resize((cells[f as usize].end - f) as usize * nt, 0.0);
                        let at = upper[f as usize] as usize * nt;
                        buf[..nt].copy_from_slice(&local[at..at + nt]);
                    }
                    with_best_isa(FrontierTask {
                        s: &shared,
                        f,
                        local: buf,
                        phi,
                        grad,
                        scratch,
                        traverse: mode.traverses(),
                        expand: mode.expands(),
                    });
                    let elapsed = clock.elapsed().as_secs_f64();
                    match mode {
                        Mode::Full | Mode::FarLists => *seconds = elapsed,
                        Mode::Expand => *seconds += elapsed,
                        Mode::Lists | Mode::Skip => {}
                    }
                },
            );
        let full = || {
            self.tasks
                .iter()
                .zip(&self.mode)
                .filter(|(_, m)| m.expands())
                .map(|(t, _)| t)
        };
        self.stats.m2l += full().map(|t| t.lists.m2l.len()).sum::<usize>();
        self.stats.p2p_pairs = full()
            .flat_map(|t| t.lists.p2p.iter())
            .map(|&(t, s)| cells[t as usize].count as u64 * cells[s as usize].count as u64)
            .sum();
    }
}

impl<const D: usize, K: FarKernel<D>> Engine<D, K> {
    /// Adds the near field (from the frontier tasks' P2P lists) to the outputs.
    fn near_field(&mut self) {
        let near = near_lists(&self.tasks, &self.frontier, &self.cell_task);
        self.near.evaluate(
            &self.kernel,
            &self.tree,
            near,
            &mut self.phi_s,
            &mut self.grad_s,
        );
        self.stats.near_tasks = self.near.task_count();
        self.stats.near_tasks_summed = self.stats.near_tasks;
    }
}

/// The near leaves of leaf `c` (the P2P list its frontier task's traversal made).
fn near_lists<'a>(
    tasks: &'a [TaskScratch],
    frontier: &'a [u32],
    cell_task: &'a [u32],
) -> impl Fn(u32) -> &'a [u32] + Sync + 'a {
    move |c: u32| {
        let t = cell_task[c as usize] as usize;
        let k = (c - frontier[t]) as usize;
        let s = &tasks[t];
        &s.p2p_src[s.p2p_off[k] as usize..s.p2p_off[k + 1] as usize]
    }
}

/// Splits a per-cell array (`nt` values per cell, for the cells from
/// `first` on) into the ranges of the frontier subtrees `frontier`.
fn split_by_frontier<'a, const D: usize>(
    data: &'a mut [f64],
    first: usize,
    frontier: &[u32],
    cells: &[Cell<D>],
    nt: usize,
) -> Vec<(u32, &'a mut [f64])> {
    let mut out = Vec::with_capacity(frontier.len());
    let mut rest = data;
    let mut pos = first * nt;
    for &f in frontier {
        let (start, end) = (f as usize * nt, cells[f as usize].end as usize * nt);
        let (_, r) = std::mem::take(&mut rest).split_at_mut(start - pos);
        let (mine, r) = r.split_at_mut(end - start);
        out.push((f, mine));
        rest = r;
        pos = end;
    }
    out
}

/// Upward pass of one frontier subtree (cells `f..end`, multipoles in `mult`).
struct UpwardTask<'a, const D: usize> {
    tree: &'a Octree<D>,
    mi: &'a MultiIndex<D>,
    f: u32,
    mult: &'a mut [f64],
    scratch: &'a mut TaskScratch,
}

impl<const D: usize> IsaTask for UpwardTask<'_, D> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let nt = self.mi.len();
        let cells = &self.tree.cells;
        let src = self.tree.sources();
        let f = self.f as usize;
        let end = cells[f].end as usize;
        for c in (f..end).rev() {
            let cell = &cells[c];
            let (head, tail) = self.mult.split_at_mut((c - f + 1) * nt);
            let out = &mut head[(c - f) * nt..];
            if cell.is_leaf {
                let s = &mut *self.scratch;
                expansions::p2m::<I, D>(
                    self.mi,
                    &cell.center,
                    &src,
                    cell.range(),
                    &mut s.mono_v,
                    &mut s.acc_v,
                    out,
                );
            } else {
                let s = &mut *self.scratch;
                expansions::m2m::<I, D>(
                    self.mi,
                    &children_of(cells, c, tail, c + 1, nt),
                    &cell.center,
                    &mut s.mono_v,
                    &mut s.acc_v,
                    out,
                );
            }
        }
    }
}

/// The children of cell `c` and their coefficients, from `data` holding `nt` values
/// per cell for the cells `first..` (children come after their parent in pre-order).
fn children_of<'a, const D: usize>(
    cells: &[Cell<D>],
    c: usize,
    data: &'a [f64],
    first: usize,
    nt: usize,
) -> Children<'a, D> {
    let mut ch = Children {
        count: 0,
        centers: [[0.0; D]; LANES],
        coeffs: [&[]; LANES],
    };
    for (l, k) in traversal::children(cells, c as u32).enumerate() {
        let off = (k as usize - first) * nt;
        ch.centers[l] = cells[k as usize].center;
        ch.coeffs[l] = &data[off..off + nt];
        ch.count = l + 1;
    }
    ch
}

/// M2M of one cell from its children (for the serial top cells).
struct ShiftUpTask<'a, const D: usize> {
    mi: &'a MultiIndex<D>,
    children: Children<'a, D>,
    center: [f64; D],
    mono: &'a mut [V],
    acc: &'a mut [V],
    out: &'a mut [f64],
}

impl<const D: usize> IsaTask for ShiftUpTask<'_, D> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        expansions::m2m::<I, D>(
            self.mi,
            &self.children,
            &self.center,
            self.mono,
            self.acc,
            self.out,
        );
    }
}

/// L2L from the complete local `parent` of cell `c` to all its children, whose locals
/// (overwritten, `nt` values each) are in `tail` at their slots (`slot`), counted
/// from the slot after `c`'s.
struct ShiftDownTask<'a, const D: usize, S> {
    mi: &'a MultiIndex<D>,
    cells: &'a [Cell<D>],
    c: usize,
    /// The slot of a cell's local (`c`'s and its children's; ascending in
    /// cell order); `tail` starts at the slot after `c`'s.
    slot: S,
    parent: &'a [f64],
    tail: &'a mut [f64],
    mono: &'a mut [V],
}

impl<const D: usize, S: Fn(usize) -> usize> IsaTask for ShiftDownTask<'_, D, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let nt = self.mi.len();
        let mut centers = [[0.0; D]; LANES];
        let mut outs: [&mut [f64]; LANES] = Default::default();
        let (mut rest, mut pos, mut k) = (self.tail, (self.slot)(self.c) + 1, 0);
        for ch in traversal::children(self.cells, self.c as u32) {
            let ch = ch as usize;
            let at = (self.slot)(ch);
            let (_, r) = std::mem::take(&mut rest).split_at_mut((at - pos) * nt);
            let (mine, r) = r.split_at_mut(nt);
            centers[k] = self.cells[ch].center;
            outs[k] = mine;
            (rest, pos, k) = (r, at + 1, k + 1);
        }
        expansions::l2l::<I, D>(
            self.mi,
            self.parent,
            &self.cells[self.c].center,
            &centers,
            &mut outs[..k],
            self.mono,
        );
    }
}

/// M2L of a list of sources into one target local.
struct M2lTask<'a, const D: usize, K> {
    kernel: &'a K,
    mi: &'a MultiIndex<D>,
    cells: &'a [Cell<D>],
    mult: &'a Multipoles,
    mixed: Option<MixedM2l>,
    target: usize,
    sources: &'a [u32],
    scratch: &'a mut M2lScratch,
    local: &'a mut [f64],
}

impl<const D: usize, K: FarKernel<D>> IsaTask for M2lTask<'_, D, K> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let cells = self.cells;
        expansions::m2l::<I, D, K>(
            self.kernel,
            self.mi,
            &cells[self.target].center,
            cells[self.target].radius,
            self.sources,
            |s| cells[s].center,
            |s| cells[s].radius,
            |s| self.mult.get(s),
            self.mixed,
            self.scratch,
            self.local,
        );
    }
}

/// Read-only data shared by all frontier tasks.
struct Shared<'a, const D: usize, K> {
    kernel: &'a K,
    mi: &'a MultiIndex<D>,
    tree: &'a Octree<D>,
    mult: &'a Multipoles,
    mixed: Option<MixedM2l>,
    tparams: &'a TraversalParams,
}

/// Everything below one frontier cell `f`.
struct FrontierTask<'a, 'b, const D: usize, K> {
    s: &'b Shared<'a, D, K>,
    f: u32,
    /// Locals of cells `f..end` (a buffer of the thread; the first, `f`'s,
    /// filled from the top pass).
    local: &'b mut [f64],
    /// Outputs of the particles of `f`.
    phi: &'b mut [f64],
    grad: &'b mut [[f64; D]],
    scratch: &'b mut TaskScratch,
    /// Run the traversal (its lists, into `scratch`).
    traverse: bool,
    /// Run M2L, L2L and L2P from the lists in `scratch`.
    expand: bool,
}

impl<const D: usize, K: FarKernel<D>> IsaTask for FrontierTask<'_, '_, D, K> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let Shared {
            kernel,
            mi,
            tree,
            mult,
            mixed,
            tparams,
        } = *self.s;
        let cells = &tree.cells[..];
        let nt = mi.len();
        let f = self.f as usize;
        let end = cells[f].end as usize;
        let sc = self.scratch;
        if self.traverse {
            sc.lists.m2l.clear();
            sc.lists.p2p.clear();
            traversal::traverse(
                cells,
                tparams,
                self.f,
                &sc.pending,
                &mut sc.lists,
                |_| false,
                |_, _| {},
            );
            traversal::bucket(
                &sc.lists.m2l,
                self.f,
                end - f,
                &mut sc.m2l_off,
                &mut sc.m2l_src,
            );
            traversal::bucket(
                &sc.lists.p2p,
                self.f,
                end - f,
                &mut sc.p2p_off,
                &mut sc.p2p_src,
            );
        }
        if !self.expand {
            return;
        }
        let src = tree.sources();
        let first_particle = cells[f].start as usize;
        for c in f..end {
            let k = c - f;
            let cell = &cells[c];
            // The local of `c` holds its parent's shifted local already (see top_locals).
            let (head, tail) = self.local.split_at_mut((k + 1) * nt);
            let local = &mut head[k * nt..];
            let m2l_src = &sc.m2l_src[sc.m2l_off[k] as usize..sc.m2l_off[k + 1] as usize];
            expansions::m2l::<I, D, K>(
                kernel,
                mi,
                &cell.center,
                cell.radius,
                m2l_src,
                |s| cells[s].center,
                |s| cells[s].radius,
                |s| mult.get(s),
                mixed,
                &mut sc.m2l,
                local,
            );
            if cell.is_leaf {
                let out = cell.start as usize - first_particle;
                leaf_targets::<D>(
                    mi,
                    cells,
                    &src,
                    c,
                    local,
                    &mut sc.mono_v,
                    &mut self.phi[out..out + cell.count as usize],
                    &mut self.grad[out..out + cell.count as usize],
                );
            } else {
                ShiftDownTask {
                    mi,
                    cells,
                    c,
                    slot: |ch| ch - f,
                    parent: local,
                    tail: &mut tail[..],
                    mono: &mut sc.mono_v,
                }
                .run::<I>();
            }
        }
    }
}

/// Far field (L2P) for the particles of leaf `c`; overwrites the unscaled results
/// (the near field is added later, [`NearField`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn leaf_targets<const D: usize>(
    mi: &MultiIndex<D>,
    cells: &[Cell<D>],
    src: &Sources<'_, D>,
    c: usize,
    local: &[f64],
    mono: &mut [V],
    phi: &mut [f64],
    grad: &mut [[f64; D]],
) {
    let cell = &cells[c];
    let first = cell.start as usize;
    for b in (0..cell.count as usize).step_by(LANES) {
        let n = (cell.count as usize - b).min(LANES);
        let mut t = TargetBlock::load(src, first + b, n);
        expansions::l2p(mi, local, &cell.center, &mut t, mono);
        for l in 0..n {
            phi[b + l] = t.phi.0[l];
            grad[b + l] = std::array::from_fn(|d| t.grad[d].0[l]);
        }
    }
}
