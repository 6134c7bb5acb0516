//! W1 and W2 in 1D, exactly. Both sides are normalized to probability
//! measures: particles are weighted Diracs (a step quantile function), grid
//! cells are uniform on their cell (a piecewise-linear quantile function).
//! W_p^p = int_0^1 |Q_A(t) - Q_B(t)|^p dt is integrated in closed form on
//! each piece between the merged breakpoints in t of both quantile
//! functions, where Q_A - Q_B is linear, D(s) = d0 + (d1 - d0) s:
//!
//! ```text
//! int |D| = L (|d0| + |d1|) / 2                     if d0 d1 >= 0,
//!         = L (d0^2 + d1^2) / (2 (|d0| + |d1|))     otherwise,
//! int D^2 = L (d0^2 + d0 d1 + d1^2) / 3
//! ```
//!
//! (L the piece's length in t).

use super::measures::Measure;

/// A piece of a quantile function: linear from (t0, q0) to (t1, q1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Piece {
    t0: f64,
    t1: f64,
    q0: f64,
    q1: f64,
}

impl Piece {
    fn at(&self, t: f64) -> f64 {
        if self.q0 == self.q1 {
            return self.q0;
        }
        let s = ((t - self.t0) / (self.t1 - self.t0)).clamp(0.0, 1.0);
        self.q0 + (self.q1 - self.q0) * s
    }
}

/// int_0^L |d0 + (d1 - d0) t/L| dt and int_0^L (d0 + (d1 - d0) t/L)^2 dt.
fn linear_piece_integrals(len: f64, d0: f64, d1: f64) -> (f64, f64) {
    let abs = if d0 * d1 >= 0.0 {
        0.5 * len * (d0.abs() + d1.abs())
    } else {
        0.5 * len * (d0 * d0 + d1 * d1) / (d0.abs() + d1.abs())
    };
    let sq = len * (d0 * d0 + d0 * d1 + d1 * d1) / 3.0;
    (abs, sq)
}

/// (W1, W2) between two laws on the line given by their quantile functions.
pub(super) fn wasserstein_1d(a: &[Piece], b: &[Piece]) -> (f64, f64) {
    let (mut i, mut j) = (0, 0);
    let mut t = 0.0;
    let (mut w1, mut w2sq) = (0.0, 0.0);
    while i < a.len() && j < b.len() {
        let t1 = a[i].t1.min(b[j].t1);
        if t1 > t {
            let d0 = a[i].at(t) - b[j].at(t);
            let d1 = a[i].at(t1) - b[j].at(t1);
            let (p1, p2) = linear_piece_integrals(t1 - t, d0, d1);
            w1 += p1;
            w2sq += p2;
            t = t1;
        }
        if a[i].t1 <= t {
            i += 1;
        }
        if j < b.len() && b[j].t1 <= t {
            j += 1;
        }
    }
    (w1, w2sq.sqrt())
}

impl<const D: usize> Measure<'_, D> {
    /// The quantile function of the normalized law (d = 1).
    pub(super) fn quantile(&self) -> Vec<Piece> {
        match self {
            Measure::Particles { x, w, .. } => {
                let mut order: Vec<usize> = (0..x.len()).collect();
                order.sort_by(|&i, &j| x[i][0].total_cmp(&x[j][0]).then(i.cmp(&j)));
                let m: f64 = order.iter().map(|&i| w[i]).sum();
                let mut pieces = Vec::with_capacity(x.len());
                let (mut acc, mut t0) = (0.0, 0.0);
                for (k, &i) in order.iter().enumerate() {
                    acc += w[i];
                    let t1 = if k + 1 == order.len() { 1.0 } else { acc / m };
                    if t1 > t0 {
                        pieces.push(Piece {
                            t0,
                            t1,
                            q0: x[i][0],
                            q1: x[i][0],
                        });
                        t0 = t1;
                    }
                }
                pieces
            }
            Measure::Grid(g) => {
                let c = &g.coords[0];
                let n = c.len();
                // The reader refused negative densities.
                let m: f64 = g.rho.iter().sum();
                let edge = |i: usize| {
                    if i == 0 {
                        c[0] - 0.5 * g.h[0]
                    } else if i == n {
                        c[n - 1] + 0.5 * g.h[0]
                    } else {
                        0.5 * (c[i - 1] + c[i])
                    }
                };
                let last = g.rho.iter().rposition(|&r| r > 0.0).unwrap_or(0);
                let mut pieces = Vec::with_capacity(n);
                let (mut acc, mut t0) = (0.0, 0.0);
                for i in 0..=last {
                    let r = g.rho[i];
                    if r == 0.0 {
                        continue;
                    }
                    acc += r;
                    let t1 = if i == last { 1.0 } else { acc / m };
                    if t1 > t0 {
                        pieces.push(Piece {
                            t0,
                            t1,
                            q0: edge(i),
                            q1: edge(i + 1),
                        });
                        t0 = t1;
                    }
                }
                pieces
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_integrals_match_quadrature() {
        for &(len, d0, d1) in &[
            (0.3, 1.0, 2.0),
            (0.5, -1.0, 3.0),
            (1.0, 2.0, -0.5),
            (0.2, 0.0, -1.0),
        ] {
            let n = 200_000;
            let (mut a, mut s) = (0.0, 0.0);
            for k in 0..n {
                let t = (k as f64 + 0.5) / n as f64;
                let v: f64 = d0 + (d1 - d0) * t;
                a += v.abs() * len / n as f64;
                s += v * v * len / n as f64;
            }
            let (pa, ps) = linear_piece_integrals(len, d0, d1);
            assert!((pa - a).abs() < 1e-9, "{len} {d0} {d1}: {pa} vs {a}");
            assert!((ps - s).abs() < 1e-9, "{len} {d0} {d1}: {ps} vs {s}");
        }
    }

    #[test]
    fn wasserstein_of_uniform_and_dirac() {
        // U[0,1] against a Dirac at 0: W1 = 1/2, W2 = 1/sqrt(3).
        let u = [Piece {
            t0: 0.0,
            t1: 1.0,
            q0: 0.0,
            q1: 1.0,
        }];
        let d = [Piece {
            t0: 0.0,
            t1: 1.0,
            q0: 0.0,
            q1: 0.0,
        }];
        let (w1, w2) = wasserstein_1d(&u, &d);
        assert!((w1 - 0.5).abs() < 1e-15);
        assert!((w2 - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
        // Two Diracs of mass 1/2 at 0 and 1 against U[0,1]: W1 = 1/4.
        let two = [
            Piece {
                t0: 0.0,
                t1: 0.5,
                q0: 0.0,
                q1: 0.0,
            },
            Piece {
                t0: 0.5,
                t1: 1.0,
                q0: 1.0,
                q1: 1.0,
            },
        ];
        let (w1, w2) = wasserstein_1d(&u, &two);
        assert!((w1 - 0.25).abs() < 1e-15, "{w1}");
        // W2^2 = 2 int_0^{1/2} t^2 dt = 1/12.
        assert!((w2 * w2 - 1.0 / 12.0).abs() < 1e-15, "{w2}");
    }
}
