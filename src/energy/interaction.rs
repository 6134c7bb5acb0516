//! The Newtonian interaction term (SPEC §2):
//!
//!   E_int = (lambda/2) sum_{i != j} q_i q_j G_delta(X_i - X_j),  q_i = z_k w_i,
//!
//! over all pairs of all species. lambda > 0 makes like charges repel.
//! dE_int/dX_i = lambda q_i sum_{j != i} q_j grad G_delta(X_i - X_j).

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::coupling::CouplingBackend;
use crate::particles::Cloud;
use crate::util::parallel::CHUNK;

/// The Newtonian interaction term E_int (module docs), evaluated by a coupling backend.
pub struct Interaction<const D: usize> {
    strength: f64,
    charges: Vec<f64>,
    backend: Box<dyn CouplingBackend<D>>,
    field: Vec<[f64; D]>,
    /// The backend's energy from [`EnergyTerm::prepare`], with `field`, for
    /// the next evaluation.
    prepared: Option<f64>,
}

impl<const D: usize> Interaction<D> {
    /// The term of strength lambda over all particles of `cloud`, charges q_i = z_k w_i.
    pub fn new(cloud: &Cloud<D>, strength: f64, backend: Box<dyn CouplingBackend<D>>) -> Self {
        let charges = cloud.charges();
        Interaction {
            strength,
            charges,
            backend,
            field: vec![[0.0; D]; cloud.len()],
            prepared: None,
        }
    }
}

impl<const D: usize> EnergyTerm<D> for Interaction<D> {
    fn part(&self) -> Part {
        Part::Interaction
    }

    fn method(&self) -> Option<String> {
        Some(self.backend.describe())
    }

    fn prepares(&self) -> bool {
        true
    }

    fn prepare(&mut self, x: &[[f64; D]]) {
        self.prepared = Some(
            self.backend
                .energy_and_field(x, &self.charges, &mut self.field),
        );
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let u = match self.prepared.take() {
            Some(u) => u,
            None => self
                .backend
                .energy_and_field(x, &self.charges, &mut self.field),
        };
        let (lambda, q, field) = (self.strength, &self.charges[..], &self.field[..]);
        grad.par_chunks_mut(CHUNK).enumerate().for_each(|(c, g)| {
            for (k, gi) in g.iter_mut().enumerate() {
                let i = c * CHUNK + k;
                for a in 0..D {
                    gi[a] += lambda * q[i] * field[i][a];
                }
            }
        });
        lambda * u
    }

    fn reset(&mut self) {
        self.prepared = None;
        self.backend.reset();
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.backend.want(particles);
    }
}
