//! Checkpoints: the exact state of a particle run, so that a killed or
//! interrupted run continues with `--resume` and produces the same bytes as a
//! run that was never stopped.
//!
//! A checkpoint holds the positions (exact f64), the previous step's
//! displacement (the next step's first guess), the energy and its gradient
//! at the positions (the next step's start, which it takes without an
//! evaluation), the step, the step-splitting
//! level, the counters of the run, checksums of the scenario and of every
//! input particle file, the program version, and the length and CRC-32 of
//! each output file. Nothing random is drawn after step 0 (the seed only
//! places the initial particles, which a resume draws again and checks
//! against the stored bandwidths), so no generator state is needed.
//!
//! File format (`checkpoint.jko`, little-endian):
//!
//! ```text
//! magic "JKOCKPT1" | u32 n | n bytes of TOML metadata ([`Meta`])
//! | u64 m | m f64: initial energy, bandwidths, positions, [h of last move, last move],
//!   [E's diffusion, potential and interaction parts, dE/dX at the positions]
//! | u32 CRC-32 of everything before it
//! ```
//!
//! It is written to a temporary file, synced, and renamed; the checkpoint it
//! replaces is kept as `checkpoint.prev.jko`, and [`read`] falls back to it
//! if the newest one is missing or damaged.
//!
//! Under MPI with more than one rank the per-particle arrays are written by
//! every rank in parts, and `checkpoint.jko` is their manifest: the same
//! format with the parts listed in the metadata and only the numbers that
//! are not per particle ([`parts`] module docs).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::output::{self, FileState};
use crate::util::fault;
use crate::util::team::{self, Team};

pub mod parts;
pub use parts::{PARTS_DIR, Part};

/// File name of the current checkpoint in a run directory.
pub const CHECKPOINT: &str = "checkpoint.jko";
/// File name of the checkpoint before it (kept until the new one is safely renamed).
pub const PREVIOUS: &str = "checkpoint.prev.jko";
const MAGIC: &[u8; 8] = b"JKOCKPT1";

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Steps remain; `--resume` continues.
    Running,
    /// All steps done, files under their final names.
    Complete,
    /// Ended early (no step size worked, or a physical event said stop);
    /// files complete up to `step`.
    Ended,
}

/// What a checkpoint's directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunKind {
    /// A `jko run`: `step` counts JKO steps of the scenario's h.
    #[default]
    Run,
    /// A `jko equilibrium`: `step` counts continuation stages; the files
    /// hold step 0 and, once complete, step 1 (the minimizer).
    Equilibrium,
}

impl RunKind {
    fn is_run(&self) -> bool {
        *self == RunKind::Run
    }
}

/// Length and CRC-32 of an input or output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file's path as given.
    pub path: String,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32 of the bytes.
    pub crc: u32,
}

impl FileEntry {
    /// The checksum of a whole file on disk.
    pub fn of_file(path: &Path) -> Result<FileEntry> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(FileEntry::of_bytes(path, &bytes))
    }

    /// The checksum of `bytes`, recorded under `path`.
    pub fn of_bytes(path: &Path, bytes: &[u8]) -> FileEntry {
        FileEntry {
            path: path.display().to_string(),
            len: bytes.len() as u64,
            crc: crc32fast::hash(bytes),
        }
    }

    /// The length and CRC as an output stream's [`FileState`].
    pub fn state(&self) -> FileState {
        FileState {
            len: self.len,
            crc: self.crc,
        }
    }
}

