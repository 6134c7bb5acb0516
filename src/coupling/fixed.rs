//! Background charges in free space, d = 2, 3 (SPEC §8): the charge
//! density C as fixed point charges (quadrature nodes of its shape, or the
//! points of a csv background) summed with the particles by any free-space
//! backend, so the particles feel
//!
//!   psi_C(x) = sum_c Q_c G_delta(x - y_c),
//!
//! softened like their own pair interactions. The backend sums all pairs of
//! particles and nodes; the nodes' pairs among themselves are a constant
//! (C does not move), subtracted once, so U = U_mobile + sum_i q_i psi_C(X_i)
//! as SPEC §7 writes the interaction (its variation in rho_k is then
//! lambda z_k psi).
//!
//! Quadrature: a `uniform` box is cut into equal cells (midpoint rule), a
//! `gaussian` into equal cells over +-5 std per axis, each node carrying the
//! charge of its cell (the normal law's exact mass on the cell, the
//! total renormalized to Q), with cell sides at most delta / 2 while the
//! node count stays within [`MAX_NODES`] (then coarser, evenly per axis).
//! The midpoint rule on the softened kernel has a relative error of order
//! (cell / delta)^2 / 24 near the charge, much less beyond a few delta:
//! below 1% at cell = delta / 2.

use super::CouplingBackend;
use crate::model::background::{Background, BackgroundShape};

/// Most quadrature nodes of all backgrounds together (the nodes join every
/// evaluation of the pair sum).
pub const MAX_NODES: usize = 1 << 16;

/// A free-space backend with fixed charges added (module docs).
pub struct WithFixedCharges<const D: usize> {
    inner: Box<dyn CouplingBackend<D>>,
    nodes: Vec<[f64; D]>,
    charges: Vec<f64>,
    /// The nodes' pair energy among themselves.
    constant: f64,
    x: Vec<[f64; D]>,
    q: Vec<f64>,
    field: Vec<[f64; D]>,
}

impl<const D: usize> WithFixedCharges<D> {
    /// `inner` with fixed charges `charges` at `nodes` (from [`nodes`]).
    pub fn new(
        mut inner: Box<dyn CouplingBackend<D>>,
        nodes: Vec<[f64; D]>,
        charges: Vec<f64>,
    ) -> Self {
        let mut field = vec![[0.0; D]; nodes.len()];
        let constant = inner.energy_and_field(&nodes, &charges, &mut field);
        inner.reset();
        WithFixedCharges {
            inner,
            nodes,
            charges,
            constant,
            x: Vec::new(),
            q: Vec::new(),
            field: Vec::new(),
        }
    }

    /// The quadrature nodes and their charges.
    pub fn nodes(&self) -> (&[[f64; D]], &[f64]) {
        (&self.nodes, &self.charges)
    }
}

impl<const D: usize> CouplingBackend<D> for WithFixedCharges<D> {
    fn describe(&self) -> String {
        format!(
            "{} with {} fixed background charges",
            self.inner.describe(),
            self.nodes.len()
        )
    }

    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        let n = x.len();
        self.x.clear();
        self.x.extend_from_slice(x);
        self.x.extend_from_slice(&self.nodes);
        self.q.clear();
        self.q.extend_from_slice(q);
        self.q.extend_from_slice(&self.charges);
        self.field.resize(self.x.len(), [0.0; D]);
        let u = self
            .inner
            .energy_and_field(&self.x, &self.q, &mut self.field);
        field.copy_from_slice(&self.field[..n]);
        u - self.constant
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    /// The particles keep their indices in the sum with the nodes (they
    /// come first), and no node's field is read.
    fn want(&mut self, particles: Option<&[u32]>) {
        self.inner.want(particles);
    }
}

/// The quadrature nodes of `backgrounds` and their charges, cells of side
/// at most `softening / 2` where [`MAX_NODES`] allows (module docs).
pub fn nodes<const D: usize>(
    backgrounds: &[Background],
    softening: f64,
) -> (Vec<[f64; D]>, Vec<f64>) {
    let per_background = (MAX_NODES / backgrounds.len().max(1)).max(1);
    let (mut nodes, mut charges) = (Vec::new(), Vec::new());
    for b in backgrounds {
        quadrature::<D>(b, softening / 2.0, per_background, &mut nodes, &mut charges);
    }
    (nodes, charges)
}

