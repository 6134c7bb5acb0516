//! Divided checkpoints: under MPI with P > 1 ranks each rank writes its own
//! part of the arrays, and rank 0 a small manifest.
//!
//! The particles are split into P ranges of ids of equal size
//! (`util::team::split_even`); rank r writes the positions, the previous
//! displacement and dE/dX of its range (those the checkpoint has) to
//! `DIR/checkpoint.parts/{slot}-{r}.jko`, synced and renamed from a
//! `.partial` name. An `all_gather` of (written, length, CRC-32) then gives
//! every rank the list of parts, and rank 0 writes `checkpoint.jko` as the
//! **manifest**: the metadata with that list ([`super::Meta::parts`]) and
//! the few numbers that are not per particle (initial energy, bandwidths,
//! h of the last move, E's three parts), with the usual temporary file,
//! sync and two renames. Reading a manifest reads the parts named in it
//! and checks each one's length, both CRCs and its id range; the state is
//! whole again (it is replicated on every rank), so a divided checkpoint
//! resumes on any number of ranks, one included. On the rank count that
//! wrote it, each rank reads only its own part and receives the others'
//! (`assemble`).
//!
//! Part file format (little-endian):
//!
//! ```text
//! magic "JKOPART1" | u64 first id | u64 particle count | u64 m | m f64 | u32 CRC-32 of everything before it
//! ```
//!
//! with the m numbers the part's positions, then its displacement (if the
//! checkpoint has one), then its dE/dX (likewise), each `count * d` numbers.
//!
//! **Slots.** Parts alternate between two slots, `a` and `b`: a checkpoint
//! writes the slot its predecessor did not use, so the parts of the current
//! manifest stay untouched until the next manifest has replaced it. Killed
//! while the parts are written, the run keeps its current checkpoint; killed
//! between the manifest's two renames, it falls back to the previous one,
//! whose parts are the other slot's. After the manifest is in place, rank 0
//! deletes every file of the folder that neither the new manifest nor the
//! one it replaced names (the parts of an earlier run with more ranks).
//!
//! The folder is written by every rank: it must be on a file system the
//! ranks share, as `--resume` under MPI already requires.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Checkpoint;
use crate::error::{Error, Result};
use crate::io::output;
use crate::util::fault;
use crate::util::team::{Team, split_even};

/// The folder of a run directory that holds the parts of divided checkpoints.
pub const PARTS_DIR: &str = "checkpoint.parts";
const MAGIC: &[u8; 8] = b"JKOPART1";
const SLOTS: [char; 2] = ['a', 'b'];

/// One rank's part of a divided checkpoint, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// File name inside [`PARTS_DIR`]: `{slot}-{rank}.jko`.
    pub file: String,
    /// The first particle id of the part.
    pub first: usize,
    /// Its number of particles.
    pub count: usize,
    /// Length of the file in bytes.
    pub len: u64,
    /// CRC-32 of the file's bytes.
    pub crc: u32,
}

/// The file name of member `rank`'s part in `slot`.
fn part_name(slot: char, rank: usize) -> String {
    format!("{slot}-{rank}.jko")
}

/// The slot and rank of a part's file name; `None` if it is not one.
fn parse_name(name: &str) -> Option<(char, usize)> {
    let stem = name.strip_suffix(".jko")?;
    let (slot, rank) = stem.split_once('-')?;
    let slot = slot.parse::<char>().ok().filter(|s| SLOTS.contains(s))?;
    let digits_only = !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit());
    digits_only
        .then(|| rank.parse().ok())
        .flatten()
        .map(|r| (slot, r))
}

/// The slot the next checkpoint writes: the one `earlier` (the parts of the
/// checkpoint it replaces) does not use.
fn next_slot(earlier: &[Part]) -> char {
    match earlier.first().and_then(|p| parse_name(&p.file)) {
        Some(('a', _)) => 'b',
        _ => 'a',
    }
}

/// The per-particle arrays of `cp`, in the order a part stores them.
fn arrays(cp: &Checkpoint) -> Vec<&[f64]> {
    let mut out: Vec<&[f64]> = vec![&cp.positions];
    if let Some((_, m)) = &cp.last_move {
        out.push(m);
    }
    if let Some((_, g)) = &cp.start {
        out.push(g);
    }
    out
}