/// The integer and text part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `jko <version>` of the binary that wrote it.
    pub program: String,
    /// Where the run stands.
    pub status: Status,
    /// The scenario file, then every particle file it reads.
    pub inputs: Vec<FileEntry>,
    /// d.
    pub dimension: usize,
    /// Number of species K.
    pub species: usize,
    /// Total number of particles.
    pub particles: usize,
    /// Last completed step.
    pub step: u64,
    /// Steps are taken as 2^level sub-steps of h / 2^level (0 normally).
    pub level: u32,
    /// Steps accepted at this level without a rejection (the level drops back
    /// after a few).
    pub calm_steps: u32,
    /// L-BFGS iterations so far.
    pub total_iterations: u64,
    /// Energy and gradient evaluations so far (for run.json; absent in the
    /// checkpoints of earlier versions).
    #[serde(default)]
    pub total_evaluations: u64,
    /// Steps where the optimizer stopped before meeting the tolerance.
    pub unconverged_steps: u64,
    /// Step attempts thrown away so far.
    pub rejected_attempts: u64,
    /// Events of the run so far.
    pub events: u64,
    /// Events reported once per run and species, already reported.
    pub reported: Vec<String>,
    /// The last step written to particles.csv.
    pub last_frame: u64,
    /// The output files (under their temporary names while running).
    pub outputs: Vec<FileEntry>,
    /// A run's or an equilibrium's (absent in a run's: the checkpoints of
    /// runs keep their bytes).
    #[serde(default, skip_serializing_if = "RunKind::is_run")]
    pub kind: RunKind,
    /// A divided checkpoint's parts, in id order ([`parts`]); empty when
    /// the arrays are in the checkpoint's own file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

/// A whole checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The integer and text part.
    pub meta: Meta,
    /// Energy at step 0 (for the run summary).
    pub initial_energy: f64,
    /// Kernel bandwidth of each species.
    pub bandwidths: Vec<f64>,
    /// Positions, `particles * dimension` numbers, particle-major.
    pub positions: Vec<f64>,
    /// The previous step's displacement and the step size it was made with.
    pub last_move: Option<(f64, Vec<f64>)>,
    /// E's parts (diffusion, potential, interaction) and dE/dX, flattened
    /// like the positions, at the positions (absent in the checkpoints of
    /// earlier versions: the next step then evaluates them).
    pub start: Option<([f64; 3], Vec<f64>)>,
}

/// The version string stored in and checked against checkpoints.
pub fn program_version() -> String {
    format!("jko {}", env!("CARGO_PKG_VERSION"))
}

