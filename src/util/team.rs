//! The processes that share the work of one evaluation: the seam between the
//! numerics and MPI.
//!
//! A [`Team`] of `size` members (MPI ranks, or threads in the tests) runs
//! the same program on the same replicated state; a backend whose work can be
//! divided ([`crate::coupling::direct`], [`crate::coupling::tree`]) gives each
//! member a part (contiguous ranges of its own work units, [`split_by_cost`])
//! and assembles the results with [`Team::all_gather`] and point-to-point
//! messages, **in the single process's order of every floating-point
//! addition**, so a divided evaluation has the single process's bits for any
//! team size. The numerics never name MPI: the process's team is installed
//! once ([`install`], by `crate::distributed` under `mpirun`) and read by the
//! backends when they are built ([`current`]); a single process has
//! [`Solo`].
//!
//! [`ThreadTeam`] runs the members as threads of one process, so the
//! division is tested without an MPI launcher (`coupling::tree` and
//! `coupling::direct` tests, P = 1-4).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// The members that share an evaluation (module docs). Every member calls
/// the collective operations in the same order.
pub trait Team: Send + Sync {
    /// This member's index, `0..size`.
    fn rank(&self) -> usize;
    /// The number of members.
    fn size(&self) -> usize;
    /// Collective: member k contributes `mine` (`counts[k]` numbers); `all`
    /// (the sum of `counts`) receives the contributions in member order.
    fn all_gather(&self, mine: &[f64], counts: &[usize], all: &mut [f64]);
    /// Sends `data` to member `to` (messages between two members arrive in
    /// the order sent).
    fn send(&self, to: usize, data: &[f64]);
    /// The next message from member `from`.
    fn receive(&self, from: usize) -> Vec<f64>;
    /// Collective, at every divided evaluation: an interrupt pending on any
    /// member becomes a request on every member here (MPI: a signal reaches
    /// the ranks at different times; all must stop at the same point).
    fn agree_on_interrupt(&self) {}
    /// Seconds this member has spent in the team's collectives and messages
    /// so far, waiting for the others included (0 for [`Solo`]).
    fn exchange_seconds(&self) -> f64 {
        0.0
    }
}

/// The team of one: a single process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Team for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_gather(&self, mine: &[f64], _counts: &[usize], all: &mut [f64]) {
        all.copy_from_slice(mine);
    }
    fn send(&self, _to: usize, _data: &[f64]) {
        unreachable!("a team of one sends no message")
    }
    fn receive(&self, _from: usize) -> Vec<f64> {
        unreachable!("a team of one receives no message")
    }
}

static PROCESS_TEAM: OnceLock<Arc<dyn Team>> = OnceLock::new();

/// Installs the process's team for the rest of the process (the first
/// installed stays); returns false if one was installed already.
pub fn install(team: Arc<dyn Team>) -> bool {
    PROCESS_TEAM.set(team).is_ok()
}

/// The process's team: the installed one, else [`Solo`].
pub fn current() -> Arc<dyn Team> {
    PROCESS_TEAM
        .get()
        .cloned()
        .unwrap_or_else(|| Arc::new(Solo))
}

/// Whether the process's team is this process alone, so that independent
/// parts of an evaluation (species, energy terms) may run side by side.
/// Under MPI they may not: each makes collective calls, which every rank
/// must make in the same order, and concurrent collectives on one
/// communicator are not allowed even at `MPI_THREAD_MULTIPLE`.
pub fn alone() -> bool {
    PROCESS_TEAM.get().is_none_or(|t| t.size() == 1)
}

