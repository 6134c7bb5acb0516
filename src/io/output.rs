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
//!
//! A thread that [`follow`]s writes nothing: an MPI rank other than 0 runs
//! the same driver on the same numbers as rank 0, which writes the run's
//! files (`distributed` module docs), so its streams only count bytes, its
//! frames are not formatted, and its atomic writes and checkpoints are
//! skipped, but for its own part of a divided checkpoint (written into the
//! writer's directory). Its reads (a resume's checkpoint) are not changed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::energy::EnergyParts;
use crate::error::{Error, Result};
use crate::util::fault;

/// File name of the particle frames (SPEC §5).
pub const PARTICLES: &str = "particles.csv";
/// File name of the energy log (SPEC §5).
pub const ENERGY: &str = "energy.csv";
/// File name of the event log.
pub const EVENTS: &str = "events.csv";
/// File name of the Eulerian cell densities.
pub const DENSITY: &str = "density.csv";
/// File name of the copy of the scenario in a run directory.
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

thread_local! {
    /// The directory of the run this thread follows, if it follows one.
    static FOLLOWING: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// This thread writes nothing until the guard is dropped (module docs),
/// except its part of a divided checkpoint, which goes to the run
/// directory `writer_dir` that another process writes
/// ([`crate::io::checkpoint`]).
pub fn follow(writer_dir: &Path) -> Following {
    FOLLOWING.set(Some(writer_dir.to_path_buf()));
    Following(std::marker::PhantomData)
}

/// Whether this thread only follows a run another process writes.
pub fn following() -> bool {
    FOLLOWING.with_borrow(Option::is_some)
}

/// The directory of the run this thread follows ([`follow`]).
pub fn writer_dir() -> Option<PathBuf> {
    FOLLOWING.with_borrow(Clone::clone)
}

/// While it lives, its thread writes no file ([`follow`]); not `Send`.
pub struct Following(std::marker::PhantomData<*const ()>);

impl Drop for Following {
    fn drop(&mut self) {
        FOLLOWING.set(None);
    }
}

/// The temporary name of `path` while it is written.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(PARTIAL_SUFFIX);
    PathBuf::from(tmp)
}

/// Length and CRC-32 of the bytes of an output file written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Bytes written.
    pub len: u64,
    /// CRC-32 of those bytes.
    pub crc: u32,
}

/// A file that counts and checksums every byte it passes to the disk
/// (without a file when [`following`]: it only counts).
struct Tracked {
    file: Option<File>,
    len: u64,
    crc: crc32fast::Hasher,
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.file {
            Some(f) => {
                fault::disk_budget(buf.len())?;
                f.write(buf)?
            }
            None => buf.len(),
        };
        self.len += n as u64;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
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
        let file = if following() {
            None
        } else {
            Some(File::create(&tmp).map_err(|e| Error::io(&tmp, e))?)
        };
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
        if following() {
            return Ok(CsvStream {
                path,
                tmp,
                writer: Some(csv_writer(Tracked {
                    file: None,
                    len: state.len,
                    crc: crc32fast::Hasher::new_with_initial_len(state.crc, state.len),
                })),
                fbuf: ryu::Buffer::new(),
                discard_on_drop: false,
            });
        }
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
                file: Some(file),
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
        if let Some(f) = &t.file {
            f.sync_data().map_err(|e| Error::io(&tmp, e))?;
        }
        Ok(FileState {
            len: t.len,
            crc: t.crc.clone().finalize(),
        })
    }

    /// Sync the file and move it to its final name.
    pub fn finish(mut self) -> Result<()> {
        self.sync()?;
        let on_disk = self
            .writer
            .take()
            .is_some_and(|w| w.get_ref().file.is_some());
        if !on_disk {
            return Ok(());
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }

    /// Append whole rows already formatted as this stream's CSV (each
    /// ending in `\n`, fields quoted where the csv writer would quote them):
    /// rows formatted elsewhere, in parallel, give the same bytes.
    pub fn rows(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.writer.take().expect("stream used after finish");
        let mut t = w
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        let written = t.write_all(bytes);
        self.writer = Some(csv_writer(t));
        written.map_err(|e| Error::io(&self.tmp, e))
    }

    /// Whether this stream writes a file (not when [`following`]).
    pub fn on_disk(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|w| w.get_ref().file.is_some())
    }
}