impl Checkpoint {
    /// The checkpoint's bytes: magic, metadata as TOML, then the floats
    /// (a manifest, with `meta.parts` listed, leaves out the per-particle
    /// arrays: they are in the parts).
    pub fn encode(&self) -> Vec<u8> {
        let meta = toml::to_string(&self.meta).expect("checkpoint metadata serializes");
        let whole = self.meta.parts.is_empty();
        let per_particle = |a: &[f64]| if whole { a.len() } else { 0 };
        // The floats go straight into the bytes, in this order, without a
        // flattened copy (at 1e6 particles that copy is tens of MB).
        let mut blocks: Vec<&[f64]> = vec![
            std::slice::from_ref(&self.initial_energy),
            &self.bandwidths,
            &self.positions[..per_particle(&self.positions)],
        ];
        if let Some((h, m)) = &self.last_move {
            blocks.push(std::slice::from_ref(h));
            blocks.push(&m[..per_particle(m)]);
        }
        if let Some((parts, grad)) = &self.start {
            blocks.push(parts);
            blocks.push(&grad[..per_particle(grad)]);
        }
        let count: usize = blocks.iter().map(|b| b.len()).sum();
        let mut out = Vec::with_capacity(32 + meta.len() + 8 * count);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(meta.as_bytes());
        out.extend_from_slice(&(count as u64).to_le_bytes());
        for v in blocks.into_iter().flatten() {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parse and check a checkpoint; `Err` carries what is wrong (also for a
    /// manifest: its parts are read by [`Checkpoint::decode_in`]).
    pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        Checkpoint::decode_in(bytes, None)
    }

    /// [`Checkpoint::decode`], reading a manifest's parts from
    /// `home/`[`PARTS_DIR`].
    pub fn decode_in(bytes: &[u8], home: Option<&Path>) -> std::result::Result<Checkpoint, String> {
        Checkpoint::decode_with(&team::Solo, bytes, home)
    }

    /// [`Checkpoint::decode_in`] by the members of `team` (collective for a
    /// manifest of one part per member: [`parts`]).
    fn decode_with(
        team: &dyn Team,
        bytes: &[u8],
        home: Option<&Path>,
    ) -> std::result::Result<Checkpoint, String> {
        if bytes.len() < MAGIC.len() + 16 || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a jko checkpoint (bad magic or too short)".into());
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes(tail.try_into().unwrap());
        if crc32fast::hash(body) != crc {
            return Err("checksum mismatch (the file is damaged or truncated)".into());
        }
        let mut at = MAGIC.len();
        let mut take = |n: usize| -> std::result::Result<&[u8], String> {
            let s = body.get(at..at + n).ok_or("truncated")?;
            at += n;
            Ok(s)
        };
        let meta_len = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
        let meta_text = std::str::from_utf8(take(meta_len)?).map_err(|e| e.to_string())?;
        let meta: Meta = toml::from_str(meta_text).map_err(|e| e.to_string())?;
        let count = u64::from_le_bytes(take(8)?.try_into().unwrap()) as usize;
        let raw = take(count.checked_mul(8).ok_or("bad length")?)?;
        let floats: Vec<f64> = raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let species = meta.species;
        let n = meta
            .particles
            .checked_mul(meta.dimension)
            .ok_or("particle count out of range")?;
        if meta.outputs.len() != output::RUN_FILES.len() {
            return Err(format!(
                "{} output files listed, a run has {}",
                meta.outputs.len(),
                output::RUN_FILES.len()
            ));
        }
        // After the positions come h and a whole move, or not, then three
        // energy parts and a whole gradient, or not: n + 1 and n + 3
        // numbers, so the length says which (n >= 1). A manifest has no
        // per-particle arrays: it reads as n = 0 (1 and 3 numbers).
        let divided = !meta.parts.is_empty();
        let n = if divided { 0 } else { n };
        // Checked: a forged species or particle count must not wrap the sums.
        let fixed = species
            .checked_add(n)
            .and_then(|v| v.checked_add(1))
            .ok_or("species or particle count out of range")?;
        let (with_move, with_start) = (n.checked_add(1), n.checked_add(3));
        let both = with_move
            .zip(with_start)
            .and_then(|(a, b)| a.checked_add(b));
        let (has_move, has_start) = match count.checked_sub(fixed) {
            Some(0) => (false, false),
            Some(rest) if Some(rest) == with_move => (true, false),
            Some(rest) if Some(rest) == with_start => (false, true),
            Some(rest) if Some(rest) == both => (true, true),
            _ => return Err("array lengths do not match the metadata".into()),
        };
        let bandwidths = floats[1..1 + species].to_vec();
        let positions = floats[1 + species..1 + species + n].to_vec();
        let last_move = has_move.then(|| {
            let o = 1 + species + n;
            (floats[o], floats[o + 1..o + 1 + n].to_vec())
        });
        let start = has_start.then(|| {
            let o = 1 + species + n + if has_move { n + 1 } else { 0 };
            (
                [floats[o], floats[o + 1], floats[o + 2]],
                floats[o + 3..o + 3 + n].to_vec(),
            )
        });
        let mut cp = Checkpoint {
            meta,
            initial_energy: floats[0],
            bandwidths,
            positions,
            last_move,
            start,
        };
        if divided {
            let home = home.ok_or("a divided checkpoint's manifest, read without its parts")?;
            parts::assemble(team, home, &mut cp, has_move, has_start)?;
        }
        Ok(cp)
    }
}

/// What a checkpoint must agree with to be resumed: the scenario's figures.
#[derive(Debug, Clone)]
pub struct Expected {
    /// `steps` of the scenario.
    pub steps: u64,
    /// `solver.max_halvings` of the scenario.
    pub max_halvings: u32,
    /// Number of species.
    pub species: usize,
    /// Total particles, when the scenario states every species' count.
    pub particles: Option<usize>,
    /// h of the scenario (a checkpointed step size may not exceed it); for
    /// an equilibrium, the continuation's largest step.
    pub time_step: f64,
    /// The kind of directory the checkpoint must be from.
    pub kind: RunKind,
}

impl Checkpoint {
    /// Check every field against the run it claims to continue, before any
    /// is used: a damaged or forged checkpoint (its CRC recomputed) must not
    /// drive a loop, an allocation or a non-finite state.
    pub fn validate(&self, e: &Expected) -> std::result::Result<(), String> {
        let m = &self.meta;
        // The level first: a forged one would split every step into 2^level sub-steps.
        if m.level > e.max_halvings {
            return Err(format!(
                "sub-step level {} above the scenario's max_halvings {}",
                m.level, e.max_halvings
            ));
        }
        if m.kind != e.kind {
            return Err(format!(
                "it is {}'s checkpoint, and this is {}",
                kind_name(m.kind),
                kind_name(e.kind)
            ));
        }
        // An equilibrium ends at any stage up to its limit.
        let step_ok = match (m.status, m.kind) {
            (Status::Running, _) => m.step < e.steps,
            (Status::Complete, RunKind::Run) => m.step == e.steps,
            _ => m.step <= e.steps,
        };
        if !step_ok {
            return Err(format!(
                "step {} with status {:?} in a run of {} steps",
                m.step, m.status, e.steps
            ));
        }
        // An equilibrium's frames are steps 0 and 1, whatever its stage.
        let frames = match m.kind {
            RunKind::Equilibrium => 1,
            _ => m.step,
        };
        if u64::from(m.calm_steps) > m.step || m.last_frame > frames || m.unconverged_steps > m.step
        {
            return Err(format!(
                "counters beyond step {} (calm steps {}, last frame {}, unconverged steps {})",
                m.step, m.calm_steps, m.last_frame, m.unconverged_steps
            ));
        }
        if m.species != e.species || self.bandwidths.len() != e.species {
            return Err(format!(
                "{} species, the scenario has {}",
                m.species, e.species
            ));
        }
        if let Some(n) = e.particles
            && n != m.particles
        {
            return Err(format!("{} particles, the scenario has {n}", m.particles));
        }
        let names_ok = m.outputs.len() == output::RUN_FILES.len()
            && m.outputs
                .iter()
                .zip(output::RUN_FILES)
                .all(|(f, n)| f.path == n);
        if !names_ok {
            return Err("its list of output files is not a run's".into());
        }
        if !self.initial_energy.is_finite() {
            return Err("non-finite initial energy".into());
        }
        if !self.bandwidths.iter().all(|b| b.is_finite() && *b > 0.0) {
            return Err("a bandwidth that is not a positive number".into());
        }
        if !self.positions.iter().all(|x| x.is_finite()) {
            return Err("non-finite positions".into());
        }
        if let Some((h, mv)) = &self.last_move {
            let h_ok = h.is_finite() && *h > 0.0 && *h <= e.time_step;
            if !h_ok || !mv.iter().all(|x| x.is_finite()) {
                return Err(
                    "a stored displacement that is not a finite move of at most one time step"
                        .into(),
                );
            }
        }
        if let Some((parts, grad)) = &self.start
            && !parts.iter().chain(grad).all(|x| x.is_finite())
        {
            return Err("a stored energy or energy gradient that is not finite".into());
        }
        Ok(())
    }
}

/// "a run" or "an equilibrium", for messages.
pub fn kind_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Run => "a `jko run`",
        RunKind::Equilibrium => "a `jko equilibrium`",
    }
}

