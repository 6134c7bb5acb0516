//! The evaluation divided among the members of a [`Team`] (MPI ranks), with
//! the single process's bits.
//!
//! Every member holds the whole state (positions, charges) and builds the
//! same tree and top locals (steps 1 and 3 of the engine). The rest is
//! divided:
//!
//! 0. **Upward pass** ([`Engine::upward_own`]): the P2M and M2M of the
//!    frontier subtrees, owned in contiguous ranges of about equal particle
//!    counts (what a subtree's upward pass costs, and a function of the tree
//!    alone: no message decides it). A subtree's multipoles do not depend on
//!    who computes them. Before session 18 every member computed every
//!    multipole: at 2e6 points in 2D that was 0.19 s of an evaluation's
//!    2.16 s (2 threads), the part of the work that did not shrink with more
//!    members.
//!
//! 1. **Lists.** Every member runs the top's traversal; the frontier tasks
//!    (subtrees in pre-order, so contiguous ranges of them are ranges of the
//!    Morton order: regions of space) are owned by the members in contiguous
//!    ranges of about equal cost ([`Ownership`]: the measured seconds of
//!    each task's last run, re-split when the most loaded member carries
//!    more than 1.10 times the mean; first split by particle counts), and
//!    each member runs the traversal of its own tasks.
//!
//! 1b. **Locally essential multipoles** (session 26, [`Ghosts`]): what
//!    this member's translations read (the sources of the top's M2L and of
//!    its tasks' lists) and the frontier cells (the top's M2M reads them),
//!    outside its range of cells and below the top, come from their owners:
//!    a request per ordered pair of members, then the multipoles, `nterms`
//!    numbers each. Planned at every evaluation: the refitted geometry moves
//!    the traversal's decisions. Then every member computes the top cells'
//!    multipoles (few) and the top locals. Until session 25 an `all_gather`
//!    gave every member every multipole; the exchange carries 35-45% of
//!    that at 2-8 members on 1e6 points in 3D (`examples/let_volume`), and
//!    the share falls as the members' regions shrink (their surfaces).
//!    A member holds only the multipoles of its range of cells, of the top
//!    cells and those it received ([`super::multipoles`]): 17-55% of the
//!    cells at 2-16 members on 1e6 points in 2D, 48-73% at 2-8 in 3D.
//!    Then each member runs the M2L, L2L and L2P of its own tasks. A task's
//!    values do not depend on who runs it, so ownership moves work and
//!    never the bits.
//! 2. **Gather A** (`all_gather`): the pair work of each member's leaves
//!    and its tasks' seconds and interaction counts (a few numbers per
//!    leaf and task).
//! 3. **Near field.** From the work of every leaf every member cuts the same
//!    near tasks as a single process ([`NearField::plan`]) and owns a
//!    contiguous range of them (the tasks have equal work; with more members
//!    than near tasks, 16, some have none). The L2P values (phi, grad) of
//!    its near tasks' particles come from the members whose far field
//!    computed them ([`redistribute`]: the far and near ranges are two
//!    splits of the sorted order, so only the stretches where they differ
//!    cross; until session 26 an `all_gather` gave every member all N (1 +
//!    d) values). Their row leaves' lists come
//!    from the member's own traversal, plus a lists-only traversal of the
//!    frontier tasks it does not own that hold some of its row leaves.
//! 4. **Halo exchange.** The sums of each near task for the leaves of later
//!    tasks (its halo) go to the members owning those leaves: member r
//!    receives from every earlier member one message, then sends one to
//!    every later member (receiving first cannot deadlock on blocking sends:
//!    member 0 only sends, and each member's receives are matched in member
//!    order). Each member then adds, for its tasks, the halos of all earlier
//!    tasks in task order, as a single process does.
//! 5. **Gather B**: the owner of a near task adds its particles' near sums
//!    to their L2P values (which it holds since step 3), the
//!    single process's one addition per value, and sums q phi over each
//!    of its near tasks' particles in the sorted order; an `all_gather`
//!    of those sums (one number per task) gives every member the energy,
//!    the tasks' sums added in task order, as one process adds them
//!    (until session 28 every potential was gathered and summed in id
//!    order). The gradients of the particles a member wants come from
//!    their owners ([`Ghosts`], planned at every evaluation); a member
//!    that wants all gets every potential and gradient, gathered in
//!    place. No array of N values is allocated for the exchanges.
//!
//! Per evaluation: the exchange of the locally essential multipoles (at
//! most P (P - 1) requests and as many replies of multipoles, nterms numbers
//! each: 2D, order 13, 105 terms; 3D, order 14, 680), the redistribution
//! of the L2P values (the stretches where the far and near ranges differ),
//! an `all_gather` of the near tasks' sums (gather B) and the gradients of
//! the member's wanted particles from their owners (every potential and
//! N d gradients when it wants all; `TreeCoupling::want`), one
//! of the leaves' work and the tasks' counts (gather A) and at most
//! P (P - 1) / 2 halo messages, whose size is that of the near tasks'
//! boundary layers.

