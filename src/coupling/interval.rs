//! The coupling on an interval (d = 1, SPEC §7-8), exactly and in
//! O(N log N): the box's Green's function is the free one plus a
//! polynomial, G_box = -|x - y|/2 + H(u, v) ([`crate::model::interval`]),
//! so
//!
//! ```text
//! U = sum_{i<j} q_i q_j G_delta(x_i - x_j) + (1/2) sum_{i,j} q_i q_j H(u_i, u_j),
//! (1/2) sum_{i,j} q_i q_j H = (k0 Q^2 + 2 k1 Q P1 + k2 P1^2 + 2 k3 Q P2) / 2,
//! field_i = (free field)_i + k1 Q + k2 P1 + 2 k3 Q u_i,
//! ```
//!
//! with Q = sum q, P1 = sum q u, P2 = sum q u^2. The singular part is
//! Plummer-softened at delta like the free-space kernel (G_delta), by any
//! free-space backend (the sorted sum is exact); the regular part H (the
//! images of the walls) is exact, the self terms i = j included (a charge
//! feels its own images: it is attracted by an electrode, whose image
//! charge has the opposite sign).
//!
//! The fixed potential phi_ext = psi_C + phi_walls is a closed form too:
//! [`IntervalField`].

use super::{CouplingBackend, ExternalPotential};
use crate::model::background::{Background, BackgroundShape};
use crate::model::interval::{Interval, LineCharge};
use crate::util::parallel::sum_chunks;

/// The pair energy on an interval: a free-space backend plus the walls'
/// polynomial part (module docs).
///
/// Generic in `D` so that the coupling's registration needs no cast, but
/// only meaningful for `D = 1` ([`IntervalBackend::new`] refuses others).
pub struct IntervalBackend<const D: usize> {
    free: Box<dyn CouplingBackend<D>>,
    interval: Interval,
}

impl<const D: usize> IntervalBackend<D> {
    /// The interval's coupling, the singular part by `free`. Panics unless `D = 1`.
    pub fn new(free: Box<dyn CouplingBackend<D>>, interval: Interval) -> Self {
        assert!(D == 1, "an interval is a domain of d = 1");
        IntervalBackend { free, interval }
    }
}

impl<const D: usize> CouplingBackend<D> for IntervalBackend<D> {
    fn describe(&self) -> String {
        format!(
            "{} and the interval's images in closed form",
            self.free.describe()
        )
    }

    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        let u_free = self.free.energy_and_field(x, q, field);
        let a = self.interval.a;
        let n = x.len();
        let total = sum_chunks(n, |r| r.map(|i| q[i]).sum());
        let p1 = sum_chunks(n, |r| r.map(|i| q[i] * (x[i][0] - a)).sum());
        let p2 = sum_chunks(n, |r| {
            r.map(|i| {
                let u = x[i][0] - a;
                q[i] * u * u
            })
            .sum()
        });
        let [k0, k1, k2, k3] = self.interval.coefficients();
        let regular =
            k0 * total * total + 2.0 * k1 * total * p1 + k2 * p1 * p1 + 2.0 * k3 * total * p2;
        let (c, slope) = (k1 * total + k2 * p1, 2.0 * k3 * total);
        for (f, xi) in field.iter_mut().zip(x) {
            f[0] += c + slope * (xi[0] - a);
        }
        u_free + 0.5 * regular
    }

    fn reset(&mut self) {
        self.free.reset();
    }
}

/// phi_ext = psi_C + phi_walls on the line: the walls' term of the interval
/// (if a box), the closed forms of uniform and Gaussian backgrounds, and
/// the softened sum over fixed point charges.
pub struct IntervalField {
    interval: Option<Interval>,
    charges: Vec<LineCharge>,
    /// Fixed point charges (position, charge).
    points: Vec<(f64, f64)>,
    delta2: f64,
}

