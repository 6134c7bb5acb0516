//! A vector divided among a team's members: the optimizer's vectors under MPI.
//!
//! A [`Shard`] is member r's part `v[ranges[r]]` of a vector v of `len`
//! numbers; the parts are consecutive ranges of whole [`CHUNK`]s, a
//! [`Cut`] (even by chunk count, [`Cut::even`], or any other: a JKO step
//! cuts its vectors by the cost of their particles). It implements
//! argmin-math's vector traits, so argmin's L-BFGS and line search run on
//! it unchanged:
//!
//! - elementwise operations (a + b, a - b, c a, a * b, min, max, signum)
//!   touch this member's part only, with no message;
//! - reductions (a . b, |a|_2, |a|_1) sum each chunk serially, gather the
//!   chunk sums from every member and add them in chunk order. That is
//!   exactly [`crate::util::parallel::sum_chunks`] over the whole vector, so a
//!   reduction has the bits of a single process for any team size, any cut
//!   (the chunks are the same wherever the cut falls) and any thread count,
//!   and every member gets the same scalar: every decision of the line
//!   search and of the stopping rule is the same on every member.
//!
//! Each L-BFGS history vector, iterate, gradient and search direction is then
//! held 1/P per member, and the vector operations cost 1/P; a reduction
//! costs one gather of `len / CHUNK` numbers.
//!
//! Elementwise operations on long parts run on rayon's threads: their
//! results do not depend on the order of the work.

use std::ops::Range;
use std::sync::Arc;

use argmin_math::{
    ArgminAdd, ArgminDot, ArgminL1Norm, ArgminL2Norm, ArgminMinMax, ArgminMul, ArgminSignum,
    ArgminSub, ArgminZeroLike,
};
use rayon::prelude::*;

use super::parallel::CHUNK;
use super::team::{self, Team};

/// Parts at least this long are transformed on rayon's threads.
const PARALLEL: usize = 1 << 15;

/// How a vector of `len` numbers is divided among a team's members:
/// consecutive ranges of whole chunks of [`CHUNK`] numbers (the last chunk
/// short), one per member, covering the vector in order. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    len: usize,
    /// Member r holds chunks `bounds[r]..bounds[r + 1]`.
    bounds: Arc<[usize]>,
}

impl Cut {
    /// Even by chunk count among `members`: a function of `len` and
    /// `members` alone.
    pub fn even(len: usize, members: usize) -> Cut {
        Cut::at_chunks(len, &team::split_even(len.div_ceil(CHUNK), members))
    }

    /// Member r holds the chunks `chunks[r]`, consecutive ranges of chunk
    /// indices covering `0..len.div_ceil(CHUNK)` in order.
    pub fn at_chunks(len: usize, chunks: &[Range<usize>]) -> Cut {
        assert!(!chunks.is_empty(), "a cut among no members");
        let total = len.div_ceil(CHUNK);
        assert_eq!(chunks[0].start, 0, "a cut starts at chunk 0: {chunks:?}");
        assert!(
            chunks
                .windows(2)
                .all(|w| w[0].end == w[1].start && w[0].start <= w[0].end),
            "a cut's ranges are consecutive: {chunks:?}"
        );
        assert_eq!(
            chunks[chunks.len() - 1].end,
            total,
            "a cut covers {total} chunks: {chunks:?}"
        );
        let mut bounds: Vec<usize> = chunks.iter().map(|c| c.start).collect();
        bounds.push(total);
        Cut {
            len,
            bounds: bounds.into(),
        }
    }

    /// The length of the vector.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of members.
    pub fn members(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The chunks member r holds.
    pub fn chunks(&self, r: usize) -> Range<usize> {
        self.bounds[r]..self.bounds[r + 1]
    }

    /// The numbers member r holds.
    pub fn range(&self, r: usize) -> Range<usize> {
        let c = self.chunks(r);
        (c.start * CHUNK).min(self.len)..(c.end * CHUNK).min(self.len)
    }

    /// Every member's range.
    pub fn ranges(&self) -> Vec<Range<usize>> {
        (0..self.members()).map(|r| self.range(r)).collect()
    }

    /// The range of `team`'s member, of a cut among the team.
    pub fn own(&self, team: &dyn Team) -> Range<usize> {
        debug_assert_eq!(self.members(), team.size(), "a cut among another team");
        self.range(team.rank())
    }
}

/// This member's part of a vector divided among a team (module docs).
#[derive(Clone)]
pub struct Shard {
    team: Arc<dyn Team>,
    cut: Cut,
    start: usize,
    v: Vec<f64>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("rank", &self.team.rank())
            .field("len", &self.cut.len)
            .field("start", &self.start)
            .field("part", &self.v.len())
            .finish()
    }
}