use super::{Engine, FmmStats, Mode, near_lists};
use crate::coupling::tree::taylor::FarKernel;
use crate::util::ghosts::Ghosts;
use crate::util::team::{redistribute, share, split_by_cost};
use rayon::prelude::*;
use std::ops::Range;

impl<const D: usize, K: FarKernel<D>> Engine<D, K> {
    /// Step 0 of the module docs: this member's subtrees' multipoles.
    /// Returns every member's range of cells, from its first subtree's root
    /// to the next member's (the top cells between them included: every
    /// member computes those after the exchange).
    fn upward_own(&mut self) -> Vec<Range<usize>> {
        let (rank, size) = (self.team.rank(), self.team.size());
        let ncells = self.tree.cells.len();
        let (cells, frontier) = (&self.tree.cells, &self.frontier);
        let count: Vec<f64> = frontier
            .iter()
            .map(|&f| cells[f as usize].count as f64)
            .collect();
        let tasks = split_by_cost(&count, size);
        let first = |k: usize| match tasks.get(k) {
            Some(r) if k > 0 => frontier.get(r.start).map_or(ncells, |&f| f as usize),
            Some(_) => 0,
            None => ncells,
        };
        let bounds: Vec<usize> = (0..=size).map(first).collect();
        let owned: Vec<Range<usize>> = bounds.windows(2).map(|b| b[0]..b[1]).collect();
        self.mult
            .arrange(ncells, self.mi.len(), owned[rank].clone());
        self.upward_subtrees(tasks[rank].clone());
        owned
    }

