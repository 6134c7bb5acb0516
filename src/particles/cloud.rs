//! Species as clouds of weighted particles, and their initial data.
//!
//! All species live in one array of positions, species k occupying the
//! contiguous index range `blocks[k].range`; weights are fixed for the whole
//! run, so the mass of every species is exactly conserved. Random initial
//! data come from a ChaCha8 generator seeded by the scenario's seed, one
//! stream per species: same seed, same cloud, on every machine.

use std::ops::Range;

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, StandardNormal};

use crate::error::{Error, Result};
use crate::particles::file::ParticleTable;
use std::path::{Path, PathBuf};

use crate::model::potential::PotentialSpec;

/// One species: its physics, its particle count and its initial law.
#[derive(Debug, Clone, PartialEq)]
pub struct Species {
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
    pub potential: PotentialSpec,
    pub initial: InitialSpec,
}

impl Species {
    pub fn mass_or_default(&self) -> f64 {
        self.mass.unwrap_or(1.0)
    }
}

/// Initial law of a species.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialSpec {
    /// Independent normal coordinates, per-axis standard deviation `std`.
    Gaussian { mean: Vec<f64>, std: Vec<f64> },
    /// Uniform on the box [lower, upper].
    Uniform { lower: Vec<f64>, upper: Vec<f64> },
    /// Barenblatt profile of the species' exponent m > 1, support radius `radius`:
    /// rho ∝ (1 - |x - center|^2 / radius^2)_+^(1/(m-1)).
    Barenblatt { center: Vec<f64>, radius: f64 },
    /// A particle file (SPEC §5), resolved against the scenario's folder.
    Csv { path: PathBuf, step: Option<u64> },
}

/// Where the species came from, for messages and draws.
struct Source<'a> {
    path: &'a Path,
    seed: u64,
}

/// Where one species sits in the cloud, and its physical constants.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeciesBlock {
    pub name: String,
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
    pub positions: Vec<[f64; D]>,
    pub weights: Vec<f64>,
    /// Particle ids within their species (0..N_k, or the ids of the input file).
    pub ids: Vec<u64>,
    pub blocks: Vec<SpeciesBlock>,
}

/// The generator of species `k` for `seed`: independent streams per species.
pub fn species_rng(seed: u64, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(k as u64);
    rng
}

impl<const D: usize> Cloud<D> {
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Sum of the weights of species `k`, summed in index order.
    pub fn species_mass(&self, k: usize) -> f64 {
        self.weights[self.blocks[k].range.clone()].iter().sum()
    }

    /// The initial cloud of `species` (vectors of length `D`), random draws
    /// seeded by `seed`; errors name the file `source` (the scenario) and
    /// the key `species[k]....`.
    pub fn sample(species: &[Species], seed: u64, source: &Path) -> Result<Self> {
        let s = Source { path: source, seed };
        let mut cloud = Cloud {
            positions: Vec::new(),
            weights: Vec::new(),
            ids: Vec::new(),
            blocks: Vec::with_capacity(species.len()),
        };
        for (k, sp) in species.iter().enumerate() {
            let start = cloud.positions.len();
            let key = format!("species[{k}]");
            let mass = match &sp.initial {
                InitialSpec::Csv { path, step } => {
                    let table = ParticleTable::<D>::read(path)?;
                    let frame = table.frame(path, &sp.name, *step)?;
                    let n = frame.positions.len();
                    if let Some(want) = sp.particles
                        && want != n
                    {
                        return Err(Error::input(
                            &s.path,
                            format!("{key}.particles"),
                            format!(
                                "is {want}, but {} has {n} rows of species \"{}\" at step {}",
                                path.display(),
                                sp.name,
                                frame.step
                            ),
                        ));
                    }
                    let total: f64 = frame.weights.iter().sum();
                    if let Some(m) = sp.mass
                        && ((total - m) / m).abs() > 1e-9
                    {
                        return Err(Error::input(
                            &s.path,
                            format!("{key}.mass"),
                            format!(
                                "is {m}, but the weights of species \"{}\" in {} sum to {total} (relative tolerance 1e-9)",
                                sp.name,
                                path.display()
                            ),
                        ));
                    }
                    cloud.positions.extend_from_slice(&frame.positions);
                    cloud.weights.extend_from_slice(&frame.weights);
                    cloud.ids.extend_from_slice(&frame.ids);
                    total
                }
                _ => {
                    let n = sp
                        .particles
                        .expect("validated: sampled species have a count");
                    let mass = sp.mass_or_default();
                    let mut rng = species_rng(s.seed, k);
                    cloud.positions.reserve(n);
                    for _ in 0..n {
                        cloud.positions.push(sample::<D>(sp, &mut rng));
                    }
                    cloud
                        .weights
                        .extend(std::iter::repeat_n(mass / n as f64, n));
                    cloud.ids.extend(0..n as u64);
                    mass
                }
            };
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

/// One draw from a species' initial law (not called for "csv").
fn sample<const D: usize>(sp: &Species, rng: &mut ChaCha8Rng) -> [f64; D] {
    match &sp.initial {
        InitialSpec::Gaussian { mean, std } => std::array::from_fn(|a| {
            let z: f64 = StandardNormal.sample(rng);
            mean[a] + std[a] * z
        }),
        InitialSpec::Uniform { lower, upper } => {
            std::array::from_fn(|a| lower[a] + (upper[a] - lower[a]) * rng.random::<f64>())
        }
        InitialSpec::Barenblatt { center, radius } => {
            // rho ∝ (1 - r^2/R^2)^p, p = 1/(m-1): u = r^2/R^2 ~ Beta(d/2, p + 1),
            // the direction uniform on the sphere.
            let p = 1.0 / (sp.exponent - 1.0);
            let u = Beta::new(D as f64 / 2.0, p + 1.0)
                .expect("valid Beta parameters")
                .sample(rng);
            let r = radius * f64::sqrt(u);
            let dir = unit_vector::<D>(rng);
            std::array::from_fn(|a| center[a] + r * dir[a])
        }
        InitialSpec::Csv { .. } => unreachable!("csv species are read, not sampled"),
    }
}

/// A uniformly distributed unit vector (a random sign in d = 1).
fn unit_vector<const D: usize>(rng: &mut ChaCha8Rng) -> [f64; D] {
    loop {
        let v: [f64; D] = std::array::from_fn(|_| StandardNormal.sample(rng));
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 1e-12 {
            return v.map(|x| x / n);
        }
    }
}