/// `v` as one CSV field, quoted if the csv writer would quote it.
pub fn csv_field(v: &str) -> Vec<u8> {
    // A record of one field, whose closing quote the record's end writes.
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record([v]).expect("writing to memory");
    let mut out = w.into_inner().expect("writing to memory");
    out.pop();
    out
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::io(path, std::io::Error::other(format!("{other:?}"))),
    }
}

/// Write `bytes` to `path` atomically (temporary file, sync, rename). The
/// temporary file is created afresh (a link left at its name is removed, not
/// followed), and a `path` that is not a regular file is refused, not replaced.
/// Nothing when [`following`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if following() {
        return Ok(());
    }
    refuse_non_regular(path)?;
    let tmp = partial_path(path);
    let result = (|| {
        fault::disk_budget(bytes.len()).map_err(|e| Error::io(&tmp, e))?;
        let mut f = create_fresh(&tmp)?;
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
    /// Start energy.csv in `dir` under its temporary name, header written.
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

    /// Sync the file and rename it to energy.csv.
    pub fn finish(self) -> Result<()> {
        self.0.finish()
    }
}

/// The output files of a particle run, in the order a checkpoint lists them.
pub const RUN_FILES: [&str; 3] = [PARTICLES, ENERGY, EVENTS];
// ---------------------------------------------------------------------------
// Single output files outside a run directory (`jko compare --out`)
// ---------------------------------------------------------------------------

/// Check that `path` may receive a new file written by [`replace_file`].
///
/// The only torn-free way to write a file is a temporary file renamed over
/// the target, which replaces the target's inode. So the rules are:
///
/// * a target that is not a regular file (a symbolic link, dangling or not, a
///   directory, a FIFO, a socket, a device) is refused: renaming over it
///   would replace a link or a device node by a file, and writing through it
///   would not be atomic;
/// * a target that is one of `inputs` is refused: by name (parent directory
///   resolved, so `dir/../dir/x` and links to the directory count) or, for an
///   existing file, by (device, inode), which catches hard links;
/// * an existing regular file is replaced only if `force`;
/// * the directory the file goes into must exist.
///
/// Refusals are [`Error::Io`] (exit status 4, "a file that cannot be
/// written"), naming `path` and what to do.
pub fn check_writable_target(path: &Path, inputs: &[PathBuf], force: bool) -> Result<()> {
    let refuse = |kind: std::io::ErrorKind, why: String| {
        Err(Error::io(path, std::io::Error::new(kind, why)))
    };
    let Some(name) = path.file_name() else {
        return refuse(
            std::io::ErrorKind::InvalidInput,
            "not a file name (the path ends in `..` or `/`)".into(),
        );
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(parent).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(
                e.kind(),
                format!("the directory {} is not usable: {e}", parent.display()),
            ),
        )
    })?;
    if !dir.is_dir() {
        return refuse(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", parent.display()),
        );
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(path, e)),
    };
    if let Some(what) = meta.as_ref().and_then(|m| not_regular(m, path)) {
        return refuse(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{what}; jko writes its output only as a new regular file or over one (temporary file and rename), never into or over anything else: give another path"
            ),
        );
    }
    let resolved = dir.join(name);
    for input in inputs {
        if same_name(&resolved, input) || meta.as_ref().is_some_and(|m| same_inode(m, input)) {
            return refuse(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "is an input of this command ({}): it would be overwritten; give another path",
                    input.display()
                ),
            );
        }
    }
    if meta.is_some() && !force {
        return refuse(
            std::io::ErrorKind::AlreadyExists,
            "already exists: give another path, or pass --force to replace it".into(),
        );
    }
    Ok(())
}

