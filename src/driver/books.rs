//! The bookkeeping of a particle run between checkpoints: its CSV files,
//! the checkpoint metadata (counters, events, the last frame) and the events
//! it reports to the observer.

use std::path::Path;

use super::files::{self, RunWriter};
use super::record::{Phase, RunRecord};
use super::{Observer, RunSummary};
use crate::driver::events::{Event, EventKind, PhysicalWatch};
use crate::error::Result;
use crate::io::checkpoint::{self, Checkpoint, FileEntry, Meta, RunKind, Status};
use crate::io::output::{self, RUN_FILES};
use crate::io::vtk::VtkSeries;
use crate::stepper::{Advance, Rejection, Simulation, StepReport};

/// The run's files and its bookkeeping between checkpoints.
pub(super) struct Books<'a> {
    pub(super) dir: &'a Path,
    pub(super) writer: RunWriter,
    pub(super) meta: Meta,
    pub(super) initial_energy: f64,
    /// run.json, rewritten at every checkpoint.
    pub(super) record: &'a mut RunRecord,
}

impl<'a> Books<'a> {
    /// A new run's books: step 0 written to its new files `writer` (energy
    /// row, initial events, frame) and checkpointed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fresh<const D: usize>(
        dir: &'a Path,
        writer: RunWriter,
        inputs: Vec<FileEntry>,
        sim: &mut Simulation<D>,
        first: &StepReport,
        initial_events: Vec<Event>,
        kind: RunKind,
        record: &'a mut RunRecord,
        obs: &mut dyn Observer,
    ) -> Result<Self> {
        let mut books = Books {
            dir,
            writer,
            meta: Meta {
                program: checkpoint::program_version(),
                status: Status::Running,
                inputs,
                dimension: D,
                species: sim.cloud.blocks.len(),
                particles: sim.cloud.len(),
                step: 0,
                level: 0,
                calm_steps: 0,
                total_iterations: 0,
                total_evaluations: 0,
                unconverged_steps: 0,
                rejected_attempts: 0,
                events: 0,
                reported: Vec::new(),
                last_frame: 0,
                outputs: Vec::new(),
                kind,
                parts: Vec::new(),
            },
            initial_energy: first.parts.total(),
            record,
        };
        books.writer.energy(0, 0.0, first)?;
        for e in initial_events {
            books.event(e, obs)?;
        }
        books.frame(sim)?;
        books.checkpoint(sim, Status::Running)?;
        Ok(books)
    }

    /// The books of an interrupted run: its files cut back to the states
    /// its checkpoint records (the VTK series `vtk` holding its frames up to
    /// the checkpoint).
    pub(super) fn resumed(
        dir: &'a Path,
        cp: &Checkpoint,
        vtk: Option<VtkSeries>,
        record: &'a mut RunRecord,
    ) -> Result<Self> {
        let states: [output::FileState; 3] = std::array::from_fn(|k| cp.meta.outputs[k].state());
        Ok(Books {
            dir,
            writer: RunWriter::resume(dir, &states)?.with_vtk(vtk),
            meta: cp.meta.clone(),
            initial_energy: cp.initial_energy,
            record,
        })
    }

    /// Records accepted step n: its rejected attempts, its energy row and
    /// counters, an `iteration_cap` event if it stopped short of the
    /// tolerance, and the physical events; whether a species collapsed.
    pub(super) fn record_step<const D: usize>(
        &mut self,
        n: u64,
        t: f64,
        advance: &Advance,
        watch: &PhysicalWatch,
        sim: &Simulation<D>,
        obs: &mut dyn Observer,
    ) -> Result<bool> {
        self.rejections(n, t, &advance.rejections, obs)?;
        let r = &advance.report;
        self.writer.energy(n, t, r)?;
        self.meta.total_iterations += r.iterations;
        self.meta.total_evaluations += r.evaluations as u64;
        self.meta.unconverged_steps += u64::from(!r.converged);
        if !r.converged {
            let e = Event {
                step: n,
                time: t,
                kind: EventKind::IterationCap,
                species: None,
                value: r.gradient_norm,
                message: format!(
                    "accepted before the tolerance ({}); the energy decreased",
                    r.termination
                ),
            };
            self.event(e, obs)?;
        }
        let mut reported = std::mem::take(&mut self.meta.reported);
        let physical = watch.check(n, t, &sim.cloud, &mut reported);
        self.meta.reported = reported;
        let collapsed = physical.iter().any(|e| e.kind == EventKind::Collapse);
        for e in physical {
            self.event(e, obs)?;
        }
        Ok(collapsed)
    }

    pub(super) fn event(&mut self, e: Event, obs: &mut dyn Observer) -> Result<()> {
        self.writer.event(&e)?;
        self.meta.events += 1;
        obs.event(&e);
        Ok(())
    }

    pub(super) fn rejections(
        &mut self,
        step: u64,
        time: f64,
        rs: &[Rejection],
        obs: &mut dyn Observer,
    ) -> Result<()> {
        for r in rs {
            let e = Event {
                step,
                time,
                kind: EventKind::StepRejected,
                species: None,
                value: r.substep,
                message: format!(
                    "attempt {} with sub-steps of {:e} rejected: {}",
                    r.attempt, r.substep, r.reason
                ),
            };
            self.event(e, obs)?;
        }
        Ok(())
    }

    pub(super) fn frame<const D: usize>(&mut self, sim: &mut Simulation<D>) -> Result<()> {
        let rho = sim.densities();
        self.writer.frame(sim.step, sim.time, &sim.cloud, &rho)?;
        self.meta.last_frame = sim.step;
        Ok(())
    }

    pub(super) fn checkpoint<const D: usize>(
        &mut self,
        sim: &Simulation<D>,
        status: Status,
    ) -> Result<()> {
        let files = self.writer.sync()?;
        self.meta.status = status;
        self.meta.outputs = RUN_FILES
            .iter()
            .zip(files)
            .map(|(name, f)| FileEntry {
                path: name.to_string(),
                len: f.len,
                crc: f.crc,
            })
            .collect();
        let mut cp = Checkpoint {
            meta: self.meta.clone(),
            initial_energy: self.initial_energy,
            bandwidths: Vec::new(),
            positions: Vec::new(),
            last_move: None,
            start: None,
        };
        files::save_state(sim, &mut cp);
        // The write lists the new checkpoint's parts (MPI) in its metadata.
        checkpoint::write(self.dir, &mut cp)?;
        self.meta = cp.meta;
        let m = &self.meta;
        self.record
            .progress(m.step, m.total_iterations, m.total_evaluations);
        self.record.recuts(sim.recuts() as u64);
        self.record.write()
    }

    /// Charge the wall time from here on to phase `p` (run.json).
    pub(super) fn enter(&mut self, p: Phase) {
        self.record.enter(p);
    }

    pub(super) fn summary<const D: usize>(
        &self,
        sim: &Simulation<D>,
        final_energy: f64,
    ) -> RunSummary {
        RunSummary {
            steps: sim.step,
            initial_energy: self.initial_energy,
            final_energy,
            total_iterations: self.meta.total_iterations,
            unconverged_steps: self.meta.unconverged_steps,
            rejected_attempts: sim.rejected_attempts,
            events: self.meta.events,
            bandwidths: sim.bandwidths.clone(),
            resumed_from: None,
            already_complete: false,
        }
    }

    /// End the run early at the current state: last good frame, checkpoint,
    /// final names.
    pub(super) fn end_early<const D: usize>(mut self, sim: &mut Simulation<D>) -> Result<()> {
        if self.meta.last_frame != sim.step {
            self.frame(sim)?;
        }
        self.checkpoint(sim, Status::Ended)?;
        self.writer.finish()?;
        output::sync_dir(self.dir)
    }
}
