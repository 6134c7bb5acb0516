//! `[domain]` with its `[[domain.wall]]` tables (SPEC §7) and the
//! `[[background]]` tables (SPEC §8), mapped onto [`Domain`] and
//! [`Background`]. Every key is checked here on its own; the rules that
//! tie sections together (laws inside the box, neutrality) are the
//! problem's ([`crate::stepper::Problem::check_domain`]).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, MAX_ECHO, Result, clip};
use crate::model::background::{Background, BackgroundShape};
use crate::model::domain::{BoxDomain, Domain, Side, WallCondition};
use crate::particles::file::ParticleTable;
use crate::particles::initial::MAX_PATH_BYTES;
use crate::util::checks::{Checker, Scalars, kind_entry, strict};

use super::checks::is_safe_name;
use super::raw::{RawBackground, RawDomain};

/// `[domain]` (absent: free space).
pub(super) fn domain(c: &Checker, raw: Option<RawDomain>) -> Result<Domain> {
    let Some(raw) = raw else {
        return Ok(Domain::Free);
    };
    match raw.kind.as_deref().unwrap_or("free") {
        "free" => {
            let stray = [
                ("domain.lower", raw.lower.is_some()),
                ("domain.upper", raw.upper.is_some()),
                ("domain.wall", raw.wall.is_some()),
            ];
            if let Some((key, _)) = stray.iter().find(|(_, given)| *given) {
                return Err(c.err(
                    key,
                    "only a box has corners and walls; set domain.kind = \"box\" or remove it",
                ));
            }
            Ok(Domain::Free)
        }
        "box" => {
            let corner = |key: &str, v: &Option<Vec<f64>>| match v {
                Some(v) => c.vector(key, v),
                None => Err(c.err(key, "missing: a box needs its lower and upper corners")),
            };
            let lower = corner("domain.lower", &raw.lower)?;
            let upper = corner("domain.upper", &raw.upper)?;
            if let Some(a) = (0..c.dimension).find(|&a| upper[a] <= lower[a]) {
                return Err(c.err(
                    "domain.upper",
                    format!(
                        "must exceed domain.lower on every axis (axis {a}: {} <= {})",
                        upper[a], lower[a]
                    ),
                ));
            }
            let mut b = BoxDomain::insulating(lower, upper);
            let mut seen = Vec::new();
            for (i, w) in raw.wall.unwrap_or_default().into_iter().enumerate() {
                let key = |f: &str| format!("domain.wall[{i}].{f}");
                if w.axis < 0 || w.axis >= c.dimension as i64 {
                    return Err(c.err(
                        &key("axis"),
                        format!(
                            "must be an axis of the dimension-{} box (0 to {}), got {}",
                            c.dimension,
                            c.dimension - 1,
                            w.axis
                        ),
                    ));
                }
                let axis = w.axis as usize;
                let side = match w.side.as_str() {
                    "lower" => Side::Lower,
                    "upper" => Side::Upper,
                    other => {
                        return Err(c.err(
                            &key("side"),
                            format!(
                                "must be \"lower\" or \"upper\", got \"{}\"",
                                clip(other, MAX_ECHO)
                            ),
                        ));
                    }
                };
                if seen.contains(&(axis, side)) {
                    return Err(c.err(
                        &key("side"),
                        format!("the {} wall of axis {axis} is given twice", w.side),
                    ));
                }
                seen.push((axis, side));
                let condition = match (w.potential, w.surface_charge) {
                    (Some(_), Some(_)) => {
                        return Err(c.err(
                            &key("potential"),
                            "a wall has at most one of `potential` (an electrode) and \
                             `surface_charge` (a charged insulating wall)",
                        ));
                    }
                    (Some(v), None) => WallCondition::Electrode {
                        potential: c.finite(&key("potential"), v)?,
                    },
                    (None, s) => WallCondition::Insulating {
                        surface_charge: c.scale(&key("surface_charge"), s.unwrap_or(0.0))?,
                    },
                };
                b = b.with_wall(axis, side, condition);
            }
            Ok(Domain::Box(b))
        }
        other => Err(c.err(
            "domain.kind",
            format!(
                "unknown domain kind \"{}\"; expected \"free\" or \"box\"",
                clip(other, MAX_ECHO)
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kind` is read by the dispatcher
struct RawUniform {
    kind: String,
    lower: Vec<f64>,
    upper: Vec<f64>,
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
struct RawPoints {
    kind: String,
    path: String,
}

type ParseShape = fn(&Checker, &str, &str, f64, &toml::Value) -> Result<BackgroundShape>;

/// The background shapes, by their `kind`.
const SHAPES: [(&str, ParseShape); 3] = [
    ("uniform", uniform),
    ("gaussian", gaussian),
    ("csv", points),
];

fn uniform(c: &Checker, key: &str, _: &str, _: f64, v: &toml::Value) -> Result<BackgroundShape> {
    let r: RawUniform = strict(c.file, key, "uniform", v)?;
    let lower = c.vector(&format!("{key}.lower"), &r.lower)?;
    let upper = c.vector(&format!("{key}.upper"), &r.upper)?;
    if let Some(a) = (0..c.dimension).find(|&a| upper[a] <= lower[a]) {
        return Err(c.err(
            &format!("{key}.upper"),
            format!(
                "must exceed {key}.lower on every axis (axis {a}: {} <= {})",
                upper[a], lower[a]
            ),
        ));
    }
    Ok(BackgroundShape::Uniform { lower, upper })
}

fn gaussian(c: &Checker, key: &str, _: &str, _: f64, v: &toml::Value) -> Result<BackgroundShape> {
    let r: RawGaussian = strict(c.file, key, "gaussian", v)?;
    let std = c.per_axis(&format!("{key}.std"), &r.std)?;
    for (a, &s) in std.iter().enumerate() {
        c.positive(&format!("{key}.std[{a}]"), s)?;
    }
    Ok(BackgroundShape::Gaussian {
        mean: c.vector(&format!("{key}.mean"), &r.mean)?,
        std,
    })
}

/// `{ kind = "csv", path = "..." }`: the rows of a particle file whose
/// `species` is the background's name, at the file's largest step, their
/// weights the charges, which must sum to `charge` (relative 1e-9).
fn points(
    c: &Checker,
    key: &str,
    name: &str,
    charge: f64,
    v: &toml::Value,
) -> Result<BackgroundShape> {
    let r: RawPoints = strict(c.file, key, "csv", v)?;
    if r.path.is_empty() || r.path.len() > MAX_PATH_BYTES {
        return Err(c.err(
            &format!("{key}.path"),
            format!(
                "must be a path of 1 to {MAX_PATH_BYTES} bytes, got \"{}\"",
                clip(&r.path, MAX_ECHO)
            ),
        ));
    }
    let path = c.file.parent().unwrap_or(Path::new(".")).join(&r.path);
    let (positions, charges) = match c.dimension {
        1 => frame::<1>(&path, name)?,
        2 => frame::<2>(&path, name)?,
        _ => frame::<3>(&path, name)?,
    };
    let total: f64 = charges.iter().sum();
    let scale: f64 = charges
        .iter()
        .map(|q| q.abs())
        .sum::<f64>()
        .max(charge.abs());
    if (total - charge).abs() > 1e-9 * scale {
        return Err(Error::input(
            c.file,
            key.trim_end_matches(".shape").to_string() + ".charge",
            format!(
                "is {charge}, but the weights of \"{name}\" in {} sum to {total} (relative tolerance 1e-9)",
                path.display()
            ),
        ));
    }
    Ok(BackgroundShape::Points { positions, charges })
}

type Frame = (Vec<Vec<f64>>, Vec<f64>);

fn frame<const D: usize>(path: &Path, name: &str) -> Result<Frame> {
    let table = ParticleTable::<D>::read_charges(path)?;
    let f = table.frame(path, name, None)?;
    Ok((f.positions.iter().map(|p| p.to_vec()).collect(), f.weights))
}

/// The `[[background]]` tables.
pub(super) fn backgrounds(c: &Checker, raw: Option<Vec<RawBackground>>) -> Result<Vec<Background>> {
    let mut out: Vec<Background> = Vec::new();
    for (k, rb) in raw.unwrap_or_default().into_iter().enumerate() {
        let key = |f: &str| format!("background[{k}].{f}");
        if !is_safe_name(&rb.name) {
            return Err(c.err(
                &key("name"),
                format!(
                    "\"{}\" is not a valid name (1 to 64 characters among letters, digits, '_', '-', '.')",
                    clip(&rb.name, MAX_ECHO)
                ),
            ));
        }
        if out.iter().any(|b| b.name == rb.name) {
            return Err(c.err(
                &key("name"),
                format!("duplicate background name \"{}\"", rb.name),
            ));
        }
        let charge = c.scale(&key("charge"), rb.charge)?;
        let parse = kind_entry(c, &key("shape"), &rb.shape, "background shape", &SHAPES)?;
        let shape = parse(c, &key("shape"), &rb.name, charge, &rb.shape)?;
        out.push(Background {
            name: rb.name,
            charge,
            shape,
        });
    }
    Ok(out)
}
