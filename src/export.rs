//! `jko export DIR --vtk`: the ParaView series of a finished run, made from
//! its CSV files, for runs made without `[output] vtk = true` (or by another
//! code writing the same formats). The files and their layout are those a
//! run writes itself ([`crate::io::vtk`]): `DIR/vtk/particles_NNNNNN.vtp`
//! and `particles.pvd` for a particle run (`particles.csv`: every column is
//! carried over, the species numbered in order of first appearance, which is
//! the scenario's), `DIR/vtk/density_NNNNNN.vti` and `density.pvd` for a grid
//! run (`density.csv`, read and checked as `jko compare` does).
//!
//! The directory is locked like a run's (a running run is refused). The
//! series is written into `DIR/vtk.partial/` and renamed to `DIR/vtk/` once
//! complete; an existing `DIR/vtk/` is replaced only with `--force`.

use std::path::Path;

use crate::compare::{
    GridRun, RunKind, data_file, dimension_of, header_index, next_record, open_csv, read_grid_run,
};
use crate::driver::dir::OutputDir;
use crate::error::{Error, Result};
use crate::io::output::{PARTIAL_SUFFIX, sync_dir};
use crate::io::vtk::{ImageFrame, PointFrame, VTK_DIR, VtkSeries};
use crate::particles::file::{parse_coordinate, parse_f64, parse_u64};
use crate::util::grid::Grid;

const AXES: [&str; 3] = ["x", "y", "z"];

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// `DIR/vtk`.
    pub folder: std::path::PathBuf,
    /// Files written, the `.pvd` included.
    pub files: usize,
    /// Written steps exported.
    pub frames: usize,
}

/// Write the ParaView series of the run in `dir` to `dir/vtk/` (replacing
/// one already there only if `force`).
pub fn export_vtk(dir: &Path, force: bool) -> Result<ExportSummary> {
    let (kind, data) = data_file(dir)?;
    let grid = kind == RunKind::Grid;
    let target = dir.join(VTK_DIR);
    if std::fs::symlink_metadata(&target).is_ok() && !force {
        return Err(Error::io(
            &target,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists: pass --force to replace it",
            ),
        ));
    }
    // Held while writing: no run starts here meanwhile, and a running one refuses us.
    let _lock = OutputDir::open(dir, &crate::driver::all_run_file_names())?;
    let stage = dir.join(format!("{VTK_DIR}{PARTIAL_SUFFIX}"));
    match std::fs::symlink_metadata(&stage) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&stage).map_err(|e| Error::io(&stage, e))?,
        Ok(_) => std::fs::remove_file(&stage).map_err(|e| Error::io(&stage, e))?,
        Err(_) => {}
    }
    std::fs::create_dir(&stage).map_err(|e| Error::io(&stage, e))?;
    let frames = (|| {
        let d = dimension_of(&data)?;
        let mut series = VtkSeries::open_at(&stage, grid, &[])?;
        match (grid, d) {
            (true, 1) => grid_frames::<1>(&data, &mut series),
            (true, 2) => grid_frames::<2>(&data, &mut series),
            (true, _) => grid_frames::<3>(&data, &mut series),
            (false, d) => particle_frames(&data, d, &mut series),
        }
    })();
    let frames = match frames {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&stage);
            return Err(e);
        }
    };
    sync_dir(&stage)?;
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?
        }
        Ok(_) => std::fs::remove_file(&target).map_err(|e| Error::io(&target, e))?,
        Err(_) => {}
    }
    std::fs::rename(&stage, &target).map_err(|e| Error::io(&target, e))?;
    sync_dir(dir)?;
    Ok(ExportSummary {
        folder: target,
        files: frames + 1,
        frames,
    })
}

