//! The softening correction of the 1D coupling, summed by a one-dimensional
//! black-box fast multipole method on the sorted points.
//!
//! Sums, for sorted distinct points `y_0 < ... < y_{m-1}` with charges `Q_g`,
//!
//!   `C_g = sum_{h != g} Q_h c(y_g - y_h)`,   `C'_g = sum_{h != g} Q_h c'(y_g - y_h)`,
//!
//! with `c(u) = sqrt(u^2 + delta^2) - |u| = delta^2 / (sqrt(u^2 + delta^2) + |u|)` and
//! `c'(u) = -sign(u) c(u) / sqrt(u^2 + delta^2)` (unscaled; the caller multiplies by the
//! Green's function's factor).
//!
//! Why it is cheap: for target and source intervals `A`, `B` on either side of a gap, `c`
//! is analytic in both variables (its only non-analyticity, the kink of `|u|` at `u = 0`,
//! is outside; its branch points `u = +-i delta` are at least the gap away), so
//! interpolating it at `p` Chebyshev points in each interval converges like `rho^-p`
//! with `rho >= 3 + sqrt 8` when the gap is at least the wider interval's width
//! (Bernstein ellipse through the nearest singularity; Fong & Darve, "The black-box
//! fast multipole method", J. Comput. Phys. 228, 2009).
//!
//! Method, on a binary tree of index ranges of the sorted points (so in O(m) after the
//! caller's sort, at any clustering):
//!
//! * P2M / M2M: a node's sources become charges at its Chebyshev points,
//!   `M_l = sum_j Q_j S_l(t_j)` with the Lagrange basis `S_l` of the node's points
//!   (barycentric form), from its points (leaf) or its children's Chebyshev points;
//! * M2L: for well-separated nodes (gap `>= SEPARATION x` the wider width), or nodes
//!   narrow against `delta` (`Interactions::separated`: on sorted pairs `c` has no
//!   kink, only the branch points `+-i delta`), the local
//!   values at the target node's Chebyshev points, `L_k += sum_l c(x_k - y_l) M_l`,
//!   and the same with `c'`, both directions from one evaluation of the kernel;
//! * L2L / L2P: local values interpolated from a node to its children's points and
//!   from a leaf to its own points; `c'` has its own local values instead of the
//!   derivative of the interpolant, which would lose a factor `~p^2`;
//! * near pairs (leaves that are not well separated, and each leaf with itself)
//!   directly with the cancellation-free `c`.
//!
//! Coordinates are kept relative to each node's midpoint, `x = mid + half t`, and node
//! point differences are formed as `(mid_A - mid_B) + (half_A t_k - half_B t_l)`, so
//! that nodes narrower than an ulp of their position still interpolate.
//!
//! The error is `O(rho^-p)` relative to the correction's own size, which is at most
//! `delta` per unit charge while the exact `|u|` part of the sum is of the size of `|u|`;
//! `NODES` and `SEPARATION` are chosen for 1e-13 of the sum (the tests compare with the
//! direct sum at 1e-12). The nodes are in depth-first order, so a subtree is a
//! contiguous range of nodes and of points: the two halves of a large node run in
//! parallel in each pass (P2M/M2M, the interactions within each half, L2L/L2P), writing
//! disjoint ranges, and every sum receives its terms in the order of the sequential
//! passes: the same bits on every thread count. The interactions between the two
//! halves follow those within them.

/// Chebyshev points per node, opening criterion and leaf size (see module docs).
pub(super) const NODES: usize = 16;
pub(super) const SEPARATION: f64 = 1.0;
pub(super) const LEAF: usize = 32;

/// Nodes closer than the gap criterion are interpolated when the softening's
/// branch points leave a Bernstein ellipse of at least this parameter about
/// each ([`Interactions::separated`]). Larger than the gap criterion's
/// `3 + sqrt 8`: the derivative's kernel has inverse-square-root branch
/// points there, whose Chebyshev coefficients decay more slowly than those of
/// the kink; at `3 + sqrt 8` the bench cloud's gradient error rose from
/// 1.5e-13 to 1.9e-12 of its largest value, at 7 and above it is 1.5e-13 again
/// (`sorted1d_tuning`, BENCHMARKS.md).
pub(super) const SOFT_RHO: f64 = 8.0;

