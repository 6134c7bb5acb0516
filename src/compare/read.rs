//! Reading the runs: locating a run directory's files, the dimension from
//! the coordinate columns, `particles.csv` (through [`ParticleTable`]),
//! `energy.csv` and the run's `scenario.toml`; a grid run's `density.csv` is
//! `grid_run.rs`. Every refusal names the file, the line and the column
//! ([`Error::Input`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::grid_run::{GridRun, read_grid_run};
use super::{AXES, RunKind};
use crate::error::{Error, Result};
use crate::io::output::{DENSITY, ENERGY, PARTIAL_SUFFIX, PARTICLES, SCENARIO_COPY};
use crate::io::scenario::Scenario;
use crate::particles::file::{ParticleTable, parse_f64 as cell_f64, parse_u64 as cell_u64};

/// The files of one run directory.
pub(super) struct RunFiles {
    pub(super) dir: PathBuf,
    pub(super) kind: RunKind,
    /// `particles.csv` or `density.csv`.
    pub(super) data: PathBuf,
    pub(super) energy: PathBuf,
    pub(super) scenario: Option<PathBuf>,
}

/// The data file of the run in `dir`: exactly one of particles.csv and
/// density.csv (a run still writing its `.partial` files is named as such).
pub(crate) fn data_file(dir: &Path) -> Result<(RunKind, PathBuf)> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| Error::input(dir, "run directory", format!("cannot open it: {e}")))?;
    if !meta.is_dir() {
        return Err(Error::input(
            dir,
            "run directory",
            "not a directory (give the --out directory of a run)",
        ));
    }
    let p = dir.join(PARTICLES);
    let g = dir.join(DENSITY);
    match (p.is_file(), g.is_file()) {
        (true, false) => Ok((RunKind::Particles, p)),
        (false, true) => Ok((RunKind::Grid, g)),
        (true, true) => Err(Error::input(
            dir,
            "run directory",
            format!(
                "holds both {PARTICLES} and {DENSITY}: cannot tell a particle run from a grid run"
            ),
        )),
        (false, false) => {
            let running = [PARTICLES, DENSITY]
                .iter()
                .any(|n| dir.join(format!("{n}{PARTIAL_SUFFIX}")).exists());
            let why = if running {
                "holds no finished data file, only .partial ones: the run is still running or was \
                 stopped (finish it with --resume)"
                    .to_string()
            } else {
                format!("holds neither {PARTICLES} (particle run) nor {DENSITY} (grid run)")
            };
            Err(Error::input(dir, "run directory", why))
        }
    }
}

/// The files of the run in `dir`: exactly one data file, and `energy.csv`.
pub(super) fn locate(dir: &Path) -> Result<RunFiles> {
    let (kind, data) = data_file(dir)?;
    let energy = dir.join(ENERGY);
    if !energy.is_file() {
        return Err(Error::input(
            &energy,
            "file",
            "missing: every run writes energy.csv",
        ));
    }
    let s = dir.join(SCENARIO_COPY);
    Ok(RunFiles {
        dir: dir.to_path_buf(),
        kind,
        data,
        energy,
        scenario: s.is_file().then_some(s),
    })
}

