//! The steric term: the Bikerman solvent entropy of finite ion size
//! (SPEC §10, [`crate::model::steric`]), over the particles of every species:
//!
//! ```text
//!   E_st = sum_i w_i g(s_i),     g(s) = T (1 - v s) log(1 - v s) / (v s),
//!   s_i  = sum_l rho_l(X_i) = sum_l sum_{j in l} w_j K_{eps_l}(X_i - X_j),
//! ```
//!
//! i over all particles of all species, s_i the total density at X_i: the
//! sum over species l of each species' blob density (SPEC §2, self term
//! j = i included, species l's own kernel of standard deviation eps_l, and
//! in a box the density reflected across the walls, SPEC §7). It estimates
//! (T/v) int (1 - v s) log(1 - v s) dx: w_i is mass, g(s) an energy per unit
//! mass (the units of T, those of D_k log rho), so E_st is an energy in the
//! units of the other terms. Sign: g(s) = -T + T v s / 2 + O(s^2) and
//! g' > 0, so crowding costs energy and the term pushes particles apart
//! (the constant -T per unit mass moves nothing). energy.csv counts it in
//! the diffusion column ([`Part::Steric`]).
//!
//! Infinite energy: at or beyond close packing, v s_i >= 1 at some particle,
//! E_st = +infinity (g is), and no gradient is added. The stepper refuses a
//! trial point whose energy is not finite (an attempt ending on one is
//! retried with a smaller step), so an accepted state always has
//! v s_i < 1 at every particle. A cloud that the mesh estimator refuses
//! (spread over more cells than allowed) counts as infinite, as in the
//! diffusion term. Never NaN: the s_i are sums of nonnegative terms, g and
//! g' are finite below close packing and +infinity at or above it.
//!
//! The gradient. With c_i = w_i g'(s_i), by the chain rule
//!
//! ```text
//!   dE_st/dX_a = sum_l [ sum_i c_i grad_{X_a} rho_l(X_i) ]
//!              = w_a sum_j w_j [ g'(s_a) grad K_{l(j)}(X_a - X_j)
//!                              + g'(s_j) grad K_{l(a)}(X_a - X_j) ],
//! ```
//!
//! l(j) the species of particle j.
//!
//! Bandwidths. Species with the same eps (the usual case, one `bandwidth`
//! for all, or the automatic rule giving them the same) form one group, and
//! a group's densities are summed over the merged cloud of all particles.
//! When every species has the same eps, s_i is exactly the blob density of
//! the merged cloud (all particles with their weights), E_st has the form
//! sum_i w_i g(rho_i) of [`DensityEstimator::add_gradient`], and one
//! estimator does it all: one density pass and one gradient pass, as in the
//! diffusion term, by its [`local_functional`](DensityEstimator::local_functional)
//! (with neighbour lists, E_st summed in chunks of the list's slots, and a
//! divided evaluation exchanging only its ghosts' slopes). When the bandwidths differ, the form above is kept
//! exactly (no common kernel is substituted): each group l has its own
//! estimator over the merged cloud with the weights of its species and 0
//! elsewhere, which gives rho_l at every particle; s is their sum, and the
//! gradient is each estimator's
//! [`add_linear_gradient`](DensityEstimator::add_linear_gradient) with the
//! same c. This holds for every estimator (neighbour lists, mesh, and either
//! reflected in a box); it costs one pass over the merged cloud per group.
//!
//! The estimator of a group is the one the estimator choice
//! ([`choose_estimator`], `method` of `[density]`) makes for the merged
//! cloud at the group's fixed eps, in the box of the species' plans if any.
//! The sums run in fixed chunks (the same bits on any thread count), and
//! every buffer lives in the term: no allocation per evaluation.

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::density::{
    Bandwidth, Density, DensityEstimator, DensityMethod, DensityPlan, EstimateRefused,
    LocalScratch, choose_estimator,
};
use crate::model::steric::Steric;
use crate::particles::Cloud;
use crate::util::parallel::{CHUNK, sum_chunks};

/// The total density s_i = sum_l rho_l(X_i) at every particle of every
/// species (module docs), and the gradient of sum_i w_i g(s_i).
#[derive(Debug)]
pub struct TotalDensity<const D: usize> {
    /// Every particle's weight.
    weights: Vec<f64>,
    groups: Vec<Group<D>>,
    /// s_i, in particle order.
    total: Vec<f64>,
    /// With several groups: c_i = w_i g'(s_i).
    c: Vec<f64>,
}

/// The species sharing one bandwidth.
#[derive(Debug)]
struct Group<const D: usize> {
    plan: DensityPlan,
    species: Vec<usize>,
    /// With several groups: the weights of the group's particles, 0 elsewhere
    /// (with one group, [`TotalDensity::weights`] serve).
    weights: Vec<f64>,
    density: Box<dyn DensityEstimator<D>>,
}

