//! A training run's directory, written whole: after any kill or write error it holds the old
//! run or the new one, never a mix.
//!
//! ```text
//! open      lock  <parent>/.<name>.lock (flock, exclusive: a second writer is refused)
//!           remove the staging directories of earlier killed runs (the lock proves them dead)
//!           refuse a directory holding files that are not a run's
//! commit    write every file into <parent>/.<name>.staging-<pid>/, sync each file and the dir
//!           exchange it with <name> in one atomic rename (Linux renameat2 RENAME_EXCHANGE;
//!           elsewhere two renames, with the old run kept until the new one is in place)
//!           sync the parent, remove the staging directory (which now holds the old run)
//! ```
//!
//! The lock file stays beside the run (it is empty but for the writer's process id); the lock
//! itself is held by the open file and released by the kernel when the process ends, so a
//! killed run never leaves a stale lock.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The files of a run; anything else in the directory is not ours to replace.
pub const RUN_FILES: [&str; 4] = ["model.ckpt", "metrics.csv", "curves.svg", "best.ckpt"];

/// A locked run directory.
pub struct RunDir {
    dir: PathBuf,
    parent: PathBuf,
    name: String,
    _lock: fs::File,
}

fn describe(path: &Path, what: &str, e: &std::io::Error) -> String {
    format!("{}: {what}: {e}", path.display())
}

impl RunDir {
    /// Locks `dir` for writing (creating its parent if needed) and cleans what killed runs
    /// left behind.
    ///
    /// # Errors
    /// A message if the directory cannot be locked (another run holds it), is not a directory,
    /// or holds files that are not a run's.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .ok_or_else(|| {
                format!(
                    "--out {}: name a directory for the run (for example runs/mlp-1), not `.` or `/`",
                    dir.display()
                )
            })?
            .to_string();
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .map_err(|e| describe(&parent, "cannot create the directory", &e))?;
        let lock_path = parent.join(format!(".{name}.lock"));
        let mut lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| describe(&lock_path, "cannot create the lock file", &e))?;
        // SAFETY: flock on a file descriptor this process owns; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(format!(
                "--out {}: another `retroprop train` (process {}) is writing this run; wait for it to finish or choose another --out",
                dir.display(),
                holder.trim()
            ));
        }
        let _ = lock.set_len(0);
        let _ = write!(lock, "{}", std::process::id());
        let run = Self {
            dir: dir.to_path_buf(),
            parent,
            name,
            _lock: lock,
        };
        run.remove_stale_staging();
        run.check_contents()?;
        Ok(run)
    }

    fn staging_prefix(&self) -> String {
        format!(".{}.staging-", self.name)
    }

    /// Staging directories of runs that were killed: we hold the lock, so no live run owns one.
    fn remove_stale_staging(&self) {
        let prefix = self.staging_prefix();
        if let Ok(entries) = fs::read_dir(&self.parent) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    /// An existing directory may hold only a run's files (and the temporaries of an older
    /// version of this program, which are removed).
    fn check_contents(&self) -> Result<(), String> {
        if !self.dir.exists() {
            return Ok(());
        }
        if !self.dir.is_dir() {
            return Err(format!(
                "--out {}: exists and is not a directory",
                self.dir.display()
            ));
        }
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| describe(&self.dir, "cannot read the directory", &e))?;
        let mut foreign = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if RUN_FILES.contains(&name.as_str()) {
                continue;
            }
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            foreign.push(name);
        }
        if foreign.is_empty() {
            return Ok(());
        }
        foreign.sort();
        Err(format!(
            "--out {}: holds files that are not a run's ({}); a run is written whole into a directory of its own, replacing it: choose a new or empty --out",
            self.dir.display(),
            foreign.join(", ")
        ))
    }

    /// Replaces the run with `files` (name, contents), all or nothing.
    ///
    /// # Errors
    /// A message naming the file that could not be written (the disk is full, …); the
    /// directory then still holds the previous run, untouched.
    pub fn commit(&self, files: &[(&str, &[u8])]) -> Result<(), String> {
        let staging = self
            .parent
            .join(format!("{}{}", self.staging_prefix(), std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let written = write_all(&staging, files).and_then(|()| self.exchange(&staging));
        if written.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        written
    }

    /// Puts `staging` in place of the run directory atomically.
    fn exchange(&self, staging: &Path) -> Result<(), String> {
        if !self.dir.exists() {
            fs::rename(staging, &self.dir)
                .map_err(|e| describe(&self.dir, "cannot move the run into place", &e))?;
        } else {
            exchange_dirs(staging, &self.dir)?;
            // `staging` now holds the previous run
            fs::remove_dir_all(staging)
                .map_err(|e| describe(staging, "cannot remove the previous run", &e))?;
        }
        sync_dir(&self.parent)
    }
}

/// Fault injection for the crash-consistency test: with this variable set to a number of
/// milliseconds, a commit pauses that long after each file and before the exchange, so that a
/// test can kill the process in the middle of its writes. Unset (always, outside that test),
/// it costs one environment lookup per commit.
pub const PAUSE_VAR: &str = "RETROPROP_FAULT_INJECTION_WRITE_PAUSE_MS";

fn pause() {
    if let Some(ms) = std::env::var(PAUSE_VAR).ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn write_all(staging: &Path, files: &[(&str, &[u8])]) -> Result<(), String> {
    fs::create_dir(staging).map_err(|e| describe(staging, "cannot create", &e))?;
    for (name, contents) in files {
        let path = staging.join(name);
        let mut file = fs::File::create(&path).map_err(|e| describe(&path, "cannot create", &e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| describe(&path, "cannot write", &e))?;
        pause();
    }
    sync_dir(staging)
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| describe(dir, "cannot sync", &e))
}

/// Swaps two directories in one step.
#[cfg(target_os = "linux")]
fn exchange_dirs(a: &Path, b: &Path) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{}: NUL in path", p.display()))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that outlive the call; AT_FDCWD resolves them relative
    // to the working directory like `fs::rename`.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    // file systems without RENAME_EXCHANGE: fall back to two renames
    if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOSYS) {
        return exchange_by_renames(a, b);
    }
    Err(describe(
        b,
        "cannot exchange the new run with the old one",
        &e,
    ))
}

