//! Closed forms on an interval [a, b] (d = 1, SPEC §7-8): the Green's
//! function of -d^2/dx^2 with the walls' homogeneous conditions, the
//! harmonic wall term, and the potentials of background charges.
//!
//! With u = x - a, v = y - a, L = b - a, every Green's function of the
//! interval is the free one (G(x - y) = -|x - y| / 2 of [`crate::model::green`])
//! plus a polynomial:
//!
//! ```text
//! G_box(x, y) = -|x - y| / 2 + H(u, v),
//! H(u, v) = k0 + k1 (u + v) + k2 u v + k3 (u^2 + v^2),
//! ```
//!
//! | walls (a, b)          | G_box               | k0   | k1   | k2   | k3     |
//! |-----------------------|---------------------|------|------|------|--------|
//! | electrode, electrode  | min(u,v)(L-max)/L   | 0    | 1/2  | -1/L | 0      |
//! | electrode, insulating | min(u, v)           | 0    | 1/2  | 0    | 0      |
//! | insulating, electrode | L - max(u, v)       | L    | -1/2 | 0    | 0      |
//! | insulating, insul.    | Neumann, zero mean  | L/3  | -1/2 | 0    | 1/(2L) |
//!
//! (the last solves -G'' = delta_y - 1/L, G' = 0 at both walls, and
//! int_a^b G(x, y) dx = 0: psi is fixed up to a constant the energy of a
//! neutral box does not see). So sums over charges need only the moments
//! Q = sum q, P1 = sum q u, P2 = sum q u^2:
//!
//! ```text
//! sum_{i,j} q_i q_j H(u_i, u_j) = k0 Q^2 + 2 k1 Q P1 + k2 P1^2 + 2 k3 Q P2.
//! ```
//!
//! The wall term is phi_walls = h_V + sum over insulating walls w of
//! sigma_w G_box(x, s_w) (Green's representation: a charged insulating
//! wall acts as a sheet of charge sigma_w on the wall), with h_V the
//! harmonic function with the electrodes' values (linear between two
//! electrodes, constant with one, 0 with none).

use super::domain::WallCondition;

/// The interval [a, a + L] with its two walls' conditions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The lower end a.
    pub a: f64,
    /// The length L > 0.
    pub length: f64,
    /// The conditions at a and at a + L.
    pub walls: [WallCondition; 2],
    /// The coefficients k0..k3 of H (module docs).
    k: [f64; 4],
}

impl Interval {
    /// The interval [lower, upper] with walls `walls` (lower, upper).
    pub fn new(lower: f64, upper: f64, walls: [WallCondition; 2]) -> Self {
        let l = upper - lower;
        let k = match (walls[0].is_electrode(), walls[1].is_electrode()) {
            (true, true) => [0.0, 0.5, -1.0 / l, 0.0],
            (true, false) => [0.0, 0.5, 0.0, 0.0],
            (false, true) => [l, -0.5, 0.0, 0.0],
            (false, false) => [l / 3.0, -0.5, 0.0, 0.5 / l],
        };
        Interval {
            a: lower,
            length: l,
            walls,
            k,
        }
    }

    /// The coefficients (k0, k1, k2, k3) of H.
    pub fn coefficients(&self) -> [f64; 4] {
        self.k
    }

    /// H(u, v) and dH/du.
    pub fn regular(&self, u: f64, v: f64) -> (f64, f64) {
        let [k0, k1, k2, k3] = self.k;
        (
            k0 + k1 * (u + v) + k2 * u * v + k3 * (u * u + v * v),
            k1 + k2 * v + 2.0 * k3 * u,
        )
    }

    /// G_box(x, y) and dG_box/dx.
    pub fn green(&self, x: f64, y: f64) -> (f64, f64) {
        let (h, dh) = self.regular(x - self.a, y - self.a);
        let s = x - y;
        // The free G(s) = c |s| and its derivative c sign(s), c = -1/2.
        let c = super::green::scale(1);
        (c * s.abs() + h, c * sign(s) + dh)
    }

