//! Reading particle files in the SPEC §5 `particles.csv` format, as initial
//! data (`initial = { kind = "csv", path = ..., step = ... }`) and in `compare`.
//!
//! Columns are found by name; `species`, `weight` and the coordinate columns
//! of the run's dimension are required, `step` selects a frame (the largest in
//! the file unless asked), `time`, `id` and `density` are optional. Every cell
//! is checked; errors name the file, the line and the column.
//!
//! Rules a file must meet as a whole (a run writes every species at every
//! written step, with the same particles):
//! * coordinates are finite and at most [`MAX_COORDINATE`] in magnitude, so
//!   squared distances between particles cannot overflow;
//! * every species has rows at every step of the file, the same number at
//!   each, and (when the file has ids) the same set of ids, none twice in a
//!   frame. A file cut short in its last frame breaks this, and is refused
//!   with the step and the counts rather than read as a smaller cloud.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use crate::error::{Error, Result};

const AXES: [&str; 3] = ["x", "y", "z"];

/// Largest coordinate magnitude accepted: squares of differences (and their
/// sums over axes and particles) stay far below f64's overflow at 1.8e308.
pub const MAX_COORDINATE: f64 = 1e150;

/// One species' particles at one step, read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticleFrame<const D: usize> {
    /// The step the rows belong to.
    pub step: u64,
    /// Particle ids within the species.
    pub ids: Vec<u64>,
    /// Positions X_i.
    pub positions: Vec<[f64; D]>,
    /// Weights w_i.
    pub weights: Vec<f64>,
}

/// All rows of a particle file, column-wise.
#[derive(Debug, Clone)]
pub struct ParticleTable<const D: usize> {
    /// The `step` column.
    pub steps: Vec<u64>,
    /// The `time` column.
    pub times: Vec<f64>,
    /// The `species` column.
    pub species: Vec<String>,
    /// The `id` column (`None` where the file has none).
    pub ids: Vec<Option<u64>>,
    /// The coordinate columns.
    pub positions: Vec<[f64; D]>,
    /// The `weight` column.
    pub weights: Vec<f64>,
    /// Line of each row in the file (for messages).
    pub lines: Vec<u64>,
}

/// The number in `cell` (line `line`, column `col` of `file`), which must be finite.
pub(crate) fn parse_f64(file: &Path, line: u64, col: &str, cell: &str) -> Result<f64> {
    let v: f64 = cell.trim().parse().map_err(|_| {
        Error::input(
            file,
            format!("line {line}, column `{col}`"),
            format!("\"{cell}\" is not a number"),
        )
    })?;
    if !v.is_finite() {
        return Err(Error::input(
            file,
            format!("line {line}, column `{col}`"),
            format!("{v} is not a finite number"),
        ));
    }
    Ok(v)
}

/// A coordinate on axis `col`: a finite number of magnitude at most [`MAX_COORDINATE`].
pub(crate) fn parse_coordinate(file: &Path, line: u64, col: &str, cell: &str) -> Result<f64> {
    let v = parse_f64(file, line, col, cell)?;
    if v.abs() > MAX_COORDINATE {
        return Err(Error::input(
            file,
            format!("line {line}, column `{col}`"),
            format!(
                "{v:e} is beyond the largest coordinate accepted, {MAX_COORDINATE:e} (squared distances would overflow)"
            ),
        ));
    }
    Ok(v)
}

/// The non-negative integer in `cell` (line `line`, column `col` of `file`).
pub(crate) fn parse_u64(file: &Path, line: u64, col: &str, cell: &str) -> Result<u64> {
    cell.trim().parse().map_err(|_| {
        Error::input(
            file,
            format!("line {line}, column `{col}`"),
            format!("\"{cell}\" is not a non-negative integer"),
        )
    })
}

impl<const D: usize> ParticleTable<D> {
    /// Read and check a whole particle file.
    pub fn read(file: &Path) -> Result<Self> {
        Self::read_rows(file, false)
    }

