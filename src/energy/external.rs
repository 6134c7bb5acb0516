//! The particles' energy in the fixed potential of the background charges
//! and the walls (SPEC §7-8), part of the interaction column:
//!
//!   E_ext = lambda sum_i q_i phi_ext(X_i),   q_i = z_k w_i,
//!   dE_ext/dX_i = lambda q_i grad phi_ext(X_i),
//!
//! phi_ext = psi_C + phi_walls ([`crate::coupling::ExternalPotential`]), so
//! that the variation of the interaction energy in rho_k is lambda z_k psi.
//!
//! A potential that sums E_ext itself does so
//! ([`ExternalPotential::sum_charges`]: the box's, by planes of its grid,
//! which a team's members hold in pieces), and the term adds the gradient
//! at the wanted particles. Otherwise E_ext is summed over fixed chunks of
//! `CHUNK` particles (id order), added in chunk order. Under a team (MPI
//! ranks, `util::team`) whose member wants some particles' gradient only
//! ([`EnergyTerm::want`]), a member sums its
//! share of the chunks, the chunk sums are gathered (N / 1024 numbers) and
//! added in order, and it evaluates grad phi_ext at its wanted particles:
//! the single process's bits, and 1/P of the work plus its particles.

use std::sync::Arc;

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::coupling::ExternalPotential;
use crate::particles::Cloud;
use crate::util::parallel::{CHUNK, sum_chunks, wanted_in};
use crate::util::team::{self, Team, split_chunks};

/// lambda sum_i q_i phi_ext(X_i).
pub struct ExternalField<const D: usize> {
    strength: f64,
    charges: Vec<f64>,
    potential: Box<dyn ExternalPotential<D>>,
    /// phi_ext at each particle, from the gradient pass.
    values: Vec<f64>,
    /// The members that divide the sum (module docs).
    team: Arc<dyn Team>,
    /// The particles whose gradient the caller reads (`None`: all).
    wanted: Option<Vec<u32>>,
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
            team: team::current(),
            wanted: None,
        }
    }

    /// The sum divided among the members of `team` (the process's team,
    /// [`team::current`], by default; module docs).
    pub fn with_team(mut self, team: Arc<dyn Team>) -> Self {
        self.team = team;
        self
    }

    /// grad += lambda q_i grad phi_ext(X_i) at the wanted particles (all
    /// of them for one member or no request).
    fn gradients(&self, x: &[[f64; D]], grad: &mut [[f64; D]]) {
        let (lambda, q, phi) = (self.strength, &self.charges[..], &*self.potential);
        let wanted = self.wanted.as_deref().filter(|_| self.team.size() > 1);
        grad.par_chunks_mut(CHUNK).enumerate().for_each(|(c, g)| {
            let (first, len) = (c * CHUNK, g.len());
            let mut add = |i: usize| {
                let dphi = phi.value_and_gradient(&x[i]).1;
                for a in 0..D {
                    g[i - first][a] += lambda * q[i] * dphi[a];
                }
            };
            match wanted {
                Some(w) => (wanted_in(w, first..first + len).iter()).for_each(|&i| add(i as usize)),
                None => (first..first + len).for_each(add),
            }
        });
    }

    /// A member's share (module docs): the gradient at its wanted
    /// particles, and E_ext from the gathered chunk sums.
    fn divided(&self, x: &[[f64; D]], grad: &mut [[f64; D]], wanted: &[u32]) -> f64 {
        let (lambda, q, phi) = (self.strength, &self.charges[..], &*self.potential);
        let chunks = |r: &std::ops::Range<usize>| r.start / CHUNK..r.end.div_ceil(CHUNK);
        let parts = split_chunks(x.len(), self.team.size());
        let mine = chunks(&parts[self.team.rank()]);
        // A chunk of this member's sums every particle's q phi_ext, and
        // takes the gradient of its wanted ones from the same call.
        let sums: Vec<Option<f64>> = (grad.par_chunks_mut(CHUNK).enumerate())
            .map(|(c, g)| {
                let (first, len) = (c * CHUNK, g.len());
                let mut wanted = wanted_in(wanted, first..first + len).iter().peekable();
                let mut add = |i: usize, dphi: [f64; D]| {
                    for a in 0..D {
                        g[i - first][a] += lambda * q[i] * dphi[a];
                    }
                };
                if !mine.contains(&c) {
                    wanted.for_each(|&i| add(i as usize, phi.value_and_gradient(&x[i as usize]).1));
                    return None;
                }
                let mut sum = 0.0;
                for i in first..first + len {
                    let (value, dphi) = phi.value_and_gradient(&x[i]);
                    sum += q[i] * value;
                    if wanted.next_if(|&&k| k as usize == i).is_some() {
                        add(i, dphi);
                    }
                }
                Some(sum)
            })
            .collect();
        let mine: Vec<f64> = sums.into_iter().flatten().collect();
        let counts: Vec<usize> = parts.iter().map(|r| chunks(r).len()).collect();
        let mut all = vec![0.0; x.len().div_ceil(CHUNK)];
        self.team.all_gather(&mine, &counts, &mut all);
        lambda * all.iter().sum::<f64>()
    }
}