impl Shard {
    /// This member's part of `full` (which every member holds), cut evenly.
    pub fn of(team: Arc<dyn Team>, full: &[f64]) -> Shard {
        let cut = Cut::even(full.len(), team.size());
        Shard::cut(team, cut, full)
    }

    /// This member's part of `full` (which every member holds) under `cut`.
    pub fn cut(team: Arc<dyn Team>, cut: Cut, full: &[f64]) -> Shard {
        assert_eq!(cut.len(), full.len(), "a cut of another vector");
        let own = cut.own(&*team);
        Shard {
            team,
            cut,
            start: own.start,
            v: full[own].to_vec(),
        }
    }

    /// The shard with this shard's team and range whose component k (an
    /// index of the whole vector) is `f(k)`.
    pub fn like_with(&self, f: impl Fn(usize) -> f64) -> Shard {
        self.with((self.start..self.start + self.v.len()).map(f).collect())
    }

    /// Collective: the whole vector, into `full` (resized).
    pub fn gather(&self, full: &mut Vec<f64>) {
        full.resize(self.cut.len, 0.0);
        gather(&*self.team, &self.cut, &self.v, full);
    }

    /// This member's numbers, `v[self.range()]`.
    pub fn part(&self) -> &[f64] {
        &self.v
    }

    /// The team the vector is divided among.
    pub fn team(&self) -> &dyn Team {
        &*self.team
    }

    /// Which numbers of the whole vector this member holds.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.v.len()
    }

    /// The length of the whole vector.
    pub fn len(&self) -> usize {
        self.cut.len
    }

    /// Whether the whole vector is empty.
    pub fn is_empty(&self) -> bool {
        self.cut.len == 0
    }

    fn with(&self, v: Vec<f64>) -> Shard {
        Shard {
            team: self.team.clone(),
            cut: self.cut.clone(),
            start: self.start,
            v,
        }
    }

    fn map(&self, f: impl Fn(f64) -> f64 + Sync + Send) -> Shard {
        let v = if self.v.len() >= PARALLEL {
            self.v.par_iter().map(|&a| f(a)).collect()
        } else {
            self.v.iter().map(|&a| f(a)).collect()
        };
        self.with(v)
    }

    fn zip_map(&self, other: &Shard, f: impl Fn(f64, f64) -> f64 + Sync + Send) -> Shard {
        assert!(
            self.cut == other.cut,
            "shards of different vectors: {self:?} and {other:?}"
        );
        let v = if self.v.len() >= PARALLEL {
            (self.v.par_iter(), other.v.par_iter())
                .into_par_iter()
                .map(|(&a, &b)| f(a, b))
                .collect()
        } else {
            self.v
                .iter()
                .zip(&other.v)
                .map(|(&a, &b)| f(a, b))
                .collect()
        };
        self.with(v)
    }

    fn reduce(&self, f: impl Fn(usize) -> f64 + Sync) -> f64 {
        sum_parts(&*self.team, &self.cut, f)
    }
}

/// Collective: the whole vector `full` from every member's `part` (its
/// range of `full` under `cut`).
pub fn gather(team: &dyn Team, cut: &Cut, part: &[f64], full: &mut [f64]) {
    debug_assert_eq!(cut.len(), full.len());
    if team.size() == 1 {
        full.copy_from_slice(part);
        return;
    }
    let counts: Vec<usize> = cut.ranges().iter().map(|r| r.len()).collect();
    team.all_gather(part, &counts, full);
}

/// Collective: whether `holds` is true on every member (one number each
/// gathered; no message for a team of one).
pub fn all_hold(team: &dyn Team, holds: bool) -> bool {
    if team.size() == 1 {
        return holds;
    }
    let mut all = vec![0.0; team.size()];
    team.all_gather(
        &[f64::from(u8::from(holds))],
        &vec![1; team.size()],
        &mut all,
    );
    all.iter().all(|&v| v == 1.0)
}

/// Collective: the sum over a vector divided by `cut` of `f(k)`, where each
/// member passes `f` of the local indices 0..part of its range: each chunk
/// summed serially, the chunk sums added in order, so the single process's
/// `sum_chunks` over the whole vector, to the bit, on every member, for any
/// cut (module docs).
pub fn sum_parts(team: &dyn Team, cut: &Cut, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let part = cut.own(team).len();
    let chunks = part.div_ceil(CHUNK);
    let chunk = |c: usize| {
        (c * CHUNK..((c + 1) * CHUNK).min(part))
            .map(&f)
            .sum::<f64>()
    };
    // Short vectors are summed on this thread: rayon's dispatch would cost
    // more than the sum (the L-BFGS of a 1D step makes ~35 per iteration).
    if team.size() == 1 && part < PARALLEL {
        return match chunks {
            0 | 1 => chunk(0),
            _ => (0..chunks).map(chunk).sum(),
        };
    }
    let mine: Vec<f64> = if part < PARALLEL {
        (0..chunks).map(chunk).collect()
    } else {
        (0..chunks).into_par_iter().map(chunk).collect()
    };
    if team.size() == 1 {
        return whole(&mine);
    }
    let counts: Vec<usize> = (0..cut.members()).map(|r| cut.chunks(r).len()).collect();
    let mut all = vec![0.0; counts.iter().sum()];
    team.all_gather(&mine, &counts, &mut all);
    whole(&all)
}