    /// Read a file of fixed point charges (a `csv` background, SPEC §8):
    /// a particle file whose weights are charges, of either sign.
    pub fn read_charges(file: &Path) -> Result<Self> {
        Self::read_rows(file, true)
    }

    fn read_rows(file: &Path, signed: bool) -> Result<Self> {
        let meta = std::fs::metadata(file).map_err(|e| {
            Error::input(file, "file", format!("cannot open the particle file: {e}"))
        })?;
        if !meta.is_file() {
            return Err(Error::input(file, "file", "not a regular file"));
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_path(file)
            .map_err(|e| {
                Error::input(file, "file", format!("cannot open the particle file: {e}"))
            })?;
        let headers = rdr
            .headers()
            .map_err(|e| Error::input(file, "header", format!("cannot read the header row: {e}")))?
            .clone();
        if headers.iter().all(|h| h.trim().is_empty()) {
            return Err(Error::input(
                file,
                "header",
                "empty file: no header row, no particle rows",
            ));
        }
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let mut seen = HashSet::new();
        for h in headers.iter() {
            if !seen.insert(h.trim()) {
                return Err(Error::input(
                    file,
                    "header",
                    format!("column `{}` appears twice", h.trim()),
                ));
            }
        }
        for (a, axis) in AXES.iter().enumerate() {
            match (a < D, col(axis)) {
                (true, None) => {
                    return Err(Error::input(
                        file,
                        "header",
                        format!(
                            "missing coordinate column `{axis}` (the scenario's dimension is {D})"
                        ),
                    ));
                }
                (false, Some(_)) => {
                    return Err(Error::input(
                        file,
                        "header",
                        format!(
                            "has coordinate column `{axis}`, but the scenario's dimension is {D}"
                        ),
                    ));
                }
                _ => {}
            }
        }
        let need = |name: &str| {
            col(name).ok_or_else(|| {
                Error::input(file, "header", format!("missing required column `{name}`"))
            })
        };
        let c_species = need("species")?;
        let c_weight = need("weight")?;
        let c_axes: [usize; D] = std::array::from_fn(|a| col(AXES[a]).unwrap());
        let c_step = col("step");
        let c_time = col("time");
        let c_id = col("id");

        let mut t = ParticleTable {
            steps: Vec::new(),
            times: Vec::new(),
            species: Vec::new(),
            ids: Vec::new(),
            positions: Vec::new(),
            weights: Vec::new(),
            lines: Vec::new(),
        };
        let mut record = csv::StringRecord::new();
        loop {
            let more = rdr.read_record(&mut record).map_err(|e| {
                let loc = e
                    .position()
                    .map(|p| format!("line {}", p.line()))
                    .unwrap_or_else(|| "row".into());
                Error::input(file, loc, format!("malformed row: {e}"))
            })?;
            if !more {
                break;
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let cell = |c: usize| record.get(c).unwrap_or("");
            let step = match c_step {
                Some(c) => parse_u64(file, line, "step", cell(c))?,
                None => 0,
            };
            let time = match c_time {
                Some(c) => parse_f64(file, line, "time", cell(c))?,
                None => 0.0,
            };
            let id = c_id
                .map(|c| parse_u64(file, line, "id", cell(c)))
                .transpose()?;
            let mut pos = [0.0; D];
            for a in 0..D {
                pos[a] = parse_coordinate(file, line, AXES[a], cell(c_axes[a]))?;
            }
            let w = parse_f64(file, line, "weight", cell(c_weight))?;
            if w <= 0.0 && !signed {
                return Err(Error::input(
                    file,
                    format!("line {line}, column `weight`"),
                    format!("weights must be positive, got {w}"),
                ));
            }
            let name = cell(c_species).trim();
            if name.is_empty() {
                return Err(Error::input(
                    file,
                    format!("line {line}, column `species`"),
                    "empty species name",
                ));
            }
            t.steps.push(step);
            t.times.push(time);
            t.species.push(name.to_string());
            t.ids.push(id);
            t.positions.push(pos);
            t.weights.push(w);
            t.lines.push(line);
        }
        if t.steps.is_empty() {
            return Err(Error::input(
                file,
                "rows",
                "no particle rows (the file is empty or has only a header)",
            ));
        }
        t.check_frames(file)?;
        Ok(t)
    }

    /// Every species at every step, with the same row count and ids (module docs).
    fn check_frames(&self, file: &Path) -> Result<()> {
        // (species, step) -> rows, in file order.
        let mut frames: BTreeMap<(&str, u64), Vec<usize>> = BTreeMap::new();
        for r in 0..self.steps.len() {
            frames
                .entry((self.species[r].as_str(), self.steps[r]))
                .or_default()
                .push(r);
        }
        let steps = self.distinct_steps();
        let species: BTreeSet<&str> = self.species.iter().map(String::as_str).collect();
        for sp in species {
            let mut first: Option<(u64, Vec<u64>)> = None;
            for &step in &steps {
                let Some(rows) = frames.get(&(sp, step)) else {
                    return Err(Error::input(
                        file,
                        format!("step {step}"),
                        format!(
                            "no rows for species \"{sp}\" at step {step}, though the file has it at other steps: the frame is incomplete (was the file cut short?)"
                        ),
                    ));
                };
                let ids = self.frame_ids(file, sp, step, rows)?;
                match &first {
                    None => first = Some((step, ids)),
                    Some((s0, ids0)) => {
                        if ids.len() != ids0.len() {
                            return Err(Error::input(
                                file,
                                format!("step {step}"),
                                format!(
                                    "species \"{sp}\" has {} rows at step {step} but {} at step {s0}: every frame holds the same particles (was the file cut short?)",
                                    ids.len(),
                                    ids0.len()
                                ),
                            ));
                        }
                        if self.ids[rows[0]].is_some() && ids != *ids0 {
                            return Err(Error::input(
                                file,
                                format!("step {step}"),
                                format!(
                                    "species \"{sp}\" has other particle ids at step {step} than at step {s0}: every frame holds the same particles"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The sorted ids of one frame (row numbers if the file has no ids); an id twice is an error.
    fn frame_ids(&self, file: &Path, sp: &str, step: u64, rows: &[usize]) -> Result<Vec<u64>> {
        let mut ids: Vec<(u64, usize)> = rows
            .iter()
            .enumerate()
            .map(|(k, &r)| (self.ids[r].unwrap_or(k as u64), r))
            .collect();
        ids.sort_unstable();
        for p in ids.windows(2) {
            if p[0].0 == p[1].0 {
                return Err(Error::input(
                    file,
                    format!("line {}, column `id`", self.lines[p[1].1]),
                    format!(
                        "duplicate id {} for species \"{sp}\" at step {step} (also on line {})",
                        p[0].0, self.lines[p[0].1]
                    ),
                ));
            }
        }
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// The steps present in the file, ascending.
    pub fn distinct_steps(&self) -> Vec<u64> {
        let mut s = self.steps.clone();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Rows of `species` at `step` (the largest step in the file if `None`).
    pub fn frame(&self, file: &Path, species: &str, step: Option<u64>) -> Result<ParticleFrame<D>> {
        let step = step.unwrap_or_else(|| *self.steps.iter().max().expect("table is never empty"));
        let mut f = ParticleFrame {
            step,
            ids: Vec::new(),
            positions: Vec::new(),
            weights: Vec::new(),
        };
        let mut ids = HashSet::new();
        for r in 0..self.steps.len() {
            if self.steps[r] != step || self.species[r] != species {
                continue;
            }
            let id = self.ids[r].unwrap_or(f.ids.len() as u64);
            if !ids.insert(id) {
                return Err(Error::input(
                    file,
                    format!("line {}, column `id`", self.lines[r]),
                    format!("duplicate id {id} for species \"{species}\" at step {step}"),
                ));
            }
            f.ids.push(id);
            f.positions.push(self.positions[r]);
            f.weights.push(self.weights[r]);
        }
        if f.positions.is_empty() {
            return Err(Error::input(
                file,
                "rows",
                format!("no rows for species \"{species}\" at step {step}"),
            ));
        }
        Ok(f)
    }
}