    /// The wall term phi_walls(x) and its derivative (module docs).
    pub fn wall_potential(&self, x: f64) -> (f64, f64) {
        let (l, u) = (self.length, x - self.a);
        let (mut phi, mut dphi) = match self.walls {
            [
                WallCondition::Electrode { potential: va },
                WallCondition::Electrode { potential: vb },
            ] => (va + (vb - va) * u / l, (vb - va) / l),
            [WallCondition::Electrode { potential }, _]
            | [_, WallCondition::Electrode { potential }] => (potential, 0.0),
            _ => (0.0, 0.0),
        };
        for (side, w) in self.walls.iter().enumerate() {
            if let WallCondition::Insulating { surface_charge } = *w
                && surface_charge != 0.0
            {
                let (g, dg) = self.green(x, self.a + side as f64 * l);
                phi += surface_charge * g;
                dphi += surface_charge * dg;
            }
        }
        (phi, dphi)
    }
}

/// sign(s), 0 at 0 (the average of the one-sided derivatives of |s|).
#[inline]
fn sign(s: f64) -> f64 {
    if s > 0.0 {
        1.0
    } else if s < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Standard normal density.
fn phi(z: f64) -> f64 {
    if z.is_infinite() {
        0.0
    } else {
        (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }
}

/// Phi(q) - Phi(p), the standard normal mass of [p, q], accurate in both tails.
fn mass(p: f64, q: f64) -> f64 {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    if p >= 0.0 {
        0.5 * (libm::erfc(p * s) - libm::erfc(q * s))
    } else if q <= 0.0 {
        0.5 * (libm::erfc(-q * s) - libm::erfc(-p * s))
    } else {
        1.0 - 0.5 * (libm::erfc(-p * s) + libm::erfc(q * s))
    }
}

/// int_p^q z phi(z) dz.
fn first(p: f64, q: f64) -> f64 {
    phi(p) - phi(q)
}

/// z phi(z), 0 at infinity.
fn z_phi(z: f64) -> f64 {
    if z.is_infinite() { 0.0 } else { z * phi(z) }
}

/// A background charge density on the line, restricted to [lo, hi]
/// (infinite ends in free space), in the terms its potential needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineCharge {
    /// Q uniform on [l, r].
    Uniform {
        /// Total charge.
        q: f64,
        /// Left end.
        l: f64,
        /// Right end.
        r: f64,
    },
    /// Q N(mu, s^2) restricted to [lo, hi] and renormalized.
    Gaussian {
        /// Total charge.
        q: f64,
        /// Mean.
        mu: f64,
        /// Standard deviation.
        s: f64,
        /// Lower end of the restriction (-inf in free space).
        lo: f64,
        /// Upper end (+inf in free space).
        hi: f64,
    },
}

impl LineCharge {
    /// A(x) = int |x - y| C(y) dy and A'(x).
    pub fn abs_moment(&self, x: f64) -> (f64, f64) {
        match *self {
            LineCharge::Uniform { q, l, r } => {
                let c = q / (r - l);
                if x <= l {
                    (q * (0.5 * (l + r) - x), -q)
                } else if x >= r {
                    (q * (x - 0.5 * (l + r)), q)
                } else {
                    (
                        0.5 * c * ((x - l) * (x - l) + (r - x) * (r - x)),
                        c * ((x - l) - (r - x)),
                    )
                }
            }
            LineCharge::Gaussian { q, mu, s, lo, hi } => {
                let (p, pq) = ((lo - mu) / s, (hi - mu) / s);
                let z = mass(p, pq);
                let t = (x - mu) / s;
                let c = t.clamp(p, pq);
                let below = t * mass(p, c) - first(p, c);
                let above = first(c, pq) - t * mass(c, pq);
                (
                    q * s / z * (below + above),
                    q / z * (mass(p, c) - mass(c, pq)),
                )
            }
        }
    }

    /// (Q, int C v, int C v^2) with v = y - a: the moments H needs.
    pub fn moments(&self, a: f64) -> (f64, f64, f64) {
        match *self {
            LineCharge::Uniform { q, l, r } => {
                let (u0, u1) = (l - a, r - a);
                (
                    q,
                    q * 0.5 * (u0 + u1),
                    q * (u1 * u1 * u1 - u0 * u0 * u0) / (3.0 * (u1 - u0)),
                )
            }
            LineCharge::Gaussian { q, mu, s, lo, hi } => {
                let (p, pq) = ((lo - mu) / s, (hi - mu) / s);
                let z = mass(p, pq);
                let (i0, i1) = (z, first(p, pq));
                let i2 = i0 + z_phi(p) - z_phi(pq);
                let m = mu - a;
                (
                    q,
                    q / z * (m * i0 + s * i1),
                    q / z * (m * m * i0 + 2.0 * m * s * i1 + s * s * i2),
                )
            }
        }
    }

    /// psi_C(x) = int G(x, y) C(y) dy and its derivative: the free kernel
    /// -|x - y|/2 when `interval` is `None`, else the interval's G_box.
    pub fn potential(&self, x: f64, interval: Option<&Interval>) -> (f64, f64) {
        let (a_abs, da) = self.abs_moment(x);
        let (mut psi, mut dpsi) = (-0.5 * a_abs, -0.5 * da);
        if let Some(iv) = interval {
            let (q, m1, m2) = self.moments(iv.a);
            let [k0, k1, k2, k3] = iv.coefficients();
            let u = x - iv.a;
            psi += k0 * q + k1 * (u * q + m1) + k2 * u * m1 + k3 * (u * u * q + m2);
            dpsi += k1 * q + k2 * m1 + 2.0 * k3 * u * q;
        }
        (psi, dpsi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALLS: [[WallCondition; 2]; 4] = [
        [
            WallCondition::Electrode { potential: 0.3 },
            WallCondition::Electrode { potential: -1.0 },
        ],
        [
            WallCondition::Electrode { potential: 0.5 },
            WallCondition::Insulating {
                surface_charge: 0.2,
            },
        ],
        [
            WallCondition::Insulating {
                surface_charge: -0.4,
            },
            WallCondition::Electrode { potential: 2.0 },
        ],
        [
            WallCondition::Insulating {
                surface_charge: 0.1,
            },
            WallCondition::Insulating {
                surface_charge: -0.3,
            },
        ],
    ];

    /// Each G_box solves -G'' = delta_y (- 1/L with insulating walls only)
    /// with the walls' homogeneous conditions: its second difference away
    /// from y, its jump of slope -1 at y, zero at an electrode and zero
    /// slope at an insulating wall, symmetric, and (insulating only) zero
    /// mean. Polynomials of degree 2: the differences are exact to rounding.
    #[test]
    fn each_green_function_solves_its_problem() {
        for walls in WALLS {
            let iv = Interval::new(-1.0, 2.0, walls);
            let l = 3.0;
            let neumann = !walls[0].is_electrode() && !walls[1].is_electrode();
            let y = 0.4;
            let h = 1e-3;
            for &x in &[-0.7, 0.1, 1.3, 1.9] {
                let g = |x: f64| iv.green(x, y).0;
                let second = (g(x + h) - 2.0 * g(x) + g(x - h)) / (h * h);
                let want = if neumann { 1.0 / l } else { 0.0 };
                assert!((second - want).abs() < 1e-6, "{walls:?} x={x}: {second}");
                assert!((iv.green(x, y).0 - iv.green(y, x).0).abs() < 1e-14);
                let fd = (g(x + 1e-6) - g(x - 1e-6)) / 2e-6;
                assert!((fd - iv.green(x, y).1).abs() < 1e-8);
            }
            let jump = iv.green(y + 1e-12, y).1 - iv.green(y - 1e-12, y).1;
            assert!((jump + 1.0).abs() < 1e-9, "{walls:?}: jump {jump}");
            for (side, w) in walls.iter().enumerate() {
                let x = -1.0 + side as f64 * l;
                let (g, dg) = iv.green(x, y);
                if w.is_electrode() {
                    assert!(g.abs() < 1e-14, "{walls:?} side {side}: G = {g}");
                } else {
                    assert!(dg.abs() < 1e-14, "{walls:?} side {side}: G' = {dg}");
                }
            }
            if neumann {
                let n = 30_000;
                let mean: f64 = (0..n)
                    .map(|i| iv.green(-1.0 + (i as f64 + 0.5) * l / n as f64, y).0)
                    .sum::<f64>()
                    / n as f64;
                assert!(mean.abs() < 1e-8, "mean {mean}");
            }
        }
    }

    /// The wall term is harmonic (linear) away from the walls and takes
    /// each wall's data: psi = potential at an electrode, psi' . nu =
    /// surface_charge at an insulating wall, nu = -1 at a and +1 at b. With
    /// insulating walls only, the sheet charges sit at the walls and
    /// phi'' = -(sigma_a + sigma_b)/L inside (the compensating background of
    /// the Neumann function): the wall data still hold.
    #[test]
    fn the_wall_term_takes_the_walls_data() {
        for walls in WALLS {
            let iv = Interval::new(-1.0, 2.0, walls);
            for (side, w) in walls.iter().enumerate() {
                let x = -1.0 + side as f64 * 3.0;
                let inward = if side == 0 { 1e-13 } else { -1e-13 };
                let (phi, dphi) = iv.wall_potential(x + inward);
                match *w {
                    WallCondition::Electrode { potential } => {
                        assert!((phi - potential).abs() < 1e-12, "{walls:?}: {phi}")
                    }
                    WallCondition::Insulating { surface_charge } => {
                        let normal = if side == 0 { -1.0 } else { 1.0 };
                        assert!(
                            (dphi * normal - surface_charge).abs() < 1e-12,
                            "{walls:?} side {side}: {dphi}"
                        )
                    }
                }
            }
        }
    }

    /// psi_C of a uniform and of a (restricted) Gaussian background against
    /// a midpoint quadrature of int G(x, y) C(y) dy, 100 000 nodes on each
    /// piece between the kink at x and the jumps of C (error O(dy^2):
    /// below 1e-9 here), and its
    /// derivative against central differences.
    #[test]
    fn background_potentials_match_quadrature() {
        let charges = [
            LineCharge::Uniform {
                q: 0.7,
                l: -0.5,
                r: 1.2,
            },
            LineCharge::Gaussian {
                q: -1.3,
                mu: 0.3,
                s: 0.6,
                lo: -1.0,
                hi: 2.0,
            },
        ];
        let density = |c: &LineCharge, y: f64| match *c {
            LineCharge::Uniform { q, l, r } => {
                if (l..=r).contains(&y) {
                    q / (r - l)
                } else {
                    0.0
                }
            }
            LineCharge::Gaussian { q, mu, s, lo, hi } => {
                let z = mass((lo - mu) / s, (hi - mu) / s);
                q * phi((y - mu) / s) / (s * z)
            }
        };
        for walls in WALLS {
            let iv = Interval::new(-1.0, 2.0, walls);
            for c in &charges {
                for &x in &[-0.9, 0.0, 0.77, 1.95] {
                    // Midpoint rule on the pieces between the kinks and jumps
                    // (x, and a uniform charge's ends): O(dy^2) on each.
                    let mut cuts = vec![-1.0, x, 2.0];
                    if let LineCharge::Uniform { l, r, .. } = *c {
                        cuts.extend([l, r]);
                    }
                    cuts.sort_by(f64::total_cmp);
                    let mut quad = 0.0;
                    for piece in cuts.windows(2) {
                        let n = 100_000;
                        let dy = (piece[1] - piece[0]) / n as f64;
                        quad += (0..n)
                            .map(|i| {
                                let y = piece[0] + (i as f64 + 0.5) * dy;
                                iv.green(x, y).0 * density(c, y) * dy
                            })
                            .sum::<f64>();
                    }
                    let (psi, dpsi) = c.potential(x, Some(&iv));
                    assert!(
                        (psi - quad).abs() < 1e-7,
                        "{walls:?} {c:?} x={x}: {psi} vs {quad}"
                    );
                    let e = 1e-6;
                    let fd = (c.potential(x + e, Some(&iv)).0 - c.potential(x - e, Some(&iv)).0)
                        / (2.0 * e);
                    assert!((fd - dpsi).abs() < 1e-7, "{c:?} x={x}: {dpsi} vs {fd}");
                }
            }
        }
        // Free space: the Gaussian's |x - y| moment has the closed form
        // s sqrt(2/pi) exp(-t^2/2) + (x - mu) erf(t/sqrt 2), t = (x - mu)/s.
        let g = LineCharge::Gaussian {
            q: 1.0,
            mu: 0.2,
            s: 0.5,
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY,
        };
        for &x in &[-3.0, 0.1, 0.2, 4.0] {
            let t: f64 = (x - 0.2) / 0.5;
            let exact = 0.5 * (2.0 / std::f64::consts::PI).sqrt() * (-0.5 * t * t).exp()
                + (x - 0.2) * libm::erf(t * std::f64::consts::FRAC_1_SQRT_2);
            assert!((g.abs_moment(x).0 - exact).abs() < 1e-14, "x={x}");
        }
    }
}
