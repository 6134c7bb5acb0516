//! Output directories: the rules that keep a user's runs safe.
//!
//! Every command that writes a run (`jko run`, `jko eulerian`) goes through
//! an [`OutputDir`], which enforces:
//!
//! - **One process per directory.** The run takes an exclusive advisory lock
//!   (`flock`, through [`std::fs::File::try_lock`]) on `DIR/.jko.lock` before
//!   it looks at the directory, and holds it until it exits, `--resume` and
//!   `--force` included. A second process is refused with a message naming
//!   the holder (its pid, host, command line and age, which the holder writes
//!   into the lock file). The lock file is never deleted while a run may
//!   hold it: deleting a lock file lets two processes lock two different
//!   files. (A directory that a refused run made is removed with it, lock
//!   file included; a process that locked the unlinked file notices, because
//!   the path no longer names the file it locked, and starts over.)
//! - **`--out` is a directory, or nothing yet.** A regular file, or a
//!   symbolic link to nothing, is refused with a message saying so.
//! - **Nothing under a run file's name but regular files.** A symbolic link,
//!   FIFO, device or directory named like a file the run writes (or its
//!   `.partial`) is refused: writing through it would replace or block on
//!   something that is not the run's.
//! - **Replacing a run (`--force`) loses nothing.** The caller reads every
//!   input and passes every check before it calls [`OutputDir::replace`].
//!   That moves the old run's files into `DIR/.jko-replaced/` (a rename in
//!   the same directory: no copy, no window where they are gone). Once the
//!   new run is established (its step-0 checkpoint is on disk, or for a grid
//!   run its complete output), [`OutputDir::establish`] deletes them. If the
//!   new run fails or panics before that, they are moved back; if it is
//!   killed, the next process to lock the directory moves them back. Inputs
//!   of the new run that live in DIR (re-running `DIR/scenario.toml`,
//!   starting from `DIR/particles.csv`) are never moved: the new run reads
//!   them again on `--resume`, and its final files replace them only when it
//!   completes.
//! - **A refused run leaves no directory behind.** A directory the run
//!   created is removed again if nothing but the lock file was written in it,
//!   also when the run ends by a panic (the removal is in `Drop`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, clip};
use crate::io::checkpoint::PARTS_DIR;
use crate::io::vtk::VTK_DIR;

/// The lock file of an output directory.
pub const LOCK: &str = ".jko.lock";
/// Where a replaced run's files wait until the new run is established.
pub const REPLACED: &str = ".jko-replaced";
/// The list, inside [`REPLACED`], of the names kept in place (the new run's inputs).
const KEPT: &str = "KEPT";

/// Names in an output directory that belong to jko but to no run's data.
pub fn is_bookkeeping(name: &str) -> bool {
    name == LOCK || name == REPLACED
}

/// What an output directory holds, sorted by name.
#[derive(Debug, Default)]
pub struct Contents {
    /// Names of run files present (final or `.partial`).
    pub present: Vec<String>,
    /// Every other name, bookkeeping excepted.
    pub foreign: Vec<String>,
}

/// An output directory held, locked, for one run.
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    lock: Option<File>,
    /// This process created the directory.
    made: bool,
    /// Names moved into [`REPLACED`] and not yet deleted or moved back.
    replaced: Vec<String>,
    /// Names of run files that are inputs of this run and stay in place.
    kept: Vec<String>,
    /// Every name this run may write (to clean up if it fails before it is established).
    run_names: Vec<String>,
    established: bool,
}

fn refused(dir: &Path, kind: std::io::ErrorKind, why: String) -> Error {
    Error::io(dir, std::io::Error::new(kind, why))
}

/// `--out` must be a directory or not exist yet.
fn check_out_path(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(dir) {
            Ok(t) if t.is_dir() => Ok(()),
            Ok(_) => Err(refused(
                dir,
                std::io::ErrorKind::NotADirectory,
                "--out is a symbolic link to something that is not a directory: choose a directory"
                    .into(),
            )),
            Err(_) => {
                let target = std::fs::read_link(dir)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                Err(refused(
                    dir,
                    std::io::ErrorKind::NotFound,
                    format!(
                        "--out is a symbolic link to {}, which does not exist: create that directory, or choose another --out",
                        clip(&target, 200)
                    ),
                ))
            }
        },
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(refused(
            dir,
            std::io::ErrorKind::NotADirectory,
            "--out is an existing file, not a directory: choose a directory (new or empty)".into(),
        )),
    }
}

