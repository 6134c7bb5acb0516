//! Run output (SPEC §5): particles.csv, energy.csv, and a copy of the scenario.
//!
//! Files are written under temporary names (`NAME.partial`) and renamed to
//! their final names only when the run has finished and the data are synced,
//! so a crash or a full disk never leaves a torn file under a final name.
//! Numbers are written in shortest round-trip form (ryu): they read back exactly.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::energy::EnergyParts;
use crate::error::{Error, Result};
use crate::jko::StepReport;
use crate::particles::Cloud;

pub const PARTICLES: &str = "particles.csv";
pub const ENERGY: &str = "energy.csv";
pub const DENSITY: &str = "density.csv";
pub const SCENARIO_COPY: &str = "scenario.toml";

const AXES: [&str; 3] = ["x", "y", "z"];

/// Header of particles.csv in dimension `d`.
pub fn particles_header(d: usize) -> Vec<&'static str> {
    let mut h = vec!["step", "time", "species", "id"];
    h.extend_from_slice(&AXES[..d]);
    h.extend_from_slice(&["weight", "density"]);
    h
}

/// Header of density.csv (grid runs) in dimension `d`.
pub fn density_header(d: usize) -> Vec<&'static str> {
    let mut h = vec!["step", "time", "species"];
    h.extend_from_slice(&AXES[..d]);
    h.push("density");
    h
}

/// Header of energy.csv.
pub const ENERGY_HEADER: [&str; 9] = [
    "step",
    "time",
    "energy",
    "diffusion",
    "potential",
    "interaction",
    "w2_step",
    "iterations",
    "gradient_norm",
];

/// A CSV file being written under a temporary name.
pub struct PendingCsv {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished (or given up).
    writer: Option<csv::Writer<BufWriter<File>>>,
    fbuf: ryu::Buffer,
}

/// A run that ends in an error removes its unfinished files; only a killed
/// process leaves a `.partial` file, never a torn file under a final name.
impl Drop for PendingCsv {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl PendingCsv {
    pub fn create(path: PathBuf, header: &[&str]) -> Result<Self> {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut writer =
            csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 20, file));
        writer.write_record(header).map_err(|e| csv_err(&tmp, e))?;
        Ok(PendingCsv {
            path,
            tmp,
            writer: Some(writer),
            fbuf: ryu::Buffer::new(),
        })
    }

    /// Append one field: a float in shortest round-trip form.
    pub fn float(&mut self, v: f64) -> Result<()> {
        let s = self.fbuf.format(v);
        let w = self.writer.as_mut().expect("not finished");
        w.write_field(s).map_err(|e| csv_err(&self.tmp, e))
    }

    /// Append one field: an integer.
    pub fn int(&mut self, v: u64) -> Result<()> {
        self.text(itoa::Buffer::new().format(v))
    }

    /// Append one field: text.
    pub fn text(&mut self, v: &str) -> Result<()> {
        let w = self.writer.as_mut().expect("not finished");
        w.write_field(v).map_err(|e| csv_err(&self.tmp, e))
    }

    /// End the current row.
    pub fn end_row(&mut self) -> Result<()> {
        let w = self.writer.as_mut().expect("not finished");
        w.write_record(None::<&[u8]>)
            .map_err(|e| csv_err(&self.tmp, e))
    }

    /// Flush, sync and move the file to its final name.
    pub fn finish(mut self) -> Result<()> {
        let w = self.writer.take().expect("finished once");
        let result = (|| {
            let buf = w
                .into_inner()
                .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
            let file = buf
                .into_inner()
                .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
            std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::io(path, std::io::Error::other(format!("{other:?}"))),
    }
}

/// Write `bytes` to `path` atomically (temporary file, sync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Prepare an output directory: create it, and refuse to overwrite the
/// results of another run unless `force`.
pub fn prepare_dir(dir: &Path, outputs: &[&str], force: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for name in outputs {
        let p = dir.join(name);
        if p.exists() {
            if !force {
                return Err(Error::io(
                    &p,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists: choose another --out directory or pass --force to overwrite",
                    ),
                ));
            }
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// energy.csv of any run (SPEC §5).
pub struct EnergyLog(PendingCsv);

impl EnergyLog {
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(EnergyLog(PendingCsv::create(
            dir.join(ENERGY),
            &ENERGY_HEADER,
        )?))
    }

    /// One row: the energy parts and the step's movement and optimizer figures.
    pub fn row(
        &mut self,
        step: u64,
        time: f64,
        parts: &EnergyParts,
        w2_step: f64,
        iterations: u64,
        gradient_norm: f64,
    ) -> Result<()> {
        let w = &mut self.0;
        w.int(step)?;
        w.float(time)?;
        w.float(parts.total())?;
        w.float(parts.diffusion)?;
        w.float(parts.potential)?;
        w.float(parts.interaction)?;
        w.float(w2_step)?;
        w.int(iterations)?;
        w.float(gradient_norm)?;
        w.end_row()
    }

    pub fn finish(self) -> Result<()> {
        self.0.finish()
    }
}

/// The two CSV files of a particle run.
pub struct RunWriter {
    particles: PendingCsv,
    energy: EnergyLog,
}

impl RunWriter {
    pub fn create(dir: &Path, d: usize) -> Result<Self> {
        Ok(RunWriter {
            particles: PendingCsv::create(dir.join(PARTICLES), &particles_header(d))?,
            energy: EnergyLog::create(dir)?,
        })
    }

    /// One frame of particles.csv; `density[i]` is particle i's own-species density.
    pub fn frame<const D: usize>(
        &mut self,
        step: u64,
        time: f64,
        cloud: &Cloud<D>,
        density: &[f64],
    ) -> Result<()> {
        let w = &mut self.particles;
        for b in &cloud.blocks {
            for i in b.range.clone() {
                w.int(step)?;
                w.float(time)?;
                w.text(&b.name)?;
                w.int(cloud.ids[i])?;
                for a in 0..D {
                    w.float(cloud.positions[i][a])?;
                }
                w.float(cloud.weights[i])?;
                w.float(density[i])?;
                w.end_row()?;
            }
        }
        Ok(())
    }

    /// One row of energy.csv.
    pub fn energy(&mut self, step: u64, time: f64, r: &StepReport) -> Result<()> {
        self.energy.row(
            step,
            time,
            &r.parts,
            r.w2_step,
            r.iterations,
            r.gradient_norm,
        )
    }

    /// Sync both files and give them their final names.
    pub fn finish(self) -> Result<()> {
        self.energy.finish()?;
        self.particles.finish()
    }
}
