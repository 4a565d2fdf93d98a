//! Which files make up a configuration: `-f` may be given several times, and may name a
//! directory, whose `*.cfg` files are read in lexical (byte) order, as HAProxy does. Hidden
//! files and anything that is not a regular file are skipped; directories are not entered
//! recursively.

use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// One file, read.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as given (or as found in a directory), for messages.
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// Expands directories and reads every file, in order.
pub fn read(paths: &[PathBuf]) -> Result<Vec<Source>, ConfigError> {
    let mut sources = Vec::new();
    for path in paths {
        let io = |source| ConfigError::Io {
            path: path.clone(),
            source,
        };
        if std::fs::metadata(path).map_err(io)?.is_dir() {
            for file in directory(path).map_err(io)? {
                sources.push(one(file)?);
            }
        } else {
            sources.push(one(path.clone())?);
        }
    }
    Ok(sources)
}

fn one(path: PathBuf) -> Result<Source, ConfigError> {
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Source {
        name: path.display().to_string(),
        path,
        text,
    })
}

/// The `*.cfg` regular files of `dir`, not hidden, sorted by name byte for byte.
fn directory(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<std::ffi::OsString> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || !text.ends_with(".cfg") {
            continue;
        }
        // `metadata` follows symbolic links, as HAProxy's stat() does.
        if std::fs::metadata(dir.join(&name)).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn a_directory_gives_its_cfg_files_in_byte_order() {
        let dir = std::env::temp_dir().join(format!("warren-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub.cfg")).expect("mkdir");
        for name in [
            "b.cfg",
            "A.cfg",
            "10-x.cfg",
            ".hidden.cfg",
            "notes.txt",
            "c.cfg.bak",
        ] {
            std::fs::write(dir.join(name), name).expect("write");
        }
        let one = dir.join("b.cfg");
        let got = read(&[one.clone(), dir.clone()]).expect("reads");
        let names: Vec<String> = got
            .iter()
            .map(|s| {
                s.path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["b.cfg", "10-x.cfg", "A.cfg", "b.cfg"]);
        assert_eq!(got[1].text, "10-x.cfg");
        assert!(read(&[dir.join("missing.cfg")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