/// `parts` consecutive ranges of `0..cost.len()` of about equal total cost
/// (each range ends where its cumulative cost passes the next multiple of
/// total / parts, by the item's midpoint); empty ranges when there are more
/// parts than items. A function of `cost` and `parts` alone, so members that
/// hold the same costs agree on it without a message.
pub fn split_by_cost(cost: &[f64], parts: usize) -> Vec<Range<usize>> {
    let total: f64 = cost.iter().sum();
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0.0);
    for p in 0..parts {
        let target = total * (p + 1) as f64 / parts as f64;
        let mut end = start;
        while end < cost.len() && (p + 1 == parts || done + 0.5 * cost[end] < target) {
            done += cost[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// `parts` consecutive ranges of `0..units` of equal size (to one unit).
pub fn split_even(units: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts)
        .map(|p| units * p / parts..units * (p + 1) / parts)
        .collect()
}

/// `parts` consecutive ranges of `0..n` of whole chunks of
/// [`crate::util::parallel::CHUNK`] (the last one short), even by chunk
/// count: how the chunked work of `n` items (particles, numbers of a
/// vector) is divided when every chunk costs the same. A function of `n`
/// and `parts` alone.
pub fn split_chunks(n: usize, parts: usize) -> Vec<Range<usize>> {
    use crate::util::parallel::CHUNK;
    split_even(n.div_ceil(CHUNK), parts)
        .into_iter()
        .map(|c| (c.start * CHUNK).min(n)..(c.end * CHUNK).min(n))
        .collect()
}

/// Collective: each member wrote `width` values per item of its own range
/// `items[rank]` of `values` (the ranges cover the items in order); after
/// it every member holds all of them.
pub fn share(team: &dyn Team, items: &[Range<usize>], width: usize, values: &mut [f64]) {
    let counts: Vec<usize> = items.iter().map(|r| width * r.len()).collect();
    let own = &items[team.rank()];
    let mine = values[width * own.start..width * own.end].to_vec();
    team.all_gather(&mine, &counts, values);
}

/// Collective: member k holds the values (`width` per item) of the items
/// `from[k]`; after it each member q holds those of `to[q]` too (each
/// family of ranges covers the items in member order). Only the overlaps
/// cross: member k sends member q the values of `from[k]` ∩ `to[q]`, so when
/// the two families nearly agree (two splits of one Morton order) little
/// moves, where a [`share`] would send every member all the items. Pairs are
/// served in ascending order of the partner on both sides, the smaller rank
/// first, as in [`crate::util::ghosts`]; an empty overlap is skipped by both.
pub fn redistribute(
    team: &dyn Team,
    from: &[Range<usize>],
    to: &[Range<usize>],
    width: usize,
    values: &mut [f64],
) {
    let overlap = |a: &Range<usize>, b: &Range<usize>| a.start.max(b.start)..a.end.min(b.end);
    let mut incoming = Vec::new();
    exchange_pairs(
        team,
        |p, q| !overlap(&from[p], &to[q]).is_empty(),
        |q| {
            let out = overlap(&from[team.rank()], &to[q]);
            values[out.start * width..out.end * width].to_vec()
        },
        |q, got| incoming.push((q, got)),
    );
    for (q, got) in incoming {
        let inc = overlap(&from[q], &to[team.rank()]);
        assert_eq!(got.len(), inc.len() * width, "redistribute: message length");
        values[inc.start * width..inc.end * width].copy_from_slice(&got);
    }
}

/// Collective: member p sends member q the message `message(q)` when
/// `sends(p, q)` (a rule every member evaluates alike, so both sides of a
/// pair know whether it carries anything), and `take(p, message)` receives
/// it on q. Pairs are served in ascending order of the partner on both
/// sides, the smaller rank first, as in [`crate::util::ghosts`], so that
/// blocking sends cannot deadlock.
pub fn exchange_pairs(
    team: &dyn Team,
    sends: impl Fn(usize, usize) -> bool,
    mut message: impl FnMut(usize) -> Vec<f64>,
    mut take: impl FnMut(usize, Vec<f64>),
) {
    let me = team.rank();
    for q in (0..team.size()).filter(|&q| q != me) {
        for turn in [me.min(q), me.max(q)] {
            if turn == me && sends(me, q) {
                team.send(q, &message(q));
            } else if turn != me && sends(q, me) {
                take(q, team.receive(q));
            }
        }
    }
}

/// Ownership of a sequence of work units (in the order of space: Morton or
/// tree pre-order), kept while it is balanced: re-split by cost when the
/// most loaded part carries more than [`Ownership::THRESHOLD`] times the
/// mean. The costs are counts every member knows after a gather, so every
/// member takes the same decision; ownership moves work, never the bits.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    ranges: Vec<Range<usize>>,
    units: usize,
    /// Re-splits that moved a range so far (for reports and tests).
    pub rebalances: usize,
}

impl Ownership {
    /// The imbalance (max / mean cost of the parts) that triggers a re-split.
    pub const THRESHOLD: f64 = 1.10;

    /// The ranges of `parts` parts over `units` work units: the current ones
    /// if they still cover `units`, else a split of `guess` (a cost estimate
    /// per unit, such as its particle count).
    pub fn ranges(
        &mut self,
        units: usize,
        parts: usize,
        guess: impl Fn(usize) -> f64,
    ) -> &[Range<usize>] {
        if self.units != units || self.ranges.len() != parts {
            let cost: Vec<f64> = (0..units).map(guess).collect();
            self.ranges = split_by_cost(&cost, parts);
            self.units = units;
        }
        &self.ranges
    }

    /// After an evaluation whose measured cost per unit is `cost`: re-split
    /// if the parts' imbalance passes the threshold. Returns the imbalance.
    pub fn observe(&mut self, cost: &[f64]) -> f64 {
        if cost.len() != self.units || self.ranges.is_empty() {
            return 1.0;
        }
        let parts: Vec<f64> = self
            .ranges
            .iter()
            .map(|r| cost[r.clone()].iter().sum())
            .collect();
        let mean = parts.iter().sum::<f64>() / parts.len() as f64;
        let max = parts.iter().cloned().fold(0.0, f64::max);
        let imbalance = if mean > 0.0 { max / mean } else { 1.0 };
        if imbalance > Self::THRESHOLD {
            // Units too coarse to balance re-split where they were.
            let ranges = split_by_cost(cost, self.ranges.len());
            if ranges != self.ranges {
                self.ranges = ranges;
                self.rebalances += 1;
            }
        }
        imbalance
    }
}

/// The members of a team as threads of one process (module docs).
pub struct ThreadTeam {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    slots: Mutex<Vec<Vec<f64>>>,
    /// The barrier: members arrived in this generation, the generation, and
    /// whether a member panicked (then every wait panics too, so a failing
    /// member fails its test instead of hanging the others).
    gate: Mutex<Gate>,
    /// Messages from member `from` to member `to` at `from * size + to`.
    mail: Mutex<Vec<VecDeque<Vec<f64>>>>,
    /// Notified at the barrier's completion, and at a panic.
    gate_changed: Condvar,
    /// Notified at every message, and at a panic.
    mail_changed: Condvar,
}

#[derive(Default)]
struct Gate {
    arrived: usize,
    generation: u64,
    poisoned: bool,
}

impl Shared {
    fn wait_all(&self) {
        let mut g = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let generation = g.generation;
        g.arrived += 1;
        if g.arrived == self.size {
            g.arrived = 0;
            g.generation += 1;
            self.gate_changed.notify_all();
            return;
        }
        while g.generation == generation {
            assert!(!g.poisoned, "another member of the team panicked");
            g = self.gate_changed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn poison(&self) {
        self.gate.lock().unwrap_or_else(|e| e.into_inner()).poisoned = true;
        self.gate_changed.notify_all();
        // Under the mail lock: a receiver between its check and its wait
        // holds it, so it is waiting when notified.
        let _guard = self.mail.lock().unwrap_or_else(|e| e.into_inner());
        self.mail_changed.notify_all();
    }

    fn poisoned(&self) -> bool {
        self.gate.lock().unwrap_or_else(|e| e.into_inner()).poisoned
    }
}

impl ThreadTeam {
    /// The `size` members of a new team; give one to each thread.
    pub fn new(size: usize) -> Vec<ThreadTeam> {
        let shared = Arc::new(Shared {
            size,
            slots: Mutex::new(vec![Vec::new(); size]),
            gate: Mutex::new(Gate::default()),
            mail: Mutex::new(vec![VecDeque::new(); size * size]),
            gate_changed: Condvar::new(),
            mail_changed: Condvar::new(),
        });
        (0..size)
            .map(|rank| ThreadTeam {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Runs `f(member)` on one thread per member of a team of `size` and
    /// returns the results in member order. A member that panics makes the
    /// others panic at their next collective or receive, and this panics.
    pub fn run<T: Send>(size: usize, f: impl Fn(Arc<dyn Team>) -> T + Sync) -> Vec<T> {
        let members = ThreadTeam::new(size);
        std::thread::scope(|s| {
            let f = &f;
            let handles: Vec<_> = members
                .into_iter()
                .map(|m| {
                    s.spawn(move || {
                        let shared = m.shared.clone();
                        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            f(Arc::new(m))
                        }));
                        out.unwrap_or_else(|e| {
                            shared.poison();
                            std::panic::resume_unwind(e)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a team member panicked"))
                .collect()
        })
    }
}

impl Team for ThreadTeam {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn all_gather(&self, mine: &[f64], counts: &[usize], all: &mut [f64]) {
        assert_eq!(mine.len(), counts[self.rank], "all_gather: wrong count");
        self.shared.slots.lock().unwrap()[self.rank] = mine.to_vec();
        self.shared.wait_all();
        {
            let slots = self.shared.slots.lock().unwrap();
            let mut at = 0;
            for (s, &c) in slots.iter().zip(counts) {
                all[at..at + c].copy_from_slice(s);
                at += c;
            }
        }
        // Nobody overwrites a slot before every member has read them all.
        self.shared.wait_all();
    }
    fn send(&self, to: usize, data: &[f64]) {
        let mut mail = self.shared.mail.lock().unwrap();
        mail[self.rank * self.shared.size + to].push_back(data.to_vec());
        self.shared.mail_changed.notify_all();
    }
    fn receive(&self, from: usize) -> Vec<f64> {
        let box_ = from * self.shared.size + self.rank;
        let mut mail = self.shared.mail.lock().unwrap();
        loop {
            if let Some(m) = mail[box_].pop_front() {
                return m;
            }
            assert!(
                !self.shared.poisoned(),
                "another member of the team panicked"
            );
            mail = self.shared.mail_changed.wait(mail).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {

    /// Each member ends with its `to` range's values, its own `from`
    /// range's untouched, and nothing else written; the overlaps cross,
    /// not the whole ranges: at 2-4 members, ranges cut at different
    /// places (one empty), widths 1 and 3.
    #[test]
    fn redistribute_brings_each_member_its_new_range() {
        let n = 101;
        for size in 2..=4 {
            for width in [1, 3] {
                let from = split_even(n, size);
                let mut cuts: Vec<usize> = (0..=size).map(|k| (n * k / size + 7).min(n)).collect();
                cuts[0] = 0;
                cuts[1] = cuts[2].min(cuts[1] + 30);
                cuts[size - 1] = cuts[size]; // the last member's new range is empty
                let to: Vec<Range<usize>> = cuts.windows(2).map(|c| c[0]..c[1]).collect();
                let value = |i: usize| (1000 * i) as f64;
                ThreadTeam::run(size, |t| {
                    let me = t.rank();
                    let mut values = vec![f64::NAN; n * width];
                    for i in from[me].clone() {
                        values[i * width..(i + 1) * width].fill(value(i));
                    }
                    redistribute(&*t, &from, &to, width, &mut values);
                    for i in 0..n {
                        let v = values[i * width];
                        if from[me].contains(&i) || to[me].contains(&i) {
                            assert!(
                                values[i * width..(i + 1) * width]
                                    .iter()
                                    .all(|&w| w == value(i))
                            );
                        } else {
                            assert!(v.is_nan(), "item {i} written on member {me}");
                        }
                    }
                });
            }
        }
    }

    use super::*;

    #[test]
    fn split_by_cost_covers_in_order_and_balances() {
        let cost: Vec<f64> = (0..100).map(|i| 1.0 + (i % 7) as f64).collect();
        for parts in 1..=9 {
            let r = split_by_cost(&cost, parts);
            assert_eq!(r.len(), parts);
            assert_eq!(r[0].start, 0);
            assert_eq!(r[parts - 1].end, 100);
            for w in r.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            let total: f64 = cost.iter().sum();
            // Each part is within one item's cost (at most 7) of the mean.
            for p in &r {
                let c: f64 = cost[p.clone()].iter().sum();
                assert!((c - total / parts as f64).abs() <= 7.0, "{parts}: {c}");
            }
        }
        // More parts than items: empty ranges, every item once.
        let r = split_by_cost(&[1.0, 1.0], 4);
        assert_eq!(r.iter().map(|r| r.len()).sum::<usize>(), 2);
    }

    #[test]
    fn split_even_and_share() {
        assert_eq!(split_even(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(split_even(2, 4), vec![0..0, 0..1, 1..1, 1..2]);
        let out = ThreadTeam::run(3, |t| {
            let items = split_even(7, 3);
            let mut v = vec![-1.0; 14];
            for i in items[t.rank()].clone() {
                v[2 * i] = i as f64;
                v[2 * i + 1] = 10.0 * i as f64;
            }
            share(&*t, &items, 2, &mut v);
            v
        });
        let want: Vec<f64> = (0..7).flat_map(|i| [i as f64, 10.0 * i as f64]).collect();
        assert!(out.iter().all(|v| v == &want));
    }

    #[test]
    fn ownership_rebalances_past_the_threshold_only() {
        let mut own = Ownership::default();
        let r = own.ranges(8, 2, |_| 1.0).to_vec();
        assert_eq!(r, vec![0..4, 4..8]);
        // 5% imbalance: kept.
        let i = own.observe(&[1.0, 1.0, 1.0, 1.1, 1.0, 1.0, 1.0, 0.8]);
        assert!(i < Ownership::THRESHOLD);
        assert_eq!(own.ranges(8, 2, |_| 1.0), &r[..]);
        // The first half three times dearer: re-split toward it.
        own.observe(&[3.0, 3.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(own.rebalances, 1);
        assert_eq!(own.ranges(8, 2, |_| 1.0), &[0..3, 3..8][..]);
    }

    /// A member that panics fails the team instead of hanging it.
    #[test]
    fn a_panicking_member_fails_the_team() {
        for collective in [true, false] {
            let r = std::panic::catch_unwind(|| {
                ThreadTeam::run(3, |t| {
                    if t.rank() == 1 {
                        panic!("member 1 fails");
                    }
                    if collective {
                        let mut all = [0.0; 3];
                        t.all_gather(&[0.0], &[1, 1, 1], &mut all);
                    } else {
                        t.receive(1);
                    }
                })
            });
            assert!(r.is_err());
        }
    }

    #[test]
    fn thread_team_gathers_in_rank_order_and_delivers_in_send_order() {
        let out = ThreadTeam::run(3, |t| {
            let r = t.rank();
            let counts = [1, 2, 3];
            let mine = vec![r as f64; counts[r]];
            let mut all = vec![0.0; 6];
            t.all_gather(&mine, &counts, &mut all);
            if r > 0 {
                t.send(r - 1, &[r as f64, 1.0]);
                t.send(r - 1, &[r as f64, 2.0]);
            }
            let got = if r < 2 {
                let a = t.receive(r + 1);
                let b = t.receive(r + 1);
                vec![a, b]
            } else {
                vec![]
            };
            (all, got)
        });
        for (r, (all, got)) in out.iter().enumerate() {
            assert_eq!(all, &vec![0.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
            if r < 2 {
                assert_eq!(
                    got,
                    &vec![vec![r as f64 + 1.0, 1.0], vec![r as f64 + 1.0, 2.0]]
                );
            }
        }
    }
}