/// The dimension of a data file, from its coordinate columns.
pub(crate) fn dimension_of(file: &Path) -> Result<usize> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(file)
        .map_err(|e| Error::input(file, "file", format!("cannot open: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::input(file, "header", format!("cannot read the header row: {e}")))?;
    let has: Vec<bool> = AXES
        .iter()
        .map(|a| headers.iter().any(|h| h.trim() == *a))
        .collect();
    match has.as_slice() {
        [true, false, false] => Ok(1),
        [true, true, false] => Ok(2),
        [true, true, true] => Ok(3),
        [false, false, false] => Err(Error::input(
            file,
            "header",
            "no coordinate column (expected x, x,y or x,y,z)",
        )),
        _ => Err(Error::input(
            file,
            "header",
            "the coordinate columns must be x, x,y or x,y,z",
        )),
    }
}

/// The column `name` of `headers`.
pub(crate) fn header_index(file: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::input(file, "header", format!("missing required column `{name}`")))
}

/// A strict reader (every row as long as the header) and its header row.
pub(crate) fn open_csv(file: &Path) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(file)
        .map_err(|e| Error::input(file, "file", format!("cannot open: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::input(file, "header", format!("cannot read the header row: {e}")))?
        .clone();
    Ok((rdr, headers))
}

/// The next row into `rec` and its line, `None` at the end.
pub(crate) fn next_record(
    file: &Path,
    rdr: &mut csv::Reader<std::fs::File>,
    rec: &mut csv::StringRecord,
) -> Result<Option<u64>> {
    let more = rdr.read_record(rec).map_err(|e| {
        let loc = e
            .position()
            .map(|p| format!("line {}", p.line()))
            .unwrap_or_else(|| "row".into());
        Error::input(file, loc, format!("malformed row: {e}"))
    })?;
    Ok(more.then(|| rec.position().map(|p| p.line()).unwrap_or(0)))
}

/// A particle run: its table and, per step, the time.
pub(super) struct ParticleRun<const D: usize> {
    pub(super) file: PathBuf,
    pub(super) table: ParticleTable<D>,
    pub(super) times: BTreeMap<u64, f64>,
    /// Rows of each (step, species), in file order.
    pub(super) rows: BTreeMap<(u64, String), Vec<usize>>,
}

/// `particles.csv`, its rows grouped by (step, species); every step has one time.
pub(super) fn read_particle_run<const D: usize>(file: &Path) -> Result<ParticleRun<D>> {
    let table = ParticleTable::<D>::read(file)?;
    let mut times: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    let mut rows: BTreeMap<(u64, String), Vec<usize>> = BTreeMap::new();
    for r in 0..table.steps.len() {
        let (step, time, line) = (table.steps[r], table.times[r], table.lines[r]);
        match rows.get_mut(&(step, table.species[r].clone())) {
            Some(v) => v.push(r),
            None => {
                rows.insert((step, table.species[r].clone()), vec![r]);
            }
        }
        let (t0, l0) = *times.entry(step).or_insert((time, line));
        if t0 != time {
            return Err(Error::input(
                file,
                format!("line {line}, column `time`"),
                format!("step {step} has time {time} here but {t0} on line {l0}"),
            ));
        }
    }
    Ok(ParticleRun {
        file: file.to_path_buf(),
        table,
        times: times.into_iter().map(|(s, (t, _))| (s, t)).collect(),
        rows,
    })
}

/// Either kind of run behind one interface.
pub(super) enum Run<const D: usize> {
    Particles(ParticleRun<D>),
    Grid(GridRun<D>),
}

impl<const D: usize> Run<D> {
    pub(super) fn file(&self) -> &Path {
        match self {
            Run::Particles(r) => &r.file,
            Run::Grid(r) => &r.file,
        }
    }
    pub(super) fn times(&self) -> &BTreeMap<u64, f64> {
        match self {
            Run::Particles(r) => &r.times,
            Run::Grid(r) => &r.times,
        }
    }
    pub(super) fn species(&self) -> BTreeSet<String> {
        match self {
            Run::Particles(r) => r.table.species.iter().cloned().collect(),
            Run::Grid(r) => r.frames.keys().map(|(_, s)| s.clone()).collect(),
        }
    }
}

/// `energy.csv`: (time, energy) per step; a step written twice is refused.
pub(super) fn read_energy(file: &Path) -> Result<BTreeMap<u64, (f64, f64)>> {
    let (mut rdr, headers) = open_csv(file)?;
    let c_step = header_index(file, &headers, "step")?;
    let c_time = header_index(file, &headers, "time")?;
    let c_energy = header_index(file, &headers, "energy")?;
    let mut out: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut lines: BTreeMap<u64, u64> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = next_record(file, &mut rdr, &mut rec)? {
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = cell_u64(file, line, "step", cell(c_step))?;
        let time = cell_f64(file, line, "time", cell(c_time))?;
        let e = cell_f64(file, line, "energy", cell(c_energy))?;
        if let Some(l0) = lines.insert(step, line) {
            return Err(Error::input(
                file,
                format!("line {line}, column `step`"),
                format!("step {step} appears twice (also on line {l0})"),
            ));
        }
        out.insert(step, (time, e));
    }
    if out.is_empty() {
        return Err(Error::input(
            file,
            "rows",
            "no energy rows (the file is empty or has only a header)",
        ));
    }
    Ok(out)
}

/// Read the run of `f`, and for a particle run its scenario (the bandwidth
/// comes from it), which must have the data's dimension.
pub(super) fn load<const D: usize>(f: &RunFiles) -> Result<(Run<D>, Option<Scenario>)> {
    let run = match f.kind {
        RunKind::Particles => Run::Particles(read_particle_run::<D>(&f.data)?),
        RunKind::Grid => Run::Grid(read_grid_run::<D>(&f.data)?),
    };
    let scenario = match (&f.scenario, f.kind) {
        (Some(p), RunKind::Particles) => {
            let s = Scenario::from_file(p)?;
            if s.dimension != D {
                return Err(Error::input(
                    p,
                    "dimension",
                    format!(
                        "the scenario says dimension {}, but {} has dimension {D}",
                        s.dimension,
                        f.data.display()
                    ),
                ));
            }
            Some(s)
        }
        _ => None,
    };
    Ok((run, scenario))
}
