//! Multi-index bookkeeping for Cartesian Taylor expansions in `D` dimensions.
//!
//! A multi-index `k = (k_1, .., k_D)` has degree `|k| = k_1 + .. + k_D`; we use
//! `k! = k_1! .. k_D!` and `x^k = x_1^k_1 .. x_D^k_D`. All multi-indices with
//! `|k| <= p` are stored in a flat array ordered by degree (then lexicographically,
//! largest first component first), so that the indices of degree `<= n` are the
//! prefix `0..count(n)` with `count(n) = C(n + D, D)`.
//!
//! Every expansion operation (P2M, M2M, M2L, L2L, L2P) is a loop over one of the
//! index tables precomputed here, so the hot loops contain no index arithmetic.

use crate::util::lanes::V32;
use std::collections::HashMap;

/// Multi-indices per group of the M2L contraction (see [`MultiIndex::groups`]).
pub const GROUP: usize = 4;
const _: () = assert!(GROUP.is_multiple_of(2));

/// Index tables for all multi-indices of degree `<= order`.
pub struct MultiIndex<const D: usize> {
    /// Maximal degree `p`.
    pub order: usize,
    /// Exponents of each multi-index, in storage order.
    pub exps: Vec<[u8; D]>,
    /// `count[n]` = number of multi-indices of degree `<= n` (= `C(n+D, D)`), for `n = 0..=p`.
    pub count: Vec<usize>,
    /// `minus1[k][i]` = index of `k - e_i`, or `len()` (a zero row) if `k_i = 0`.
    pub minus1: Vec<[u32; D]>,
    /// `minus2[k][i]` = index of `k - 2 e_i`, or `len()` (a zero row) if `k_i < 2`.
    pub minus2: Vec<[u32; D]>,
    /// For `k != 0`: `(index of k - e_d, d, 1 / k_d)` with `d` the first non-zero component,
    /// so that `x^k / k! = (x^(k-e_d) / (k-e_d)!) * x_d / k_d`.
    pub mono_parent: Vec<(u32, u8, f64)>,
    /// `plus1[k][i]` = index of `k + e_i`, defined for `|k| <= p - 1`.
    pub plus1: Vec<[u32; D]>,
    /// Pair table: for the `a`-th multi-index, `pair_sum[pair_off[a] + b]` is the index of
    /// `a + b` for `b = 0..count(p - |a|)` (all `b` with `|a| + |b| <= p`).
    pub pair_off: Vec<usize>,
    pub pair_sum: Vec<u32>,
    /// The pair table regrouped for the M2L contraction: multi-indices `a` of equal
    /// degree are taken [`GROUP`] at a time (consecutive in storage; a group is padded
    /// with the zero row), and group `k` covers `a = groups[k].0 .. + groups[k].1`
    /// with `groups[k].2` partners `b` (all of degree `<= p - |a|`). Its table is
    /// `group_sum[group_off[k] + GROUP * b + i]` = index of `a_i + b`, so one load of
    /// `M_b` serves `GROUP` multiply-adds.
    pub groups: Vec<(u32, u32, u32)>,
    pub group_off: Vec<usize>,
    pub group_sum: Vec<u32>,
    /// `group_sum` as byte offsets into an array of [`V32`], two per `u64`
    /// (`GROUP / 2` words per partner `b`, starting at word `group_off[k] / 2`):
    /// the single-precision contraction then loads its four indices in two loads.
    pub group_bytes32: Vec<u64>,
    /// `k!` for every multi-index.
    pub factorial: Vec<f64>,
    /// Degree `|k|` of every multi-index.
    pub degree: Vec<u8>,
}