impl<const D: usize> TotalDensity<D> {
    /// The total density of `cloud`, species k at bandwidth `plans[k].eps`
    /// (in the box of `plans[k]`, if any), each group of species of one
    /// bandwidth summed by the estimator `method` chooses for the merged
    /// cloud ([`choose_estimator`] with that fixed bandwidth).
    pub fn new(cloud: &Cloud<D>, plans: &[DensityPlan], method: DensityMethod) -> Self {
        let groups = group_species(plans)
            .into_iter()
            .map(|(plan, species)| {
                let settings = Density {
                    bandwidth: Bandwidth::Fixed(plan.eps),
                    method,
                };
                // With a fixed bandwidth the rule reads neither the
                // diffusion nor the time step.
                let mut merged =
                    choose_estimator(&cloud.positions, &cloud.weights, 0.0, 1.0, 1.0, &settings);
                merged.walls = plan.walls;
                (merged, species)
            })
            .collect();
        Self::with_plans(cloud, groups)
    }

    /// The total density of `cloud` with given estimators: `groups` lists
    /// each group's plan for the merged cloud and its species. Every species
    /// must be in exactly one group.
    pub fn with_plans(cloud: &Cloud<D>, groups: Vec<(DensityPlan, Vec<usize>)>) -> Self {
        let n = cloud.len();
        let mut seen = vec![0u32; cloud.blocks.len()];
        groups
            .iter()
            .flat_map(|(_, s)| s)
            .for_each(|&k| seen[k] += 1);
        assert!(
            seen.iter().all(|&c| c == 1),
            "every species in exactly one group"
        );
        let several = groups.len() > 1;
        let groups = groups
            .into_iter()
            .map(|(plan, species)| {
                let weights = if several {
                    let mut w = vec![0.0; n];
                    for &k in &species {
                        let r = cloud.blocks[k].range.clone();
                        w[r.clone()].copy_from_slice(&cloud.weights[r]);
                    }
                    w
                } else {
                    Vec::new()
                };
                Group {
                    plan,
                    species,
                    weights,
                    density: plan.build(),
                }
            })
            .collect();
        TotalDensity {
            weights: cloud.weights.clone(),
            groups,
            total: vec![0.0; n],
            c: if several { vec![0.0; n] } else { Vec::new() },
        }
    }

    /// The groups: each one's estimator plan (for the merged cloud) and its
    /// species.
    pub fn groups(&self) -> impl Iterator<Item = (&DensityPlan, &[usize])> {
        self.groups.iter().map(|g| (&g.plan, &g.species[..]))
    }

    /// The same total density with every group summed over neighbour lists
    /// (same bandwidths and walls): what a refused mesh falls back to.
    pub fn on_neighbour_lists(&self, cloud: &Cloud<D>) -> Self {
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let mut plan = DensityPlan::neighbours(g.plan.eps);
                plan.walls = g.plan.walls;
                (plan, g.species.clone())
            })
            .collect();
        Self::with_plans(cloud, groups)
    }

    /// s_i at every particle of `x` (all species, in the cloud's order), or
    /// the estimator's refusal.
    pub fn compute(&mut self, x: &[[f64; D]]) -> Result<&[f64], EstimateRefused> {
        let [only] = &mut self.groups[..] else {
            for (g, group) in self.groups.iter_mut().enumerate() {
                let rho = group.density.compute(x, &group.weights)?;
                let total = &mut self.total;
                total
                    .par_chunks_mut(CHUNK)
                    .zip(rho.par_chunks(CHUNK))
                    .for_each(|(t, r)| {
                        if g == 0 {
                            t.copy_from_slice(r);
                        } else {
                            t.iter_mut().zip(r).for_each(|(t, r)| *t += r);
                        }
                    });
            }
            return Ok(&self.total);
        };
        let rho = only.density.compute(x, &self.weights)?;
        self.total.copy_from_slice(rho);
        Ok(&self.total)
    }

    /// After [`compute`](Self::compute) at `x`: adds to `grad` the gradient
    /// of sum_i w_i g(s_i), given `slope[i]` = g'(s_i).
    pub fn add_gradient(&mut self, x: &[[f64; D]], slope: &[f64], grad: &mut [[f64; D]]) {
        let w = &self.weights[..];
        let [only] = &mut self.groups[..] else {
            self.c
                .par_chunks_mut(CHUNK)
                .zip(w.par_chunks(CHUNK).zip(slope.par_chunks(CHUNK)))
                .for_each(|(c, (w, s))| {
                    for ((c, w), s) in c.iter_mut().zip(w).zip(s) {
                        *c = w * s;
                    }
                });
            for group in &mut self.groups {
                group
                    .density
                    .add_linear_gradient(x, &group.weights, &self.c, grad);
            }
            return;
        };
        only.density.add_gradient(x, w, slope, grad);
    }

    /// Every particle's weight (the w_i of sum_i w_i g(s_i)).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Forget the state carried between calls ([`DensityEstimator::reset`]).
    pub fn reset(&mut self) {
        self.groups.iter_mut().for_each(|g| g.density.reset());
    }
}