fn grid_frames<const D: usize>(file: &Path, series: &mut VtkSeries) -> Result<usize> {
    let run: GridRun<D> = read_grid_run(file)?;
    for (&step, &time) in &run.times {
        let frames: Vec<(&str, &crate::compare::GridFrame<D>)> = run
            .frames
            .range((step, String::new())..)
            .take_while(|((s, _), _)| *s == step)
            .map(|((_, name), g)| (name.as_str(), g))
            .collect();
        let g = frames[0].1;
        let grid = Grid::from_spacing(
            (0..D).map(|a| g.lower(a)).collect(),
            g.h.to_vec(),
            (0..D).map(|a| g.n(a)).collect(),
        );
        let arrays: Vec<(&str, &[f64])> = frames
            .iter()
            .map(|(name, g)| (*name, g.rho.as_slice()))
            .collect();
        series.grid(
            step,
            &ImageFrame {
                time,
                grid: &grid,
                arrays: &arrays,
            },
        )?;
    }
    Ok(run.times.len())
}

/// One step's rows of particles.csv, column-wise.
#[derive(Default)]
struct Rows {
    step: u64,
    time: f64,
    positions: Vec<f64>,
    species: Vec<u32>,
    ids: Vec<u64>,
    weights: Vec<f64>,
    density: Vec<f64>,
}

/// Streams particles.csv: a frame is written as soon as its step's rows end
/// (the writer puts each step's rows together), so memory holds one frame.
fn particle_frames(file: &Path, d: usize, series: &mut VtkSeries) -> Result<usize> {
    let (mut rdr, headers) = open_csv(file)?;
    let col = |name: &str| header_index(file, &headers, name);
    let (c_step, c_time, c_species) = (col("step")?, col("time")?, col("species")?);
    let (c_id, c_weight, c_density) = (col("id")?, col("weight")?, col("density")?);
    let c_axes: Vec<usize> = AXES[..d].iter().map(|a| col(a)).collect::<Result<_>>()?;
    let mut names: Vec<String> = Vec::new();
    let mut rows: Option<Rows> = None;
    let mut done = std::collections::BTreeSet::new();
    let mut rec = csv::StringRecord::new();
    let mut flush = |r: Rows, names: &[String]| -> Result<()> {
        series.particles(
            r.step,
            &PointFrame {
                time: r.time,
                dimension: d,
                positions: &r.positions,
                species: &r.species,
                ids: &r.ids,
                weights: &r.weights,
                density: &r.density,
                species_names: names,
            },
        )
    };
    while let Some(line) = next_record(file, &mut rdr, &mut rec)? {
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = parse_u64(file, line, "step", cell(c_step))?;
        let time = parse_f64(file, line, "time", cell(c_time))?;
        if rows.as_ref().is_some_and(|r| r.step != step) {
            let r = rows.take().expect("checked");
            done.insert(r.step);
            flush(r, &names)?;
        }
        if rows.is_none() {
            if done.contains(&step) {
                return Err(Error::input(
                    file,
                    format!("line {line}, column `step`"),
                    format!(
                        "step {step} appears again after other steps: the rows of a step must be together"
                    ),
                ));
            }
            rows = Some(Rows {
                step,
                time,
                ..Rows::default()
            });
        }
        let r = rows.as_mut().expect("set above");
        if time != r.time {
            return Err(Error::input(
                file,
                format!("line {line}, column `time`"),
                format!("step {step} has time {time} here but {} above", r.time),
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
        let k = match names.iter().position(|n| n == name) {
            Some(k) => k,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        };
        r.species.push(k as u32);
        r.ids.push(parse_u64(file, line, "id", cell(c_id))?);
        for (a, &c) in c_axes.iter().enumerate() {
            r.positions
                .push(parse_coordinate(file, line, AXES[a], cell(c))?);
        }
        r.weights
            .push(parse_f64(file, line, "weight", cell(c_weight))?);
        r.density
            .push(parse_f64(file, line, "density", cell(c_density))?);
    }
    match rows {
        Some(r) => {
            done.insert(r.step);
            flush(r, &names)?;
            Ok(done.len())
        }
        None => Err(Error::input(
            file,
            "rows",
            "no particle rows (the file is empty or has only a header)",
        )),
    }
}
