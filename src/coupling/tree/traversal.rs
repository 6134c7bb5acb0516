//! Dual tree traversal (Dehnen 2002 style, target-oriented) producing the interaction
//! lists: for every pair (target cell `t`, source cell `s`) that is reached,
//!
//! * if `r_t + r_s < theta |c_t - c_s|` (multipole acceptance criterion, MAC) the pair
//!   is approximated by an M2L (or done directly if both are small leaves, when that
//!   is cheaper);
//! * else if both are leaves the pair is summed directly (P2P);
//! * else the larger cell (by radius; a leaf is never split) is replaced by its children.
//!
//! Starting from (root, root) this visits every ordered (target particle, source
//! particle) pair exactly once, whatever the geometry, so refitted trees stay exact
//! in the near field.
//!
//! The decisions are symmetric: `classify(t, s)` and `classify(s, t)` split the same
//! cell (radius ties go to the lower index) and agree on M2L / P2P, so by induction from
//! (root, root) the pair `(s, t)` is reached iff `(t, s)` is, and the P2P leaf pairs
//! come in both orders. The mutual near field (`near`) sums each unordered pair once
//! on this guarantee. The MAC uses the true cell radii, so the far-field error bound
//! holds for refitted trees too.

use super::octree::Cell;

#[derive(Clone, Copy, Debug)]
pub struct TraversalParams {
    /// Square of the opening angle `theta`.
    pub theta2: f64,
    /// Accepted leaf pairs with `n_t * n_s <= p2p_max_pairs` are summed directly.
    pub p2p_max_pairs: u64,
}

pub enum Action {
    M2l,
    P2p,
    SplitTarget,
    SplitSource,
}

#[inline]
pub fn classify<const D: usize>(cells: &[Cell<D>], t: u32, s: u32, p: &TraversalParams) -> Action {
    let ct = &cells[t as usize];
    let cs = &cells[s as usize];
    let mut d2 = 0.0;
    for d in 0..D {
        let u = ct.center[d] - cs.center[d];
        d2 += u * u;
    }
    let rs = ct.radius + cs.radius;
    let both_leaves = ct.is_leaf && cs.is_leaf;
    if rs * rs < p.theta2 * d2 {
        if both_leaves && (ct.count as u64) * (cs.count as u64) <= p.p2p_max_pairs {
            Action::P2p
        } else {
            Action::M2l
        }
    } else if both_leaves {
        Action::P2p
    } else if cs.is_leaf
        || (!ct.is_leaf && (ct.radius > cs.radius || (ct.radius == cs.radius && t <= s)))
    {
        Action::SplitTarget
    } else {
        Action::SplitSource
    }
}

/// Children of cell `c` in pre-order layout.
#[inline]
pub fn children<const D: usize>(cells: &[Cell<D>], c: u32) -> impl Iterator<Item = u32> + '_ {
    let end = cells[c as usize].end;
    let mut next = if cells[c as usize].is_leaf {
        end
    } else {
        c + 1
    };
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        let cur = next;
        next = cells[cur as usize].end;
        Some(cur)
    })
}

/// Output lists of a traversal.
#[derive(Default)]
pub struct Lists {
    pub stack: Vec<(u32, u32)>,
    pub m2l: Vec<(u32, u32)>,
    pub p2p: Vec<(u32, u32)>,
}

/// Traverses from the pairs `(t0, s)` for `s` in `sources`. When `defer` returns
/// `true` for a target cell, the pair is handed to `deferred` instead of processed.
#[inline]
pub fn traverse<const D: usize>(
    cells: &[Cell<D>],
    params: &TraversalParams,
    t0: u32,
    sources: &[u32],
    lists: &mut Lists,
    defer: impl Fn(u32) -> bool,
    mut deferred: impl FnMut(u32, u32),
) {
    lists.stack.clear();
    lists.stack.extend(sources.iter().rev().map(|&s| (t0, s)));
    while let Some((t, s)) = lists.stack.pop() {
        if defer(t) {
            deferred(t, s);
            continue;
        }
        match classify(cells, t, s, params) {
            Action::M2l => lists.m2l.push((t, s)),
            Action::P2p => lists.p2p.push((t, s)),
            Action::SplitTarget => {
                let base = lists.stack.len();
                lists.stack.extend(children(cells, t).map(|c| (c, s)));
                lists.stack[base..].reverse();
            }
            Action::SplitSource => {
                let base = lists.stack.len();
                lists.stack.extend(children(cells, s).map(|c| (t, c)));
                lists.stack[base..].reverse();
            }
        }
    }
}

/// Groups `pairs` (target, source) by target into CSR form: the sources of target
/// `base + k` are `src[off[k] .. off[k + 1]]`, in the order they appear in `pairs`.
pub fn bucket(
    pairs: &[(u32, u32)],
    base: u32,
    ncells: usize,
    off: &mut Vec<u32>,
    src: &mut Vec<u32>,
) {
    off.clear();
    off.resize(ncells + 1, 0);
    for &(t, _) in pairs {
        off[(t - base) as usize + 1] += 1;
    }
    for k in 0..ncells {
        off[k + 1] += off[k];
    }
    src.clear();
    src.resize(pairs.len(), 0);
    for &(t, s) in pairs {
        let k = (t - base) as usize;
        src[off[k] as usize] = s;
        off[k] += 1;
    }
    for k in (1..=ncells).rev() {
        off[k] = off[k - 1];
    }
    off[0] = 0;
}