/// Largest number of Chebyshev points [`Correction::with_params`] accepts.
const MAX_NODES: usize = 16;

/// Partial sums per near-field row.
const LANES: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Index range of the node's points.
    start: usize,
    end: usize,
    /// Midpoint and half-width of `[y_start, y_{end-1}]`.
    mid: f64,
    half: f64,
    /// Children (`None` for a leaf).
    children: Option<(usize, usize)>,
}

impl Node {
    /// A node of a single point has width zero and one interpolation point.
    fn points(&self, p: usize) -> usize {
        if self.half > 0.0 { p } else { 1 }
    }
}

/// The correction's evaluator, with its scratch space (reused between calls).
pub(super) struct Correction {
    delta2: f64,
    p: usize,
    separation: f64,
    leaf: usize,
    /// Chebyshev points of the first kind on [-1, 1], and their barycentric weights.
    cheb: [f64; MAX_NODES],
    bary: [f64; MAX_NODES],
    nodes: Vec<Node>,
    /// Per node, `p` values: multipole charges, local potential, local derivative.
    multipole: Vec<f64>,
    local: Vec<f64>,
    local_grad: Vec<f64>,
    /// Per node, the interpolation from its parent (`p x p`, row = child point).
    transfer: Vec<f64>,
    /// Per point, its leaf's Lagrange basis there (`p` values), shared by P2M and L2P.
    point_basis: Vec<f64>,
}

impl Correction {
    pub(super) fn new(delta: f64) -> Self {
        Self::with_params(delta, NODES, SEPARATION, LEAF)
    }

    pub(super) fn with_params(delta: f64, p: usize, separation: f64, leaf: usize) -> Self {
        assert!((2..=MAX_NODES).contains(&p), "2 <= p <= {MAX_NODES}");
        assert!(separation > 0.0 && leaf >= 1);
        let mut cheb = [0.0; MAX_NODES];
        let mut bary = [0.0; MAX_NODES];
        for k in 0..p {
            let angle = (2 * k + 1) as f64 * std::f64::consts::PI / (2 * p) as f64;
            cheb[k] = angle.cos();
            bary[k] = if k % 2 == 0 { 1.0 } else { -1.0 } * angle.sin();
        }
        Self {
            delta2: delta * delta,
            p,
            separation,
            leaf,
            cheb,
            bary,
            nodes: Vec::new(),
            multipole: Vec::new(),
            local: Vec::new(),
            local_grad: Vec::new(),
            transfer: Vec::new(),
            point_basis: Vec::new(),
        }
    }

    /// Overwrites `phi[g] = C_g`, `grad[g] = C'_g` (module docs) for strictly increasing
    /// `y`.
    pub(super) fn evaluate(&mut self, y: &[f64], q: &[f64], phi: &mut [f64], grad: &mut [f64]) {
        let m = y.len();
        debug_assert!(y.windows(2).all(|w| w[0] < w[1]), "points must increase");
        phi[..m].fill(0.0);
        grad[..m].fill(0.0);
        if m == 0 {
            return;
        }
        self.build(y);
        let p = self.p;
        let len = self.nodes.len() * p;
        for v in [&mut self.multipole, &mut self.local, &mut self.local_grad] {
            v.clear();
            v.resize(len, 0.0);
        }
        self.transfer.resize(self.nodes.len() * p * p, 0.0);
        self.point_basis.resize(m * p, 0.0);
        self.upward(y, q);
        let ctx = Interactions {
            nodes: &self.nodes,
            multipole: &self.multipole,
            cheb: &self.cheb,
            p,
            delta2: self.delta2,
            delta: self.delta2.sqrt(),
            separation: self.separation,
            y,
            q,
        };
        let acc = Accumulators {
            node0: 0,
            point0: 0,
            local: &mut self.local,
            local_grad: &mut self.local_grad,
            phi: &mut phi[..m],
            grad: &mut grad[..m],
        };
        ctx.self_interact(0, acc);
        self.downward(phi, grad);
    }

    /// Nodes in depth-first pre-order: every node after its parent (the
    /// downward pass runs forward, the upward pass backward), and every
    /// subtree a contiguous range of nodes (the interactions of two sibling
    /// subtrees then touch disjoint ranges, [`Accumulators::split`]).
    fn build(&mut self, y: &[f64]) {
        self.nodes.clear();
        self.subtree(y, 0, y.len());
    }

