//! The files of a particle run: the three CSV streams (particles, energy,
//! events) and the mapping between a [`Simulation`]'s state and a
//! [`Checkpoint`].

use std::path::Path;

use crate::driver::events::Event;
use crate::energy::EnergyParts;
use crate::error::{Error, Result};
use crate::io::checkpoint::Checkpoint;
use crate::io::output::{
    CsvStream, ENERGY, EVENTS, EVENTS_HEADER, EnergyLog, FileState, PARTICLES, csv_field,
    particles_header,
};
use crate::io::vtk::{PointFrame, VtkSeries};
use crate::particles::Cloud;
use crate::stepper::{Simulation, SimulationState, StartPoint, StepReport};
use crate::util::fault;
use rayon::prelude::*;

/// Rows of particles.csv formatted by one task, and tasks per batch.
const FRAME_CHUNK: usize = 8192;
const FRAME_BATCH: usize = 16;

/// The three CSV files of a particle run, and its ParaView series if the
/// scenario asks for one (`[output] vtk`).
pub struct RunWriter {
    particles: CsvStream,
    energy: EnergyLog,
    events: CsvStream,
    vtk: Option<VtkSeries>,
}

impl RunWriter {
    /// New files with their header rows.
    pub fn create(dir: &Path, d: usize) -> Result<Self> {
        Ok(RunWriter {
            particles: CsvStream::create(dir.join(PARTICLES), &particles_header(d))?,
            energy: EnergyLog::create(dir)?,
            events: CsvStream::create(dir.join(EVENTS), &EVENTS_HEADER)?,
            vtk: None,
        })
    }

    /// The files of an interrupted run, cut back to the states of `RUN_FILES`
    /// recorded in its checkpoint.
    pub fn resume(dir: &Path, states: &[FileState; 3]) -> Result<Self> {
        Ok(RunWriter {
            particles: CsvStream::resume(dir.join(PARTICLES), states[0])?,
            energy: EnergyLog(CsvStream::resume(dir.join(ENERGY), states[1])?),
            events: CsvStream::resume(dir.join(EVENTS), states[2])?,
            vtk: None,
        })
    }

    /// Also write every frame to the ParaView series `vtk`.
    pub fn with_vtk(mut self, vtk: Option<VtkSeries>) -> Self {
        self.vtk = vtk;
        self
    }