/// Appends the nodes and charges of `b`: cells of side at most `cell`
/// while the count stays within `max_nodes`.
fn quadrature<const D: usize>(
    b: &Background,
    cell: f64,
    max_nodes: usize,
    nodes: &mut Vec<[f64; D]>,
    charges: &mut Vec<f64>,
) {
    let (lower, upper, std): ([f64; D], [f64; D], Option<&[f64]>) = match &b.shape {
        BackgroundShape::Points {
            positions,
            charges: q,
        } => {
            nodes.extend(positions.iter().map(|p| std::array::from_fn(|a| p[a])));
            charges.extend_from_slice(q);
            return;
        }
        BackgroundShape::Uniform { lower, upper } => (
            std::array::from_fn(|a| lower[a]),
            std::array::from_fn(|a| upper[a]),
            None,
        ),
        BackgroundShape::Gaussian { mean, std } => (
            std::array::from_fn(|a| mean[a] - 5.0 * std[a]),
            std::array::from_fn(|a| mean[a] + 5.0 * std[a]),
            Some(std),
        ),
    };
    // Cells per axis: side <= cell, the product within max_nodes (shrunk
    // evenly per axis by the same factor).
    let mut counts: [usize; D] =
        std::array::from_fn(|a| (((upper[a] - lower[a]) / cell).ceil() as usize).max(1));
    let total: f64 = counts.iter().map(|&c| c as f64).product();
    if total > max_nodes as f64 {
        let shrink = (max_nodes as f64 / total).powf(1.0 / D as f64);
        counts = counts.map(|c| ((c as f64 * shrink).floor() as usize).max(1));
    }
    let side: [f64; D] = std::array::from_fn(|a| (upper[a] - lower[a]) / counts[a] as f64);
    // Per-axis cell masses of the law (uniform: equal; normal: exact).
    let masses: Vec<Vec<f64>> = (0..D)
        .map(|a| {
            (0..counts[a])
                .map(|k| match std {
                    None => 1.0 / counts[a] as f64,
                    Some(s) => {
                        let mean = 0.5 * (lower[a] + upper[a]);
                        let z = |t: f64| (t - mean) / (s[a] * std::f64::consts::SQRT_2);
                        let (l, r) = (
                            lower[a] + k as f64 * side[a],
                            lower[a] + (k + 1) as f64 * side[a],
                        );
                        0.5 * (libm::erf(z(r)) - libm::erf(z(l)))
                    }
                })
                .collect()
        })
        .collect();
    let first = charges.len();
    let count: usize = counts.iter().product();
    for m in 0..count {
        let mut rest = m;
        let mut w = b.charge;
        let node = std::array::from_fn(|a| {
            let k = rest % counts[a];
            rest /= counts[a];
            w *= masses[a][k];
            lower[a] + (k as f64 + 0.5) * side[a]
        });
        nodes.push(node);
        charges.push(w);
    }
    // The +-5 std truncation loses 6e-7 of a normal law per axis: the nodes
    // carry the whole charge.
    let sum: f64 = charges[first..].iter().sum();
    if sum != 0.0 {
        let fix = b.charge / sum;
        charges[first..].iter_mut().for_each(|q| *q *= fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupling::DirectSum;

    /// The field a particle feels from a uniform rectangle of charge
    /// and from a Gaussian, against a fine brute-force quadrature (400^2
    /// nodes) of the softened kernel; the constant pair energy of the nodes
    /// is removed (one particle of charge 0 feels the field but adds no
    /// energy); and the field is the gradient of the energy (central
    /// differences). Tolerances: 1% near the charge (the midpoint rule at
    /// cell = delta / 2, module docs), 1e-6 for the differences.
    #[test]
    fn fixed_charges_give_their_potential() {
        let delta = 0.05;
        for b in [
            Background::uniform("u", 1.5, vec![-0.5, -0.25], vec![0.5, 0.25]),
            Background::gaussian("g", -0.7, vec![0.2, 0.0], vec![0.3, 0.2]),
        ] {
            let (nodes, charges) = nodes::<2>(std::slice::from_ref(&b), delta);
            let mut with =
                WithFixedCharges::<2>::new(Box::new(DirectSum::<2>::new(delta)), nodes, charges);
            let mut fine = (Vec::new(), Vec::new());
            quadrature::<2>(&b, 1e-9, 160_000, &mut fine.0, &mut fine.1);
            for p in [[0.1, 0.05], [1.5, -0.7], [-0.45, 0.2]] {
                let x = [p, [3.0, 3.0]];
                let q = [0.0, 1e-3];
                let mut field = [[0.0; 2]; 2];
                let u = with.energy_and_field(&x, &q, &mut field);
                // The particle at [3, 3] alone: U = q psi_C(3, 3).
                let psi_far: f64 = fine
                    .0
                    .iter()
                    .zip(&fine.1)
                    .map(|(y, c)| {
                        let s = (3.0 - y[0]).powi(2) + (3.0 - y[1]).powi(2);
                        c * crate::model::green::softened::<2>(s, delta * delta).0
                    })
                    .sum();
                assert!(
                    (u - 1e-3 * psi_far).abs() <= 1e-2 * (1e-3 * psi_far).abs(),
                    "{b:?}: U {u} vs {}",
                    1e-3 * psi_far
                );
                // The field at p (a charge-0 probe): grad psi_C(p).
                let grad: [f64; 2] = std::array::from_fn(|a| {
                    fine.0
                        .iter()
                        .zip(&fine.1)
                        .map(|(y, c)| {
                            let d = [p[0] - y[0], p[1] - y[1]];
                            let s = d[0] * d[0] + d[1] * d[1];
                            c * crate::model::green::softened::<2>(s, delta * delta).1 * d[a]
                        })
                        .sum()
                });
                let norm = grad[0].hypot(grad[1]);
                for a in 0..2 {
                    assert!(
                        (field[0][a] - grad[a]).abs() <= 1e-2 * norm,
                        "{b:?} at {p:?}: {:?} vs {grad:?}",
                        field[0]
                    );
                }
            }
        }
    }
}