    /// Appends the subtree of the points `start..end` and returns its root.
    fn subtree(&mut self, y: &[f64], start: usize, end: usize) -> usize {
        let (lo, hi) = (y[start], y[end - 1]);
        let k = self.nodes.len();
        self.nodes.push(Node {
            start,
            end,
            mid: 0.5 * lo + 0.5 * hi,
            half: 0.5 * (hi - lo),
            children: None,
        });
        if end - start > self.leaf {
            let split = start + (end - start) / 2;
            let c0 = self.subtree(y, start, split);
            let c1 = self.subtree(y, split, end);
            self.nodes[k].children = Some((c0, c1));
        }
        k
    }

    /// Barycentric Lagrange basis of the `n` points at `t` ([`lagrange_basis`]).
    #[cfg(test)]
    fn basis(&self, n: usize, t: f64, out: &mut [f64; MAX_NODES]) {
        lagrange_basis(&self.cheb, &self.bary, n, t, out);
    }

    /// Relative coordinate of `x` in `node`.
    fn relative(node: &Node, x: f64) -> f64 {
        if node.half > 0.0 {
            (x - node.mid) / node.half
        } else {
            0.0
        }
    }

    /// P2M at the leaves, the parent-to-child interpolation matrices, and M2M
    /// ([`Upward`]).
    fn upward(&mut self, y: &[f64], q: &[f64]) {
        let pass = Upward {
            nodes: &self.nodes,
            cheb: &self.cheb,
            bary: &self.bary,
            p: self.p,
            y,
            q,
        };
        pass.run(
            0,
            UpwardOut {
                node0: 0,
                point0: 0,
                multipole: &mut self.multipole,
                transfer: &mut self.transfer,
                point_basis: &mut self.point_basis,
            },
        );
    }

    /// L2L down the tree and L2P at the leaves ([`Downward`]).
    fn downward(&mut self, phi: &mut [f64], grad: &mut [f64]) {
        let m = self.nodes[0].end;
        let pass = Downward {
            nodes: &self.nodes,
            transfer: &self.transfer,
            point_basis: &self.point_basis,
            p: self.p,
        };
        pass.run(
            0,
            Accumulators {
                node0: 0,
                point0: 0,
                local: &mut self.local,
                local_grad: &mut self.local_grad,
                phi: &mut phi[..m],
                grad: &mut grad[..m],
            },
        );
    }
}

/// Nodes of at least this many points have the work of their two halves
/// run in parallel in every pass ([`rayon::join`]); below it the join costs
/// more than it saves. Each sum receives its terms in the same order either
/// way.
const PARALLEL_POINTS: usize = 1024;

/// Runs the work of a node's two halves: in parallel for a node of at
/// least [`PARALLEL_POINTS`] points, else one after the other.
fn halves(points: usize, left: impl FnOnce() + Send, right: impl FnOnce() + Send) {
    if points >= PARALLEL_POINTS {
        rayon::join(left, right);
    } else {
        left();
        right();
    }
}

/// What the interactions read: the tree, its multipoles and the points.
struct Interactions<'a> {
    nodes: &'a [Node],
    multipole: &'a [f64],
    cheb: &'a [f64; MAX_NODES],
    p: usize,
    delta2: f64,
    delta: f64,
    separation: f64,
    y: &'a [f64],
    q: &'a [f64],
}

/// What the interactions within one subtree write: the local values of its
/// nodes, from node `node0` on (`p` per node), and the sums of its points,
/// from point `point0` on.
struct Accumulators<'a> {
    node0: usize,
    point0: usize,
    local: &'a mut [f64],
    local_grad: &'a mut [f64],
    phi: &'a mut [f64],
    grad: &'a mut [f64],
}