impl IntervalField {
    /// The field of `backgrounds` (and of the walls of `interval`, if a
    /// box), point charges softened at `softening` like the particles'.
    pub fn new(interval: Option<Interval>, backgrounds: &[Background], softening: f64) -> Self {
        let (lo, hi) = interval.map_or((f64::NEG_INFINITY, f64::INFINITY), |iv| {
            (iv.a, iv.a + iv.length)
        });
        let mut charges = Vec::new();
        let mut points = Vec::new();
        for b in backgrounds {
            match &b.shape {
                BackgroundShape::Uniform { lower, upper } => charges.push(LineCharge::Uniform {
                    q: b.charge,
                    l: lower[0],
                    r: upper[0],
                }),
                BackgroundShape::Gaussian { mean, std } => charges.push(LineCharge::Gaussian {
                    q: b.charge,
                    mu: mean[0],
                    s: std[0],
                    lo,
                    hi,
                }),
                BackgroundShape::Points { positions, charges } => {
                    points.extend(positions.iter().map(|p| p[0]).zip(charges.iter().copied()))
                }
            }
        }
        IntervalField {
            interval,
            charges,
            points,
            delta2: softening * softening,
        }
    }
}

/// For every `D` so that the registration needs no cast; meaningful for
/// `D = 1` only (the first axis; the others get no field).
impl<const D: usize> ExternalPotential<D> for IntervalField {
    fn value_and_gradient(&self, x: &[f64; D]) -> (f64, [f64; D]) {
        assert!(D == 1, "an interval is a domain of d = 1");
        let x = x[0];
        let iv = self.interval.as_ref();
        let (mut phi, mut dphi) = iv.map_or((0.0, 0.0), |iv| iv.wall_potential(x));
        for c in &self.charges {
            let (p, dp) = c.potential(x, iv);
            phi += p;
            dphi += dp;
        }
        for &(y, qc) in &self.points {
            let r = ((x - y) * (x - y) + self.delta2).sqrt();
            phi -= 0.5 * qc * r;
            if r > 0.0 {
                dphi -= 0.5 * qc * (x - y) / r;
            }
            if let Some(iv) = iv {
                let (h, dh) = iv.regular(x - iv.a, y - iv.a);
                phi += qc * h;
                dphi += qc * dh;
            }
        }
        (
            phi,
            std::array::from_fn(|a| if a == 0 { dphi } else { 0.0 }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::DirectSum;
    use crate::model::domain::WallCondition;

    /// U and the field against the O(N^2) definition with G_box (all pairs
    /// of the regular part, i != j of the softened singular part), and the
    /// field against central differences of U, for every wall pair.
    #[test]
    fn interval_backend_matches_its_definition_and_differences() {
        let walls = [
            [
                WallCondition::Electrode { potential: 0.0 },
                WallCondition::Electrode { potential: 1.0 },
            ],
            [
                WallCondition::INSULATING,
                WallCondition::Electrode { potential: 0.0 },
            ],
            [WallCondition::INSULATING, WallCondition::INSULATING],
        ];
        let n = 60;
        let x: Vec<[f64; 1]> = (0..n)
            .map(|i| [-1.0 + 3.0 * ((i as f64 * 0.618_034).fract())])
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -0.7 } / n as f64)
            .collect();
        let delta = 0.05;
        for w in walls {
            let iv = Interval::new(-1.0, 2.0, w);
            let mut b = IntervalBackend::new(Box::new(DirectSum::<1>::new(delta)), iv);
            let mut field = vec![[0.0]; n];
            let u = b.energy_and_field(&x, &q, &mut field);
            let mut exact = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let (ui, uj) = (x[i][0] + 1.0, x[j][0] + 1.0);
                    exact += 0.5 * q[i] * q[j] * iv.regular(ui, uj).0;
                    if i < j {
                        let s = x[i][0] - x[j][0];
                        exact -= q[i] * q[j] * 0.5 * (s * s + delta * delta).sqrt();
                    }
                }
            }
            assert!((u - exact).abs() < 1e-13, "{w:?}: {u} vs {exact}");
            for i in [0, 7, 33] {
                let h = 1e-6;
                let mut xp = x.clone();
                xp[i][0] += h;
                let up = b.energy_and_field(&xp, &q, &mut vec![[0.0]; n]);
                xp[i][0] -= 2.0 * h;
                let um = b.energy_and_field(&xp, &q, &mut vec![[0.0]; n]);
                let fd = (up - um) / (2.0 * h) / q[i];
                assert!(
                    (fd - field[i][0]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{w:?} i={i}: {} vs {fd}",
                    field[i][0]
                );
            }
        }
    }

