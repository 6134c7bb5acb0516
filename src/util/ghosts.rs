//! Ghosts of a divided sum: the items a member reads but does not own, and
//! the exchange that brings it their values from their owners.
//!
//! A member of a [`Team`] owns a contiguous range of items and computes
//! their values; its sums read items past its range, in the ranges of other
//! members: those are its **ghosts**. Instead of an `all_gather` of every
//! item's values, each member receives from each owner the values of its
//! ghosts that owner holds, and sends each member the values of that
//! member's ghosts it owns: the volume per exchange is the number of ghosts,
//! which grows as a domain's surface, not its volume. Two users:
//!
//! - the neighbour-list densities ([`crate::density::BlobDensity`]): items
//!   are the slots of the list's Morton order (whole chunks per member), a
//!   value is the slope g'(rho) of the diffusion energy, one number, and the
//!   reads are the candidates of the member's clusters; planned at each
//!   list build;
//! - the multipole tree's locally essential multipoles
//!   ([`crate::coupling::tree`]): items are the tree's cells (each member's
//!   range of frontier subtrees), a value is a cell's multipole (`width` =
//!   the expansion's terms), and the reads are the sources of the member's
//!   multipole-to-local translations; planned at each evaluation, since the
//!   refitted geometry moves the traversal's decisions.
//!
//! **Plan** ([`Ghosts::plan`], collective): a member marks the items it
//! reads outside its range (and that `keep` admits), groups them by owner
//! (the member whose range holds the item), and sends each member the
//! (ascending) items it wants from it: one message per ordered pair.
//!
//! **Exchange** ([`Ghosts::exchange`], collective): the
//! pairs {p, q} are served in ascending order of the partner on both sides,
//! the smaller rank sending first, so blocking sends cannot deadlock (each
//! member's sequence follows one global order of the pairs); a direction
//! with nothing to carry is skipped by both sides, since both know it is
//! empty. Values are copied, not combined: the bits are the owner's.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::util::team::Team;

/// A member's ghosts and what it sends to the others (module docs).
#[derive(Debug, Clone, Default)]
pub struct Ghosts {
    /// `receive[q]`: the items this member receives from member q, ascending.
    receive: Vec<Vec<u32>>,
    /// `send[q]`: the items of this member that member q receives, ascending.
    send: Vec<Vec<u32>>,
    /// Send buffer of the exchange, and the ghosts' values of
    /// [`Self::exchange_at`] before they are placed, reused.
    buffer: Vec<f64>,
    got: Vec<f64>,
}

impl Ghosts {
    /// Collective (module docs): `owned[q]` is member q's range of items
    /// (the ranges cover `0..n` in member order), `reads` the item lists
    /// this member's sums read; an item outside its range is a ghost when
    /// `keep` admits it (items every member computes need no exchange).
    pub fn plan<'a>(
        team: &dyn Team,
        owned: &[Range<usize>],
        n: usize,
        reads: impl ParallelIterator<Item = &'a [u32]>,
        keep: impl Fn(usize) -> bool + Sync,
    ) -> Self {
        let (me, size) = (team.rank(), team.size());
        let mine = owned[me].clone();
        let marks: Vec<AtomicU64> = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        reads.for_each(|slots| {
            for &s in slots {
                let s = s as usize;
                if !mine.contains(&s) && keep(s) {
                    marks[s / 64].fetch_or(1 << (s % 64), Ordering::Relaxed);
                }
            }
        });
        let marks: Vec<u64> = marks.into_iter().map(AtomicU64::into_inner).collect();
        let receive: Vec<Vec<u32>> = owned
            .iter()
            .enumerate()
            .map(|(q, range)| {
                if q == me {
                    return Vec::new();
                }
                range
                    .clone()
                    .filter(|&s| marks[s / 64] >> (s % 64) & 1 == 1)
                    .map(|s| s as u32)
                    .collect()
            })
            .collect();
        let mut send = vec![Vec::new(); size];
        for q in (0..size).filter(|&q| q != me) {
            let request: Vec<f64> = receive[q].iter().map(|&s| s as f64).collect();
            let (first, second) = pair_order(me, q);
            let mut asked = None;
            for turn in [first, second] {
                if turn == me {
                    team.send(q, &request);
                } else {
                    asked = Some(team.receive(q));
                }
            }
            let asked = asked.expect("each pair exchanges both ways");
            send[q] = asked.iter().map(|&s| s as u32).collect();
            assert!(
                send[q].iter().all(|&s| mine.contains(&(s as usize))),
                "member {q} asked member {me} for an item it does not own"
            );
        }
        Ghosts {
            receive,
            send,
            buffer: Vec::new(),
            got: Vec::new(),
        }
    }

    /// Collective (module docs): overwrites `values` at this member's
    /// ghosts with their owners' values (`values` holds `width` numbers per
    /// item, in item order; the owned items must hold this member's values).
    pub fn exchange(&mut self, team: &dyn Team, values: &mut [f64], width: usize) {
        self.exchange_at(team, values, width, |s| s as usize * width);
    }

    /// [`Self::exchange`] with item s's `width` numbers at `at(s)` in
    /// `values` (an owner's items and a member's ghosts, wherever it keeps
    /// them).
    pub fn exchange_at(
        &mut self,
        team: &dyn Team,
        values: &mut [f64],
        width: usize,
        at: impl Fn(u32) -> usize,
    ) {
        let mut got = std::mem::take(&mut self.got);
        got.resize(self.count() * width, 0.0);
        self.exchange_apart(team, values, width, &at, &mut got);
        for (s, v) in self.received().zip(got.chunks_exact(width)) {
            values[at(s)..at(s) + width].copy_from_slice(v);
        }
        self.got = got;
    }

    /// Collective: sends the owners' values, item s's `width` numbers at
    /// `at(s)` in `owned`, and writes the ghosts' values into `ghosts`, the
    /// j-th of [`Self::received`] at `j * width` (a member keeping its
    /// ghosts apart from its own items, compactly).
    pub fn exchange_apart(
        &mut self,
        team: &dyn Team,
        owned: &[f64],
        width: usize,
        at: impl Fn(u32) -> usize,
        ghosts: &mut [f64],
    ) {
        let me = team.rank();
        assert_eq!(ghosts.len(), self.count() * width, "room for the ghosts");
        let mut place = 0;
        for q in (0..self.send.len()).filter(|&q| q != me) {
            let (first, second) = pair_order(me, q);
            let from = place;
            place += self.receive[q].len() * width;
            for turn in [first, second] {
                if turn == me && !self.send[q].is_empty() {
                    self.buffer.clear();
                    for &s in &self.send[q] {
                        self.buffer.extend_from_slice(&owned[at(s)..at(s) + width]);
                    }
                    team.send(q, &self.buffer);
                } else if turn != me && !self.receive[q].is_empty() {
                    let got = team.receive(q);
                    assert_eq!(got.len(), place - from, "ghost message length");
                    ghosts[from..place].copy_from_slice(&got);
                }
            }
        }
    }

    /// The ghosts: the items received per exchange, ascending by owner,
    /// then by item.
    pub fn received(&self) -> impl Iterator<Item = u32> + '_ {
        self.receive.iter().flatten().copied()
    }

    /// The number of ghosts (items received per exchange).
    pub fn count(&self) -> usize {
        self.receive.iter().map(Vec::len).sum()
    }

    /// The number of items this member sends per exchange.
    pub fn sent(&self) -> usize {
        self.send.iter().map(Vec::len).sum()
    }
}