impl Accumulators<'_> {
    /// The accumulators of the sibling subtrees `c0` and `c1` (depth-first
    /// order: `c0`'s nodes are `c0..c1`, `c1`'s follow), disjoint.
    fn split(&mut self, nodes: &[Node], p: usize, c0: usize, c1: usize) -> [Accumulators<'_>; 2] {
        let (n0, n1) = ((c0 - self.node0) * p, (c1 - self.node0) * p);
        let (s0, s1) = (nodes[c0].start - self.point0, nodes[c1].start - self.point0);
        let (local0, local1) = self.local[n0..].split_at_mut(n1 - n0);
        let (grad_local0, grad_local1) = self.local_grad[n0..].split_at_mut(n1 - n0);
        let (phi0, phi1) = self.phi[s0..].split_at_mut(s1 - s0);
        let (grad0, grad1) = self.grad[s0..].split_at_mut(s1 - s0);
        [
            Accumulators {
                node0: c0,
                point0: nodes[c0].start,
                local: local0,
                local_grad: grad_local0,
                phi: phi0,
                grad: grad0,
            },
            Accumulators {
                node0: c1,
                point0: nodes[c1].start,
                local: local1,
                local_grad: grad_local1,
                phi: phi1,
                grad: grad1,
            },
        ]
    }
}

