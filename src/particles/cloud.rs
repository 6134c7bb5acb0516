//! Species as clouds of weighted particles, and their initial data.
//!
//! All species live in one array of positions, species k occupying the
//! contiguous index range `blocks[k].range`; weights are fixed for the whole
//! run, so the mass of every species is exactly conserved. Random initial
//! data come from a ChaCha8 generator seeded by the scenario's seed, one
//! stream per species: same seed, same cloud, on every machine.

use std::ops::Range;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::model::domain::Domain;
use crate::model::potential::PotentialSpec;
use crate::particles::initial::{Columns, InitialSpec, Sampling, Target};

/// One species: its physics, its particle count and its initial law.
#[derive(Debug, Clone, PartialEq)]
pub struct Species {
    /// The species' name (the `species` column of the outputs).
    pub name: String,
    /// z_k.
    pub charge: f64,
    /// D_k >= 0.
    pub diffusion: f64,
    /// m >= 1.
    pub exponent: f64,
    /// M_k > 0 (for "csv" initial data, the file's weight sum unless given).
    pub mass: Option<f64>,
    /// N_k (for "csv" initial data, the file's row count unless given).
    pub particles: Option<usize>,
    /// U_k, the external potential.
    pub potential: PotentialSpec,
    /// How the initial particles are drawn or read.
    pub initial: InitialSpec,
    /// Independent draws or a quasi-random set (sampled laws only).
    pub sampling: Sampling,
}

impl Species {
    /// M_k, 1 if not given.
    pub fn mass_or_default(&self) -> f64 {
        self.mass.unwrap_or(1.0)
    }
}

/// Where one species sits in the cloud, and its physical constants.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeciesBlock {
    /// The species' name.
    pub name: String,
    /// The species' particles, indices into the cloud's arrays.
    pub range: Range<usize>,
    /// z_k.
    pub charge: f64,
    /// D_k.
    pub diffusion: f64,
    /// m.
    pub exponent: f64,
    /// M_k = sum of the block's weights.
    pub mass: f64,
}

/// Positions and weights of every particle of every species.
#[derive(Debug, Clone)]
pub struct Cloud<const D: usize> {
    /// X_i of every particle, species after species.
    pub positions: Vec<[f64; D]>,
    /// w_i > 0 of every particle.
    pub weights: Vec<f64>,
    /// Particle ids within their species (0..N_k, or the ids of the input file).
    pub ids: Vec<u64>,
    /// The species, in order, each with its range of particles.
    pub blocks: Vec<SpeciesBlock>,
}

/// The generator of species `k` for `seed`: independent streams per species.
pub fn species_rng(seed: u64, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(k as u64);
    rng
}

impl<const D: usize> Cloud<D> {
    /// Total number of particles.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True if there are no particles.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Each particle's charge q_i = z_k w_i (species k's charge times its weight).
    pub fn charges(&self) -> Vec<f64> {
        let mut q = vec![0.0; self.len()];
        for b in &self.blocks {
            for i in b.range.clone() {
                q[i] = b.charge * self.weights[i];
            }
        }
        q
    }

    /// Sum of the weights of species `k`, summed in index order.
    pub fn species_mass(&self, k: usize) -> f64 {
        self.weights[self.blocks[k].range.clone()].iter().sum()
    }

    /// The initial cloud of `species` (vectors of length `D`), random draws
    /// seeded by `seed`; errors name the file `source` (the scenario) and
    /// the key `species[k]....`. Each species' law gives its particles
    /// ([`InitialSpec`]), the random ones from the species' own stream.
    pub fn sample(species: &[Species], seed: u64, source: &Path) -> Result<Self> {
        Self::sample_in(species, seed, source, &Domain::Free)
    }

    /// [`sample`](Self::sample) in `domain`: in a box, sampled laws are
    /// restricted to it (draws outside are drawn again from the same
    /// stream) and particle files must lie in it (SPEC §7).
    pub fn sample_in(
        species: &[Species],
        seed: u64,
        source: &Path,
        domain: &Domain,
    ) -> Result<Self> {
        let mut cloud = Cloud {
            positions: Vec::new(),
            weights: Vec::new(),
            ids: Vec::new(),
            blocks: Vec::with_capacity(species.len()),
        };
        for (k, sp) in species.iter().enumerate() {
            let start = cloud.positions.len();
            let key = format!("species[{k}]");
            let target = Target {
                name: &sp.name,
                particles: sp.particles,
                mass: sp.mass,
                exponent: sp.exponent,
                source,
                key: &key,
                within: domain.as_box(),
                sampling: sp.sampling,
            };
            let out = Columns {
                positions: &mut cloud.positions,
                weights: &mut cloud.weights,
                ids: &mut cloud.ids,
            };
            let mass = sp.initial.fill(&target, &mut species_rng(seed, k), out)?;
            cloud.blocks.push(SpeciesBlock {
                name: sp.name.clone(),
                range: start..cloud.positions.len(),
                charge: sp.charge,
                diffusion: sp.diffusion,
                exponent: sp.exponent,
                mass,
            });
        }
        Ok(cloud)
    }
}
