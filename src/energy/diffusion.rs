//! The diffusion term (blob method, SPEC §2):
//!
//!   E_diff = sum_k D_k sum_{i in k} w_i f_m(rho_eps(X_i)),
//!   f_1(r) = log r,   f_m(r) = r^(m-1)/(m-1)  (m > 1).
//!
//! Differentiating rho_i = sum_j w_j K(X_i - X_j) and using that grad K is odd,
//!
//!   dE/dX_l = D_k w_l sum_j w_j (f'(rho_l) + f'(rho_j)) grad K(X_l - X_j),
//!
//! so one pass computes the densities and a second the gradient, both by the
//! species' density estimator, as the local functional with e_i = D_k w_i
//! f(rho_i) and slopes s_i = D_k f'(rho_i)
//! ([`crate::density::DensityEstimator::local_functional`]): over the same
//! neighbour list (the energy summed in chunks of its slots, a divided
//! evaluation exchanging only its ghosts' slopes), or through the mesh's
//! deposit, convolution and interpolation.
//!
//! Under MPI the species' estimators run in stages
//! ([`DensityEstimator::local_functional_stage`]), stage k of every
//! species before stage k + 1, a stage either exchanging or computing. In
//! a JKO step each species' neighbour list follows the step's order in its
//! frame, so a member's particles of one species may be many and of the
//! other few; the member computes both before it waits, so its light
//! species fills the other members' time on their heavy one.

use std::ops::Range;

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::density::{DensityEstimator, DensityPlan, LocalScratch, Stage};
use crate::particles::Cloud;

/// The blob diffusion energy of every species with D_k > 0.
pub struct Diffusion<const D: usize> {
    species: Vec<BlobSpecies<D>>,
}

struct BlobSpecies<const D: usize> {
    range: Range<usize>,
    coeff: f64,
    exponent: f64,
    weights: Vec<f64>,
    density: Box<dyn DensityEstimator<D>>,
    scratch: LocalScratch,
}

/// f_m(r) and f_m'(r).
#[inline(always)]
fn f_and_slope(r: f64, m: f64) -> (f64, f64) {
    if m == 1.0 {
        (r.ln(), 1.0 / r)
    } else if m == 2.0 {
        (r, 1.0)
    } else {
        let p = r.powf(m - 2.0);
        (p * r / (m - 1.0), p)
    }
}

impl<const D: usize> Diffusion<D> {
    /// `plans[k]` is the estimator and kernel standard deviation of species k.
    pub fn new(cloud: &Cloud<D>, plans: &[DensityPlan]) -> Self {
        let species = cloud
            .blocks
            .iter()
            .zip(plans)
            .filter(|(b, _)| b.diffusion > 0.0)
            .map(|(b, plan)| BlobSpecies {
                range: b.range.clone(),
                coeff: b.diffusion,
                exponent: b.exponent,
                weights: cloud.weights[b.range.clone()].to_vec(),
                density: plan.build(),
                scratch: LocalScratch::default(),
            })
            .collect();
        Diffusion { species }
    }

    /// True if no species diffuses (every D_k = 0), so the term is always 0.
    pub fn is_empty(&self) -> bool {
        self.species.is_empty()
    }
}

impl<const D: usize> BlobSpecies<D> {
    /// Stage `stage` of the species' local functional
    /// ([`DensityEstimator::local_functional_stage`]): `Some(value)` when
    /// done. A trial spread over more mesh than allowed is not a candidate
    /// (the stepper refuses non-finite energies).
    fn stage(&mut self, stage: usize, x: &[[f64; D]], grad: &mut [[f64; D]]) -> Option<f64> {
        let (coeff, m) = (self.coeff, self.exponent);
        let local = move |w: f64, rho: f64| {
            let (f, fp) = f_and_slope(rho, m);
            (coeff * w * f, coeff * fp)
        };
        let w = &self.weights[..];
        match (self.density).local_functional_stage(stage, x, w, &local, &mut self.scratch, grad) {
            Ok(Stage::Next) => None,
            Ok(Stage::Done(value)) => Some(value),
            Err(_) => Some(f64::INFINITY),
        }
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        (0..)
            .find_map(|stage| self.stage(stage, x, grad))
            .expect("the last stage is done")
    }
}

impl<const D: usize> EnergyTerm<D> for Diffusion<D> {
    fn part(&self) -> Part {
        Part::Diffusion
    }

    /// The species at once on a single process (each writes its own range of
    /// `grad`; the values are added in species order, so the bits do not
    /// change). Under MPI ([`crate::util::team::alone`]) their stages side by
    /// side, stage k of every species before stage k + 1 (module docs): a
    /// member's messages then wait for the other members' work on every
    /// species, not on each in turn.
    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let mut parts: Vec<(&mut BlobSpecies<D>, &mut [[f64; D]])> = Vec::new();
        let (mut rest, mut offset) = (grad, 0);
        for s in &mut self.species {
            let r = s.range.clone();
            let (_, tail) = rest.split_at_mut(r.start - offset);
            let (mine, tail) = tail.split_at_mut(r.len());
            parts.push((s, mine));
            (rest, offset) = (tail, r.end);
        }
        let values: Vec<f64> = if crate::util::team::alone() {
            parts
                .par_iter_mut()
                .map(|(s, g)| s.value_and_gradient(&x[s.range.clone()], g))
                .collect()
        } else {
            let mut values = vec![None; parts.len()];
            for stage in 0.. {
                for ((s, g), value) in parts.iter_mut().zip(&mut values) {
                    if value.is_none() {
                        *value = s.stage(stage, &x[s.range.clone()], g);
                    }
                }
                if values.iter().all(Option::is_some) {
                    break;
                }
            }
            values.into_iter().flatten().collect()
        };
        values.iter().fold(0.0, |total, v| total + v)
    }

    /// Each species' estimator is asked for its particles among `particles`.
    fn want(&mut self, particles: Option<&[u32]>) {
        for s in &mut self.species {
            let local: Option<Vec<u32>> = particles.map(|p| {
                let (lo, hi) = (s.range.start as u32, s.range.end as u32);
                let first = p.partition_point(|&i| i < lo);
                let last = p.partition_point(|&i| i < hi);
                p[first..last].iter().map(|&i| i - lo).collect()
            });
            s.density.want(local.as_deref());
        }
    }

    /// Every species' estimator keys its order in the step's frame.
    fn frame(&mut self, frame: Option<&crate::util::morton::Frame<D>>) {
        for s in &mut self.species {
            s.density.frame(frame);
        }
    }

    /// Each species' estimator adds its particles' costs.
    fn add_costs(&self, cost: &mut [f64]) {
        for s in &self.species {
            s.density.add_costs(&mut cost[s.range.clone()]);
        }
    }

    /// The lists' summation order follows the positions of their last build:
    /// rebuild from X^n so a step depends on X^n alone. The mesh's size
    /// limit is set from X^n too.
    fn reset(&mut self) {
        self.species.iter_mut().for_each(|s| s.density.reset());
    }
}