impl<const D: usize> EnergyTerm<D> for ExternalField<D> {
    fn part(&self) -> Part {
        Part::Interaction
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let wanted = self.wanted.as_deref().filter(|_| self.team.size() > 1);
        if let Some(sum) = self.potential.sum_charges(x, &self.charges, wanted) {
            self.gradients(x, grad);
            return self.strength * sum;
        }
        if let Some(wanted) = wanted {
            return self.divided(x, grad, wanted);
        }
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

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::particles::SpeciesBlock;
    use crate::util::team::ThreadTeam;

    /// A smooth potential with both signs and no symmetry.
    struct Wavy;
    impl ExternalPotential<2> for Wavy {
        fn value_and_gradient(&self, x: &[f64; 2]) -> (f64, [f64; 2]) {
            let (s, c) = (x[0].sin(), (2.0 * x[1]).cos());
            (
                s * c + 0.3 * x[1],
                [x[0].cos() * c, -2.0 * s * (2.0 * x[1]).sin() + 0.3],
            )
        }
    }

    fn cloud(n: usize) -> Cloud<2> {
        let positions: Vec<[f64; 2]> = (0..2 * n)
            .map(|i| {
                let t = i as f64;
                [
                    (t * 0.618_034).fract() * 4.0,
                    (t * 0.414_214).fract() * 2.0 - 1.0,
                ]
            })
            .collect();
        let block = |k: usize, charge: f64| SpeciesBlock {
            name: format!("s{k}"),
            range: k * n..(k + 1) * n,
            charge,
            diffusion: 1.0,
            exponent: 1.0,
            mass: 1.0,
        };
        Cloud {
            weights: (0..2 * n).map(|i| 1.0 + (i % 7) as f64 * 0.01).collect(),
            ids: (0..2 * n as u64).collect(),
            positions,
            blocks: vec![block(0, 1.0), block(1, -2.0)],
        }
    }

    /// Members of a team of 2-4 (threads standing for MPI ranks), each
    /// wanting the particles of its band of the first axis (as a JKO
    /// step's layout gives, across the chunks of ids), get the single
    /// process's energy and the gradient of their particles to the bit;
    /// that gradient is lambda q_i grad phi_ext(X_i) (exact: the same
    /// formula), and the entries of other particles stay as they were.
    #[test]
    fn members_wanting_some_particles_get_the_single_process_bits() {
        let n = 3 * CHUNK + 77;
        let c = cloud(n);
        let x = c.positions.clone();
        let mut whole = ExternalField::new(&c, 0.7, Box::new(Wavy));
        let mut g = vec![[0.0; 2]; x.len()];
        let e = whole.value_and_gradient(&x, &mut g);
        let q = c.charges();
        for (i, gi) in g.iter().enumerate() {
            let d = Wavy.value_and_gradient(&x[i]).1;
            assert_eq!(*gi, [0.7 * q[i] * d[0], 0.7 * q[i] * d[1]]);
        }
        for size in 2..=4 {
            let got = ThreadTeam::run(size, |t| {
                let band = |p: &[f64; 2]| ((p[0] / 4.0 * size as f64) as usize).min(size - 1);
                let wanted: Vec<u32> = (0..x.len() as u32)
                    .filter(|&i| band(&x[i as usize]) == t.rank())
                    .collect();
                let mut term = ExternalField::new(&c, 0.7, Box::new(Wavy)).with_team(t);
                term.want(Some(&wanted));
                let mut untouched = vec![[f64::NAN; 2]; x.len()];
                for &i in &wanted {
                    untouched[i as usize] = [0.0; 2];
                }
                let e_m = term.value_and_gradient(&x, &mut untouched);
                (e_m, wanted, untouched)
            });
            for (rank, (e_m, wanted, gm)) in got.iter().enumerate() {
                assert_eq!(e_m.to_bits(), e.to_bits(), "member {rank} of {size}");
                for (i, gi) in gm.iter().enumerate() {
                    if wanted.binary_search(&(i as u32)).is_ok() {
                        assert_eq!(*gi, g[i], "member {rank} of {size}, particle {i}");
                    } else {
                        assert!(
                            gi[0].is_nan(),
                            "member {rank} of {size}: particle {i} written"
                        );
                    }
                }
            }
        }
    }
}
