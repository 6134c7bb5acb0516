//! Initial laws of a species (SPEC §3, `initial = { kind = "...", ... }`).
//!
//! One file per kind holds the parsing of its table into its
//! [`InitialSpec`] variant and the way it gives particles: N_k independent
//! draws of weight M_k / N_k each (ids 0..N_k in the Morton order of the
//! draws' positions, `number_by_space`), from the species' own random
//! stream, or the rows of a particle file (their ids and order kept). "gaussian" and "uniform"
//! also take `sampling = "quasi"`: a scrambled Sobol set instead of
//! independent draws ([`Sampling`], `quasi.rs`). This file holds the
//! settings type and the registration of the kinds (`KINDS` for parsing,
//! `InitialSpec::fill` for the particles): adding a kind touches its file
//! and this one, plus the places outside the particles that still match on
//! the variants (the problem's vector-length check in `stepper::problem`,
//! the Eulerian initial density in `eulerian::run`).

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::model::domain::BoxDomain;
use crate::util::checks::{self, Checker};

mod barenblatt;
mod csv;
mod gaussian;
pub(crate) mod quasi;
mod uniform;

pub use csv::MAX_PATH_BYTES;
pub use quasi::{Sampling, ScrambledSobol, inverse_normal_cdf, normal_cdf};

/// Initial law of a species.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialSpec {
    /// Independent normal coordinates, per-axis standard deviation `std`.
    Gaussian {
        /// The mean, one component per axis.
        mean: Vec<f64>,
        /// The standard deviation > 0 of each axis.
        std: Vec<f64>,
    },
    /// Uniform on the box [lower, upper].
    Uniform {
        /// The lower corner.
        lower: Vec<f64>,
        /// The upper corner, above `lower` on every axis.
        upper: Vec<f64>,
    },
    /// Barenblatt profile of the species' exponent m > 1, support radius `radius`:
    /// rho ∝ (1 - |x - center|^2 / radius^2)_+^(1/(m-1)).
    Barenblatt {
        /// The center of the support.
        center: Vec<f64>,
        /// The radius > 0 of the support.
        radius: f64,
    },
    /// A particle file (SPEC §5), resolved against the scenario's folder.
    Csv {
        /// The file.
        path: PathBuf,
        /// The frame to read (the file's last step unless given).
        step: Option<u64>,
    },
}

/// Parses the table of one kind (checked, errors naming `key`).
type Parse = fn(&Checker, &str, &toml::Value) -> Result<InitialSpec>;

/// The kinds of initial law, by the name of their `kind` key, in the order
/// the error for an unknown kind lists them.
const KINDS: [(&str, Parse); 4] = [
    ("gaussian", gaussian::parse),
    ("uniform", uniform::parse),
    ("barenblatt", barenblatt::parse),
    ("csv", csv::parse),
];

/// Parse and check the `initial = { kind = "...", ... }` table `v` at `key`
/// (a relative particle file is resolved against the folder of `c.file`).
pub(crate) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<InitialSpec> {
    let parse = checks::kind_entry(c, key, v, "initial", &KINDS)?;
    parse(c, key, v)
}

/// The table's `sampling` key ("random", the default, or "quasi"; the kinds
/// that take it accept the key, the others refuse it as unknown).
pub(crate) fn sampling(c: &Checker, key: &str, v: &toml::Value) -> Result<Sampling> {
    match v.get("sampling") {
        None => Ok(Sampling::Random),
        Some(toml::Value::String(s)) if s == "random" => Ok(Sampling::Random),
        Some(toml::Value::String(s)) if s == "quasi" => Ok(Sampling::Quasi),
        Some(other) => Err(c.err(
            &format!("{key}.sampling"),
            format!(
                "must be \"random\" or \"quasi\", got {}",
                crate::error::clip(&other.to_string(), crate::error::MAX_ECHO)
            ),
        )),
    }
}

/// What a law needs of its species besides its own parameters.
pub(crate) struct Target<'a> {
    /// The species' name (its rows in a particle file).
    pub name: &'a str,
    /// N_k, required for the sampled laws.
    pub particles: Option<usize>,
    /// M_k (1 for the sampled laws unless given).
    pub mass: Option<f64>,
    /// m (the Barenblatt profile's shape).
    pub exponent: f64,
    /// The scenario, named in errors.
    pub source: &'a Path,
    /// The species' key (`species[k]`), named in errors.
    pub key: &'a str,
    /// The domain's box, if any: a sampled law is restricted to it (draws
    /// outside are drawn again) and a file's particles must lie in it.
    pub within: Option<&'a BoxDomain>,
    /// Independent draws or a quasi-random set.
    pub sampling: Sampling,
}