/// The total of the chunk sums, as `sum_chunks` adds them (one chunk: itself).
fn whole(chunk_sums: &[f64]) -> f64 {
    match chunk_sums {
        [one] => *one,
        many => many.iter().sum(),
    }
}

impl ArgminAdd<Shard, Shard> for Shard {
    fn add(&self, other: &Shard) -> Shard {
        self.zip_map(other, |a, b| a + b)
    }
}

impl ArgminAdd<f64, Shard> for Shard {
    fn add(&self, other: &f64) -> Shard {
        let c = *other;
        self.map(|a| a + c)
    }
}

impl ArgminSub<Shard, Shard> for Shard {
    fn sub(&self, other: &Shard) -> Shard {
        self.zip_map(other, |a, b| a - b)
    }
}

impl ArgminSub<f64, Shard> for Shard {
    fn sub(&self, other: &f64) -> Shard {
        let c = *other;
        self.map(|a| a - c)
    }
}

impl ArgminMul<f64, Shard> for Shard {
    fn mul(&self, other: &f64) -> Shard {
        let c = *other;
        self.map(|a| a * c)
    }
}

/// c v, for argmin's generic `scaled_add` (p + c d).
impl ArgminMul<Shard, Shard> for f64 {
    fn mul(&self, other: &Shard) -> Shard {
        let c = *self;
        other.map(|a| c * a)
    }
}

impl ArgminMul<Shard, Shard> for Shard {
    fn mul(&self, other: &Shard) -> Shard {
        self.zip_map(other, |a, b| a * b)
    }
}

impl ArgminDot<Shard, f64> for Shard {
    fn dot(&self, other: &Shard) -> f64 {
        assert!(
            self.cut == other.cut,
            "shards of different vectors: {self:?} and {other:?}"
        );
        let (a, b) = (&self.v, &other.v);
        self.reduce(|k| a[k] * b[k])
    }
}

impl ArgminL2Norm<f64> for Shard {
    fn l2_norm(&self) -> f64 {
        let a = &self.v;
        self.reduce(|k| a[k] * a[k]).sqrt()
    }
}

impl ArgminL1Norm<f64> for Shard {
    fn l1_norm(&self) -> f64 {
        let a = &self.v;
        self.reduce(|k| a[k].abs())
    }
}

impl ArgminSignum for Shard {
    fn signum(self) -> Shard {
        self.map(f64::signum)
    }
}

impl ArgminZeroLike for Shard {
    fn zero_like(&self) -> Shard {
        self.with(vec![0.0; self.v.len()])
    }
}