#[cfg(not(target_os = "linux"))]
fn exchange_dirs(a: &Path, b: &Path) -> Result<(), String> {
    exchange_by_renames(a, b)
}

/// Two renames through a third name: between them the run directory is absent for an
/// instant (the old run is whole under the third name, and the next open removes it).
fn exchange_by_renames(a: &Path, b: &Path) -> Result<(), String> {
    let mut aside_name = a.file_name().unwrap_or_default().to_os_string();
    aside_name.push(".old");
    let aside = a.with_file_name(aside_name);
    fs::rename(b, &aside).map_err(|e| describe(b, "cannot move the old run aside", &e))?;
    if let Err(e) = fs::rename(a, b) {
        let _ = fs::rename(&aside, b);
        return Err(describe(b, "cannot move the new run into place", &e));
    }
    fs::rename(&aside, a).map_err(|e| describe(a, "cannot move the old run away", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("retroprop-rundir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        base
    }

    fn read(dir: &Path, file: &str) -> String {
        fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn a_commit_replaces_every_file_together() {
        let base = scratch("commit");
        let dir = base.join("run");
        let run = RunDir::open(&dir).unwrap();
        run.commit(&[("model.ckpt", b"old model"), ("metrics.csv", b"old")])
            .unwrap();
        run.commit(&[
            ("model.ckpt", b"new model"),
            ("metrics.csv", b"new"),
            ("curves.svg", b"<svg/>"),
        ])
        .unwrap();
        assert_eq!(read(&dir, "model.ckpt"), "new model");
        assert_eq!(read(&dir, "metrics.csv"), "new");
        // no staging directory is left beside the run
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("staging"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // a commit that fails midway leaves the previous run whole
        let err = run
            .commit(&[("model.ckpt", b"half"), ("no/such/dir/metrics.csv", b"x")])
            .unwrap_err();
        assert!(err.contains("cannot create"), "{err}");
        assert_eq!(read(&dir, "model.ckpt"), "new model");
        assert_eq!(read(&dir, "curves.svg"), "<svg/>");
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_run() {
        let base = scratch("lock");
        let dir = base.join("run");
        let first = RunDir::open(&dir).unwrap();
        let err = RunDir::open(&dir)
            .err()
            .expect("the second writer must be refused");
        assert!(
            err.contains("another `retroprop train`")
                && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        assert!(
            RunDir::open(&dir).is_ok(),
            "the lock is released with the first writer"
        );
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn stale_staging_is_removed_foreign_files_are_refused_and_symlinks_are_replaced() {
        let base = scratch("stale");
        let dir = base.join("run");
        fs::create_dir_all(base.join(".run.staging-999999999")).unwrap();
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".model.ckpt.tmp-12345"), b"left by a kill").unwrap();
        // metrics.csv is a symlink to a file of the user's: the commit must not write through it
        let target = base.join("precious.csv");
        fs::write(&target, b"keep me").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("metrics.csv")).unwrap();
        let run = RunDir::open(&dir).unwrap();
        assert!(!base.join(".run.staging-999999999").exists());
        assert!(!dir.join(".model.ckpt.tmp-12345").exists());
        run.commit(&[("metrics.csv", b"epoch,loss\n")]).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
        assert_eq!(read(&dir, "metrics.csv"), "epoch,loss\n");
        drop(run);
        // a directory with files of its own is not a run to replace
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let err = RunDir::open(&dir).err().expect("foreign files");
        assert!(
            err.contains("notes.txt") && err.contains("new or empty --out"),
            "{err}"
        );
        assert!(RunDir::open(Path::new("/")).is_err());
        let _ = fs::remove_dir_all(&base);
    }
}
