//! How a run begins, decided from the output directory before anything is
//! written (README, "Runs that survive"): a new or empty directory starts a
//! run; a directory holding a run is refused unless `--resume` (continue it
//! from its checkpoint, if it is this scenario's: inputs, program, every
//! checkpoint field and the `.partial` files it records are checked) or
//! `--force` (replace it, see [`super::dir`]); a non-empty directory
//! holding no run is refused unless `--force`.

use std::path::{Path, PathBuf};

use super::RunOptions;
use super::dir::OutputDir;
use crate::error::{Error, Result, clip};
use crate::io::checkpoint::{self, Checkpoint, FileEntry, RunKind, Status};
use crate::io::output::{self, RUN_FILES};
use crate::io::scenario::{InitialSpec, Scenario};

/// Every file name a run of either kind (particles or grid) writes, final
/// and `.partial`: a forced run replaces all of them, so that no file of
/// another run stays beside the new one's.
pub fn all_run_file_names() -> Vec<String> {
    let finals = RUN_FILES.iter().chain(&[
        output::DENSITY,
        output::SCENARIO_COPY,
        checkpoint::CHECKPOINT,
        checkpoint::PREVIOUS,
        checkpoint::PARTS_DIR,
        super::record::RUN_RECORD,
        crate::io::vtk::VTK_DIR,
    ]);
    finals
        .flat_map(|n| [n.to_string(), format!("{n}{}", output::PARTIAL_SUFFIX)])
        .collect()
}

/// The paths of the scenario file and of every particle file it reads.
pub fn input_paths(s: &Scenario) -> Vec<PathBuf> {
    let mut out = vec![s.path.clone()];
    for sp in &s.species {
        if let InitialSpec::Csv { path, .. } = &sp.initial {
            out.push(path.clone());
        }
    }
    out
}

/// The scenario and every particle file it reads, with checksums (the
/// scenario's of the text it was parsed from, [`Scenario::text`]).
pub fn input_entries(s: &Scenario) -> Result<Vec<FileEntry>> {
    let entry = |path: &Path| {
        let regular = std::fs::metadata(path).map(|m| m.is_file());
        match regular {
            Ok(true) => FileEntry::of_file(path),
            Ok(false) => Err(Error::input(path, "file", "not a regular file")),
            Err(e) => Err(Error::input(
                path,
                "file",
                format!("cannot open the particle file: {e}"),
            )),
        }
    };
    let mut entries = vec![FileEntry::of_bytes(&s.path, s.text.as_bytes())];
    for path in input_paths(s).iter().skip(1) {
        entries.push(entry(path)?);
    }
    Ok(entries)
}

/// How the run begins.
pub(super) enum Start {
    /// A new run; the files of the run already in the directory (`--force`,
    /// or a run killed before its first checkpoint) are replaced once every
    /// check has passed.
    Fresh {
        replace: Vec<String>,
    },
    Resume(Checkpoint),
    Complete(Checkpoint),
}

fn refuse(dir: &Path, why: String) -> Error {
    Error::io(
        dir,
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
    )
}

/// Decide from the directory's contents and the options how to start.
/// Nothing is changed on disk here.
pub(super) fn inspect(
    out: &OutputDir,
    s: &Scenario,
    opts: RunOptions,
    inputs: &[FileEntry],
    kind: RunKind,
) -> Result<Start> {
    let dir = out.path();
    let contents = out.contents(&all_run_file_names())?;
    let present = contents.present;
    if opts.force {
        return Ok(Start::Fresh { replace: present });
    }
    if present.is_empty() {
        if contents.foreign.is_empty() {
            return Ok(Start::Fresh { replace: present });
        }
        let names: Vec<String> = contents
            .foreign
            .iter()
            .take(8)
            .map(|n| clip(n, 80))
            .collect();
        let more = contents.foreign.len().saturating_sub(8);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return Err(refuse(
            dir,
            format!(
                "not empty and holds no jko run (it has {}{more}): choose a new or empty --out directory, or pass --force to write beside these files",
                names.join(", ")
            ),
        ));
    }
    // Under MPI only a resume's ranks all read the checkpoint (the others
    // were given copies of its manifests): only then may the read be the
    // team's collective one.
    let cp = if opts.resume {
        checkpoint::read(dir)?
    } else {
        checkpoint::read_with(&crate::util::team::Solo, dir)?
    };
    let Some((cp_path, cp)) = cp else {
        // The scenario copy is written first, under its final name.
        let unfinished = present.iter().all(|n| {
            n.ends_with(output::PARTIAL_SUFFIX)
                || n == output::SCENARIO_COPY
                || n == super::record::RUN_RECORD
                || n == crate::io::vtk::VTK_DIR
                || n == checkpoint::PARTS_DIR
        });
        if unfinished && opts.resume {
            // Killed before its first checkpoint: nothing to resume.
            return Ok(Start::Fresh { replace: present });
        }
        return Err(refuse(
            dir,
            "already exists: it holds the output of another run: choose another --out directory or pass --force to overwrite".into(),
        ));
    };
    if cp.meta.kind != kind {
        return Err(refuse(
            dir,
            format!(
                "already exists: it holds the output of {}: choose another --out directory, or --force to overwrite it",
                checkpoint::kind_name(cp.meta.kind)
            ),
        ));
    }
    if !opts.resume {
        let what = match cp.meta.status {
            Status::Running => "an unfinished run: pass --resume to continue it",
            Status::Complete | Status::Ended => "a finished run: choose another --out directory",
        };
        return Err(refuse(
            dir,
            format!("already exists: it holds {what}, or --force to overwrite it"),
        ));
    }
    check_belongs(&cp, &cp_path, s, inputs, kind)?;
    match cp.meta.status {
        Status::Running => {
            check_partials(dir, &cp)?;
            Ok(Start::Resume(cp))
        }
        Status::Complete => Ok(Start::Complete(cp)),
        Status::Ended => Err(Error::input(
            &cp_path,
            "checkpoint",
            format!(
                "the run ended early at step {} (see events.csv); nothing to resume: change the scenario and start again with --force",
                cp.meta.step
            ),
        )),
    }
}