impl Interactions<'_> {
    /// Chebyshev point `k` of a node with `n` points ([`cheb_point`]).
    fn cheb_at(&self, n: usize, k: usize) -> f64 {
        cheb_point(self.cheb, n, k)
    }

    /// All interactions within node `a`, into its subtree's accumulators:
    /// those within each child (in parallel for large nodes: they touch
    /// disjoint accumulators), then those between the children.
    fn self_interact(&self, a: usize, mut acc: Accumulators<'_>) {
        let (y, q) = (self.y, self.q);
        match self.nodes[a].children {
            None => {
                let Node { start, end, .. } = self.nodes[a];
                for i in start..end {
                    let (pi, gi) = self.near(y[i], q[i], i + 1..end, &mut acc);
                    acc.phi[i - acc.point0] += pi;
                    acc.grad[i - acc.point0] += gi;
                }
            }
            Some((c0, c1)) => {
                let [left, right] = acc.split(self.nodes, self.p, c0, c1);
                let Node { start, end, .. } = self.nodes[a];
                halves(
                    end - start,
                    || self.self_interact(c0, left),
                    || self.self_interact(c1, right),
                );
                self.interact(c0, c1, &mut acc);
            }
        }
    }

    /// All interactions between node `a` and node `b`, `a` left of `b`.
    fn interact(&self, a: usize, b: usize, acc: &mut Accumulators<'_>) {
        let (y, q) = (self.y, self.q);
        let (na, nb) = (self.nodes[a], self.nodes[b]);
        if self.separated(&na, &nb) {
            self.m2l(a, b, acc);
            return;
        }
        match (na.children, nb.children) {
            (None, None) => {
                for i in na.start..na.end {
                    let (pi, gi) = self.near(y[i], q[i], nb.start..nb.end, acc);
                    acc.phi[i - acc.point0] += pi;
                    acc.grad[i - acc.point0] += gi;
                }
            }
            (Some((a0, a1)), None) => {
                self.interact(a0, b, acc);
                self.interact(a1, b, acc);
            }
            (Some((a0, a1)), Some(_)) if na.half >= nb.half => {
                self.interact(a0, b, acc);
                self.interact(a1, b, acc);
            }
            (_, Some((b0, b1))) => {
                self.interact(a, b0, acc);
                self.interact(a, b1, acc);
            }
        }
    }

    /// Point `x` (charge `qx`) against the points `range`, all right of `x`: adds `x`'s
    /// contributions to theirs and returns theirs to `x` (potential, derivative).
    #[inline(always)]
    fn near(
        &self,
        x: f64,
        qx: f64,
        range: std::ops::Range<usize>,
        acc: &mut Accumulators<'_>,
    ) -> (f64, f64) {
        // Eight partial sums per output: a float reduction vectorizes only if the
        // code itself splits it (the compiler may not reassociate).
        let (mut px, mut gx) = ([0.0; LANES], [0.0; LANES]);
        let (y, q) = (&self.y[range.clone()], &self.q[range.clone()]);
        let local = range.start - acc.point0..range.end - acc.point0;
        let (phi, grad) = (&mut acc.phi[local.clone()], &mut acc.grad[local]);
        let mut rows = y
            .chunks_exact(LANES)
            .zip(q.chunks_exact(LANES))
            .zip(phi.chunks_exact_mut(LANES))
            .zip(grad.chunks_exact_mut(LANES));
        for (((yc, qc), pc), gc) in &mut rows {
            for l in 0..LANES {
                let (c, g) = left_of(self.delta2, x - yc[l]);
                px[l] += qc[l] * c;
                gx[l] += qc[l] * g;
                pc[l] += qx * c;
                gc[l] -= qx * g;
            }
        }
        let done = y.len() / LANES * LANES;
        for j in done..y.len() {
            let (c, g) = left_of(self.delta2, x - y[j]);
            px[0] += q[j] * c;
            gx[0] += q[j] * g;
            phi[j] += qx * c;
            grad[j] -= qx * g;
        }
        (px.iter().sum(), gx.iter().sum())
    }

    /// Whether node `a` and node `b` right of it interact through their
    /// expansions (M2L): when the gap is at least SEPARATION x the wider
    /// width (module docs), or when the softening makes the kernel smooth
    /// across the pair. For `x` in `a` and `y` in `b`, `x < y`, so
    /// `c(x - y) = sqrt((x - y)^2 + delta^2) + (x - y)` has no kink: it is
    /// analytic but for the branch points `x = y +- i delta`. `a`'s
    /// interpolation then converges like `rho^-p`, with `rho` the
    /// Bernstein-ellipse parameter, in `a`'s scaled coordinate, of the nearest
    /// of them, `y_b,start +- i delta`, and `b`'s like that of
    /// `y_a,end +- i delta` in `b`'s; both must reach `SOFT_RHO`. Nodes narrow
    /// against `delta` are accepted even when they touch, which leaves the
    /// near field to the leaves' own pairs when there are many particles per
    /// `delta`.
    fn separated(&self, a: &Node, b: &Node) -> bool {
        let gap = self.y[b.start] - self.y[a.end - 1];
        if gap >= self.separation * 2.0 * a.half.max(b.half) {
            return true;
        }
        let converges = |half: f64, distance: f64| {
            half == 0.0 || ellipse_rho(distance / half, self.delta / half) >= SOFT_RHO
        };
        converges(a.half, self.y[b.start] - a.mid) && converges(b.half, b.mid - self.y[a.end - 1])
    }

    /// M2L between well-separated nodes `a` (left) and `b`, both directions.
    fn m2l(&self, a: usize, b: usize, acc: &mut Accumulators<'_>) {
        let p = self.p;
        let (na, nb) = (self.nodes[a], self.nodes[b]);
        let (ka, kb) = (na.points(p), nb.points(p));
        // Point offsets from b's midpoint (module docs: no rounding of mid + half t).
        let dmid = na.mid - nb.mid;
        let xa: [f64; MAX_NODES] = std::array::from_fn(|k| dmid + na.half * self.cheb_at(ka, k));
        let yb: [f64; MAX_NODES] = std::array::from_fn(|l| nb.half * self.cheb_at(kb, l));
        let ma = &self.multipole[a * p..a * p + ka];
        let mb = &self.multipole[b * p..b * p + kb];
        let (mut lb, mut gb) = ([0.0; MAX_NODES], [0.0; MAX_NODES]);
        let mut mbf = [0.0; MAX_NODES];
        mbf[..kb].copy_from_slice(mb);
        let (la, lb0) = ((a - acc.node0) * p, (b - acc.node0) * p);
        for k in 0..ka {
            // All MAX_NODES lanes (zero charges past kb): a fixed trip count, and
            // partial sums the compiler can keep in vector registers.
            let (mut sa, mut sg) = ([0.0; MAX_NODES], [0.0; MAX_NODES]);
            for l in 0..MAX_NODES {
                let (c, g) = left_of(self.delta2, xa[k] - yb[l]);
                sa[l] = c * mbf[l];
                sg[l] = g * mbf[l];
                lb[l] += c * ma[k];
                gb[l] -= g * ma[k];
            }
            acc.local[la + k] += sa.iter().sum::<f64>();
            acc.local_grad[la + k] += sg.iter().sum::<f64>();
        }
        for l in 0..kb {
            acc.local[lb0 + l] += lb[l];
            acc.local_grad[lb0 + l] += gb[l];
        }
    }
}

