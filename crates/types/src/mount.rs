//! Volumes in a task's container: a folder the operator configured (a
//! server's `[volumes]`), by name, seen at a path of the container's own.
//! Tasks never name host paths: the driver resolves the name to the
//! volume's folder (and a `subpath` inside it, never leaving it), grants it
//! to the attempt, and the container executor binds it.

use serde::{Deserialize, Serialize};

/// One volume mounted into a task's container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The volume's name, as the operator configured it.
    pub volume: String,
    /// A folder inside the volume to mount instead of its root: relative,
    /// without `..`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// Where the container sees it: an absolute path.
    pub target: String,
    /// Mounted read-only (a volume the operator made read-only always is).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

impl Mount {
    /// What is wrong with the mount on its face (no volume list needed):
    /// an empty volume name, a target that is not absolute or has `.`/`..`
    /// segments, a subpath that is absolute or has `.`/`..` segments.
    pub fn check(&self) -> Result<(), String> {
        if self.volume.is_empty() {
            return Err("a mount needs the name of a volume".into());
        }
        let plain = |s: &str| s.split('/').all(|seg| seg != "." && seg != "..");
        if !self.target.starts_with('/') || !plain(&self.target) || self.target.contains('\0') {
            return Err(format!(
                "mount target {:?} must be an absolute path without . or .. segments",
                self.target
            ));
        }
        if let Some(sub) = &self.subpath {
            if sub.starts_with('/') || !plain(sub) || sub.contains('\0') {
                return Err(format!(
                    "mount subpath {sub:?} must be a relative path inside volume {} without . \
                     or .. segments",
                    self.volume
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(target: &str, subpath: Option<&str>) -> Mount {
        Mount {
            volume: "media".into(),
            subpath: subpath.map(String::from),
            target: target.into(),
            read_only: false,
        }
    }

    #[test]
    fn targets_are_absolute_and_subpaths_stay_inside() {
        mount("/uploads", None).check().unwrap();
        mount("/uploads", Some("shows/ep1")).check().unwrap();
        for (t, s) in [
            ("uploads", None),
            ("/a/../etc", None),
            ("/a", Some("/etc")),
            ("/a", Some("../other")),
            ("/a", Some("x/./y")),
        ] {
            assert!(mount(t, s).check().is_err(), "{t} {s:?}");
        }
        let mut m = mount("/a", None);
        m.volume.clear();
        assert!(m.check().is_err());
    }
}
