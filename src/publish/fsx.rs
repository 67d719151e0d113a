//! File-system steps of the local commit: fsync of files and folders, hard-linked trees, the
//! symlink swap. Each returns the path it failed on.

use super::CommitError;
use std::fs::File;
use std::path::{Path, PathBuf};

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CommitError + '_ {
    move |source| CommitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// fsync of a folder, so the names created in it survive a power loss.
pub(super) fn sync_dir(dir: &Path) -> Result<(), CommitError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

/// Writes `bytes` to a new file `path` (which must not exist) and fsyncs it.
pub(super) fn write_new_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = File::options().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Every folder under `root` (deepest first) and `root` itself.
fn dirs_bottom_up(root: &Path) -> Result<Vec<PathBuf>, CommitError> {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        let d = all[i].clone();
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            if e.file_type().map_err(io(&d))?.is_dir() {
                all.push(e.path());
            }
        }
        i += 1;
    }
    all.reverse();
    Ok(all)
}

/// fsync of every folder of a tree (files are synced when written).
pub(super) fn sync_tree(root: &Path) -> Result<(), CommitError> {
    for d in dirs_bottom_up(root)? {
        sync_dir(&d)?;
    }
    Ok(())
}

/// Hard-links every file under `from` into the same relative place under `to`, except those for
/// which `skip(relative path)` is true. Returns the number of files linked.
pub(super) fn link_tree(
    from: &Path,
    to: &Path,
    skip: &dyn Fn(&str) -> bool,
    on_file: &mut dyn FnMut() -> std::io::Result<()>,
) -> Result<u64, CommitError> {
    let mut n = 0;
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let src_dir = if rel.is_empty() {
            from.to_path_buf()
        } else {
            from.join(&rel)
        };
        let mut entries: Vec<_> = std::fs::read_dir(&src_dir)
            .map_err(io(&src_dir))?
            .collect::<Result<_, _>>()
            .map_err(io(&src_dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if skip(&r) {
                continue;
            }
            let ft = e.file_type().map_err(io(&e.path()))?;
            if ft.is_dir() {
                stack.push(r);
                continue;
            }
            let dst = to.join(&r);
            if let Some(p) = dst.parent() {
                std::fs::create_dir_all(p).map_err(io(p))?;
            }
            let src = e.path();
            std::fs::hard_link(&src, &dst).map_err(|source| CommitError::Link {
                from: src.clone(),
                to: dst.clone(),
                source,
            })?;
            on_file().map_err(io(&dst))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Points the symlink `link` at `target` in one atomic step: a fresh symlink next to it, renamed over it.
pub(super) fn swap_symlink(
    link: &Path,
    target: &Path,
    tmp_name: &str,
    before_rename: &mut dyn FnMut() -> std::io::Result<()>,
) -> Result<(), CommitError> {
    let parent = link.parent().expect("link has a parent");
    let tmp = parent.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
    before_rename().map_err(io(&tmp))?;
    std::fs::rename(&tmp, link).map_err(io(link))
}

/// Removes a folder tree if it exists.
pub(super) fn remove_tree(p: &Path) -> Result<(), CommitError> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CommitError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

/// Exchanges two paths atomically (`renameat2(RENAME_EXCHANGE)`; Linux only).
#[cfg(target_os = "linux")]
pub(super) fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: valid NUL-terminated paths; renameat2 does not retain them.
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
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}