/// Whether checkpoint `cp` (read from `cp_path`) is one this scenario's run
/// wrote: the same program, the same inputs (length and CRC-32), the same
/// dimension, and every field within what the scenario allows.
fn check_belongs(
    cp: &Checkpoint,
    cp_path: &Path,
    s: &Scenario,
    inputs: &[FileEntry],
    kind: RunKind,
) -> Result<()> {
    let input_mismatch = |why: String| {
        Error::input(
            cp_path,
            "checkpoint",
            format!(
                "{why}; the run in this directory is not this scenario's: start again with --force, or choose another --out"
            ),
        )
    };
    if cp.meta.program != checkpoint::program_version() {
        return Err(input_mismatch(format!(
            "written by {}, this is {} (a resume must use the same program to give the same numbers)",
            clip(&cp.meta.program, 80),
            checkpoint::program_version()
        )));
    }
    let same = |a: &FileEntry, b: &FileEntry| a.len == b.len && a.crc == b.crc;
    if cp.meta.inputs.len() != inputs.len()
        || !cp.meta.inputs.iter().zip(inputs).all(|(a, b)| same(a, b))
    {
        let changed: Vec<&str> = inputs
            .iter()
            .enumerate()
            .filter(|(k, b)| cp.meta.inputs.get(*k).is_none_or(|a| !same(a, b)))
            .map(|(_, b)| b.path.as_str())
            .collect();
        return Err(input_mismatch(format!(
            "{} differ(s) from the input(s) the run started with",
            changed.join(", ")
        )));
    }
    if cp.meta.dimension != s.dimension {
        return Err(input_mismatch("dimension differs".into()));
    }
    // Known only when every species states its count (csv species may not).
    let particles: Option<usize> = s.species.iter().map(|sp| sp.particles).sum();
    let expect = checkpoint::Expected {
        steps: match kind {
            RunKind::Run => s.steps as u64,
            _ => s.equilibrium.max_stages as u64,
        },
        max_halvings: s.solver.max_halvings,
        species: s.species.len(),
        particles,
        time_step: match kind {
            RunKind::Run => s.time_step,
            _ => crate::stepper::equilibrium::max_stage_step(s.time_step),
        },
        kind,
    };
    cp.validate(&expect).map_err(|why| {
        input_mismatch(format!(
            "it is not a checkpoint this scenario can have written: {why}"
        ))
    })?;
    Ok(())
}

/// A run to resume needs the `.partial` files its checkpoint records, at
/// least as long as recorded (they are cut back to that length).
fn check_partials(dir: &Path, cp: &Checkpoint) -> Result<()> {
    // A follower reads none of them (`output::follow`); the writer checks.
    if output::following() {
        return Ok(());
    }
    for (name, f) in RUN_FILES.iter().zip(&cp.meta.outputs) {
        let p = output::partial_path(&dir.join(name));
        let advice = "the run cannot be resumed without it: start it again with --force \
                      (the files in the directory are kept until the new run has written its first checkpoint), \
                      or choose another --out";
        match std::fs::metadata(&p) {
            Ok(m) if m.len() >= f.len => {}
            Ok(m) => {
                return Err(Error::input(
                    &p,
                    "checkpoint",
                    format!(
                        "holds {} bytes, the checkpoint records {}: it was cut or replaced; {advice}",
                        m.len(),
                        f.len
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::input(
                    &p,
                    "checkpoint",
                    format!(
                        "missing (the checkpoint records {} bytes of it; was it deleted or moved?): {advice}",
                        f.len
                    ),
                ));
            }
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}