/// What the holder of a lock writes into the lock file.
fn holder_note() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let command: Vec<String> = std::env::args().collect();
    format!(
        "pid = {}\nhost = {host}\nstarted = {now}\ncommand = {}\n",
        std::process::id(),
        clip(&command.join(" "), 300)
    )
}

/// "pid 123 on host, `jko run ...`, started 5 s ago" from a lock file's text.
fn describe_holder(text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let Some(pid) = field("pid") else {
        return "another jko process (it has not yet written its pid)".into();
    };
    let mut s = format!("another jko process, pid {pid}");
    if let Some(h) = field("host") {
        s += &format!(" on {h}");
    }
    if let Some(c) = field("command") {
        s += &format!(" (`{}`)", clip(&c, 200));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(t) = field("started").and_then(|t| t.parse::<u64>().ok()) {
        s += &format!(", started {} s ago", now.saturating_sub(t));
    }
    s
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

impl OutputDir {
    /// Check `--out`, create the directory if needed and lock it; then move
    /// back the files of a replaced run that an earlier process left aside
    /// when it was killed. `run_names` are every name this run may write.
    pub fn open(dir: &Path, run_names: &[String]) -> Result<OutputDir> {
        check_out_path(dir)?;
        // A lock on a lock file whose directory a refused run removed meanwhile
        // is no lock: start over (a few times; then it is not a race).
        for _ in 0..8 {
            let made = !dir.exists();
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let path = dir.join(LOCK);
            if let Ok(m) = std::fs::symlink_metadata(&path)
                && !m.is_file()
            {
                return Err(refused(
                    &path,
                    std::io::ErrorKind::InvalidInput,
                    "is not a regular file (jko's lock file): remove it".into(),
                ));
            }
            let mut file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.take(4096).read_to_string(&mut text);
                    return Err(refused(
                        dir,
                        std::io::ErrorKind::ResourceBusy,
                        format!(
                            "in use by {}: wait for it to end, or choose another --out",
                            describe_holder(&text)
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            let still_ours = match (file.metadata(), std::fs::symlink_metadata(&path)) {
                (Ok(a), Ok(b)) => same_file(&a, &b),
                _ => false,
            };
            if !still_ours {
                continue;
            }
            let note = holder_note();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(note.as_bytes()))
                .map_err(|e| Error::io(&path, e))?;
            let mut out = OutputDir {
                dir: dir.to_path_buf(),
                lock: Some(file),
                made,
                replaced: Vec::new(),
                kept: Vec::new(),
                run_names: run_names.to_vec(),
                established: false,
            };
            out.recover()?;
            return Ok(out);
        }
        Err(refused(
            dir,
            std::io::ErrorKind::ResourceBusy,
            "its lock file keeps disappearing (another process is removing the directory): choose another --out".into(),
        ))
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// What the directory holds: the run files among `ours`, and the rest.
    /// Refuses a run file name that is not a regular file.
    pub fn contents(&self, ours: &[String]) -> Result<Contents> {
        let mut c = Contents::default();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(&self.dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if is_bookkeeping(&name) {
                continue;
            }
            if ours.contains(&name) {
                let ft = e.file_type().map_err(|err| Error::io(&e.path(), err))?;
                // The VTK series (`[output] vtk`) and the checkpoints' parts
                // (MPI) are folders of the run's.
                let expected = if is_run_folder(&name) {
                    ft.is_dir()
                } else {
                    ft.is_file()
                };
                if !expected {
                    return Err(refused(
                        &e.path(),
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "is {}, where the run writes a {} of that name: remove or rename it, or choose another --out",
                            describe_type(&ft),
                            if is_run_folder(&name) {
                                "folder"
                            } else {
                                "regular file"
                            }
                        ),
                    ));
                }
                c.present.push(name);
            } else {
                c.foreign.push(name);
            }
        }
        c.present.sort();
        c.foreign.sort();
        Ok(c)
    }

    /// Move the files `names` (present run files) into [`REPLACED`], except
    /// those that are among `inputs` (the same file, by device and inode),
    /// which stay where they are. Call only once every input has been read
    /// and every check has passed.
    pub fn replace(&mut self, names: &[String], inputs: &[PathBuf]) -> Result<()> {
        let input_ids: Vec<std::fs::Metadata> = inputs
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .collect();
        let mut kept = Vec::new();
        let mut moving = Vec::new();
        for name in names {
            let p = self.dir.join(name);
            let is_input =
                std::fs::metadata(&p).is_ok_and(|m| input_ids.iter().any(|i| same_file(i, &m)));
            if !is_input {
                moving.push(name.clone());
                continue;
            }
            // An input under a name the run rewrites while it runs would be
            // truncated before it is read again (on --resume).
            if !is_final_data_name(name) {
                return Err(refused(
                    &p,
                    std::io::ErrorKind::InvalidInput,
                    "is an input of this run, and the run writes a file of that name while it runs: copy it out of the --out directory first".into(),
                ));
            }
            kept.push(name.clone());
        }
        if moving.is_empty() {
            self.kept = kept;
            return Ok(());
        }
        let aside = self.dir.join(REPLACED);
        std::fs::create_dir(&aside).map_err(|e| Error::io(&aside, e))?;
        let list = aside.join(KEPT);
        std::fs::write(&list, kept.join("\n")).map_err(|e| Error::io(&list, e))?;
        for name in &moving {
            let from = self.dir.join(name);
            let to = aside.join(name);
            std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
            self.replaced.push(name.clone());
        }
        self.kept = kept;
        crate::io::output::sync_dir(&self.dir)
    }

    /// Whether files of an earlier run were set aside by [`OutputDir::replace`]
    /// (and come back if the new run fails before [`OutputDir::establish`]).
    pub fn replaces_a_run(&self) -> bool {
        !self.established && !self.replaced.is_empty()
    }

    /// The new run is established: delete the replaced run's files.
    pub fn establish(&mut self) -> Result<()> {
        self.established = true;
        if self.replaced.is_empty() {
            return Ok(());
        }
        let aside = self.dir.join(REPLACED);
        std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
        self.replaced.clear();
        crate::io::output::sync_dir(&self.dir)
    }

    /// Move a replaced run's files back, after removing what the new run
    /// wrote (except the inputs it kept in place).
    fn restore(&mut self, names: &[String], kept: &[String], written: &[String]) -> Result<()> {
        let aside = self.dir.join(REPLACED);
        for name in written {
            if kept.contains(name) || names.contains(name) {
                continue;
            }
            let p = self.dir.join(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?,
                Ok(m) if m.is_dir() && is_run_folder(name) => {
                    std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?
                }
                _ => {}
            }
        }
        for name in names {
            let from = aside.join(name);
            let to = self.dir.join(name);
            std::fs::rename(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
        std::fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
        self.replaced.clear();
        crate::io::output::sync_dir(&self.dir)
    }

    /// A run killed while it replaced another left the old run aside: the new
    /// run never became established, so the old one comes back.
    fn recover(&mut self) -> Result<()> {
        let aside = self.dir.join(REPLACED);
        match std::fs::symlink_metadata(&aside) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&aside, e)),
            Ok(m) if !m.is_dir() => {
                return Err(refused(
                    &aside,
                    std::io::ErrorKind::InvalidInput,
                    "is not a directory (jko keeps a replaced run there): remove it".into(),
                ));
            }
            Ok(_) => {}
        }
        let kept: Vec<String> = std::fs::read_to_string(aside.join(KEPT))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let mut names = Vec::new();
        for e in std::fs::read_dir(&aside).map_err(|e| Error::io(&aside, e))? {
            let e = e.map_err(|e| Error::io(&aside, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name != KEPT {
                names.push(name);
            }
        }
        // Whatever kind of run was interrupted, what it wrote goes.
        self.restore(&names, &kept, &crate::driver::all_run_file_names())
    }
}

/// The names of a run directory's folders (every other run name is a file).
fn is_run_folder(name: &str) -> bool {
    name == VTK_DIR || name == PARTS_DIR
}

/// Final names of data files, which a run only writes (by rename) when it completes.
fn is_final_data_name(name: &str) -> bool {
    use crate::io::output::{DENSITY, ENERGY, EVENTS, PARTICLES, SCENARIO_COPY};
    [PARTICLES, ENERGY, EVENTS, DENSITY, SCENARIO_COPY].contains(&name)
}

fn describe_type(ft: &std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.established && !self.replaced.is_empty() {
            let names = std::mem::take(&mut self.replaced);
            let kept = std::mem::take(&mut self.kept);
            let written = self.run_names.clone();
            if let Err(e) = self.restore(&names, &kept, &written) {
                eprintln!(
                    "jko: warning: could not move the replaced run back from {}: {e}",
                    self.dir.join(REPLACED).display()
                );
            }
        }
        if self.made {
            // Only the lock file in it: a refused run, leave nothing behind.
            let only_lock = std::fs::read_dir(&self.dir).is_ok_and(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .all(|e| e.file_name() == LOCK)
            });
            if only_lock {
                let _ = std::fs::remove_file(self.dir.join(LOCK));
                let _ = std::fs::remove_dir(&self.dir);
            }
        }
        // Closing the file releases the lock.
        self.lock.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        crate::driver::all_run_file_names()
    }

    #[test]
    fn a_second_opener_is_refused_naming_the_first() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run");
        let first = OutputDir::open(&dir, &names()).unwrap();
        let e = OutputDir::open(&dir, &names()).unwrap_err().to_string();
        assert!(e.contains("in use by another jko process, pid"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(first);
        // Made by the first and left empty: removed with it.
        assert!(!dir.exists());
    }

    #[test]
    fn a_replaced_run_comes_back_unless_the_new_one_is_established() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::fs::write(dir.join("energy.csv"), b"old energy").unwrap();
        std::fs::write(dir.join("scenario.toml"), b"old scenario").unwrap();
        std::fs::write(dir.join("particles.csv"), b"input particles").unwrap();
        let input = dir.join("particles.csv");
        {
            let mut out = OutputDir::open(&dir, &names()).unwrap();
            let c = out.contents(&names()).unwrap();
            out.replace(&c.present, std::slice::from_ref(&input))
                .unwrap();
            assert!(!dir.join("energy.csv").exists());
            assert!(dir.join("particles.csv").exists(), "inputs stay in place");
            std::fs::write(dir.join("energy.csv.partial"), b"new").unwrap();
            std::fs::write(dir.join("scenario.toml"), b"new scenario").unwrap();
            // Dropped unestablished (a failure or a panic).
        }
        assert_eq!(
            std::fs::read(dir.join("energy.csv")).unwrap(),
            b"old energy"
        );
        assert_eq!(
            std::fs::read(dir.join("scenario.toml")).unwrap(),
            b"old scenario"
        );
        assert_eq!(
            std::fs::read(dir.join("particles.csv")).unwrap(),
            b"input particles"
        );
        assert!(!dir.join("energy.csv.partial").exists());
        assert!(!dir.join(REPLACED).exists());
        {
            let mut out = OutputDir::open(&dir, &names()).unwrap();
            let c = out.contents(&names()).unwrap();
            out.replace(&c.present, &[]).unwrap();
            std::fs::write(dir.join("energy.csv.partial"), b"new").unwrap();
            out.establish().unwrap();
        }
        assert!(!dir.join("energy.csv").exists());
        assert!(dir.join("energy.csv.partial").exists());
        assert!(!dir.join(REPLACED).exists());
    }

    #[test]
    fn a_killed_replacement_is_undone_by_the_next_opener() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::fs::write(dir.join("energy.csv"), b"old").unwrap();
        let mut out = OutputDir::open(&dir, &names()).unwrap();
        let c = out.contents(&names()).unwrap();
        out.replace(&c.present, &[]).unwrap();
        std::fs::write(dir.join("checkpoint.jko"), b"new").unwrap();
        // As if killed: the lock goes with the process, no Drop runs.
        let lock = out.lock.take();
        std::mem::forget(out);
        drop(lock);
        let _again = OutputDir::open(&dir, &names()).unwrap();
        assert_eq!(std::fs::read(dir.join("energy.csv")).unwrap(), b"old");
        assert!(!dir.join("checkpoint.jko").exists());
    }

    #[test]
    fn names_that_are_not_regular_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::os::unix::fs::symlink("/dev/null", dir.join("particles.csv.partial")).unwrap();
        let out = OutputDir::open(&dir, &names()).unwrap();
        let e = out.contents(&names()).unwrap_err().to_string();
        assert!(e.contains("a symbolic link"), "{e}");
    }

    #[test]
    fn out_paths_that_cannot_be_directories_are_named() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("dangling");
        std::os::unix::fs::symlink(t.path().join("nowhere"), &link).unwrap();
        let e = OutputDir::open(&link, &names()).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link to") && e.contains("does not exist"),
            "{e}"
        );
        let file = t.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = OutputDir::open(&file, &names()).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