/// The upward pass's inputs: the tree, the Chebyshev points and weights,
/// the points and their charges.
struct Upward<'a> {
    nodes: &'a [Node],
    cheb: &'a [f64; MAX_NODES],
    bary: &'a [f64; MAX_NODES],
    p: usize,
    y: &'a [f64],
    q: &'a [f64],
}

/// What the upward pass writes for one subtree: the multipoles and the
/// parent-to-child matrices of its nodes (from node `node0` on) and the
/// leaf bases of its points (from point `point0` on).
struct UpwardOut<'a> {
    node0: usize,
    point0: usize,
    multipole: &'a mut [f64],
    transfer: &'a mut [f64],
    point_basis: &'a mut [f64],
}

impl UpwardOut<'_> {
    /// The outputs of the sibling subtrees `c0` and `c1`, disjoint (as
    /// [`Accumulators::split`]).
    fn split(&mut self, nodes: &[Node], p: usize, c0: usize, c1: usize) -> [UpwardOut<'_>; 2] {
        let (n0, n1) = (c0 - self.node0, c1 - self.node0);
        let (s0, s1) = (nodes[c0].start - self.point0, nodes[c1].start - self.point0);
        let (mult0, mult1) = self.multipole[n0 * p..].split_at_mut((n1 - n0) * p);
        let (tr0, tr1) = self.transfer[n0 * p * p..].split_at_mut((n1 - n0) * p * p);
        let (basis0, basis1) = self.point_basis[s0 * p..].split_at_mut((s1 - s0) * p);
        [
            UpwardOut {
                node0: c0,
                point0: nodes[c0].start,
                multipole: mult0,
                transfer: tr0,
                point_basis: basis0,
            },
            UpwardOut {
                node0: c1,
                point0: nodes[c1].start,
                multipole: mult1,
                transfer: tr1,
                point_basis: basis1,
            },
        ]
    }
}

impl Upward<'_> {
    /// The subtree of node `a`: its children's subtrees (in parallel for
    /// large nodes), then P2M or M2M into `a`, each multipole summed in the
    /// order of the sequential pass.
    fn run(&self, a: usize, mut out: UpwardOut<'_>) {
        let (p, node) = (self.p, self.nodes[a]);
        let na = node.points(p);
        let own = (a - out.node0) * p;
        let mut s = [0.0; MAX_NODES];
        match node.children {
            None => {
                for j in node.start..node.end {
                    let t = Correction::relative(&node, self.y[j]);
                    lagrange_basis(self.cheb, self.bary, na, t, &mut s);
                    for l in 0..na {
                        out.multipole[own + l] += self.q[j] * s[l];
                    }
                    let at = (j - out.point0) * p;
                    out.point_basis[at..at + na].copy_from_slice(&s[..na]);
                }
            }
            Some((c0, c1)) => {
                let [left, right] = out.split(self.nodes, p, c0, c1);
                halves(
                    node.end - node.start,
                    || self.run(c0, left),
                    || self.run(c1, right),
                );
                for c in [c0, c1] {
                    let child = self.nodes[c];
                    let nc = child.points(p);
                    for m in 0..nc {
                        let offset =
                            (child.mid - node.mid) + child.half * cheb_point(self.cheb, nc, m);
                        let t = if node.half > 0.0 {
                            offset / node.half
                        } else {
                            0.0
                        };
                        lagrange_basis(self.cheb, self.bary, na, t, &mut s);
                        let row = ((c - out.node0) * p + m) * p;
                        out.transfer[row..row + na].copy_from_slice(&s[..na]);
                        let qm = out.multipole[(c - out.node0) * p + m];
                        for l in 0..na {
                            out.multipole[own + l] += qm * s[l];
                        }
                    }
                }
            }
        }
    }
}

/// The downward pass's inputs: the tree, the parent-to-child matrices and
/// the leaf bases of the points.
struct Downward<'a> {
    nodes: &'a [Node],
    transfer: &'a [f64],
    point_basis: &'a [f64],
    p: usize,
}

