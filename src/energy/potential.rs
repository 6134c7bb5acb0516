//! The external potential term: E_pot = sum_k sum_{i in k} w_i U_k(X_i),
//! with gradient w_i grad U_k(X_i).

use std::ops::Range;

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::model::potential::Potential;
use crate::particles::Cloud;
use crate::util::parallel::{CHUNK, sum_chunks};

/// The external potential term E_pot (module docs), one potential per species.
pub struct PotentialEnergy<const D: usize> {
    species: Vec<(Range<usize>, Box<dyn Potential<D>>)>,
    weights: Vec<f64>,
}

impl<const D: usize> PotentialEnergy<D> {
    /// `potentials[k]` is U_k.
    pub fn new(cloud: &Cloud<D>, potentials: Vec<Box<dyn Potential<D>>>) -> Self {
        PotentialEnergy {
            species: cloud
                .blocks
                .iter()
                .map(|b| b.range.clone())
                .zip(potentials)
                .collect(),
            weights: cloud.weights.clone(),
        }
    }
}

impl<const D: usize> EnergyTerm<D> for PotentialEnergy<D> {
    fn part(&self) -> Part {
        Part::Potential
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let mut total = 0.0;
        for (range, u) in &self.species {
            let (x, w) = (&x[range.clone()], &self.weights[range.clone()]);
            total += sum_chunks(x.len(), |r| r.map(|i| w[i] * u.value(&x[i])).sum());
            grad[range.clone()]
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, g)| {
                    for (k, gi) in g.iter_mut().enumerate() {
                        let i = c * CHUNK + k;
                        let gu = u.gradient(&x[i]);
                        for a in 0..D {
                            gi[a] += w[i] * gu[a];
                        }
                    }
                });
        }
        total
    }
}