    /// One frame of particles.csv (and of the VTK series); `density[i]` is
    /// particle i's own-species density.
    pub fn frame<const D: usize>(
        &mut self,
        step: u64,
        time: f64,
        cloud: &Cloud<D>,
        density: &[f64],
    ) -> Result<()> {
        let w = &mut self.particles;
        // A follower (`output::follow`) formats no frame: no process reads
        // its counts.
        if !w.on_disk() {
            return Ok(());
        }
        // Rows formatted in parallel chunks, a batch at a time (bounded
        // memory), and written in row order: the csv writer's bytes.
        let n = cloud.len();
        let middle = n / 2;
        let names: Vec<Vec<u8>> = cloud.blocks.iter().map(|b| csv_field(&b.name)).collect();
        let head = {
            let mut h = itoa::Buffer::new().format(step).as_bytes().to_vec();
            h.push(b',');
            h.extend_from_slice(ryu::Buffer::new().format(time).as_bytes());
            h.push(b',');
            h
        };
        let format = |rows: std::ops::Range<usize>| -> (Vec<u8>, Option<usize>) {
            let mut out = Vec::with_capacity(rows.len() * 24 * (D + 3));
            let (mut fb, mut ib) = (ryu::Buffer::new(), itoa::Buffer::new());
            let mut mark = None;
            let mut block = cloud.blocks.partition_point(|b| b.range.end <= rows.start);
            for i in rows {
                while cloud.blocks[block].range.end <= i {
                    block += 1;
                }
                out.extend_from_slice(&head);
                out.extend_from_slice(&names[block]);
                out.push(b',');
                out.extend_from_slice(ib.format(cloud.ids[i]).as_bytes());
                for a in 0..D {
                    out.push(b',');
                    out.extend_from_slice(fb.format(cloud.positions[i][a]).as_bytes());
                }
                out.push(b',');
                out.extend_from_slice(fb.format(cloud.weights[i]).as_bytes());
                out.push(b',');
                out.extend_from_slice(fb.format(density[i]).as_bytes());
                out.push(b'\n');
                if i == middle {
                    mark = Some(out.len());
                }
            }
            (out, mark)
        };
        for batch in (0..n).step_by(FRAME_CHUNK * FRAME_BATCH) {
            let end = n.min(batch + FRAME_CHUNK * FRAME_BATCH);
            let starts: Vec<usize> = (batch..end).step_by(FRAME_CHUNK).collect();
            let parts: Vec<(Vec<u8>, Option<usize>)> = starts
                .into_par_iter()
                .map(|a| format(a..end.min(a + FRAME_CHUNK)))
                .collect();
            for (bytes, mark) in parts {
                match mark {
                    Some(m) if fault::ENABLED => {
                        // The kill tests stop the process with half a frame on disk.
                        w.rows(&bytes[..m])?;
                        w.sync()?;
                        fault::kill_point(fault::KillPoint::Frame);
                        w.rows(&bytes[m..])?;
                    }
                    _ => w.rows(&bytes)?,
                }
            }
        }
        if let Some(vtk) = &mut self.vtk {
            let mut species = vec![0u32; cloud.len()];
            for (k, b) in cloud.blocks.iter().enumerate() {
                species[b.range.clone()].fill(k as u32);
            }
            let names: Vec<String> = cloud.blocks.iter().map(|b| b.name.clone()).collect();
            vtk.particles(
                step,
                &PointFrame {
                    time,
                    dimension: D,
                    positions: cloud.positions.as_flattened(),
                    species: &species,
                    ids: &cloud.ids,
                    weights: &cloud.weights,
                    density,
                    species_names: &names,
                },
            )?;
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

    /// One row of events.csv.
    pub fn event(&mut self, e: &Event) -> Result<()> {
        let w = &mut self.events;
        w.int(e.step)?;
        w.float(e.time)?;
        w.text(e.kind.name())?;
        w.text(e.species.as_deref().unwrap_or(""))?;
        w.float(e.value)?;
        w.text(&e.message)?;
        w.end_row()
    }

    /// Push all three files to the disk; their states in `RUN_FILES` order.
    pub fn sync(&mut self) -> Result<[FileState; 3]> {
        Ok([
            self.particles.sync()?,
            self.energy.0.sync()?,
            self.events.sync()?,
        ])
    }

    /// Sync the files and give them their final names.
    pub fn finish(self) -> Result<()> {
        self.events.finish()?;
        self.energy.finish()?;
        self.particles.finish()
    }
}

/// Fill `cp` with the state of `sim` (positions and the previous
/// displacement flattened, step, level and counters).
pub fn save_state<const D: usize>(sim: &Simulation<D>, cp: &mut Checkpoint) {
    let st = sim.state();
    cp.meta.step = st.step;
    cp.meta.level = st.level;
    cp.meta.calm_steps = st.calm_steps;
    cp.meta.rejected_attempts = st.rejected_attempts;
    cp.bandwidths = sim.bandwidths.clone();
    // The state's arrays are taken over, not copied again.
    cp.positions = st.positions.into_flattened();
    cp.last_move = st.last_move.map(|(h, m)| (h, m.into_flattened()));
    // `state` gives a start point only for its positions.
    cp.start = st.start.map(|s| {
        let p = s.parts;
        (
            [p.diffusion, p.potential, p.interaction],
            s.grad.into_flattened(),
        )
    });
}

/// Continue `sim` from checkpoint `cp` of the same scenario (weights, ids
/// and bandwidths must agree; `file` is named in the message if not).
pub fn restore<const D: usize>(
    sim: &mut Simulation<D>,
    cp: &Checkpoint,
    file: &Path,
) -> Result<()> {
    let mismatch = |what: String| {
        Error::input(
            file,
            "checkpoint",
            format!(
                "{what}: the checkpoint does not belong to this scenario; start again with --force"
            ),
        )
    };
    let n = sim.cloud.len();
    if cp.meta.dimension != D || cp.meta.particles != n || cp.positions.len() != n * D {
        return Err(mismatch(format!(
            "it holds {} particles in d = {}, the scenario {n} in d = {D}",
            cp.meta.particles, cp.meta.dimension
        )));
    }
    let same_bits = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    if !same_bits(&cp.bandwidths, &sim.bandwidths) {
        return Err(mismatch(format!(
            "bandwidths {:?} in the checkpoint, {:?} from the scenario",
            cp.bandwidths, sim.bandwidths
        )));
    }
    let unflatten = |v: &[f64]| -> Vec<[f64; D]> {
        v.chunks_exact(D)
            .map(|c| std::array::from_fn(|a| c[a]))
            .collect()
    };
    let last_move = match &cp.last_move {
        Some((h, m)) if m.len() == n * D => Some((*h, unflatten(m))),
        Some(_) => {
            return Err(mismatch(
                "the stored displacement has the wrong length".into(),
            ));
        }
        None => None,
    };
    let start = match &cp.start {
        Some((p, g)) if g.len() == n * D => Some(StartPoint {
            x: unflatten(&cp.positions),
            parts: EnergyParts {
                diffusion: p[0],
                potential: p[1],
                interaction: p[2],
            },
            grad: unflatten(g),
        }),
        Some(_) => {
            return Err(mismatch(
                "the stored energy gradient has the wrong length".into(),
            ));
        }
        None => None,
    };
    sim.set_state(SimulationState {
        positions: unflatten(&cp.positions),
        last_move,
        start,
        step: cp.meta.step,
        level: cp.meta.level,
        calm_steps: cp.meta.calm_steps,
        rejected_attempts: cp.meta.rejected_attempts,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::particles::SpeciesBlock;

    /// A frame formatted in parallel chunks and batches is the csv
    /// writer's bytes, row by row: over two batches, with species
    /// boundaries inside a chunk and a name the writer must quote.
    #[test]
    fn a_frame_is_the_csv_writers_bytes() {
        let sizes = [5, 140_000, 20_003];
        let n: usize = sizes.iter().sum();
        assert!(n > FRAME_CHUNK * FRAME_BATCH, "two batches at least");
        let names = ["u", "a,b", "v.2"];
        let mut blocks = Vec::new();
        let mut at = 0;
        for (name, &len) in names.iter().zip(&sizes) {
            blocks.push(SpeciesBlock {
                name: name.to_string(),
                range: at..at + len,
                charge: 1.0,
                diffusion: 1.0,
                exponent: 1.0,
                mass: 1.0,
            });
            at += len;
        }
        // Values of every magnitude and sign ryu writes in both notations.
        let value =
            |i: usize, k: usize| ((i * 7 + k) as f64).sin() * 10f64.powi((i % 40) as i32 - 20);
        let cloud = Cloud::<2> {
            positions: (0..n).map(|i| [value(i, 0), -value(i, 1)]).collect(),
            weights: (0..n).map(|i| value(i, 2).abs()).collect(),
            ids: (0..n)
                .map(|i| (i as u64).wrapping_mul(2_654_435_761))
                .collect(),
            blocks,
        };
        let density: Vec<f64> = (0..n)
            .map(|i| if i % 9 == 0 { 0.0 } else { value(i, 3) })
            .collect();
        let (step, time) = (12, 0.123_456_789);

        let tmp = tempfile::tempdir().unwrap();
        let mut w = RunWriter::create(tmp.path(), 2).unwrap();
        w.frame(step, time, &cloud, &density).unwrap();
        w.sync().unwrap();
        let got =
            std::fs::read(crate::io::output::partial_path(&tmp.path().join(PARTICLES))).unwrap();

        let mut want = csv::WriterBuilder::new().from_writer(Vec::new());
        want.write_record(particles_header(2)).unwrap();
        let mut fb = ryu::Buffer::new();
        for b in &cloud.blocks {
            for i in b.range.clone() {
                want.write_field(step.to_string()).unwrap();
                want.write_field(fb.format(time)).unwrap();
                want.write_field(&b.name).unwrap();
                want.write_field(cloud.ids[i].to_string()).unwrap();
                for a in 0..2 {
                    want.write_field(fb.format(cloud.positions[i][a])).unwrap();
                }
                want.write_field(fb.format(cloud.weights[i])).unwrap();
                want.write_field(fb.format(density[i])).unwrap();
                want.write_record(None::<&[u8]>).unwrap();
            }
        }
        let want = want.into_inner().unwrap();
        assert!(String::from_utf8_lossy(&want).contains("\"a,b\""));
        assert_eq!(got.len(), want.len());
        assert!(
            got == want,
            "the frame's bytes differ from the csv writer's"
        );
    }
}