fn encode_part(first: usize, count: usize, blocks: &[&[f64]]) -> Vec<u8> {
    let m: usize = blocks.iter().map(|b| b.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 28 + 8 * m);
    out.extend_from_slice(MAGIC);
    for v in [first, count, m] {
        out.extend_from_slice(&(v as u64).to_le_bytes());
    }
    for v in blocks.iter().copied().flatten() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Collective over `team`: writes this member's part of `cp` into
/// `home/`[`PARTS_DIR`] in the slot `earlier` does not use, and sets
/// `cp.meta.parts` to the list of all members' parts. Every member returns
/// an error if any member's part could not be written.
pub(super) fn write(
    team: &dyn Team,
    home: &Path,
    earlier: &[Part],
    cp: &mut Checkpoint,
) -> Result<()> {
    let (rank, size) = (team.rank(), team.size());
    // Rank 0 prepares the run directory (moving a replaced run aside)
    // before its first checkpoint: no part is written before it is done.
    let mut nothing = vec![0.0; size];
    team.all_gather(&[0.0], &vec![1; size], &mut nothing);
    let slot = next_slot(earlier);
    let d = cp.meta.dimension;
    let ranges = split_even(cp.meta.particles, size);
    let mine = &ranges[rank];
    let blocks: Vec<&[f64]> = arrays(cp)
        .into_iter()
        .map(|a| &a[mine.start * d..mine.end * d])
        .collect();
    let bytes = encode_part(mine.start, mine.len(), &blocks);
    let folder = home.join(PARTS_DIR);
    let path = folder.join(part_name(slot, rank));
    let written = write_synced(&folder, &path, &bytes);
    let ok = if written.is_ok() { 1.0 } else { 0.0 };
    // Lengths and CRCs are below 2^53: exact as f64.
    let mut all = vec![0.0; 3 * size];
    let mine_entry = [ok, bytes.len() as f64, f64::from(crc32fast::hash(&bytes))];
    team.all_gather(&mine_entry, &vec![3; size], &mut all);
    written?;
    if let Some(k) = (0..size).find(|&k| all[3 * k] != 1.0) {
        return Err(Error::io(
            &folder.join(part_name(slot, k)),
            std::io::Error::other(format!(
                "rank {k} could not write its part of the checkpoint (its own message says why)"
            )),
        ));
    }
    cp.meta.parts = ranges
        .iter()
        .enumerate()
        .map(|(k, r)| Part {
            file: part_name(slot, k),
            first: r.start,
            count: r.len(),
            len: all[3 * k + 1] as u64,
            crc: all[3 * k + 2] as u32,
        })
        .collect();
    Ok(())
}

/// Checks that every part of `parts` is in `home/`[`PARTS_DIR`] with its
/// length, as this process sees the folder: ranks that write their parts to
/// directories of their own nodes (DIR not on a shared file system) would
/// leave a manifest no resume can read.
pub(super) fn check_present(home: &Path, parts: &[Part]) -> Result<()> {
    let folder = home.join(PARTS_DIR);
    for (rank, p) in parts.iter().enumerate() {
        let path = folder.join(&p.file);
        let len = std::fs::metadata(&path).map(|m| m.len());
        if len.as_ref().ok() != Some(&p.len) {
            let seen = match len {
                Ok(n) => format!("{n} bytes"),
                Err(e) => e.to_string(),
            };
            return Err(Error::io(
                &path,
                std::io::Error::other(format!(
                    "rank {rank} wrote its part of the checkpoint ({} bytes), but rank 0 finds {seen}: the --out directory must be on a file system every rank shares",
                    p.len
                )),
            ));
        }
    }
    Ok(())
}

/// `bytes` to `path` in `folder` (created if needed): temporary file, sync,
/// rename, sync of the folder.
fn write_synced(folder: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let tmp = output::partial_path(path);
    let written = (|| {
        fault::disk_budget(bytes.len())?;
        std::fs::write(&tmp, bytes)?;
        std::fs::File::open(&tmp)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    output::sync_dir(folder)
}

/// After a checkpoint naming `current` replaced one naming `earlier`: every
/// other file of `dir/`[`PARTS_DIR`] goes, and the folder too once empty.
pub(super) fn clean(dir: &Path, earlier: &[Part], current: &[Part]) -> Result<()> {
    let folder = dir.join(PARTS_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.map_err(|e| Error::io(&folder, e))?,
    };
    let keep = |name: &str| earlier.iter().chain(current).any(|p| p.file == name);
    let mut left = 0;
    for e in entries {
        let e = e.map_err(|e| Error::io(&folder, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            left += 1;
            continue;
        }
        let path = e.path();
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    }
    if left == 0 {
        std::fs::remove_dir(&folder).map_err(|e| Error::io(&folder, e))?;
    }
    output::sync_dir(dir)
}

/// Fills `cp`'s per-particle arrays from the parts its manifest names, read
/// from `home/`[`PARTS_DIR`]; `has_move` and `has_start` say which arrays
/// the checkpoint has. `Err` says what is wrong (a missing, damaged or
/// foreign part).
///
/// Collective over `team` when the manifest has one part per member (a
/// resume on the rank count that wrote it): each member reads only its own
/// part and an `all_gather` brings it the others', so the file system
/// serves the state once, not once per rank. Every member then returns the
/// same outcome (a part one member finds damaged fails the manifest on
/// all). Otherwise every member reads every part.
pub(super) fn assemble(
    team: &dyn Team,
    home: &Path,
    cp: &mut Checkpoint,
    has_move: bool,
    has_start: bool,
) -> std::result::Result<(), String> {
    let meta = &cp.meta;
    // The list must cover 0..particles in order, in one slot, with plain
    // names: a forged manifest names no file outside the folder.
    let mut next = 0usize;
    let mut slot = None;
    for p in &meta.parts {
        let Some((s, _)) = parse_name(&p.file) else {
            return Err(format!("{:?} is not the name of a part", p.file));
        };
        if *slot.get_or_insert(s) != s || p.first != next {
            return Err("its parts do not cover the particles in order, in one slot".into());
        }
        next = next.checked_add(p.count).ok_or("part sizes out of range")?;
    }
    if next != meta.particles {
        return Err(format!(
            "its parts hold {next} particles, the metadata says {}",
            meta.particles
        ));
    }
    let kinds = 1 + usize::from(has_move) + usize::from(has_start);
    let arrays = if team.size() > 1 && meta.parts.len() == team.size() {
        gather_parts(team, home, meta, kinds)?
    } else {
        let mut arrays = vec![Vec::new(); kinds];
        for p in &meta.parts {
            let floats = read_part(home, p, meta.dimension, kinds)?;
            for (a, block) in arrays.iter_mut().zip(blocks(&floats, kinds)) {
                a.extend_from_slice(block);
            }
        }
        arrays
    };
    let mut arrays = arrays.into_iter();
    cp.positions = arrays.next().unwrap_or_default();
    if let Some((_, m)) = &mut cp.last_move {
        *m = arrays.next().unwrap_or_default();
    }
    if let Some((_, g)) = &mut cp.start {
        *g = arrays.next().unwrap_or_default();
    }
    Ok(())
}

/// The `kinds` arrays of a part's numbers (each a third, half or all).
fn blocks(floats: &[f64], kinds: usize) -> impl Iterator<Item = &[f64]> {
    let width = floats.len() / kinds;
    (0..kinds).map(move |k| &floats[k * width..(k + 1) * width])
}

/// Collective: this member reads its own part, then every array is
/// gathered from all members' parts, in id order ([`assemble`]).
fn gather_parts(
    team: &dyn Team,
    home: &Path,
    meta: &super::Meta,
    kinds: usize,
) -> std::result::Result<Vec<Vec<f64>>, String> {
    let (rank, size) = (team.rank(), team.size());
    let mine = read_part(home, &meta.parts[rank], meta.dimension, kinds);
    let mut ok = vec![0.0; size];
    team.all_gather(
        &[f64::from(u8::from(mine.is_ok()))],
        &vec![1; size],
        &mut ok,
    );
    let floats = mine?;
    if let Some(k) = ok.iter().position(|&v| v != 1.0) {
        return Err(format!(
            "the part of rank {k} is missing or damaged (rank {k}'s message says which)"
        ));
    }
    let counts: Vec<usize> = meta
        .parts
        .iter()
        .map(|p| p.count * meta.dimension)
        .collect();
    let n: usize = counts.iter().sum();
    Ok(blocks(&floats, kinds)
        .map(|block| {
            let mut all = vec![0.0; n];
            team.all_gather(block, &counts, &mut all);
            all
        })
        .collect())
}

/// The numbers of part `p`, read from `home/`[`PARTS_DIR`] and checked
/// against the manifest's length and CRC and the part's own.
fn read_part(
    home: &Path,
    p: &Part,
    d: usize,
    kinds: usize,
) -> std::result::Result<Vec<f64>, String> {
    let path = home.join(PARTS_DIR).join(&p.file);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 != p.len || crc32fast::hash(&bytes) != p.crc {
        return Err(format!(
            "{}: not the part the manifest names (length or checksum differs)",
            path.display()
        ));
    }
    decode_part(&bytes, p, d, kinds).map_err(|e| format!("{}: {e}", path.display()))
}

/// The numbers of a part's file, checked against its manifest entry `p`.
fn decode_part(
    bytes: &[u8],
    p: &Part,
    d: usize,
    kinds: usize,
) -> std::result::Result<Vec<f64>, String> {
    if bytes.len() < MAGIC.len() + 28 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a part of a jko checkpoint (bad magic or too short)".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(tail.try_into().unwrap()) {
        return Err("checksum mismatch (the file is damaged or truncated)".into());
    }
    let word = |k: usize| {
        let at = MAGIC.len() + 8 * k;
        u64::from_le_bytes(body[at..at + 8].try_into().unwrap())
    };
    let (first, count, m) = (word(0), word(1), word(2));
    let expected = p.count.checked_mul(d).and_then(|v| v.checked_mul(kinds));
    if first != p.first as u64 || count != p.count as u64 || Some(m as usize) != expected {
        return Err("its ids or length differ from the manifest's".into());
    }
    let raw = &body[MAGIC.len() + 24..];
    if raw.len() as u64 != m.saturating_mul(8) {
        return Err("array length does not match its header".into());
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        assert_eq!(parse_name(&part_name('b', 12)), Some(('b', 12)));
        for bad in [
            "c-1.jko",
            "a-.jko",
            "a-1",
            "../a-1.jko",
            "a-+1.jko",
            "a-1.jko.partial",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
        assert_eq!(next_slot(&[]), 'a');
    }
}