/// The species grouped by bandwidth (exact equality), in the order of their
/// first species: each group's first plan and its species.
fn group_species(plans: &[DensityPlan]) -> Vec<(DensityPlan, Vec<usize>)> {
    let mut groups: Vec<(DensityPlan, Vec<usize>)> = Vec::new();
    for (k, plan) in plans.iter().enumerate() {
        match groups.iter_mut().find(|(p, _)| p.eps == plan.eps) {
            Some((_, species)) => species.push(k),
            None => groups.push((*plan, vec![k])),
        }
    }
    groups
}

/// The steric energy E_st = sum_i w_i g(s_i) over every particle (module docs).
pub struct StericEnergy<const D: usize> {
    steric: Steric,
    total: TotalDensity<D>,
    /// One bandwidth: the local functional's arrays.
    scratch: LocalScratch,
    /// Several: g'(s_i), kept between the two passes.
    slope: Vec<f64>,
    /// Several: w_i g(s_i), kept so the energy is summed in a fixed order.
    energy: Vec<f64>,
}

impl<const D: usize> StericEnergy<D> {
    /// The term of `steric` over every particle of `cloud`, species k
    /// smoothed at `plans[k].eps` (see [`TotalDensity::new`]).
    pub fn new(
        cloud: &Cloud<D>,
        steric: Steric,
        plans: &[DensityPlan],
        method: DensityMethod,
    ) -> Self {
        Self::with_total(steric, TotalDensity::new(cloud, plans, method))
    }

    /// The term of `steric` with the total density `total`.
    pub fn with_total(steric: Steric, total: TotalDensity<D>) -> Self {
        StericEnergy {
            steric,
            total,
            scratch: LocalScratch::default(),
            slope: Vec::new(),
            energy: Vec::new(),
        }
    }

    /// The total density's estimators.
    pub fn total_density(&self) -> &TotalDensity<D> {
        &self.total
    }
}

