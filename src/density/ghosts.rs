//! Ghosts of a divided neighbour-list sum: the slots a member reads but does
//! not own, and the exchange that brings it their values from their owners.
//!
//! A member of a [`Team`] owns a contiguous range of slots (whole chunks of
//! the list's Morton order, [`super::blob`]) and sums over its own
//! clusters, whose candidates reach past its range into the ranges of other
//! members: those slots are its **ghosts**. A per-particle value that the
//! owner computes (the slope g'(rho) of the diffusion energy) is needed at
//! the ghosts too. Instead of an `all_gather` of all N values, each member
//! receives from each owner the values of its ghosts that owner holds, and
//! sends each member the values of that member's ghosts it owns: the volume
//! per evaluation is the number of ghosts, which grows as a domain's
//! surface, not its volume.
//!
//! **Plan** ([`Ghosts::plan`], collective, at each list build): a member
//! marks the candidates of its clusters outside its range, groups them by
//! owner (the member whose range holds the slot), and sends each member
//! the (ascending) slots it wants from it: one message per ordered pair.
//!
//! **Exchange** ([`Ghosts::exchange`], collective, per evaluation): the
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
    /// `receive[q]`: the slots this member receives from member q, ascending.
    receive: Vec<Vec<u32>>,
    /// `send[q]`: the slots of this member that member q receives, ascending.
    send: Vec<Vec<u32>>,
    /// Send buffer of the exchange, reused.
    buffer: Vec<f64>,
}

impl Ghosts {
    /// Collective (module docs): `owned[q]` is member q's range of slots
    /// (the ranges cover `0..n` in member order), `reads` the slot lists
    /// this member's sums read (its clusters' candidates).
    pub fn plan<'a>(
        team: &dyn Team,
        owned: &[Range<usize>],
        n: usize,
        reads: impl ParallelIterator<Item = &'a [u32]>,
    ) -> Self {
        let (me, size) = (team.rank(), team.size());
        let mine = owned[me].clone();
        let marks: Vec<AtomicU64> = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        reads.for_each(|slots| {
            for &s in slots {
                let s = s as usize;
                if !mine.contains(&s) {
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
                "member {q} asked member {me} for a slot it does not own"
            );
        }
        Ghosts {
            receive,
            send,
            buffer: Vec::new(),
        }
    }

    /// Collective (module docs): overwrites `values` at this member's
    /// ghosts with their owners' values (`values` indexed by slot; the
    /// owned slots must hold this member's values).
    pub fn exchange(&mut self, team: &dyn Team, values: &mut [f64]) {
        let me = team.rank();
        for q in (0..self.send.len()).filter(|&q| q != me) {
            let (first, second) = pair_order(me, q);
            for turn in [first, second] {
                if turn == me && !self.send[q].is_empty() {
                    self.buffer.clear();
                    self.buffer
                        .extend(self.send[q].iter().map(|&s| values[s as usize]));
                    team.send(q, &self.buffer);
                } else if turn != me && !self.receive[q].is_empty() {
                    let got = team.receive(q);
                    assert_eq!(got.len(), self.receive[q].len(), "ghost message length");
                    for (&s, v) in self.receive[q].iter().zip(got) {
                        values[s as usize] = v;
                    }
                }
            }
        }
    }

    /// The number of ghosts (values received per exchange).
    pub fn count(&self) -> usize {
        self.receive.iter().map(Vec::len).sum()
    }

    /// The number of values this member sends per exchange.
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

    /// Each member reads a window of slots around its range (wrapping), so
    /// every member has ghosts at both neighbours and, at 4 members with
    /// wide windows, at non-neighbours; a member's ghosts are exactly the
    /// slots it reads outside its range, and after the exchange they hold
    /// their owners' values (each owner writes a value of its own making).
    #[test]
    fn ghosts_are_the_reads_outside_the_range_and_get_the_owners_values() {
        let n = 1000;
        for size in 2..=4 {
            for reach in [0, 3, 120, 400] {
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
                    let mut ghosts = Ghosts::plan(&*t, &owned, n, reads.par_iter().map(|v| &v[..]));
                    let mut values = vec![f64::NAN; n];
                    for s in mine.clone() {
                        values[s] = (s * 31 + 7) as f64;
                    }
                    ghosts.exchange(&*t, &mut values);
                    let wanted: std::collections::BTreeSet<u32> = reads
                        .iter()
                        .flatten()
                        .copied()
                        .filter(|&s| !mine.contains(&(s as usize)))
                        .collect();
                    let got: Vec<u32> = ghosts.receive.iter().flatten().copied().collect();
                    assert_eq!(got, wanted.iter().copied().collect::<Vec<_>>());
                    for &s in &wanted {
                        assert_eq!(values[s as usize], (s as usize * 31 + 7) as f64);
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