    /// Steps 0-5 of the module docs; returns sum_i q_i phi_i (unscaled)
    /// over every particle, the near tasks' sums in task order.
    pub(super) fn divided(&mut self, lap: &mut dyn FnMut(usize, &mut FmmStats)) -> f64 {
        let team = self.team.clone();
        team.agree_on_interrupt();
        let (rank, size) = (team.rank(), team.size());
        let nf = self.frontier.len();
        let nt = self.mi.len();

        // 0. This member's multipoles.
        let owned_cells = self.upward_own();

        // 1. The lists: the top's, then those of this member's frontier tasks.
        self.top_lists();
        let far: Vec<Range<usize>> = {
            let (cells, frontier) = (&self.tree.cells, &self.frontier);
            self.own
                .ranges(nf, size, |f| cells[frontier[f] as usize].count as f64)
                .to_vec()
        };
        self.mode.clear();
        self.mode.extend((0..nf).map(|f| {
            if far[rank].contains(&f) {
                Mode::FarLists
            } else {
                Mode::Skip
            }
        }));
        self.frontier_tasks();

        // 1b. The locally essential multipoles: what those lists and the top
        // cells' M2M read from other members' cells. The top cells' own are
        // computed here, by every member, once the frontier's have come.
        let clock = std::time::Instant::now();
        {
            let (mode, tasks) = (&self.mode, &self.tasks);
            let cell_task = &self.cell_task;
            let top_sources: Vec<u32> = self.top_m2l.iter().map(|&(_, _, s)| s).collect();
            let reads = rayon::iter::once(&top_sources[..])
                .chain(rayon::iter::once(&self.frontier[..]))
                .chain(
                    tasks
                        .par_iter()
                        .zip(mode.par_iter())
                        .filter(|(_, m)| **m == Mode::FarLists)
                        .map(|(t, _)| &t.m2l_src[..]),
                );
            let mut ghosts =
                Ghosts::plan(&*team, &owned_cells, self.tree.cells.len(), reads, |c| {
                    cell_task[c] != u32::MAX
                });
            // Slots for the top cells outside this member's range, then for
            // the multipoles received.
            let mine = owned_cells[rank].clone();
            let top = self.top.iter().copied();
            self.mult.hold(
                top.filter(|&c| !mine.contains(&(c as usize)))
                    .chain(ghosts.received()),
            );
            let (at, data) = self.mult.data_mut();
            ghosts.exchange_at(&*team, data, nt, at);
            self.stats.multipoles_received = ghosts.count();
            self.stats.multipoles_sent = ghosts.sent();
        }
        self.stats.let_seconds = clock.elapsed().as_secs_f64();
        self.upward_top();
        lap(1, &mut self.stats);
        self.top_locals();
        lap(2, &mut self.stats);

        // Then the far field of this member's frontier tasks (step 1b).
        for m in self.mode.iter_mut() {
            if *m == Mode::FarLists {
                *m = Mode::Expand;
            }
        }
        self.frontier_tasks();
        lap(3, &mut self.stats);

        // 2. Gather A: [leaf work | seconds, m2l, p2p per task].
        let nl = self.near.prepare(&self.tree);
        let far_leaves: Vec<Range<usize>> = far.iter().map(|r| self.frontier_leaves(r)).collect();
        let far_particles: Vec<Range<usize>> =
            far.iter().map(|r| self.frontier_particles(r)).collect();
        let counts: Vec<usize> = (0..size)
            .map(|k| far_leaves[k].len() + 3 * far[k].len())
            .collect();
        let mut mine = Vec::with_capacity(counts[rank]);
        {
            let near = near_lists(&self.tasks, &self.frontier, &self.cell_task);
            let mut work = vec![0u64; far_leaves[rank].len()];
            self.near
                .leaf_work(&self.tree, &near, far_leaves[rank].clone(), &mut work);
            mine.extend(work.iter().map(|&w| w as f64));
        }
        for f in far[rank].clone() {
            let t = &self.tasks[f];
            let cells = &self.tree.cells;
            let p2p: u64 = t
                .lists
                .p2p
                .iter()
                .map(|&(a, b)| cells[a as usize].count as u64 * cells[b as usize].count as u64)
                .sum();
            mine.extend([self.seconds[f], t.lists.m2l.len() as f64, p2p as f64]);
        }
        let mut all = vec![0.0; counts.iter().sum()];
        team.all_gather(&mine, &counts, &mut all);
        let mut work = vec![0u64; nl];
        let mut seconds = vec![0.0; nf];
        let mut at = 0;
        for k in 0..size {
            for a in far_leaves[k].clone() {
                work[a] = all[at] as u64;
                at += 1;
            }
            for f in far[k].clone() {
                seconds[f] = all[at];
                if k != rank {
                    self.stats.m2l += all[at + 1] as usize;
                    self.stats.p2p_pairs += all[at + 2] as u64;
                }
                at += 3;
            }
        }
        self.own.observe(&seconds);

        // 3. The near tasks of this member, and the lists their rows need.
        self.near.plan(work);
        let ntasks = self.near.task_count();
        let task_work: Vec<f64> = (0..ntasks)
            .map(|t| {
                let leaves = self.near.task_leaves(&(t..t + 1));
                self.near.work()[leaves].iter().sum::<u64>() as f64
            })
            .collect();
        let near_tasks = split_by_cost(&task_work, size);
        let near_particles: Vec<Range<usize>> = near_tasks
            .iter()
            .map(|t| self.leaf_particles(&self.near.task_leaves(t)))
            .collect();
        // The L2P values of this member's near particles, from the members
        // whose far field computed them (in place).
        let mine = &near_particles[rank];
        self.stats.far_values_received = (0..size)
            .filter(|&k| k != rank)
            .map(|k| {
                (far_particles[k].start.max(mine.start)..far_particles[k].end.min(mine.end)).len()
            })
            .sum();
        let clock = std::time::Instant::now();
        redistribute(&*team, &far_particles, &near_particles, 1, &mut self.phi_s);
        redistribute(
            &*team,
            &far_particles,
            &near_particles,
            D,
            self.grad_s.as_flattened_mut(),
        );
        self.stats.redistribute_seconds = clock.elapsed().as_secs_f64();
        let mine_near = near_tasks[rank].clone();
        self.stats.near_tasks = ntasks;
        self.stats.near_tasks_summed = mine_near.len();
        let my_leaves = self.near.task_leaves(&mine_near);
        for a in my_leaves.clone() {
            let f = self.cell_task[self.near.leaves()[a] as usize] as usize;
            if self.mode[f] == Mode::Skip {
                self.mode[f] = Mode::Lists;
            }
        }
        for m in self.mode.iter_mut() {
            if *m == Mode::Expand {
                *m = Mode::Skip;
            }
        }
        if self.mode.contains(&Mode::Lists) {
            let m2l = self.stats.m2l;
            let p2p = self.stats.p2p_pairs;
            self.frontier_tasks();
            (self.stats.m2l, self.stats.p2p_pairs) = (m2l, p2p);
        }
        {
            let near = near_lists(&self.tasks, &self.frontier, &self.cell_task);
            self.near.pack(&self.tree, &near, mine_near.clone());
            self.near
                .sum(&self.kernel, &self.tree, &near, mine_near.clone());
        }

        // 4. Halos: from every earlier member, then to every later one.
        for k in 0..rank {
            let msg = team.receive(k);
            self.near.receive_halo(&msg);
        }
        for k in rank + 1..size {
            let leaves = self.near.task_leaves(&near_tasks[k]);
            team.send(k, &self.near.halo_message(mine_near.clone(), leaves));
        }
        // The owner of a near task holds its particles' L2P values since
        // the redistribution, and forms far + near: the single process's
        // one addition per value.
        self.near.finish(
            &self.tree,
            mine_near.clone(),
            &mut self.phi_s,
            &mut self.grad_s,
        );

        // 5. Gather B: those sums, in place, and the near tasks' sums of
        // q phi (one number per task), added in task order.
        let mine = self.task_charge_potentials(mine_near);
        let counts: Vec<usize> = near_tasks.iter().map(|t| t.len()).collect();
        let mut sums = vec![0.0; ntasks];
        team.all_gather(&mine, &counts, &mut sums);
        self.share_values(&near_particles);
        lap(4, &mut self.stats);
        sums.iter().sum()
    }