/// Draws per particle after which a law restricted to the box is refused
/// as having (almost) no mass in it.
pub const MAX_DRAWS_PER_PARTICLE: usize = 1000;

/// The columns of the cloud the particles of a species are appended to.
pub(crate) struct Columns<'a, const D: usize> {
    /// Positions.
    pub positions: &'a mut Vec<[f64; D]>,
    /// Weights.
    pub weights: &'a mut Vec<f64>,
    /// Ids within the species.
    pub ids: &'a mut Vec<u64>,
}

impl InitialSpec {
    /// Append the particles of species `of` under this law to `out`, random
    /// draws taken from `rng` (the species' own stream); returns the
    /// species' mass M_k.
    pub(crate) fn fill<const D: usize>(
        &self,
        of: &Target,
        rng: &mut ChaCha8Rng,
        out: Columns<D>,
    ) -> Result<f64> {
        match self {
            InitialSpec::Csv { path, step } => {
                let Columns {
                    positions,
                    weights,
                    ids,
                } = out;
                let first = positions.len();
                let out = Columns {
                    positions: &mut *positions,
                    weights,
                    ids,
                };
                let mass = csv::read(path, *step, of, out)?;
                if let Some(b) = of.within
                    && let Some(k) = positions[first..].iter().position(|p| !b.contains(p))
                {
                    return Err(crate::error::Error::input(
                        path,
                        format!("species \"{}\"", of.name),
                        format!(
                            "particle {k} of the frame, at {:?}, lies outside the domain's box [{:?}, {:?}] ({} of {})",
                            positions[first + k],
                            b.lower,
                            b.upper,
                            of.key,
                            of.source.display()
                        ),
                    ));
                }
                Ok(mass)
            }
            _ => self.fill_sampled(of, rng, out),
        }
    }

    /// N_k draws of weight M_k / N_k, ids 0..N_k.
    fn fill_sampled<const D: usize>(
        &self,
        of: &Target,
        rng: &mut ChaCha8Rng,
        out: Columns<D>,
    ) -> Result<f64> {
        let n = of
            .particles
            .expect("validated: sampled species have a count");
        let mass = of.mass.unwrap_or(1.0);
        out.positions.reserve(n);
        if of.sampling == Sampling::Quasi {
            let min_mass = 1.0 / MAX_DRAWS_PER_PARTICLE as f64;
            let points = quasi::points::<D>(self, n, of.within, rng, min_mass).map_err(|f| {
                crate::error::Error::input(
                    of.source,
                    format!("{}.initial", of.key),
                    format!(
                        "the law has (almost) no mass in the domain's box: a fraction {f:e} of it"
                    ),
                )
            })?;
            let first = out.positions.len();
            out.positions.extend(points);
            number_by_space(&mut out.positions[first..]);
            out.weights.extend(std::iter::repeat_n(mass / n as f64, n));
            out.ids.extend(0..n as u64);
            return Ok(mass);
        }
        let first = out.positions.len();
        let mut draws = 0usize;
        let limit = MAX_DRAWS_PER_PARTICLE.saturating_mul(n);
        for _ in 0..n {
            loop {
                let p = self.draw::<D>(of.exponent, rng);
                draws += 1;
                if of.within.is_none_or(|b| b.contains(&p)) {
                    out.positions.push(p);
                    break;
                }
                if draws >= limit {
                    return Err(crate::error::Error::input(
                        of.source,
                        format!("{}.initial", of.key),
                        format!(
                            "the law has (almost) no mass in the domain's box: {draws} draws gave {} particles inside",
                            out.positions.len()
                        ),
                    ));
                }
            }
        }
        number_by_space(&mut out.positions[first..]);
        out.weights.extend(std::iter::repeat_n(mass / n as f64, n));
        out.ids.extend(0..n as u64);
        Ok(mass)
    }

    /// One draw from a sampled law (`exponent` is the species' m).
    fn draw<const D: usize>(&self, exponent: f64, rng: &mut ChaCha8Rng) -> [f64; D] {
        match self {
            InitialSpec::Gaussian { mean, std } => gaussian::draw(mean, std, rng),
            InitialSpec::Uniform { lower, upper } => uniform::draw(lower, upper, rng),
            InitialSpec::Barenblatt { center, radius } => {
                barenblatt::draw(center, *radius, exponent, rng)
            }
            InitialSpec::Csv { .. } => unreachable!("csv species are read, not sampled"),
        }
    }
}

