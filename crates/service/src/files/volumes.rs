//! Volumes: directories of the server's machine, configured by name, whose
//! files an encode may read in place (`{volume: "media", path:
//! "shows/ep1.mkv"}`) instead of an upload.
//!
//! A client names a file by a relative path inside a volume. The path may
//! not be absolute nor contain `..`, and its canonical form (every symbolic
//! link followed) must stay under the volume's canonical root, so no request
//! reads outside the directories the operator chose.

use crate::ServiceError;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The configured volumes: name -> canonical root directory.
#[derive(Clone, Debug, Default)]
pub struct Volumes {
    roots: BTreeMap<String, PathBuf>,
}

/// A volume name: 1 to 64 ASCII letters, digits, `-` or `_`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Volumes {
    /// Checks each name and resolves each directory to its canonical form;
    /// the error says which volume is wrong and why, in one line.
    pub fn new(volumes: impl IntoIterator<Item = (String, PathBuf)>) -> Result<Self, String> {
        let mut roots = BTreeMap::new();
        for (name, dir) in volumes {
            if !valid_name(&name) {
                return Err(format!(
                    "volume name {name:?} is not allowed; use letters, digits, - and _ (at most 64)"
                ));
            }
            let root = std::fs::canonicalize(&dir)
                .map_err(|e| format!("volume {name}: {}: {e}", dir.display()))?;
            if !root.is_dir() {
                return Err(format!(
                    "volume {name}: {} is not a directory",
                    dir.display()
                ));
            }
            roots.insert(name, root);
        }
        Ok(Self { roots })
    }

    /// The volumes' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roots.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The volume holding the host folder `path` (canonical: links
    /// followed) and the folder's path inside it (`None`: its root).
    /// Blocking (it reads the file system).
    pub fn locate(&self, path: &Path) -> Option<(&str, Option<String>)> {
        let found = std::fs::canonicalize(path).ok()?;
        self.roots.iter().find_map(|(name, root)| {
            let inside = found.strip_prefix(root).ok()?;
            let sub = inside.to_str()?;
            Some((name.as_str(), (!sub.is_empty()).then(|| sub.to_string())))
        })
    }

    /// The file `path` of volume `volume`, canonical, or an `Invalid`
    /// saying what is wrong with the request. Blocking (it reads the file
    /// system).
    pub(crate) fn resolve(&self, volume: &str, path: &str) -> Result<PathBuf, ServiceError> {
        let refuse = |why: String| Err(ServiceError::Invalid(why));
        let Some(root) = self.roots.get(volume) else {
            let known: Vec<&str> = self.names().collect();
            return refuse(if known.is_empty() {
                format!("unknown volume {volume:?}; this server has no volumes configured")
            } else {
                format!(
                    "unknown volume {volume:?}; this server has: {}",
                    known.join(", ")
                )
            });
        };
        let relative = Path::new(path);
        if path.is_empty() {
            return refuse(format!("give the path of a file in volume {volume}"));
        }
        if path.contains('\0') {
            return refuse("the path contains a NUL byte".into());
        }
        for part in relative.components() {
            match part {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => {
                    return refuse(format!(
                        "path {path:?} contains `..`; give a path inside volume {volume} without it"
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return refuse(format!(
                        "path {path:?} is absolute; give a path relative to volume {volume}"
                    ))
                }
            }
        }
        let found = match std::fs::canonicalize(root.join(relative)) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return refuse(format!("volume {volume} has no file {path:?}"))
            }
            Err(e) => {
                eprintln!("tessera-service: volume {volume}: {path:?}: {e}");
                return refuse(format!("cannot read {path:?} in volume {volume}"));
            }
        };
        if !found.starts_with(root) {
            return refuse(format!(
                "path {path:?} leads outside volume {volume} (through a symbolic link); \
                 only files inside the volume can be encoded"
            ));
        }
        if !found.is_file() {
            return refuse(format!("{path:?} in volume {volume} is not a file"));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_and_directories_are_checked_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Volumes::new([("media".into(), dir.path().into())]).unwrap();
        assert_eq!(ok.names().collect::<Vec<_>>(), ["media"]);
        let err = Volumes::new([("a/b".into(), dir.path().into())]).unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = Volumes::new([("m".into(), dir.path().join("missing"))]).unwrap_err();
        assert!(err.starts_with("volume m: "), "{err}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Volumes::new([("m".into(), file)]).unwrap_err();
        assert!(err.ends_with("is not a directory"), "{err}");
    }

    #[test]
    fn paths_cannot_leave_their_volume() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        std::fs::create_dir_all(root.join("shows")).unwrap();
        std::fs::write(root.join("shows/ep1.mkv"), b"x").unwrap();
        std::fs::write(dir.path().join("secret.mkv"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.mkv"), root.join("link.mkv")).unwrap();
        std::os::unix::fs::symlink("ep1.mkv", root.join("shows/inside.mkv")).unwrap();
        let v = Volumes::new([("media".into(), root.clone())]).unwrap();
        let canon = std::fs::canonicalize(root.join("shows/ep1.mkv")).unwrap();
        assert_eq!(v.resolve("media", "shows/ep1.mkv").unwrap(), canon);
        assert_eq!(v.resolve("media", "./shows/inside.mkv").unwrap(), canon);
        let table = [
            ("media", "../secret.mkv", "contains `..`"),
            ("media", "shows/../../secret.mkv", "contains `..`"),
            ("media", "/etc/passwd", "is absolute"),
            ("media", "link.mkv", "leads outside volume media"),
            ("media", "shows", "is not a file"),
            ("media", "nope.mkv", "has no file"),
            ("media", "", "give the path"),
            (
                "other",
                "x.mkv",
                "unknown volume \"other\"; this server has: media",
            ),
        ];
        for (volume, path, want) in table {
            let err = v.resolve(volume, path).unwrap_err();
            assert!(matches!(err, ServiceError::Invalid(_)), "{path}: {err:?}");
            let message = err.to_string();
            assert!(message.contains(want), "{path}: {message}");
            assert!(!message.contains(dir.path().to_str().unwrap()), "{message}");
        }
    }

    #[test]
    fn host_folders_are_located_inside_a_volume_or_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        std::fs::create_dir_all(root.join("split/a")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        let v = Volumes::new([("storage".into(), root.clone())]).unwrap();
        assert_eq!(v.locate(&root), Some(("storage", None)));
        assert_eq!(
            v.locate(&root.join("split/a")),
            Some(("storage", Some("split/a".to_string())))
        );
        assert_eq!(
            v.locate(&root.join("split/../split")),
            Some(("storage", Some("split".into())))
        );
        assert_eq!(v.locate(dir.path()), None);
        assert_eq!(v.locate(&root.join("up")), None, "a link leading out");
        assert_eq!(v.locate(&root.join("missing")), None);
        assert_eq!(v.locate(std::path::Path::new("/etc")), None);
    }
}
