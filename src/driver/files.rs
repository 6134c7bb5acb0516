//! The files of a particle run: the three CSV streams (particles, energy,
//! events) and the mapping between a [`Simulation`]'s state and a
//! [`Checkpoint`].

use std::path::Path;

use crate::driver::events::Event;
use crate::energy::EnergyParts;
use crate::error::{Error, Result};
use crate::io::checkpoint::Checkpoint;
use crate::io::output::{
    CsvStream, ENERGY, EVENTS, EVENTS_HEADER, EnergyLog, FileState, PARTICLES, particles_header,
};
use crate::io::vtk::{PointFrame, VtkSeries};
use crate::particles::Cloud;
use crate::stepper::{Simulation, SimulationState, StartPoint, StepReport};
use crate::util::fault;

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
        let middle = cloud.len() / 2;
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
                if fault::ENABLED && i == middle {
                    // The kill tests stop the process with half a frame on disk.
                    w.sync()?;
                    fault::kill_point(fault::KillPoint::Frame);
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
