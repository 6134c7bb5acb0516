//! Run output (SPEC §5): particles.csv, energy.csv, events.csv and a copy of
//! the scenario.
//!
//! A file is written under a temporary name (`NAME.partial`) and renamed to
//! its final name only when the run has finished and the data are synced, so
//! a crash or a full disk never leaves a torn file under a final name.
//! While a run goes on, its files are streamed: every byte that reaches the
//! disk is counted and folded into a CRC-32, so a checkpoint can record the
//! exact length and checksum of each file, and a resumed run cuts the files
//! back to those lengths (after checking the checksums) and appends.
//! Numbers are written in shortest round-trip form (ryu): they read back exactly.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::energy::EnergyParts;
use crate::error::{Error, Result};
use crate::util::fault;

pub const PARTICLES: &str = "particles.csv";
pub const ENERGY: &str = "energy.csv";
pub const EVENTS: &str = "events.csv";
pub const DENSITY: &str = "density.csv";
pub const SCENARIO_COPY: &str = "scenario.toml";

/// Suffix of a file still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

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

/// Header of events.csv (README, "Events"): one row per event; `species` is
/// empty for events of the whole run, `value` a number whose meaning depends
/// on the event (stated in the message).
pub const EVENTS_HEADER: [&str; 6] = ["step", "time", "event", "species", "value", "message"];

/// The temporary name of `path` while it is written.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(PARTIAL_SUFFIX);
    PathBuf::from(tmp)
}

/// Length and CRC-32 of the bytes of an output file written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub len: u64,
    pub crc: u32,
}

/// A file that counts and checksums every byte it passes to the disk.
struct Tracked {
    file: File,
    len: u64,
    crc: crc32fast::Hasher,
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        fault::disk_budget(buf.len())?;
        let n = self.file.write(buf)?;
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A CSV file being written under its temporary name.
pub struct CsvStream {
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished.
    writer: Option<csv::Writer<Tracked>>,
    fbuf: ryu::Buffer,
    /// Remove the temporary file if dropped unfinished (runs that cannot be
    /// resumed); resumable runs keep it for `--resume`.
    discard_on_drop: bool,
}

impl Drop for CsvStream {
    fn drop(&mut self) {
        if self.discard_on_drop && self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn csv_writer(t: Tracked) -> csv::Writer<Tracked> {
    csv::WriterBuilder::new()
        .buffer_capacity(1 << 20)
        .from_writer(t)
}

impl CsvStream {
    /// A new file (truncating any earlier temporary file) with its header row.
    pub fn create(path: PathBuf, header: &[&str]) -> Result<Self> {
        let tmp = partial_path(&path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut writer = csv_writer(Tracked {
            file,
            len: 0,
            crc: crc32fast::Hasher::new(),
        });
        writer.write_record(header).map_err(|e| csv_err(&tmp, e))?;
        Ok(CsvStream {
            path,
            tmp,
            writer: Some(writer),
            fbuf: ryu::Buffer::new(),
            discard_on_drop: false,
        })
    }

    /// Reopen the temporary file of an interrupted run: check that its first
    /// `state.len` bytes have checksum `state.crc`, cut it there and append.
    pub fn resume(path: PathBuf, state: FileState) -> Result<Self> {
        let tmp = partial_path(&path);
        let refuse = |why: String| {
            Error::io(
                &tmp,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{why}; the run cannot be resumed (start again with --force)"),
                ),
            )
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        let actual = file.metadata().map_err(|e| Error::io(&tmp, e))?.len();
        if actual < state.len {
            return Err(refuse(format!(
                "holds {actual} bytes, fewer than the {} recorded in the checkpoint",
                state.len
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = state.len;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            file.read_exact(&mut buf[..n])
                .map_err(|e| Error::io(&tmp, e))?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        let found = crc.finalize();
        if found != state.crc {
            return Err(refuse(format!(
                "its first {} bytes have CRC-32 {found:08x}, the checkpoint recorded {:08x} (the file was changed)",
                state.len, state.crc
            )));
        }
        file.set_len(state.len).map_err(|e| Error::io(&tmp, e))?;
        file.seek(SeekFrom::Start(state.len))
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(CsvStream {
            path,
            tmp,
            writer: Some(csv_writer(Tracked {
                file,
                len: state.len,
                crc: crc32fast::Hasher::new_with_initial_len(state.crc, state.len),
            })),
            fbuf: ryu::Buffer::new(),
            discard_on_drop: false,
        })
    }

    /// Remove the temporary file if this stream is dropped unfinished.
    pub fn discard_on_drop(mut self) -> Self {
        self.discard_on_drop = true;
        self
    }

    fn writer(&mut self) -> &mut csv::Writer<Tracked> {
        self.writer.as_mut().expect("stream used after finish")
    }

    /// Append one field: a float in shortest round-trip form.
    pub fn float(&mut self, v: f64) -> Result<()> {
        let s = self.fbuf.format(v);
        let w = self.writer.as_mut().expect("stream used after finish");
        w.write_field(s).map_err(|e| csv_err(&self.tmp, e))
    }

    /// Append one field: an integer.
    pub fn int(&mut self, v: u64) -> Result<()> {
        self.text(itoa::Buffer::new().format(v))
    }

    /// Append one field: text.
    pub fn text(&mut self, v: &str) -> Result<()> {
        let tmp = self.tmp.clone();
        self.writer().write_field(v).map_err(|e| csv_err(&tmp, e))
    }

    /// End the current row.
    pub fn end_row(&mut self) -> Result<()> {
        let tmp = self.tmp.clone();
        self.writer()
            .write_record(None::<&[u8]>)
            .map_err(|e| csv_err(&tmp, e))
    }

    /// Push everything written so far to the disk and return the file's
    /// length and checksum (what a checkpoint records).
    pub fn sync(&mut self) -> Result<FileState> {
        let tmp = self.tmp.clone();
        let w = self.writer();
        w.flush().map_err(|e| Error::io(&tmp, e))?;
        let t = w.get_ref();
        t.file.sync_data().map_err(|e| Error::io(&tmp, e))?;
        Ok(FileState {
            len: t.len,
            crc: t.crc.clone().finalize(),
        })
    }

    /// Sync the file and move it to its final name.
    pub fn finish(mut self) -> Result<()> {
        self.sync()?;
        self.writer = None;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
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
    let tmp = partial_path(path);
    let result = (|| {
        fault::disk_budget(bytes.len()).map_err(|e| Error::io(&tmp, e))?;
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Make the renames inside `dir` durable (a rename is a change of the
/// directory, synced separately from the file).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// energy.csv of any run (SPEC §5).
pub struct EnergyLog(pub CsvStream);

impl EnergyLog {
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(EnergyLog(CsvStream::create(
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

/// The output files of a particle run, in the order a checkpoint lists them.
pub const RUN_FILES: [&str; 3] = [PARTICLES, ENERGY, EVENTS];
