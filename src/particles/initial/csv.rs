//! `kind = "csv"`: the rows of one species at one step of a particle file
//! (SPEC §5; the frame of the file's largest step unless `step` is given).
//! The path is resolved against the scenario's folder. Positions, weights
//! and ids are the file's; a given `particles` or `mass` must agree with
//! the file (the mass to a relative 1e-9).

use std::path::Path;

use serde::Deserialize;

use super::{Columns, InitialSpec, Target};
use crate::error::{Error, MAX_ECHO, Result, clip};
use crate::particles::file::ParticleTable;
use crate::util::checks::{Checker, strict};

/// Longest `initial.path`, in bytes (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher; kept so serde accepts it
struct Raw {
    kind: String,
    path: String,
    step: Option<i64>,
}

/// `initial = { kind = "csv", path = "...", step = ... }`.
pub(super) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<InitialSpec> {
    let r: Raw = strict(c.file, key, "csv", v)?;
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
        Some(s) if s < 0 => {
            return Err(c.err(&format!("{key}.step"), format!("must be >= 0, got {s}")));
        }
        s => s.map(|s| s as u64),
    };
    let base = c.file.parent().unwrap_or(Path::new("."));
    Ok(InitialSpec::Csv {
        path: base.join(r.path),
        step,
    })
}

/// Append the frame of species `of` in the file `path` to `out`; returns
/// the sum of its weights.
pub(super) fn read<const D: usize>(
    path: &Path,
    step: Option<u64>,
    of: &Target,
    out: Columns<D>,
) -> Result<f64> {
    let table = ParticleTable::<D>::read(path)?;
    let frame = table.frame(path, of.name, step)?;
    let n = frame.positions.len();
    let key = of.key;
    if let Some(want) = of.particles
        && want != n
    {
        return Err(Error::input(
            of.source,
            format!("{key}.particles"),
            format!(
                "is {want}, but {} has {n} rows of species \"{}\" at step {}",
                path.display(),
                of.name,
                frame.step
            ),
        ));
    }
    let total: f64 = frame.weights.iter().sum();
    if let Some(m) = of.mass
        && ((total - m) / m).abs() > 1e-9
    {
        return Err(Error::input(
            of.source,
            format!("{key}.mass"),
            format!(
                "is {m}, but the weights of species \"{}\" in {} sum to {total} (relative tolerance 1e-9)",
                of.name,
                path.display()
            ),
        ));
    }
    out.positions.extend_from_slice(&frame.positions);
    out.weights.extend_from_slice(&frame.weights);
    out.ids.extend_from_slice(&frame.ids);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::super::{Columns, InitialSpec, Target, parse};
    use crate::util::checks::{Checker, table};

    #[test]
    fn the_path_is_resolved_against_the_scenario_s_folder() {
        let c = Checker {
            file: Path::new("runs/s.toml"),
            dimension: 1,
        };
        let t = table("kind = \"csv\"\npath = \"start.csv\"\nstep = 3");
        assert_eq!(
            parse(&c, "i", &t).unwrap(),
            InitialSpec::Csv {
                path: PathBuf::from("runs/start.csv"),
                step: Some(3)
            }
        );
    }

    #[test]
    fn the_file_s_frame_is_read_and_a_given_count_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(
            &path,
            "step,time,species,id,x,weight\n0,0,u,4,0.5,0.25\n0,0,u,9,-1,0.75\n0,0,v,0,3,1\n",
        )
        .unwrap();
        let law = InitialSpec::Csv {
            path: path.clone(),
            step: None,
        };
        let mut of = Target {
            name: "u",
            particles: None,
            mass: None,
            exponent: 1.0,
            source: Path::new("s.toml"),
            key: "species[0]",
            within: None,
            sampling: crate::particles::Sampling::Random,
        };
        let (mut x, mut w, mut ids) = (Vec::<[f64; 1]>::new(), Vec::new(), Vec::new());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let out = Columns {
            positions: &mut x,
            weights: &mut w,
            ids: &mut ids,
        };
        assert_eq!(law.fill(&of, &mut rng, out).unwrap(), 1.0);
        assert_eq!(
            (x, w, ids),
            (vec![[0.5], [-1.0]], vec![0.25, 0.75], vec![4, 9])
        );

        of.particles = Some(3);
        let (mut x, mut w, mut ids) = (Vec::<[f64; 1]>::new(), Vec::new(), Vec::new());
        let out = Columns {
            positions: &mut x,
            weights: &mut w,
            ids: &mut ids,
        };
        let e = law.fill(&of, &mut rng, out).unwrap_err().to_string();
        assert!(
            e.starts_with("s.toml: species[0].particles: is 3, but ") && e.contains("has 2 rows"),
            "{e}"
        );
    }
}