/// What `m` (the metadata of `path`, links not followed) is, if it is not a regular file.
fn not_regular(m: &std::fs::Metadata, path: &Path) -> Option<String> {
    let t = m.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_symlink() {
        return Some(match std::fs::read_link(path) {
            Ok(to) if path.exists() => format!("is a symbolic link (to {})", to.display()),
            Ok(to) => format!("is a dangling symbolic link (to {})", to.display()),
            Err(_) => "is a symbolic link".into(),
        });
    }
    if t.is_dir() {
        return Some("is a directory (give a file name inside it)".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("is a FIFO (named pipe)".into());
        }
        if t.is_socket() {
            return Some("is a socket".into());
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("is a device".into());
        }
    }
    Some("is not a regular file".into())
}

/// `resolved` (canonical directory + name) names the same entry as `input`.
fn same_name(resolved: &Path, input: &Path) -> bool {
    let (Some(name), Some(parent)) = (input.file_name(), input.parent()) else {
        return false;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    std::fs::canonicalize(parent).is_ok_and(|d| d.join(name) == resolved)
}

/// `m` is the metadata of the same file as `input` (hard links included).
#[cfg(unix)]
fn same_inode(m: &std::fs::Metadata, input: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(input).is_ok_and(|i| i.dev() == m.dev() && i.ino() == m.ino())
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &Path) -> bool {
    false
}

/// Write `bytes` to `path` as a new file, or over an existing regular file if
/// `force`, after [`check_writable_target`]: the bytes go to a temporary file
/// created (`create_new`) beside `path` under a name unique to this process,
/// are synced, and the file is moved to `path`; on any failure the temporary
/// file is removed. Without `force` the move is a hard link, which fails if
/// anything appeared at `path` meanwhile (no race can make it overwrite);
/// with `force` the target is checked again just before the rename.
pub fn replace_file(path: &Path, bytes: &[u8], inputs: &[PathBuf], force: bool) -> Result<()> {
    check_writable_target(path, inputs, force)?;
    let (tmp, mut file) = create_unique_temp(path)?;
    let result = (|| {
        fault::disk_budget(bytes.len()).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        move_into_place(&tmp, path, inputs, force)
    })();
    // After a hard link the temporary name is still there; after a failure too.
    let _ = std::fs::remove_file(&tmp);
    result?;
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// A new temporary file beside `path`: `NAME.PID.N.partial`, the first N free.
fn create_unique_temp(path: &Path) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    for n in 0u32.. {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{pid}.{n}{PARTIAL_SUFFIX}"));
        let tmp = PathBuf::from(name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(Error::io(&tmp, e)),
        }
    }
    unreachable!("the loop returns")
}

/// Give the synced temporary file `tmp` the name `path`.
fn move_into_place(tmp: &Path, path: &Path, inputs: &[PathBuf], force: bool) -> Result<()> {
    if !force {
        match std::fs::hard_link(tmp, path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        e.kind(),
                        "appeared while the output was computed: give another path, or pass --force to replace it",
                    ),
                ));
            }
            // A file system without hard links: check again and rename.
            Err(_) => {}
        }
    }
    check_writable_target(path, inputs, force)?;
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}

/// Refuse `path` if it exists and is not a regular file (see [`check_writable_target`]).
fn refuse_non_regular(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => match not_regular(&m, path) {
            None => Ok(()),
            Some(what) => Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{what}; jko replaces only regular files: remove it or choose another place"
                    ),
                ),
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A new empty file at `tmp`; whatever was left there (a stale temporary
/// file, a link) is removed first, never written through.
fn create_fresh(tmp: &Path) -> Result<File> {
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(tmp, e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| Error::io(tmp, e))
}

#[cfg(all(test, unix))]
mod safe_file_tests {
    use super::*;

    /// A link at the temporary name is not followed; a link at the final
    /// name is not replaced.
    #[test]
    fn write_atomic_neither_follows_nor_replaces_links() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let path = tmp.path().join("scenario.toml");
        std::os::unix::fs::symlink(&victim, partial_path(&path)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");

        let link = tmp.path().join("link.toml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, b"new").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    /// replace_file: new file without force, existing one only with force,
    /// no temporary file left either way.
    #[test]
    fn replace_file_needs_force_for_an_existing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.csv");
        replace_file(&path, b"one", &[], false).unwrap();
        let e = replace_file(&path, b"two", &[], false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(e.exit_code(), 4);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        replace_file(&path, b"two", &[], true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.csv")]);
    }
}