/// Write `cp` into `dir` as the process's team does ([`write_with`]).
pub fn write(dir: &Path, cp: &mut Checkpoint) -> Result<()> {
    write_with(&*team::current(), dir, cp)
}

/// Write `cp` into `dir`: temporary file, sync, keep the current checkpoint
/// as the previous one, rename, sync the directory. With a team of more than
/// one member (collective), each member first writes its part and
/// `cp.meta.parts` lists them ([`parts`]); a member that
/// [`output::following`] writes its part into the followed run's directory
/// and nothing else. `cp.meta.parts` must come in as the parts of the
/// checkpoint this one replaces (as the last write or read left them).
pub fn write_with(team: &dyn Team, dir: &Path, cp: &mut Checkpoint) -> Result<()> {
    let earlier = std::mem::take(&mut cp.meta.parts);
    if team.size() > 1 {
        let home = output::writer_dir().unwrap_or_else(|| dir.to_path_buf());
        parts::write(team, &home, &earlier, cp)?;
    }
    // A follower's checkpoint would be rank 0's bytes (`output::follow`).
    if output::following() {
        return Ok(());
    }
    parts::check_present(dir, &cp.meta.parts)?;
    write_file(dir, cp)?;
    parts::clean(dir, &earlier, &cp.meta.parts)
}

