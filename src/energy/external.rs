//! The particles' energy in the fixed potential of the background charges
//! and the walls (SPEC §7-8), part of the interaction column:
//!
//!   E_ext = lambda sum_i q_i phi_ext(X_i),   q_i = z_k w_i,
//!   dE_ext/dX_i = lambda q_i grad phi_ext(X_i),
//!
//! phi_ext = psi_C + phi_walls ([`crate::coupling::ExternalPotential`]), so
//! that the variation of the interaction energy in rho_k is lambda z_k psi.

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::coupling::ExternalPotential;
use crate::particles::Cloud;
use crate::util::parallel::{CHUNK, sum_chunks};

/// lambda sum_i q_i phi_ext(X_i).
pub struct ExternalField<const D: usize> {
    strength: f64,
    charges: Vec<f64>,
    potential: Box<dyn ExternalPotential<D>>,
    /// phi_ext at each particle, from the gradient pass.
    values: Vec<f64>,
}

impl<const D: usize> ExternalField<D> {
    /// The term for `cloud`'s charges (z_k w_i) in `potential`, coupling
    /// strength lambda = `strength`.
    pub fn new(cloud: &Cloud<D>, strength: f64, potential: Box<dyn ExternalPotential<D>>) -> Self {
        let charges = cloud.charges();
        ExternalField {
            strength,
            charges,
            potential,
            values: Vec::new(),
        }
    }
}

impl<const D: usize> EnergyTerm<D> for ExternalField<D> {
    fn part(&self) -> Part {
        Part::Interaction
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let (lambda, q, phi) = (self.strength, &self.charges[..], &*self.potential);
        self.values.resize(x.len(), 0.0);
        grad.par_chunks_mut(CHUNK)
            .zip(self.values.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (g, v))| {
                for (k, (gi, vi)) in g.iter_mut().zip(v).enumerate() {
                    let i = c * CHUNK + k;
                    let (value, dphi) = phi.value_and_gradient(&x[i]);
                    *vi = value;
                    for a in 0..D {
                        gi[a] += lambda * q[i] * dphi[a];
                    }
                }
            });
        let values = &self.values;
        lambda * sum_chunks(x.len(), |r| r.map(|i| q[i] * values[i]).sum())
    }
}
