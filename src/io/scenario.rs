//! The scenario file (SPEC §3): parsed from TOML, checked, and turned into
//! plain validated types the rest of the library trusts.
//!
//! Parsing happens in two layers. Serde structs with `deny_unknown_fields`
//! read the fixed tables, which gives line/column errors for typos. The
//! `potential = {...}` and `initial = {...}` tables are dispatched on their
//! `kind` by hand, one strict struct per kind, because serde's internally
//! tagged enums silently accept unknown keys. Every number is then checked
//! finite and in range, with an error naming the file and the key.
//!
//! Ranges (README, "Extensions"), chosen so that no size computation or
//! product of a few parameters can overflow before the numerics start:
//! every real number is at most [`MAX_MAGNITUDE`] = 1e100 in magnitude, so
//! squares and products of three stay finite; a length, weight or rate
//! (time step, bandwidth, softening, std, radius, stiffness, mass, charge...)
//! is 0 where 0 is allowed or at least [`MIN_MAGNITUDE`] = 1e-100, so its
//! square and cube are normal numbers; counts have the upper bounds of the
//! `MAX_*` constants. User text echoed in a message is clipped
//! ([`crate::error::clip`]).

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::error::{Error, MAX_ECHO, Result, clip};

// The settings the scenario maps onto are owned by the numerics.
pub use crate::coupling::{Coupling, CouplingMethod};
pub use crate::density::{Bandwidth, Density, DensityMethod};
pub use crate::model::potential::PotentialSpec;
pub use crate::particles::{InitialSpec, Species};
pub use crate::stepper::{Problem, Solver};

/// A validated scenario: the [`Problem`] the numerics solve, plus what a run
/// to a directory needs (its length, its output, the Eulerian grid, what to
/// do on a collapse). It dereferences to its problem, so `s.species`,
/// `s.time_step` and `Simulation::new(&s)` read through.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub problem: Problem,
    pub steps: usize,
    pub output_every: usize,
    /// The `[grid]` section, needed by Eulerian runs only.
    pub grid: Option<Grid>,
    /// What a run does when a self-attracting species collapses.
    pub on_collapse: OnCollapse,
}

impl std::ops::Deref for Scenario {
    type Target = Problem;
    fn deref(&self) -> &Problem {
        &self.problem
    }
}

impl std::ops::DerefMut for Scenario {
    fn deref_mut(&mut self) -> &mut Problem {
        &mut self.problem
    }
}

/// `on_collapse = "stop" | "continue"` (extension, README "Events").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCollapse {
    /// End the run with complete files and exit status 5 (the default: past a
    /// collapse the particles no longer resolve the density).
    #[default]
    Stop,
    /// Record the event and go on.
    Continue,
}

/// The Eulerian grid of SPEC §6.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub cells: Vec<usize>,
}