    /// The field energy: with homogeneous walls (electrodes at 0), no
    /// softening and neutral charges, psi = sum_j q_j G_box(x, x_j) and
    /// (1/2) int |psi'|^2 = (1/2) sum_{i,j} q_i q_j G_box(x_i, x_j) by parts
    /// (the boundary terms vanish: psi = 0 or psi' = 0 on every wall), which
    /// is the backend's U. psi' is piecewise linear (piecewise constant
    /// without insulating pairs), so Simpson's rule between the charges
    /// integrates |psi'|^2 exactly: the identity holds to rounding (1e-12).
    #[test]
    fn the_pair_energy_is_the_field_energy() {
        let walls = [
            [
                WallCondition::Electrode { potential: 0.0 },
                WallCondition::Electrode { potential: 0.0 },
            ],
            [
                WallCondition::INSULATING,
                WallCondition::Electrode { potential: 0.0 },
            ],
            [
                WallCondition::Electrode { potential: 0.0 },
                WallCondition::INSULATING,
            ],
            [WallCondition::INSULATING, WallCondition::INSULATING],
        ];
        let n = 40;
        let x: Vec<[f64; 1]> = (0..n)
            .map(|i| [0.5 + 2.0 * ((i as f64 * 0.618_034).fract())])
            .collect();
        let q: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 0.03 } else { -0.03 })
            .collect();
        for w in walls {
            let iv = Interval::new(0.0, 3.0, w);
            let mut b = IntervalBackend::new(Box::new(DirectSum::<1>::new(0.0)), iv);
            let u = b.energy_and_field(&x, &q, &mut vec![[0.0]; n]);
            let dpsi = |t: f64| -> f64 {
                x.iter()
                    .zip(&q)
                    .map(|(p, qj)| qj * iv.green(t, p[0]).1)
                    .sum()
            };
            let mut cuts: Vec<f64> = x.iter().map(|p| p[0]).chain([0.0, 3.0]).collect();
            cuts.sort_by(f64::total_cmp);
            let mut field = 0.0;
            for c in cuts.windows(2) {
                let (a, z) = (c[0], c[1]);
                if z - a < 1e-15 {
                    continue;
                }
                // Inside the piece, away from its ends (psi' jumps there).
                let e = 1e-12 * (z - a);
                let (fa, fm, fz) = (dpsi(a + e), dpsi(0.5 * (a + z)), dpsi(z - e));
                field += (z - a) / 6.0 * (fa * fa + 4.0 * fm * fm + fz * fz);
            }
            let field = 0.5 * field;
            assert!(
                (u - field).abs() < 1e-10 * field.abs().max(1e-3),
                "{w:?}: U {u} vs field energy {field}"
            );
        }
    }

    /// The external field's gradient against central differences, with every
    /// kind of background and charged walls.
    #[test]
    fn interval_field_gradient_matches_differences() {
        let iv = Interval::new(
            0.0,
            4.0,
            [
                WallCondition::Insulating {
                    surface_charge: 0.3,
                },
                WallCondition::Electrode { potential: 2.0 },
            ],
        );
        let bg = vec![
            Background::uniform("a", 0.5, vec![0.5], vec![1.5]),
            Background::gaussian("b", -0.8, vec![3.0], vec![0.4]),
            Background {
                name: "c".into(),
                charge: 0.1,
                shape: BackgroundShape::Points {
                    positions: vec![vec![2.0], vec![2.5]],
                    charges: vec![0.04, 0.06],
                },
            },
        ];
        for interval in [None, Some(iv)] {
            let f = IntervalField::new(interval, &bg, 0.02);
            for &x in &[0.1, 0.9, 2.2, 3.1, 3.9] {
                let h = 1e-6;
                let fd = (f.value_and_gradient(&[x + h]).0 - f.value_and_gradient(&[x - h]).0)
                    / (2.0 * h);
                let an = f.value_and_gradient(&[x]).1[0];
                assert!((fd - an).abs() < 1e-7, "x={x}: {an} vs {fd}");
            }
        }
    }
}
