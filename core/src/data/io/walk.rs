//! Recursive directory walk in a stable, sorted order (byte order of the path components), skipping hidden
//! entries. Each directory is listed once; nothing else is kept in memory, so 100k files are fine.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// What the walk saw besides regular files.
#[derive(Debug, Default, Clone)]
pub struct WalkNotes {
    pub hidden_skipped: usize,
    /// (path, reason) for entries that could not be listed.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Canonical paths of the folders already walked (a symbolic-link cycle is walked once).
    visited: std::collections::HashSet<PathBuf>,
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// Call `f` for every regular file under `root` (or `root` itself if it is a file), in sorted order.
pub fn walk_files(root: &Path, notes: &mut WalkNotes, f: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if meta.is_file() {
        return f(root);
    }
    walk_dir(root, notes, f)
}

fn walk_dir(dir: &Path, notes: &mut WalkNotes, f: &mut dyn FnMut(&Path) -> Result<()>) -> Result<()> {
    if let Ok(canon) = std::fs::canonicalize(dir) {
        if !notes.visited.insert(canon) {
            return Ok(());
        }
    }
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            notes.unreadable.push((dir.to_path_buf(), e.to_string()));
            return Ok(());
        }
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if is_hidden(&p) {
            notes.hidden_skipped += 1;
            continue;
        }
        if p.file_name().is_some_and(|n| n.to_str().is_none()) {
            // Manifests, ids and feature files hold names as UTF-8: a lossy name would point at no file later.
            let shown = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            notes.unreadable.push((p.clone(), format!("the name '{shown}' is not valid UTF-8 (rename it)")));
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk_dir(&p, notes, f)?,
            Ok(m) if m.is_file() => f(&p)?,
            Ok(_) => {}
            Err(e) => notes.unreadable.push((p.clone(), format!("{e} (a dangling link?)"))),
        }
    }
    Ok(())
}