// ---------------------------------------------------------------------------
// Raw serde layer
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    dimension: i64,
    time_step: f64,
    steps: i64,
    output_every: Option<i64>,
    seed: Option<i64>,
    coupling: Option<RawCoupling>,
    density: Option<RawDensity>,
    solver: Option<RawSolver>,
    grid: Option<RawGrid>,
    on_collapse: Option<String>,
    species: Option<Vec<RawSpecies>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoupling {
    strength: Option<f64>,
    method: Option<String>,
    softening: Option<f64>,
    accuracy: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDensity {
    bandwidth: Option<NumberOrWord>,
    method: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSolver {
    tolerance: Option<f64>,
    max_iterations: Option<i64>,
    memory: Option<i64>,
    max_halvings: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    lower: Vec<f64>,
    upper: Vec<f64>,
    cells: Scalars,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpecies {
    name: String,
    charge: Option<f64>,
    diffusion: Option<f64>,
    exponent: Option<f64>,
    mass: Option<f64>,
    particles: Option<i64>,
    potential: Option<toml::Value>,
    initial: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct RawNone {
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawQuadratic {
    kind: String,
    center: Option<Vec<f64>>,
    stiffness: Scalars,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawDoubleWell {
    kind: String,
    center: Option<Vec<f64>>,
    radius: f64,
    depth: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawGaussian {
    kind: String,
    mean: Vec<f64>,
    std: Scalars,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawUniform {
    kind: String,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawBarenblatt {
    kind: String,
    center: Option<Vec<f64>>,
    radius: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawCsv {
    kind: String,
    path: String,
    step: Option<i64>,
}

/// A number or a vector of numbers (`stiffness = 1.0` or `stiffness = [1.0, 2.0]`).
#[derive(Debug, Clone)]
struct Scalars {
    values: Vec<f64>,
    scalar: bool,
}

impl<'de> Deserialize<'de> for Scalars {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or an array of numbers")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Scalars, E> {
                Ok(Scalars {
                    values: vec![v],
                    scalar: true,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Scalars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Scalars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Scalars, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<f64>()? {
                    values.push(v);
                }
                Ok(Scalars {
                    values,
                    scalar: false,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `bandwidth = 0.05` or `bandwidth = "auto"`.
#[derive(Debug, Clone)]
enum NumberOrWord {
    Number(f64),
    Word(String),
}

impl<'de> Deserialize<'de> for NumberOrWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumberOrWord;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or the string \"auto\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Number(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<NumberOrWord, E> {
                Ok(NumberOrWord::Word(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Largest particle count per species, and of all species together, we
/// accept before allocating anything: 2^31 particles of d = 3 already need
/// ~100 GiB of positions alone, and every size product stays far from 2^64.
pub const MAX_PARTICLES: usize = 1 << 31;

/// Largest magnitude of any real number in a scenario: the square of a
/// coordinate or a length, and the product of three parameters, stay finite.
pub const MAX_MAGNITUDE: f64 = 1e100;

/// Smallest non-zero magnitude of a length, weight or rate: its square and
/// cube (eps^d in d = 3) are still normal f64 numbers.
pub const MIN_MAGNITUDE: f64 = 1e-100;

/// Largest `steps` and `output_every`: step numbers and times n h stay exact
/// in f64 (2^53), and the disk estimate of the output cannot overflow.
pub const MAX_STEPS: usize = 1 << 53;

/// Largest `[solver] memory` (L-BFGS history): 2 memory vectors of N d numbers
/// each; a longer history than a few tens gains nothing.
pub const MAX_SOLVER_MEMORY: usize = 1000;

/// Largest `[solver] max_iterations` per JKO step.
pub const MAX_SOLVER_ITERATIONS: usize = 10_000_000;

/// Largest `[solver] max_halvings`: 2^20 sub-steps per step.
pub const MAX_HALVINGS: usize = 20;

/// Largest exponent m: rho^m must stay finite for the densities a run meets
/// (rho^10 overflows only above rho = 1e30).
pub const MAX_EXPONENT: f64 = 10.0;

/// Longest `initial.path`, in bytes (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

/// Collects the file and the key for error messages.
struct Checker<'a> {
    file: &'a Path,
    dimension: usize,
}

impl Checker<'_> {
    fn err(&self, key: &str, msg: impl Into<String>) -> Error {
        Error::input(self.file, key, msg)
    }

    /// A finite number of magnitude at most [`MAX_MAGNITUDE`] (coordinates).
    fn finite(&self, key: &str, v: f64) -> Result<f64> {
        if !v.is_finite() {
            Err(self.err(key, format!("must be a finite number, got {v}")))
        } else if v.abs() > MAX_MAGNITUDE {
            Err(self.err(
                key,
                format!(
                    "must be at most {MAX_MAGNITUDE:e} in magnitude (so that its square and \
                     products with other parameters stay finite), got {v:e}"
                ),
            ))
        } else {
            Ok(v)
        }
    }

    /// A [`finite`](Self::finite) scale (length, weight, rate, charge): 0 or
    /// of magnitude at least [`MIN_MAGNITUDE`].
    fn scale(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v != 0.0 && v.abs() < MIN_MAGNITUDE {
            return Err(self.err(
                key,
                format!(
                    "must be 0 or at least {MIN_MAGNITUDE:e} in magnitude (so that its square \
                     and cube are normal numbers), got {v:e}"
                ),
            ));
        }
        Ok(v)
    }

    /// A scale > 0, so at least [`MIN_MAGNITUDE`].
    fn positive(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v <= 0.0 {
            return Err(self.err(key, format!("must be positive, got {v}")));
        }
        if v < MIN_MAGNITUDE {
            return Err(self.err(
                key,
                format!(
                    "must be at least {MIN_MAGNITUDE:e} (so that its square and cube are normal \
                     numbers), got {v:e}"
                ),
            ));
        }
        Ok(v)
    }

    fn non_negative(&self, key: &str, v: f64) -> Result<f64> {
        let v = self.finite(key, v)?;
        if v < 0.0 {
            return Err(self.err(key, format!("must be >= 0, got {v}")));
        }
        self.scale(key, v)
    }

    /// An integer in `min..=max`.
    fn count(&self, key: &str, v: i64, min: i64, max: usize) -> Result<usize> {
        if v < min {
            return Err(self.err(key, format!("must be an integer >= {min}, got {v}")));
        }
        if v as u64 > max as u64 {
            return Err(self.err(key, format!("must be at most {max}, got {v}")));
        }
        Ok(v as usize)
    }

    /// A vector of exactly `dimension` finite numbers.
    fn vector(&self, key: &str, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.dimension {
            return Err(self.err(
                key,
                format!(
                    "must have {} component(s) (the scenario's dimension), got {}",
                    self.dimension,
                    v.len()
                ),
            ));
        }
        for (a, &x) in v.iter().enumerate() {
            self.finite(&format!("{key}[{a}]"), x)?;
        }
        Ok(v.to_vec())
    }

    /// A number (broadcast to every axis) or a vector of length `dimension`.
    fn per_axis(&self, key: &str, s: &Scalars) -> Result<Vec<f64>> {
        if s.scalar {
            let v = self.finite(key, s.values[0])?;
            Ok(vec![v; self.dimension])
        } else {
            self.vector(key, &s.values)
        }
    }

    fn center(&self, key: &str, c: &Option<Vec<f64>>) -> Result<Vec<f64>> {
        match c {
            Some(c) => self.vector(key, c),
            None => Ok(vec![0.0; self.dimension]),
        }
    }
}

/// Deserialize a `{ kind = ..., ... }` table into the strict struct of its kind.
fn strict<T: serde::de::DeserializeOwned>(
    file: &Path,
    key: &str,
    kind: &str,
    v: &toml::Value,
) -> Result<T> {
    // Through TOML text, one key per line, so that the error's span names
    // the field at fault (a Value's own deserializer does not say which).
    let text = toml::to_string(v).map_err(|e| Error::input(file, key, e.to_string()))?;
    toml::from_str::<T>(&text).map_err(|e| {
        let field = e.span().and_then(|span| {
            let start = span.start.min(text.len());
            let end = span.end.clamp(start, text.len());
            if text.get(start..end)?.contains('\n') {
                return None;
            }
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line = text[line_start..].lines().next()?;
            let (name, _) = line.split_once('=')?;
            Some(name.trim().trim_matches('"').to_string())
        });
        let location = match field {
            Some(f) => format!("{key}.{}", clip(&f, MAX_ECHO)),
            None => key.to_string(),
        };
        Error::input(
            file,
            location,
            format!("kind \"{kind}\": {}", clip(e.message(), MAX_ECHO)),
        )
    })
}

fn kind_of<'v>(file: &Path, key: &str, v: &'v toml::Value) -> Result<&'v str> {
    let table = v
        .as_table()
        .ok_or_else(|| Error::input(file, key, "must be a table like { kind = \"...\", ... }"))?;
    match table.get("kind") {
        Some(toml::Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Error::input(
            file,
            format!("{key}.kind"),
            "must be a string",
        )),
        None => Err(Error::input(file, key, "missing key `kind`")),
    }
}

/// Longest scenario file read (scenarios are a few kB; this bounds what a
/// stray file given as a scenario can take in memory).
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// The TOML parser's message, which quotes the offending line: as is when it
/// is short, otherwise the line and column with an excerpt of the line around
/// the column (a 50 MB line is not echoed in full).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let full = e.to_string();
    if full.len() <= 4 * MAX_ECHO {
        return full.trim_end().to_string();
    }
    let Some(span) = e.span() else {
        return clip(full.trim_end(), 4 * MAX_ECHO);
    };
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[..at].matches('\n').count() + 1;
    let column = text[line_start..at].chars().count() + 1;
    let before: String = {
        let b: Vec<char> = text[line_start..at].chars().rev().take(60).collect();
        b.into_iter().rev().collect()
    };
    let after: String = text[at..line_end].chars().take(60).collect();
    format!(
        "TOML parse error at line {line}, column {column} (a line of {} characters; excerpt: \"{before}{after}\"): {}",
        text[line_start..line_end].chars().count(),
        clip(e.message().trim_end(), MAX_ECHO)
    )
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Scenario {
    /// Read and validate a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::input(path, "file", format!("cannot open the scenario: {e}")))?;
        if !meta.is_file() {
            return Err(Error::input(path, "file", "not a regular file"));
        }
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(Error::input(
                path,
                "file",
                format!(
                    "is {} bytes long; a scenario is at most {MAX_SCENARIO_BYTES} bytes",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, "file", format!("cannot read the scenario: {e}")))?;
        Scenario::from_toml(&text, path)
    }

    /// Parse and validate scenario text; `path` names it in errors and anchors
    /// relative paths (particle files) at its folder.
    pub fn from_toml(text: &str, path: &Path) -> Result<Scenario> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| Error::input(path, "TOML", toml_message(text, &e)))?;
        let file = path;

        let dimension = match raw.dimension {
            1..=3 => raw.dimension as usize,
            d => {
                return Err(Error::input(
                    file,
                    "dimension",
                    format!("must be 1, 2 or 3, got {d}"),
                ));
            }
        };
        let c = Checker { file, dimension };

        let time_step = c.positive("time_step", raw.time_step)?;
        let steps = c.count("steps", raw.steps, 0, MAX_STEPS)?;
        let output_every = c.count("output_every", raw.output_every.unwrap_or(1), 1, MAX_STEPS)?;
        let seed = match raw.seed {
            Some(s) if s < 0 => return Err(c.err("seed", format!("must be >= 0, got {s}"))),
            Some(s) => s as u64,
            None => 0,
        };

        let coupling = Self::coupling(&c, raw.coupling)?;
        let density = Self::density(&c, raw.density)?;
        let solver = Self::solver(&c, raw.solver)?;
        let grid = raw.grid.map(|g| Self::grid(&c, g)).transpose()?;
        let on_collapse = match raw.on_collapse.as_deref() {
            None | Some("stop") => OnCollapse::Stop,
            Some("continue") => OnCollapse::Continue,
            Some(other) => {
                return Err(c.err(
                    "on_collapse",
                    format!(
                        "must be \"stop\" or \"continue\", got \"{}\"",
                        clip(other, MAX_ECHO)
                    ),
                ));
            }
        };

        let raw_species = raw.species.unwrap_or_default();
        if raw_species.is_empty() {
            return Err(c.err("species", "at least one [[species]] table is required"));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut species = Vec::with_capacity(raw_species.len());
        for (k, rs) in raw_species.into_iter().enumerate() {
            let s = Self::species(&c, k, rs, base)?;
            if species.iter().any(|o: &Species| o.name == s.name) {
                return Err(c.err(
                    &format!("species[{k}].name"),
                    format!("duplicate species name \"{}\"", s.name),
                ));
            }
            species.push(s);
        }
        Self::total_particles(&c, &species)?;

        Ok(Scenario {
            problem: Problem {
                path: path.to_path_buf(),
                dimension,
                time_step,
                seed,
                coupling,
                density,
                solver,
                species,
            },
            steps,
            output_every,
            grid,
            on_collapse,
        })
    }

    /// All species together stay within [`MAX_PARTICLES`] (the sum is checked,
    /// so no later size product starts from a wrapped count).
    fn total_particles(c: &Checker, species: &[Species]) -> Result<()> {
        let mut total = 0usize;
        for (k, s) in species.iter().enumerate() {
            total = total.saturating_add(s.particles.unwrap_or(0));
            if total > MAX_PARTICLES {
                return Err(c.err(
                    &format!("species[{k}].particles"),
                    format!(
                        "the species up to this one have {total} particles, more than this build \
                         supports in all ({MAX_PARTICLES})"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn coupling(c: &Checker, raw: Option<RawCoupling>) -> Result<Coupling> {
        let Some(raw) = raw else {
            return Ok(Coupling {
                strength: 0.0,
                method: CouplingMethod::Auto,
                softening: 0.0,
                accuracy: 1e-6,
            });
        };
        let strength = c.scale("coupling.strength", raw.strength.unwrap_or(0.0))?;
        let method = match raw.method.as_deref().unwrap_or("auto") {
            "direct" => CouplingMethod::Direct,
            "tree" => CouplingMethod::Tree,
            "auto" => CouplingMethod::Auto,
            other => {
                return Err(c.err(
                    "coupling.method",
                    format!(
                        "unknown method \"{}\"; expected \"direct\", \"tree\" or \"auto\"",
                        clip(other, MAX_ECHO)
                    ),
                ));
            }
        };
        let softening = c.non_negative("coupling.softening", raw.softening.unwrap_or(0.0))?;
        if strength != 0.0 && softening == 0.0 && c.dimension > 1 {
            return Err(c.err(
                "coupling.softening",
                format!(
                    "must be > 0 in dimension {} (the point-charge kernel is singular); \
                     a value near the particle spacing is a good start",
                    c.dimension
                ),
            ));
        }
        let accuracy = c.positive("coupling.accuracy", raw.accuracy.unwrap_or(1e-6))?;
        if accuracy >= 1.0 {
            return Err(c.err(
                "coupling.accuracy",
                format!("must be < 1 (a relative error), got {accuracy}"),
            ));
        }
        Ok(Coupling {
            strength,
            method,
            softening,
            accuracy,
        })
    }

    fn density(c: &Checker, raw: Option<RawDensity>) -> Result<Density> {
        let (bandwidth, method) = raw.map_or((None, None), |r| (r.bandwidth, r.method));
        let method = match method.as_deref().unwrap_or("auto") {
            "neighbours" => DensityMethod::Neighbours,
            "mesh" => DensityMethod::Mesh,
            "auto" => DensityMethod::Auto,
            other => {
                return Err(c.err(
                    "density.method",
                    format!(
                        "unknown method \"{}\"; expected \"neighbours\", \"mesh\" or \"auto\"",
                        clip(other, MAX_ECHO)
                    ),
                ));
            }
        };
        let bandwidth = match bandwidth {
            None => Bandwidth::Auto,
            Some(NumberOrWord::Word(w)) if w == "auto" => Bandwidth::Auto,
            Some(NumberOrWord::Word(w)) => {
                return Err(c.err(
                    "density.bandwidth",
                    format!(
                        "must be a number or \"auto\", got \"{}\"",
                        clip(&w, MAX_ECHO)
                    ),
                ));
            }
            Some(NumberOrWord::Number(v)) => Bandwidth::Fixed(c.positive("density.bandwidth", v)?),
        };
        Ok(Density { bandwidth, method })
    }

    fn solver(c: &Checker, raw: Option<RawSolver>) -> Result<Solver> {
        let d = Solver::default();
        let Some(raw) = raw else { return Ok(d) };
        let tolerance = c.positive("solver.tolerance", raw.tolerance.unwrap_or(d.tolerance))?;
        if tolerance >= 1.0 {
            return Err(c.err(
                "solver.tolerance",
                format!("must be < 1 (a relative reduction), got {tolerance}"),
            ));
        }
        let max_iterations = c.count(
            "solver.max_iterations",
            raw.max_iterations.unwrap_or(d.max_iterations as i64),
            1,
            MAX_SOLVER_ITERATIONS,
        )?;
        let memory = c.count(
            "solver.memory",
            raw.memory.unwrap_or(d.memory as i64),
            1,
            MAX_SOLVER_MEMORY,
        )?;
        let max_halvings = raw.max_halvings.unwrap_or(d.max_halvings as i64);
        if max_halvings > MAX_HALVINGS as i64 {
            return Err(c.err(
                "solver.max_halvings",
                format!(
                    "must be at most {MAX_HALVINGS} (2^{MAX_HALVINGS} sub-steps per step), got {max_halvings}"
                ),
            ));
        }
        let max_halvings = c.count("solver.max_halvings", max_halvings, 0, MAX_HALVINGS)?;
        Ok(Solver {
            tolerance,
            max_iterations,
            memory,
            max_halvings: max_halvings as u32,
        })
    }

    fn grid(c: &Checker, raw: RawGrid) -> Result<Grid> {
        let lower = c.vector("grid.lower", &raw.lower)?;
        let upper = c.vector("grid.upper", &raw.upper)?;
        for a in 0..c.dimension {
            if upper[a] <= lower[a] {
                return Err(c.err(
                    "grid.upper",
                    format!(
                        "must exceed grid.lower on every axis (axis {a}: {} <= {})",
                        upper[a], lower[a]
                    ),
                ));
            }
        }
        let cells = c.per_axis("grid.cells", &raw.cells)?;
        let mut out = Vec::with_capacity(cells.len());
        for (a, &n) in cells.iter().enumerate() {
            if n.fract() != 0.0 || !(2.0..=1e8).contains(&n) {
                return Err(c.err(
                    &format!("grid.cells[{a}]"),
                    format!("must be an integer between 2 and 1e8, got {n}"),
                ));
            }
            out.push(n as usize);
        }
        Ok(Grid {
            lower,
            upper,
            cells: out,
        })
    }

    fn species(c: &Checker, k: usize, rs: RawSpecies, base: &Path) -> Result<Species> {
        let key = |f: &str| format!("species[{k}].{f}");
        if !is_safe_name(&rs.name) {
            return Err(c.err(
                &key("name"),
                format!(
                    "\"{}\" is not a valid species name (1 to 64 characters among letters, digits, '_', '-', '.')",
                    clip(&rs.name, MAX_ECHO)
                ),
            ));
        }
        let charge = c.scale(&key("charge"), rs.charge.unwrap_or(1.0))?;
        let diffusion = c.non_negative(&key("diffusion"), rs.diffusion.unwrap_or(1.0))?;
        let exponent = c.finite(&key("exponent"), rs.exponent.unwrap_or(1.0))?;
        if exponent < 1.0 {
            return Err(c.err(
                &key("exponent"),
                format!("must be >= 1 (m = 1 linear, m > 1 porous medium), got {exponent}"),
            ));
        }
        if exponent > MAX_EXPONENT {
            return Err(c.err(
                &key("exponent"),
                format!(
                    "must be at most {MAX_EXPONENT} (rho^m must stay finite), got {exponent:e}"
                ),
            ));
        }
        let mass = rs.mass.map(|m| c.positive(&key("mass"), m)).transpose()?;
        let particles = match rs.particles {
            None => None,
            Some(n) if n < 1 => {
                return Err(c.err(
                    &key("particles"),
                    format!("must be a positive integer, got {n}"),
                ));
            }
            Some(n) if n as u64 > MAX_PARTICLES as u64 => {
                return Err(c.err(
                    &key("particles"),
                    format!("{n} particles is more than this build supports ({MAX_PARTICLES})"),
                ));
            }
            Some(n) => Some(n as usize),
        };

        let potential = match &rs.potential {
            None => PotentialSpec::None,
            Some(v) => Self::potential(c, &key("potential"), v)?,
        };
        let initial = match &rs.initial {
            None => {
                return Err(c.err(
                    &key("initial"),
                    "missing: every species needs an initial law",
                ));
            }
            Some(v) => Self::initial(c, &key("initial"), v, base)?,
        };
        match &initial {
            InitialSpec::Csv { .. } => {}
            _ if particles.is_none() => {
                return Err(c.err(
                    &key("particles"),
                    "missing: needed to sample the initial law",
                ));
            }
            InitialSpec::Barenblatt { .. } if exponent <= 1.0 => {
                return Err(c.err(&key("initial"), "a Barenblatt profile needs exponent m > 1"));
            }
            _ => {}
        }
        Ok(Species {
            name: rs.name,
            charge,
            diffusion,
            exponent,
            mass,
            particles,
            potential,
            initial,
        })
    }

    fn potential(c: &Checker, key: &str, v: &toml::Value) -> Result<PotentialSpec> {
        let file = c.file;
        let kind = kind_of(file, key, v)?;
        match kind {
            "none" => {
                strict::<RawNone>(file, key, kind, v)?;
                Ok(PotentialSpec::None)
            }
            "quadratic" => {
                let r: RawQuadratic = strict(file, key, kind, v)?;
                let stiffness = c.per_axis(&format!("{key}.stiffness"), &r.stiffness)?;
                for (a, &s) in stiffness.iter().enumerate() {
                    c.non_negative(&format!("{key}.stiffness[{a}]"), s)?;
                }
                Ok(PotentialSpec::Quadratic {
                    center: c.center(&format!("{key}.center"), &r.center)?,
                    stiffness,
                })
            }
            "double_well" => {
                let r: RawDoubleWell = strict(file, key, kind, v)?;
                Ok(PotentialSpec::DoubleWell {
                    center: c.center(&format!("{key}.center"), &r.center)?,
                    radius: c.positive(&format!("{key}.radius"), r.radius)?,
                    depth: c.non_negative(&format!("{key}.depth"), r.depth)?,
                })
            }
            other => Err(c.err(
                &format!("{key}.kind"),
                format!("unknown potential kind \"{}\"; expected \"none\", \"quadratic\" or \"double_well\"", clip(other, MAX_ECHO)),
            )),
        }
    }

    fn initial(c: &Checker, key: &str, v: &toml::Value, base: &Path) -> Result<InitialSpec> {
        let file = c.file;
        let kind = kind_of(file, key, v)?;
        match kind {
            "gaussian" => {
                let r: RawGaussian = strict(file, key, kind, v)?;
                let std = c.per_axis(&format!("{key}.std"), &r.std)?;
                for (a, &s) in std.iter().enumerate() {
                    c.positive(&format!("{key}.std[{a}]"), s)?;
                }
                Ok(InitialSpec::Gaussian {
                    mean: c.vector(&format!("{key}.mean"), &r.mean)?,
                    std,
                })
            }
            "uniform" => {
                let r: RawUniform = strict(file, key, kind, v)?;
                let lower = c.vector(&format!("{key}.lower"), &r.lower)?;
                let upper = c.vector(&format!("{key}.upper"), &r.upper)?;
                for a in 0..c.dimension {
                    if upper[a] <= lower[a] {
                        return Err(c.err(
                            &format!("{key}.upper"),
                            format!("must exceed lower on every axis (axis {a}: {} <= {})", upper[a], lower[a]),
                        ));
                    }
                }
                Ok(InitialSpec::Uniform { lower, upper })
            }
            "barenblatt" => {
                let r: RawBarenblatt = strict(file, key, kind, v)?;
                Ok(InitialSpec::Barenblatt {
                    center: c.center(&format!("{key}.center"), &r.center)?,
                    radius: c.positive(&format!("{key}.radius"), r.radius)?,
                })
            }
            "csv" => {
                let r: RawCsv = strict(file, key, kind, v)?;
                if r.path.is_empty() {
                    return Err(c.err(&format!("{key}.path"), "must not be empty"));
                }
                if r.path.len() > MAX_PATH_BYTES {
                    return Err(c.err(
                        &format!("{key}.path"),
                        format!(
                            "is {} bytes long, more than a path can be ({MAX_PATH_BYTES}): \"{}\"",
                            r.path.len(),
                            clip(&r.path, MAX_ECHO)
                        ),
                    ));
                }
                let step = match r.step {
                    Some(s) if s < 0 => return Err(c.err(&format!("{key}.step"), format!("must be >= 0, got {s}"))),
                    s => s.map(|s| s as u64),
                };
                Ok(InitialSpec::Csv {
                    path: base.join(r.path),
                    step,
                })
            }
            other => Err(c.err(
                &format!("{key}.kind"),
                format!("unknown initial kind \"{}\"; expected \"gaussian\", \"uniform\", \"barenblatt\" or \"csv\"", clip(other, MAX_ECHO)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
dimension = 2
time_step = 0.01
steps = 5
output_every = 2
seed = 7
[coupling]
strength = 1.0
method = "direct"
softening = 0.02
[density]
bandwidth = 0.05
[[species]]
name = "u"
charge = 1.0
diffusion = 1.0
exponent = 1.0
particles = 100
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.5, 0.0], std = 0.3 }
[[species]]
name = "v"
charge = -1
particles = 100
potential = { kind = "double_well", radius = 1.0, depth = 2.0 }
initial = { kind = "uniform", lower = [-1, -1], upper = [1, 1] }
"#;

    #[test]
    fn parses_the_spec_example() {
        let s = Scenario::from_toml(GOOD, Path::new("good.toml")).unwrap();
        assert_eq!(s.dimension, 2);
        assert_eq!(s.species.len(), 2);
        assert_eq!(s.species[1].charge, -1.0);
        assert_eq!(
            s.species[0].potential,
            PotentialSpec::Quadratic {
                center: vec![0.0, 0.0],
                stiffness: vec![1.0, 1.0]
            }
        );
        assert_eq!(s.density.bandwidth, Bandwidth::Fixed(0.05));
    }

    fn err_of(text: &str) -> String {
        Scenario::from_toml(text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_inside_a_kind_table_is_refused() {
        let e = err_of(&GOOD.replace("stiffness = 1.0 }", "stiffness = 1.0, stifness = 2 }"));
        assert!(
            e.contains("species[0].potential") && e.contains("stifness"),
            "{e}"
        );
    }

    #[test]
    fn dimension_mismatch_names_the_key() {
        let e = err_of(&GOOD.replace("mean = [0.5, 0.0]", "mean = [0.5]"));
        assert!(
            e.contains("species[0].initial.mean") && e.contains("2 component"),
            "{e}"
        );
    }

    #[test]
    fn nan_is_refused() {
        let e = err_of(&GOOD.replace("time_step = 0.01", "time_step = nan"));
        assert!(e.contains("time_step") && e.contains("finite"), "{e}");
    }
}