/// Puts a species' draws (all of one weight) in the Morton order of their
/// positions ([`crate::util::morton`], ties by draw), so that ids 0..N_k
/// follow space: particles close in space have close ids. Every order by
/// space a run makes (a step's layout, the neighbour lists' slots, the
/// tree's) is then nearly the id order, and its permutations read memory
/// nearly in sequence instead of a cache miss per particle (BENCHMARKS.md,
/// "Initial clouds numbered by space"). The set of points, and so the law's
/// sample, is the same.
fn number_by_space<const D: usize>(positions: &mut [[f64; D]]) {
    let mut keys = Vec::new();
    crate::util::morton::sorted_keys(positions, &mut keys);
    let sorted: Vec<[f64; D]> = keys.iter().map(|&(_, i)| positions[i as usize]).collect();
    positions.copy_from_slice(&sorted);
}

/// The law of the table `text` in dimension D and `count` of its draws
/// (species m = `exponent`), for the unit tests of the kinds.
#[cfg(test)]
fn drawn<const D: usize>(text: &str, exponent: f64, count: usize) -> Vec<[f64; D]> {
    use rand::SeedableRng;
    let law = parse(&checks::test_checker(D), "initial", &checks::table(text)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    (0..count)
        .map(|_| law.draw::<D>(exponent, &mut rng))
        .collect()
}

/// The mean and the variance of the coordinates of `x` on axis `a`.
#[cfg(test)]
fn moments<const D: usize>(x: &[[f64; D]], a: usize) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|p| p[a]).sum::<f64>() / n;
    let var = x.iter().map(|p| (p[a] - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_lists_the_registered_ones() {
        let c = checks::test_checker(1);
        let e = parse(&c, "species[0].initial", &checks::table("kind = \"delta\"")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: species[0].initial.kind: unknown initial kind \"delta\"; \
             expected \"gaussian\", \"uniform\", \"barenblatt\" or \"csv\""
        );
    }

    #[test]
    fn sampled_laws_give_equal_weights_and_ids_in_order() {
        use rand::SeedableRng;
        let law = InitialSpec::Uniform {
            lower: vec![0.0],
            upper: vec![1.0],
        };
        let of = Target {
            name: "u",
            particles: Some(4),
            mass: Some(2.0),
            exponent: 1.0,
            source: Path::new("t.toml"),
            key: "species[0]",
            within: None,
            sampling: Sampling::Random,
        };
        let (mut x, mut w, mut ids) = (Vec::<[f64; 1]>::new(), Vec::new(), Vec::new());
        let out = Columns {
            positions: &mut x,
            weights: &mut w,
            ids: &mut ids,
        };
        let mass = law
            .fill(&of, &mut ChaCha8Rng::seed_from_u64(1), out)
            .unwrap();
        assert_eq!((mass, x.len()), (2.0, 4));
        assert_eq!(w, vec![0.5; 4]);
        assert_eq!(ids, vec![0, 1, 2, 3]);
    }

    /// The ids of a sampled species follow the Morton order of its points
    /// (`number_by_space`), for independent and quasi-random draws, after
    /// another species' particles; and the points are the draws, relabeled.
    /// (Checked by hand: without the sort the order assertion fails.)
    #[test]
    fn sampled_ids_follow_space_and_the_points_are_the_draws() {
        use rand::SeedableRng;
        let law = InitialSpec::Gaussian {
            mean: vec![0.3, -0.2],
            std: vec![1.0, 0.5],
        };
        for sampling in [Sampling::Random, Sampling::Quasi] {
            let of = Target {
                name: "g",
                particles: Some(3000),
                mass: None,
                exponent: 1.0,
                source: Path::new("t.toml"),
                key: "species[1]",
                within: None,
                sampling,
            };
            let before = [[9.0, 9.0]; 7];
            let (mut x, mut w, mut ids) = (before.to_vec(), vec![1.0; 7], vec![0; 7]);
            let out = Columns {
                positions: &mut x,
                weights: &mut w,
                ids: &mut ids,
            };
            law.fill(&of, &mut ChaCha8Rng::seed_from_u64(5), out)
                .unwrap();
            assert_eq!(x[..7], before, "{sampling:?}: the earlier species");
            let mine = &x[7..];
            let mut keys = Vec::new();
            crate::util::morton::sorted_keys(mine, &mut keys);
            assert!(
                keys.iter().enumerate().all(|(k, &(_, i))| i as usize == k),
                "{sampling:?}: ids out of Morton order"
            );
            if sampling == Sampling::Random {
                let mut rng = ChaCha8Rng::seed_from_u64(5);
                let mut draws: Vec<[f64; 2]> = (0..3000).map(|_| law.draw(1.0, &mut rng)).collect();
                let mut got = mine.to_vec();
                let bits = |p: &[f64; 2]| p.map(f64::to_bits);
                draws.sort_by_key(bits);
                got.sort_by_key(bits);
                assert_eq!(got, draws, "the points are the draws");
            }
        }
    }
}
