//! Checkpoints on disk: an atomic save (temporary file, sync, rename, sync of the directory,
//! temporaries of dead saves removed) and loading from a path.

use std::fs;
use std::io::Write;
use std::path::Path;

use retroprop_core::Scalar;
use retroprop_layers::Layer;

use super::{
    CheckpointError, TrainingState, from_bytes, from_bytes_with, load_into_bytes, to_bytes_with,
};
use crate::Sequential;

fn io_error(path: &Path, e: &std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Saves `model` to `path` atomically: a temporary file in the same directory, synced, renamed
/// over `path`, then the directory synced. A save killed midway leaves the previous file
/// whole; its temporary `.{name}.tmp-{pid}` is removed by the next save once that process is
/// gone.
///
/// ```
/// use retroprop_layers::Init;
/// use retroprop_models::{checkpoint, mlp};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let net = mlp::<f32>(4, 3, 2, Init::XavierUniform { seed: 1 })?;
/// let path = std::env::temp_dir().join(format!("retroprop-doc-{}.ckpt", std::process::id()));
/// checkpoint::save(&net, &path)?;
/// let back = checkpoint::load::<f32>(&path)?;
/// assert_eq!(checkpoint::to_bytes(&back)?, checkpoint::to_bytes(&net)?);
/// # std::fs::remove_file(&path)?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`CheckpointError::Io`] if the file cannot be written.
pub fn save<T: Scalar>(
    model: &dyn Layer<T>,
    path: impl AsRef<Path>,
) -> Result<(), CheckpointError> {
    write_atomically(path.as_ref(), &to_bytes_with(model, None)?)
}

/// Saves `model` with the training state that resumes its run (optimizer state, epochs done,
/// the program's settings), atomically as [`save`]. [`load`] reads the model of such a file;
/// [`load_training`] reads both.
///
/// # Errors
/// [`CheckpointError::Io`] if the file cannot be written.
pub fn save_training<T: Scalar>(
    model: &dyn Layer<T>,
    training: &TrainingState<T>,
    path: impl AsRef<Path>,
) -> Result<(), CheckpointError> {
    write_atomically(path.as_ref(), &to_bytes_with(model, Some(training))?)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // the rename itself is durable only once the directory is synced
        sync_dir(path.parent())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(path, &e)
    })?;
    remove_stale_temporaries(path, &name);
    Ok(())
}

/// Syncs a directory (its entries: a rename into it survives a power cut once this returns).
fn sync_dir(dir: Option<&Path>) -> std::io::Result<()> {
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)?.sync_all()
}

/// Removes `.{name}.tmp-{pid}` files left by saves that were killed, when process `pid` is
/// gone. Liveness is read from `/proc` (Linux); where it is absent nothing is removed.
fn remove_stale_temporaries(path: &Path, name: &str) {
    let proc = Path::new("/proc/self");
    if !proc.exists() {
        return;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    fs::read(path).map_err(|e| io_error(path, &e))
}

/// Loads a model saved with [`save`].
///
/// # Errors
/// As [`from_bytes`], plus [`CheckpointError::Io`].
pub fn load<T: Scalar>(path: impl AsRef<Path>) -> Result<Sequential<T>, CheckpointError> {
    from_bytes(&read(path.as_ref())?)
}

/// Loads a checkpoint's parameters into `model`.
///
/// # Errors
/// As [`load_into_bytes`], plus [`CheckpointError::Io`].
pub fn load_into<T: Scalar>(
    model: &mut dyn Layer<T>,
    path: impl AsRef<Path>,
) -> Result<(), CheckpointError> {
    load_into_bytes(model, &read(path.as_ref())?)
}

/// Loads a model saved with [`save_training`] and its training state (`None` for a file saved
/// with [`save`]).
///
/// # Errors
/// As [`load`].
pub fn load_training<T: Scalar>(
    path: impl AsRef<Path>,
) -> Result<(Sequential<T>, Option<TrainingState<T>>), CheckpointError> {
    from_bytes_with(&read(path.as_ref())?)
}