/// The single file (or manifest) of [`write_with`].
fn write_file(dir: &Path, cp: &Checkpoint) -> Result<()> {
    let path = dir.join(CHECKPOINT);
    let tmp = output::partial_path(&path);
    let bytes = cp.encode();
    let written = (|| {
        fault::disk_budget(bytes.len())?;
        std::fs::write(&tmp, &bytes)?;
        std::fs::File::open(&tmp)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    fault::kill_point(fault::KillPoint::Checkpoint);
    if path.exists() {
        let prev = dir.join(PREVIOUS);
        std::fs::rename(&path, &prev).map_err(|e| Error::io(&prev, e))?;
    }
    fault::kill_point(fault::KillPoint::Rename);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    output::sync_dir(dir)
}

/// The newest valid checkpoint in `dir` (falling back to the previous one),
/// `None` if there is none at all. A manifest's parts are read from `dir`,
/// or from the followed run's directory ([`output::writer_dir`]).
pub fn read(dir: &Path) -> Result<Option<(PathBuf, Checkpoint)>> {
    read_with(&*team::current(), dir)
}

/// [`read`] by the members of `team`: collective when a manifest has one
/// part per member (each reads its own, [`parts`]); every member must call
/// it, on the same checkpoint files.
pub fn read_with(team: &dyn Team, dir: &Path) -> Result<Option<(PathBuf, Checkpoint)>> {
    let home = output::writer_dir().unwrap_or_else(|| dir.to_path_buf());
    let mut problems = Vec::new();
    for name in [CHECKPOINT, PREVIOUS] {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => match Checkpoint::decode_with(team, &bytes, Some(&home)) {
                Ok(cp) => return Ok(Some((path, cp))),
                Err(why) => problems.push(format!("{}: {why}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        Err(Error::input(
            &dir.join(CHECKPOINT),
            "checkpoint",
            format!(
                "no usable checkpoint ({}); start again with --force",
                problems.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(with_move: bool) -> Checkpoint {
        sample_with(with_move, false)
    }

    fn sample_with(with_move: bool, with_start: bool) -> Checkpoint {
        Checkpoint {
            meta: Meta {
                program: program_version(),
                status: Status::Running,
                inputs: vec![FileEntry {
                    path: "s.toml".into(),
                    len: 10,
                    crc: 0xdead_beef,
                }],
                dimension: 2,
                species: 2,
                particles: 3,
                step: 7,
                level: 1,
                calm_steps: 2,
                total_iterations: 99,
                total_evaluations: 0,
                unconverged_steps: 1,
                rejected_attempts: 2,
                events: 3,
                reported: vec!["escape:u".into()],
                last_frame: 5,
                outputs: output::RUN_FILES
                    .iter()
                    .map(|n| FileEntry {
                        path: n.to_string(),
                        len: 100,
                        crc: 7,
                    })
                    .collect(),
                kind: RunKind::Run,
                parts: Vec::new(),
            },
            initial_energy: -1.25,
            bandwidths: vec![0.1, 0.2],
            positions: vec![0.1, -0.0, f64::MIN_POSITIVE, 1e300, 3.0, -7.5],
            last_move: with_move.then(|| (0.005, vec![1e-17, 2.0, 3.0, 4.0, 5.0, 6.0])),
            start: with_start
                .then(|| ([0.5, -0.0, -2.5], vec![-1.0, 0.25, -0.0, 8.0, 1e-300, 7.0])),
        }
    }

    #[test]
    fn round_trip_is_exact() {
        for (with_move, with_start) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let cp = sample_with(with_move, with_start);
            let back = Checkpoint::decode(&cp.encode()).unwrap();
            assert_eq!(back, cp);
            // Bit-exact, including the sign of zero.
            assert_eq!(back.positions[1].to_bits(), (-0.0f64).to_bits());
            if let Some((parts, grad)) = &back.start {
                assert_eq!(parts[1].to_bits(), (-0.0f64).to_bits());
                assert_eq!(grad[2].to_bits(), (-0.0f64).to_bits());
            }
        }
    }

    /// A stored start point must be finite, like the positions.
    #[test]
    fn a_non_finite_start_point_is_refused() {
        let expect = Expected {
            steps: 10,
            max_halvings: 4,
            species: 2,
            particles: Some(3),
            time_step: 0.01,
            kind: RunKind::Run,
        };
        let mut cp = sample_with(true, true);
        assert_eq!(cp.validate(&expect), Ok(()));
        cp.start.as_mut().unwrap().1[4] = f64::NAN;
        let e = Checkpoint::decode(&cp.encode())
            .unwrap()
            .validate(&expect)
            .unwrap_err();
        assert!(e.contains("not finite"), "{e}");
    }

    /// Species and particle counts near usize::MAX (checksum recomputed):
    /// refused, where the length sums wrapped and a slice panicked.
    #[test]
    fn forged_counts_do_not_wrap() {
        // 16 floats in the sample; 1 + species + 2 particles = 2^64 + 16.
        let i64_max = i64::MAX as usize;
        for (species, particles, dimension) in [
            (i64_max, (1 << 62) + 8, 2),
            (i64_max, 0, 3),
            (0, i64_max / 2, 3),
        ] {
            let mut cp = sample(true);
            cp.meta.species = species;
            cp.meta.particles = particles;
            cp.meta.dimension = dimension;
            assert!(Checkpoint::decode(&cp.encode()).is_err());
        }
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let bytes = sample(true).encode();
        for k in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[k] ^= 0x10;
            assert!(
                Checkpoint::decode(&b).is_err(),
                "flip at byte {k} went unnoticed"
            );
        }
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn read_falls_back_to_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut cp = sample(false);
        write(dir.path(), &mut cp).unwrap();
        cp.meta.step = 8;
        write(dir.path(), &mut cp).unwrap();
        let (_, newest) = read(dir.path()).unwrap().unwrap();
        assert_eq!(newest.meta.step, 8);
        // Damage the newest: the previous one (step 7) is used.
        std::fs::write(dir.path().join(CHECKPOINT), b"JKOCKPT1 garbage garbage").unwrap();
        let (path, older) = read(dir.path()).unwrap().unwrap();
        assert_eq!(older.meta.step, 7);
        assert!(path.ends_with(PREVIOUS));
        // Both damaged: a clear error, not a panic.
        std::fs::write(dir.path().join(PREVIOUS), b"nonsense").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no usable checkpoint"), "{e}");
    }

    /// A sample of `n` particles in 2D, with every array.
    fn sample_of(n: usize, step: u64) -> Checkpoint {
        let mut cp = sample_with(true, true);
        cp.meta.particles = n;
        cp.meta.step = step;
        let values = |seed: f64| {
            (0..2 * n)
                .map(|k| seed + k as f64 / 7.0)
                .collect::<Vec<_>>()
        };
        cp.positions = values(step as f64);
        cp.last_move.as_mut().unwrap().1 = values(-0.5);
        cp.start.as_mut().unwrap().1 = values(1e-3);
        cp
    }

    /// Writes `cp` as a team of `size` threads would (member 0 into `dir`,
    /// the others following it); every member's resulting parts list.
    fn write_as_team(size: usize, dir: &Path, cp: &Checkpoint) -> Vec<Result<Vec<Part>>> {
        crate::util::team::ThreadTeam::run(size, |member| {
            let _following = (member.rank() > 0).then(|| output::follow(dir));
            let mut mine = cp.clone();
            write_with(&*member, dir, &mut mine).map(|()| mine.meta.parts)
        })
    }

    /// Reads the checkpoint of `dir` as a team of `size` threads would
    /// (member 0 from `dir`, the others following it).
    fn read_as_team(size: usize, dir: &Path) -> Vec<Result<Option<(PathBuf, Checkpoint)>>> {
        crate::util::team::ThreadTeam::run(size, |member| {
            let _following = (member.rank() > 0).then(|| output::follow(dir));
            read_with(&*member, dir)
        })
    }

    fn part_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(PARTS_DIR))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Divided by 1-4 members, a checkpoint reads back whole, to the bit
    /// (the single file for one member, a manifest and parts for more), and
    /// every member agrees on the list of parts.
    #[test]
    fn a_divided_checkpoint_reads_back_whole() {
        for size in 1..=4 {
            let dir = tempfile::tempdir().unwrap();
            let cp = sample_of(11, 7);
            let lists: Vec<Vec<Part>> = write_as_team(size, dir.path(), &cp)
                .into_iter()
                .map(|r| r.unwrap())
                .collect();
            assert!(lists.iter().all(|l| *l == lists[0]), "members disagree");
            assert_eq!(lists[0].len(), if size == 1 { 0 } else { size });
            let (_, back) = read(dir.path()).unwrap().unwrap();
            let mut expected = cp.clone();
            expected.meta.parts = lists[0].clone();
            assert_eq!(back, expected, "{size} members");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back.positions), bits(&cp.positions));
            // Read back by teams of the same size (each member reads its
            // own part, the rest gathered) and of one more (every part read).
            for readers in [size, size + 1] {
                for (r, back) in read_as_team(readers, dir.path()).into_iter().enumerate() {
                    let (path, back) = back.unwrap().unwrap();
                    assert!(path.ends_with(CHECKPOINT));
                    assert_eq!(
                        back, expected,
                        "{size} writers, {readers} readers, member {r}"
                    );
                }
            }
            let manifest = std::fs::metadata(dir.path().join(CHECKPOINT))
                .unwrap()
                .len();
            if size > 1 {
                // The manifest holds no per-particle array.
                assert!(manifest < 2000, "a manifest of {manifest} bytes");
                assert_eq!(part_files(dir.path()).len(), size);
            } else {
                assert!(!dir.path().join(PARTS_DIR).exists());
            }
        }
    }

    /// Parts alternate between two slots, so that the previous checkpoint's
    /// parts survive the next one's: a damaged part of the newest makes the
    /// read fall back to the previous checkpoint, and a changed rank count
    /// leaves no stale part behind.
    #[test]
    fn divided_checkpoints_fall_back_and_leave_no_stale_part() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |size: usize, cp: &mut Checkpoint| {
            let lists = write_as_team(size, d, cp);
            cp.meta.parts = lists.into_iter().next().unwrap().unwrap();
        };
        let mut cp = sample_of(9, 1);
        write(3, &mut cp);
        assert_eq!(part_files(d), ["a-0.jko", "a-1.jko", "a-2.jko"]);
        let mut next = sample_of(9, 2);
        next.meta.parts = cp.meta.parts.clone();
        write(3, &mut next);
        assert_eq!(part_files(d).len(), 6, "{:?}", part_files(d));
        assert_eq!(read(d).unwrap().unwrap().1.meta.step, 2);
        // Damage the newest checkpoint's part 1: the previous one is read.
        let victim = d.join(PARTS_DIR).join("b-1.jko");
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&victim, bytes).unwrap();
        let (path, older) = read(d).unwrap().unwrap();
        assert!(path.ends_with(PREVIOUS));
        // Three readers (one part each, only member 1 sees the damage):
        // every member falls back to the previous checkpoint.
        for back in read_as_team(3, d) {
            let (path, back) = back.unwrap().unwrap();
            assert!(path.ends_with(PREVIOUS));
            assert_eq!(back, older);
        }
        assert_eq!(older, {
            let mut e = sample_of(9, 1);
            e.meta.parts = cp.meta.parts.clone();
            e
        });
        // Resumed from it on 2 members: slot b again, the damaged part is
        // overwritten, a-2 (the fallback's) stays while it is the previous.
        let mut third = sample_of(9, 3);
        third.meta.parts = older.meta.parts.clone();
        write(2, &mut third);
        assert_eq!(
            part_files(d),
            ["a-0.jko", "a-1.jko", "a-2.jko", "b-0.jko", "b-1.jko"]
        );
        let mut fourth = sample_of(9, 4);
        fourth.meta.parts = third.meta.parts.clone();
        write(2, &mut fourth);
        assert_eq!(part_files(d), ["a-0.jko", "a-1.jko", "b-0.jko", "b-1.jko"]);
        assert_eq!(read(d).unwrap().unwrap().1.meta.step, 4);
        // One process resumes from it; after two checkpoints no part is left.
        let mut fifth = sample_of(9, 5);
        fifth.meta.parts = fourth.meta.parts.clone();
        write(1, &mut fifth);
        assert_eq!(part_files(d), ["a-0.jko", "a-1.jko"]);
        write(1, &mut sample_of(9, 6));
        assert!(!d.join(PARTS_DIR).exists());
        assert_eq!(read(d).unwrap().unwrap().1, sample_of(9, 6));
    }

    /// A member that cannot write its part makes every member fail (none
    /// waits for a manifest that will not come), and the checkpoint before
    /// stays the current one.
    #[test]
    fn a_part_that_cannot_be_written_fails_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-folder");
        std::fs::write(&blocked, b"").unwrap();
        let cp = sample_of(5, 3);
        let results = crate::util::team::ThreadTeam::run(2, |member| {
            // Member 1 follows a "run directory" that is a file.
            let _following = (member.rank() > 0).then(|| output::follow(&blocked));
            write_with(&*member, dir.path(), &mut cp.clone())
        });
        let errors: Vec<String> = results
            .into_iter()
            .map(|r| r.unwrap_err().to_string())
            .collect();
        assert!(
            errors[0].contains("rank 1 could not write its part"),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains("not-a-folder"), "{}", errors[1]);
        assert!(!dir.path().join(CHECKPOINT).exists());
    }

    /// Members that do not share the run directory (each writes its part
    /// to a directory of its own node) are caught at the first checkpoint:
    /// member 0 does not find the others' parts and writes no manifest.
    #[test]
    fn parts_outside_the_shared_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, elsewhere) = (tmp.path().join("run"), tmp.path().join("node1-run"));
        std::fs::create_dir_all(&dir).unwrap();
        let cp = sample_of(6, 2);
        let results = crate::util::team::ThreadTeam::run(2, |member| {
            let home = if member.rank() == 0 { &dir } else { &elsewhere };
            let _following = (member.rank() > 0).then(|| output::follow(home));
            write_with(&*member, &dir, &mut cp.clone())
        });
        let e = results[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("rank 1 wrote its part") && e.contains("shares"),
            "{e}"
        );
        assert!(!dir.join(CHECKPOINT).exists());
    }

    /// A manifest naming a file outside its folder, or parts that do not
    /// cover the particles, is refused before any part is read.
    #[test]
    fn a_forged_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cp = sample_of(6, 2);
        let list = write_as_team(2, dir.path(), &cp).remove(0).unwrap();
        let manifest = |parts: Vec<Part>| {
            let mut m = cp.clone();
            m.meta.parts = parts;
            Checkpoint::decode_in(&m.encode(), Some(dir.path()))
        };
        assert!(manifest(list.clone()).is_ok());
        let mut outside = list.clone();
        outside[1].file = "../checkpoint.jko".into();
        let e = manifest(outside).unwrap_err();
        assert!(e.contains("not the name of a part"), "{e}");
        let mut short = list.clone();
        short[1].count -= 1;
        assert!(manifest(short).is_err());
        let mut swapped = list.clone();
        swapped.swap(0, 1);
        assert!(manifest(swapped).is_err());
        assert!(
            Checkpoint::decode(&{
                let mut m = cp.clone();
                m.meta.parts = list;
                m.encode()
            })
            .unwrap_err()
            .contains("without its parts")
        );
    }
}