impl Downward<'_> {
    /// L2L from node `a` into its children, then their subtrees (in
    /// parallel for large nodes: disjoint accumulators); L2P at a leaf.
    fn run(&self, a: usize, mut acc: Accumulators<'_>) {
        let (p, node) = (self.p, self.nodes[a]);
        let na = node.points(p);
        let own = (a - acc.node0) * p;
        match node.children {
            Some((c0, c1)) => {
                for c in [c0, c1] {
                    for m in 0..self.nodes[c].points(p) {
                        let row = (c * p + m) * p;
                        let (mut v, mut g) = (0.0, 0.0);
                        for l in 0..na {
                            v += self.transfer[row + l] * acc.local[own + l];
                            g += self.transfer[row + l] * acc.local_grad[own + l];
                        }
                        acc.local[(c - acc.node0) * p + m] += v;
                        acc.local_grad[(c - acc.node0) * p + m] += g;
                    }
                }
                let [left, right] = acc.split(self.nodes, p, c0, c1);
                halves(
                    node.end - node.start,
                    || self.run(c0, left),
                    || self.run(c1, right),
                );
            }
            None => {
                for j in node.start..node.end {
                    let s = &self.point_basis[j * p..j * p + na];
                    let (mut v, mut g) = (0.0, 0.0);
                    for l in 0..na {
                        v += s[l] * acc.local[own + l];
                        g += s[l] * acc.local_grad[own + l];
                    }
                    acc.phi[j - acc.point0] += v;
                    acc.grad[j - acc.point0] += g;
                }
            }
        }
    }
}

/// Barycentric Lagrange basis of the first `n` points of `cheb` (weights
/// `bary`) at `t` (relative coordinate).
fn lagrange_basis(
    cheb: &[f64; MAX_NODES],
    bary: &[f64; MAX_NODES],
    n: usize,
    t: f64,
    out: &mut [f64; MAX_NODES],
) {
    if n == 1 {
        out[0] = 1.0;
        return;
    }
    // Division by zero at a Chebyshev point itself, caught after the loop so
    // that the loop has no branch.
    for k in 0..n {
        out[k] = bary[k] / (t - cheb[k]);
    }
    if let Some(hit) = out[..n].iter().position(|v| !v.is_finite()) {
        out[..n].fill(0.0);
        out[hit] = 1.0;
        return;
    }
    let inv = 1.0 / out[..n].iter().sum::<f64>();
    for v in &mut out[..n] {
        *v *= inv;
    }
}

/// The parameter `rho` of the Bernstein ellipse (foci +-1) through `re + i im`:
/// Chebyshev interpolation on [-1, 1] of a function analytic inside it
/// converges like `rho^-p`. `rho = A + sqrt(A^2 - 1)` with `A` the ellipse's
/// semi-major axis, half the sum of the distances to the foci.
fn ellipse_rho(re: f64, im: f64) -> f64 {
    let a = 0.5 * ((re - 1.0).hypot(im) + (re + 1.0).hypot(im));
    a + (a * a - 1.0).max(0.0).sqrt()
}

/// Chebyshev point `k` of a node with `n` points (the midpoint when `n = 1`).
fn cheb_point(cheb: &[f64; MAX_NODES], n: usize, k: usize) -> f64 {
    if n == 1 { 0.0 } else { cheb[k] }
}