/// Which of members `a` and `b` acts first on their pair: the smaller.
fn pair_order(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::team::{ThreadTeam, split_even};

    /// Each member reads a window of items around its range (wrapping), so
    /// every member has ghosts at both neighbours and, at 4 members with
    /// wide windows, at non-neighbours; a member's ghosts are exactly the
    /// items it reads outside its range that `keep` admits (here: not the
    /// multiples of 5), and after the exchange they hold their owners'
    /// values (each owner writes values of its own making, `width` numbers
    /// per item), while nothing else is written (the items not kept stay
    /// as this member left them).
    #[test]
    fn ghosts_are_the_reads_outside_the_range_and_get_the_owners_values() {
        let n = 1000;
        let value = |s: usize, k: usize| (s * 31 + 7 * k + 7) as f64;
        for size in 2..=4 {
            for reach in [0, 3, 120, 400] {
                for width in [1, 3] {
                    let owned = split_even(n, size);
                    let out = ThreadTeam::run(size, |t| {
                        let me = t.rank();
                        let mine = owned[me].clone();
                        let reads: Vec<Vec<u32>> = mine
                            .clone()
                            .map(|s| {
                                (s + n - reach..=s + n + reach)
                                    .step_by(7)
                                    .map(|k| (k % n) as u32)
                                    .collect()
                            })
                            .collect();
                        let keep = |s: usize| !s.is_multiple_of(5);
                        let mut ghosts =
                            Ghosts::plan(&*t, &owned, n, reads.par_iter().map(|v| &v[..]), keep);
                        let mut values = vec![f64::NAN; n * width];
                        for s in mine.clone() {
                            for k in 0..width {
                                values[s * width + k] = value(s, k);
                            }
                        }
                        ghosts.exchange(&*t, &mut values, width);
                        let wanted: std::collections::BTreeSet<u32> = reads
                            .iter()
                            .flatten()
                            .copied()
                            .filter(|&s| !mine.contains(&(s as usize)) && keep(s as usize))
                            .collect();
                        let got: Vec<u32> = ghosts.receive.iter().flatten().copied().collect();
                        assert_eq!(got, wanted.iter().copied().collect::<Vec<_>>());
                        for s in 0..n {
                            for k in 0..width {
                                let v = values[s * width + k];
                                if mine.contains(&s) || wanted.contains(&(s as u32)) {
                                    assert_eq!(v, value(s, k));
                                } else {
                                    assert!(v.is_nan(), "item {s} was written");
                                }
                            }
                        }
                        (ghosts.count(), ghosts.sent())
                    });
                    let received: usize = out.iter().map(|c| c.0).sum();
                    let sent: usize = out.iter().map(|c| c.1).sum();
                    assert_eq!(received, sent, "size {size} reach {reach}");
                    assert_eq!(received == 0, reach == 0, "size {size} reach {reach}");
                }
            }
        }
    }
}