impl<const D: usize> MultiIndex<D> {
    pub fn new(order: usize) -> Self {
        let mut exps: Vec<[u8; D]> = Vec::new();
        let mut count = Vec::with_capacity(order + 1);
        for n in 0..=order {
            push_degree::<D>(n, 0, [0u8; D], &mut exps);
            count.push(exps.len());
        }
        let lookup: HashMap<[u8; D], u32> = exps
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect();
        let zero_row = exps.len() as u32;
        let shifted = |k: &[u8; D], i: usize, delta: i32| -> Option<u32> {
            let v = k[i] as i32 + delta;
            if v < 0 {
                return None;
            }
            let mut m = *k;
            m[i] = v as u8;
            lookup.get(&m).copied()
        };
        let minus1 = exps
            .iter()
            .map(|k| std::array::from_fn(|i| shifted(k, i, -1).unwrap_or(zero_row)))
            .collect();
        let minus2 = exps
            .iter()
            .map(|k| std::array::from_fn(|i| shifted(k, i, -2).unwrap_or(zero_row)))
            .collect();
        let mono_parent = exps
            .iter()
            .map(|k| match (0..D).find(|&i| k[i] > 0) {
                Some(d) => (shifted(k, d, -1).unwrap(), d as u8, 1.0 / k[d] as f64),
                None => (0, 0, 0.0),
            })
            .collect();
        let degree: Vec<u8> = exps.iter().map(|k| k.iter().sum()).collect();
        let plus1 = exps
            .iter()
            .map(|k| std::array::from_fn(|i| shifted(k, i, 1).unwrap_or(zero_row)))
            .collect();
        let mut pair_off = Vec::with_capacity(exps.len() + 1);
        let mut pair_sum = Vec::new();
        for a in &exps {
            pair_off.push(pair_sum.len());
            let rest = order - a.iter().map(|&e| e as usize).sum::<usize>();
            for b in &exps[..count[rest]] {
                let s: [u8; D] = std::array::from_fn(|i| a[i] + b[i]);
                pair_sum.push(lookup[&s]);
            }
        }
        pair_off.push(pair_sum.len());
        let (mut groups, mut group_off, mut group_sum) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..=order {
            let first = if n == 0 { 0 } else { count[n - 1] };
            let partners = count[order - n];
            for a0 in (first..count[n]).step_by(GROUP) {
                let k = GROUP.min(count[n] - a0);
                groups.push((a0 as u32, k as u32, partners as u32));
                group_off.push(group_sum.len());
                for b in 0..partners {
                    for i in 0..GROUP {
                        group_sum.push(if i < k {
                            pair_sum[pair_off[a0 + i] + b]
                        } else {
                            zero_row
                        });
                    }
                }
            }
        }
        let size = std::mem::size_of::<V32>() as u64;
        let group_bytes32 = group_sum
            .chunks_exact(2)
            .map(|w| (w[0] as u64 * size) | ((w[1] as u64 * size) << 32))
            .collect();
        let factorial = exps
            .iter()
            .map(|k| {
                k.iter()
                    .map(|&e| (1..=e as u32).map(f64::from).product::<f64>())
                    .product()
            })
            .collect();
        Self {
            order,
            exps,
            count,
            minus1,
            minus2,
            mono_parent,
            plus1,
            pair_off,
            pair_sum,
            groups,
            group_off,
            group_sum,
            group_bytes32,
            factorial,
            degree,
        }
    }

    /// Number of multi-indices of degree `<= order`.
    #[inline]
    pub fn len(&self) -> usize {
        self.exps.len()
    }

    /// Number of coefficients of degree `<= order - 1` (those used by the gradient in L2P).
    #[inline]
    pub fn len_below_top(&self) -> usize {
        if self.order == 0 {
            0
        } else {
            self.count[self.order - 1]
        }
    }
}

/// Appends all multi-indices of degree exactly `n` whose first `dim` components are
/// given in `prefix`, largest first remaining component first.
fn push_degree<const D: usize>(n: usize, dim: usize, prefix: [u8; D], out: &mut Vec<[u8; D]>) {
    if dim == D - 1 {
        let mut k = prefix;
        k[dim] = n as u8;
        out.push(k);
        return;
    }
    for e in (0..=n).rev() {
        let mut k = prefix;
        k[dim] = e as u8;
        push_degree::<D>(n - e, dim + 1, k, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_binomial() {
        let mi = MultiIndex::<3>::new(6);
        for n in 0..=6 {
            assert_eq!(mi.count[n], (n + 1) * (n + 2) * (n + 3) / 6);
        }
        let mi2 = MultiIndex::<2>::new(5);
        assert_eq!(mi2.len(), 21);
        // pair table size for D = 3 is C(p + 6, 6)
        assert_eq!(mi.pair_sum.len(), 924);
    }
}