/// `(c(u), c'(u))` for `u < 0` (the target left of the source): `c = delta^2 / (r - u)`,
/// `c' = c / r`, `r = sqrt(u^2 + delta^2)`, with one division.
#[inline(always)]
fn left_of(delta2: f64, u: f64) -> (f64, f64) {
    let r = (u * u + delta2).sqrt();
    let inv = delta2 / (r * (r - u));
    (r * inv, inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum_{h != g} Q_h c(y_g - y_h)` and its derivative, pair by pair.
    fn brute_force(delta: f64, y: &[f64], q: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let d2 = delta * delta;
        let m = y.len();
        let (mut phi, mut grad) = (vec![0.0; m], vec![0.0; m]);
        for g in 0..m {
            for h in 0..m {
                if h != g {
                    let u = y[g] - y[h];
                    let r = (u * u + d2).sqrt();
                    let c = d2 / (r + u.abs());
                    phi[g] += q[h] * c;
                    grad[g] -= q[h] * u.signum() * c / r;
                }
            }
        }
        (phi, grad)
    }

    /// The tree against the pair sum. Since `0 <= c <= delta` and `|c'| <= 1`, the sums
    /// are at most `delta sum |Q|` and `sum |Q|`; the interpolation error,
    /// `~(3 + sqrt 8)^-16 ~ 5e-13` of the separated part, plus rounding must stay below
    /// 1e-12 of these scales.
    fn check(delta: f64, y: &[f64], q: &[f64]) {
        let m = y.len();
        let mut tree = Correction::new(delta);
        let (mut phi, mut grad) = (vec![0.0; m], vec![0.0; m]);
        tree.evaluate(y, q, &mut phi, &mut grad);
        let (pe, ge) = brute_force(delta, y, q);
        let mass: f64 = q.iter().map(|v| v.abs()).sum();
        for g in 0..m {
            assert!(
                (phi[g] - pe[g]).abs() <= 1e-12 * delta * mass,
                "delta {delta} point {g} of {m}: phi {} against {}",
                phi[g],
                pe[g]
            );
            assert!(
                (grad[g] - ge[g]).abs() <= 1e-12 * mass,
                "delta {delta} point {g} of {m}: grad {} against {}",
                grad[g],
                ge[g]
            );
        }
    }

    fn charges(m: usize) -> Vec<f64> {
        (0..m)
            .map(|i| if i % 3 == 0 { -1.0 } else { 0.7 } / m as f64)
            .collect()
    }

    /// The halves of large nodes run in parallel on disjoint ranges in every
    /// pass: the same bits on one thread and on two, over several levels of
    /// parallel nodes (m = 9000: nodes of 9000, 4500, 2250 and 1125 points).
    #[test]
    fn same_bits_on_one_and_two_threads() {
        let m = 9000;
        let y: Vec<f64> = (0..m)
            .map(|i| (i as f64 * 0.618_034).fract() + i as f64)
            .collect();
        let q = charges(m);
        let run = |threads: usize| {
            crate::util::parallel::on_threads(threads, || {
                let mut c = Correction::new(0.05);
                let (mut phi, mut grad) = (vec![0.0; m], vec![0.0; m]);
                c.evaluate(&y, &q, &mut phi, &mut grad);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&phi), bits(&grad))
            })
        };
        assert!(m / 8 >= PARALLEL_POINTS);
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn matches_the_pair_sum_on_spread_and_clustered_points() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for m in [1, 2, 3, 31, 32, 33, 100, 2000] {
            // Spread: uniform on [-1, 1]; clustered: 90% in a core 1e-4 wide, far from
            // the origin, the rest spread over [1e3 - 2, 1e3 + 2].
            let mut spread: Vec<f64> = (0..m).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
            let mut clustered: Vec<f64> = (0..m)
                .map(|i| {
                    let w = if i % 10 == 0 { 4.0 } else { 1e-4 };
                    1e3 + w * (rng.random::<f64>() - 0.5)
                })
                .collect();
            for y in [&mut spread, &mut clustered] {
                y.sort_by(f64::total_cmp);
                y.dedup();
                for delta in [1e-6, 1e-3, 0.05, 3.0] {
                    check(delta, y, &charges(y.len()));
                }
            }
        }
    }

    /// Points an ulp apart: nodes narrower than an ulp of their midpoint still
    /// interpolate (module docs), and a node of one point has one Chebyshev point.
    #[test]
    fn nodes_narrower_than_an_ulp_of_their_position() {
        let mut y = Vec::new();
        let mut v: f64 = 7.0;
        for _ in 0..300 {
            y.push(v);
            v = v.next_up();
        }
        for i in 0..300 {
            y.push(8.0 + 0.01 * i as f64);
        }
        for delta in [1e-9, 0.02, 1.0] {
            check(delta, &y, &charges(y.len()));
        }
    }

    /// Each of the [`NODES`] points of a node is interpolated exactly.
    #[test]
    fn basis_is_exact_at_its_points_and_sums_to_one() {
        let c = Correction::new(0.1);
        let mut s = [0.0; MAX_NODES];
        for k in 0..NODES {
            c.basis(NODES, c.cheb[k], &mut s);
            for l in 0..NODES {
                assert_eq!(s[l], if l == k { 1.0 } else { 0.0 });
            }
        }
        for t in [-1.0, -0.3, 0.0, 0.77, 1.0] {
            c.basis(NODES, t, &mut s);
            assert!((s[..NODES].iter().sum::<f64>() - 1.0).abs() < 1e-14);
        }
    }
}