impl ArgminMinMax for Shard {
    fn min(x: &Shard, y: &Shard) -> Shard {
        x.zip_map(y, |a, b| if a < b { a } else { b })
    }
    fn max(x: &Shard, y: &Shard) -> Shard {
        x.zip_map(y, |a, b| if a > b { a } else { b })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::parallel::sum_indexed;
    use crate::util::team::{Solo, ThreadTeam};

    fn vector(len: usize, seed: f64) -> Vec<f64> {
        (0..len)
            .map(|k| {
                ((k as f64 * 0.7311 + seed).sin() * 1e3).fract() * 10f64.powi(k as i32 % 7 - 3)
            })
            .collect()
    }

    /// The ranges cover the vector in order, start on chunk boundaries, and
    /// differ by at most one chunk.
    #[test]
    fn the_ranges_are_whole_chunks_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 5, 100_000] {
            for members in 1..=5 {
                let r = Cut::even(len, members).ranges();
                assert_eq!(r.len(), members);
                assert_eq!(r[0].start, 0);
                assert_eq!(r[members - 1].end, len);
                for p in 1..members {
                    assert_eq!(r[p - 1].end, r[p].start);
                    assert!(r[p].start.is_multiple_of(CHUNK) || r[p].start == len);
                }
                let chunks: Vec<usize> = r.iter().map(|q| q.len().div_ceil(CHUNK)).collect();
                let (lo, hi) = (chunks.iter().min().unwrap(), chunks.iter().max().unwrap());
                assert!(hi - lo <= 1, "{len} in {members}: {r:?}");
            }
        }
    }

    /// Dot products and norms on 1-4 members, cut evenly or not (empty
    /// parts included), have, to the bit, the value of `sum_indexed` over
    /// the whole vector (the single process's reduction) on every member;
    /// elementwise results gather to the whole vector's.
    #[test]
    fn reductions_have_the_single_process_bits_on_any_team() {
        for len in [0, 1, 5, CHUNK, CHUNK + 3, 3 * CHUNK + 17, 40_000] {
            let (a, b) = (vector(len, 0.3), vector(len, 1.9));
            let dot = sum_indexed(len, |k| a[k] * b[k]);
            let l2 = sum_indexed(len, |k| a[k] * a[k]).sqrt();
            let l1 = sum_indexed(len, |k| a[k].abs());
            let combined: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - 0.25 * y).collect();
            let chunks = len.div_ceil(CHUNK);
            for members in 1..=4 {
                // Even, and lopsided: the last member holds all but one
                // chunk, the members between them nothing.
                let lopsided: Vec<Range<usize>> = (0..members)
                    .map(|r| match r {
                        0 => 0..chunks.min(1),
                        r if r == members - 1 => chunks.min(1)..chunks,
                        _ => chunks.min(1)..chunks.min(1),
                    })
                    .collect();
                let lopsided = if members == 1 {
                    Cut::even(len, 1)
                } else {
                    Cut::at_chunks(len, &lopsided)
                };
                for cut in [Cut::even(len, members), lopsided] {
                    let out = ThreadTeam::run(members, |team| {
                        let sa = Shard::cut(team.clone(), cut.clone(), &a);
                        let sb = Shard::cut(team, cut.clone(), &b);
                        let c = sa.sub(&0.25f64.mul(&sb));
                        let mut full = Vec::new();
                        c.gather(&mut full);
                        (sa.dot(&sb), sa.l2_norm(), sa.l1_norm(), full)
                    });
                    for (rank, (d, n2, n1, full)) in out.into_iter().enumerate() {
                        let at = format!("len {len}, {members} members, rank {rank}, {cut:?}");
                        assert_eq!(d.to_bits(), dot.to_bits(), "dot, {at}");
                        assert_eq!(n2.to_bits(), l2.to_bits(), "l2, {at}");
                        assert_eq!(n1.to_bits(), l1.to_bits(), "l1, {at}");
                        assert_eq!(full, combined, "a - b/4, {at}");
                    }
                }
            }
        }
    }

    /// A cut is checked: its ranges must cover the chunks in order.
    #[test]
    fn a_cut_covers_the_chunks_in_order() {
        let len = 5 * CHUNK + 1;
        let cut = Cut::at_chunks(len, &[0..2, 2..2, 2..6]);
        assert_eq!(
            cut.ranges(),
            vec![0..2 * CHUNK, 2 * CHUNK..2 * CHUNK, 2 * CHUNK..len]
        );
        for bad in [
            &[0..2, 3..6][..],
            &[0..2, 2..5],
            &[1..3, 3..6],
            &[0..4, 3..6],
        ] {
            let r = std::panic::catch_unwind(|| Cut::at_chunks(len, bad));
            assert!(r.is_err(), "{bad:?} accepted");
        }
    }

    /// argmin-math's own operations on Vec<f64> give the same numbers
    /// elementwise (the shard changes where they are held, not what they are).
    #[test]
    fn elementwise_operations_match_argmin_on_vec() {
        let (a, b) = (vector(3 * CHUNK + 1, 0.1), vector(3 * CHUNK + 1, 2.2));
        let team: Arc<dyn Team> = Arc::new(Solo);
        let (sa, sb) = (Shard::of(team.clone(), &a), Shard::of(team, &b));
        let cases: [(Shard, Vec<f64>); 8] = [
            (sa.add(&sb), a.add(&b)),
            (sa.sub(&sb), a.sub(&b)),
            (sa.mul(&sb), a.mul(&b)),
            (sa.mul(&-1.5), a.mul(&-1.5)),
            (sa.add(&0.5), a.add(&0.5)),
            (
                <Shard as ArgminMinMax>::max(&sa, &sb),
                <Vec<f64> as ArgminMinMax>::max(&a, &b),
            ),
            (
                <Shard as ArgminMinMax>::min(&sa, &sb),
                <Vec<f64> as ArgminMinMax>::min(&a, &b),
            ),
            (sa.clone().signum(), a.clone().signum()),
        ];
        for (k, (s, v)) in cases.iter().enumerate() {
            assert_eq!(s.part(), &v[..], "operation {k}");
        }
        assert!(sa.zero_like().part().iter().all(|&z| z == 0.0));
    }
}