    /// Collective: member k's values (sorted order) of the particles
    /// `particles[k]` (ranges covering them in order) to every member, in
    /// place: the gradients of the particles this member wants; or, when
    /// it wants all, every potential and gradient.
    fn share_values(&mut self, particles: &[Range<usize>]) {
        let team = &*self.team;
        let rank = team.rank();
        match &self.wanted {
            Some(wanted) => {
                // Planned at every evaluation: the near tasks move with
                // the leaves' work.
                let inv = &self.tree.inv;
                let sorted: Vec<u32> = wanted.iter().map(|&i| inv[i as usize]).collect();
                let n = self.grad_s.len();
                let mut ghosts =
                    Ghosts::plan(team, particles, n, rayon::iter::once(&sorted[..]), |_| true);
                ghosts.exchange(team, self.grad_s.as_flattened_mut(), D);
                self.stats.gradients_received = ghosts.count();
                self.stats.potentials_received = 0;
            }
            None => {
                share(team, particles, 1, &mut self.phi_s);
                share(team, particles, D, self.grad_s.as_flattened_mut());
                self.stats.gradients_received = self.grad_s.len() - particles[rank].len();
                self.stats.potentials_received = self.stats.gradients_received;
            }
        }
    }

    /// The leaves (indices into the near field's leaves) of frontier tasks `r`.
    fn frontier_leaves(&self, r: &Range<usize>) -> Range<usize> {
        if r.is_empty() {
            return 0..0;
        }
        let (cells, leaves) = (&self.tree.cells, self.near.leaves());
        let (first, last) = (self.frontier[r.start], self.frontier[r.end - 1] as usize);
        let end = cells[last].end;
        leaves.partition_point(|&l| l < first)..leaves.partition_point(|&l| l < end)
    }

    /// The particles (sorted order) of frontier tasks `r`.
    fn frontier_particles(&self, r: &Range<usize>) -> Range<usize> {
        if r.is_empty() {
            return 0..0;
        }
        let cells = &self.tree.cells;
        let first = &cells[self.frontier[r.start] as usize];
        let last = &cells[self.frontier[r.end - 1] as usize];
        first.start as usize..(last.start + last.count) as usize
    }
}
