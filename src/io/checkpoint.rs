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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::output::{self, FileState};
use crate::util::fault;

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
    /// The checkpoint's bytes: magic, metadata as TOML, then the floats.
    pub fn encode(&self) -> Vec<u8> {
        let meta = toml::to_string(&self.meta).expect("checkpoint metadata serializes");
        // The floats go straight into the bytes, in this order, without a
        // flattened copy (at 1e6 particles that copy is tens of MB).
        let mut blocks: Vec<&[f64]> = vec![
            std::slice::from_ref(&self.initial_energy),
            &self.bandwidths,
            &self.positions,
        ];
        if let Some((h, m)) = &self.last_move {
            blocks.push(std::slice::from_ref(h));
            blocks.push(m);
        }
        if let Some((parts, grad)) = &self.start {
            blocks.push(parts);
            blocks.push(grad);
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

    /// Parse and check a checkpoint; `Err` carries what is wrong.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
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
        // numbers, so the length says which (n >= 1).
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
        Ok(Checkpoint {
            meta,
            initial_energy: floats[0],
            bandwidths,
            positions,
            last_move,
            start,
        })
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

/// Write `cp` into `dir`: temporary file, sync, keep the current checkpoint
/// as the previous one, rename, sync the directory (nothing when
/// [`output::following`]).
pub fn write(dir: &Path, cp: &Checkpoint) -> Result<()> {
    // A follower's checkpoint would be rank 0's bytes (`output::follow`).
    if output::following() {
        return Ok(());
    }
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
/// `None` if there is none at all.
pub fn read(dir: &Path) -> Result<Option<(PathBuf, Checkpoint)>> {
    let mut problems = Vec::new();
    for name in [CHECKPOINT, PREVIOUS] {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => match Checkpoint::decode(&bytes) {
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
        write(dir.path(), &cp).unwrap();
        cp.meta.step = 8;
        write(dir.path(), &cp).unwrap();
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
}