impl<const D: usize> EnergyTerm<D> for StericEnergy<D> {
    fn part(&self) -> Part {
        Part::Steric
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let steric = self.steric;
        if let [only] = &mut self.total.groups[..] {
            // One bandwidth: E_st = sum_i w_i g(rho_i) of one estimator over
            // the merged cloud, its local functional (a divided evaluation
            // then exchanges only its ghosts' slopes).
            let local = move |w: f64, s: f64| (w * steric.per_mass(s), steric.per_mass_slope(s));
            let w = &self.total.weights[..];
            return match (only.density).local_functional(x, w, &local, &mut self.scratch, grad) {
                Ok(value) if value.is_finite() => value,
                // At or beyond close packing, or a trial spread over more
                // mesh than allowed: +infinity, and no gradient.
                _ => f64::INFINITY,
            };
        }
        if self.total.compute(x).is_err() {
            // A trial spread over more mesh than allowed is not a candidate.
            return f64::INFINITY;
        }
        let (s, w) = (&self.total.total[..], &self.total.weights[..]);
        self.slope.resize(w.len(), 0.0);
        self.energy.resize(w.len(), 0.0);
        self.slope
            .par_chunks_mut(CHUNK)
            .zip(self.energy.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (slope, energy))| {
                for k in 0..slope.len() {
                    let i = c * CHUNK + k;
                    energy[k] = w[i] * steric.per_mass(s[i]);
                    slope[k] = steric.per_mass_slope(s[i]);
                }
            });
        let value = sum_chunks(self.energy.len(), |r| self.energy[r].iter().sum());
        if !value.is_finite() {
            // At or beyond close packing: +infinity, and no gradient.
            return f64::INFINITY;
        }
        self.total.add_gradient(x, &self.slope, grad);
        value
    }

    /// As the diffusion term's: the lists' order and the mesh's size limit
    /// are set afresh from X^n.
    fn reset(&mut self) {
        self.total.reset();
    }

    /// Every group's estimator runs over all the particles (the merged
    /// cloud keeps their indices), so each is asked for `particles` as
    /// they are: its gradient methods then fill those entries.
    fn want(&mut self, particles: Option<&[u32]>) {
        for g in &mut self.total.groups {
            g.density.want(particles);
        }
    }

    fn frame(&mut self, frame: Option<&crate::util::morton::Frame<D>>) {
        for g in &mut self.total.groups {
            g.density.frame(frame);
        }
    }

    /// Every group's estimator adds its costs (all particles', as `want`).
    fn add_costs(&self, cost: &mut [f64]) {
        for g in &self.total.groups {
            g.density.add_costs(cost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::dist2;
    use crate::model::kernel::{RadialKernel, WendlandC2};
    use crate::particles::SpeciesBlock;

    /// Two species of 150 and 90 particles in [0, 1]^D, uneven weights.
    fn two_species<const D: usize>() -> Cloud<D> {
        let (n0, n1) = (150, 90);
        let positions: Vec<[f64; D]> = (0..n0 + n1)
            .map(|i| {
                std::array::from_fn(|a| {
                    ((i + 1) as f64 * [0.754_877_7, 0.569_840_3, 0.438_579_5][a]).fract()
                })
            })
            .collect();
        let weights: Vec<f64> = (0..n0 + n1)
            .map(|i| (1.0 + (i % 5) as f64) / (3.0 * (n0 + n1) as f64))
            .collect();
        let block = |name: &str, range: std::ops::Range<usize>, z: f64| SpeciesBlock {
            name: name.into(),
            mass: weights[range.clone()].iter().sum(),
            range,
            charge: z,
            diffusion: 1.0,
            exponent: 1.0,
        };
        Cloud {
            blocks: vec![block("a", 0..n0, 1.0), block("b", n0..n0 + n1, -1.0)],
            ids: (0..(n0 + n1) as u64).collect(),
            positions,
            weights,
        }
    }

    /// s_i on one thread and two is the same to the bit, with one bandwidth
    /// and with two (the fixed-order sums); and with two bandwidths it is
    /// the plain sum of the definition (to rounding, 1e-12 relative).
    #[test]
    fn total_density_is_deterministic_and_exact() {
        let cloud = two_species::<2>();
        for eps in [[0.05, 0.05], [0.05, 0.08]] {
            let plans: Vec<DensityPlan> = eps.iter().map(|&e| DensityPlan::neighbours(e)).collect();
            let run = |t| {
                crate::util::parallel::on_threads(t, || {
                    let mut total = TotalDensity::new(&cloud, &plans, DensityMethod::Neighbours);
                    let s = total.compute(&cloud.positions).unwrap().to_vec();
                    let mut term = StericEnergy::with_total(
                        Steric {
                            volume: 0.05,
                            temperature: 1.0,
                        },
                        total,
                    );
                    let mut grad = vec![[0.0; 2]; cloud.len()];
                    let e = term.value_and_gradient(&cloud.positions, &mut grad);
                    (s, e, grad)
                })
            };
            let one = run(1);
            assert_eq!(one, run(2));
            let kernels = eps.map(|e| WendlandC2::new(2, e));
            for i in 0..cloud.len() {
                let exact: f64 = cloud
                    .blocks
                    .iter()
                    .zip(&kernels)
                    .flat_map(|(b, k)| {
                        b.range.clone().map(|j| {
                            cloud.weights[j]
                                * k.value(dist2(&cloud.positions[i], &cloud.positions[j]))
                        })
                    })
                    .sum();
                assert!(
                    (one.0[i] - exact).abs() <= 1e-12 * exact,
                    "{eps:?} i={i}: {} vs {exact}",
                    one.0[i]
                );
            }
        }
    }

    /// At and beyond close packing the energy is +infinity and the gradient
    /// is left alone; just below it, finite.
    #[test]
    fn close_packing_is_infinite_energy() {
        let cloud = two_species::<1>();
        let plans = [DensityPlan::neighbours(0.02); 2];
        let mut total = TotalDensity::new(&cloud, &plans, DensityMethod::Neighbours);
        let top = total
            .compute(&cloud.positions)
            .unwrap()
            .iter()
            .fold(0.0f64, |m, &s| m.max(s));
        let mut grad = vec![[0.0; 1]; cloud.len()];
        for (volume, finite) in [(0.999 / top, true), (1.0 / top, false), (2.0 / top, false)] {
            let steric = Steric {
                volume,
                temperature: 1.0,
            };
            let mut term = StericEnergy::new(&cloud, steric, &plans, DensityMethod::Neighbours);
            grad.fill([0.0]);
            let e = term.value_and_gradient(&cloud.positions, &mut grad);
            assert_eq!(e.is_finite(), finite, "v = {volume}: {e}");
            if !finite {
                assert_eq!(e, f64::INFINITY);
                assert!(grad.iter().all(|g| g[0] == 0.0));
            } else {
                assert!(grad.iter().all(|g| g[0].is_finite()));
            }
        }
    }
}
