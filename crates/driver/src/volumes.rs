//! Volumes the operator configured, mounted into tasks' containers by name
//! ([`tessera_types::Mount`]). The driver checks the names at submission
//! and, for each attempt, resolves them to folders inside the volumes (a
//! subpath never leaves its volume, links included), grants those folders
//! to the attempt and hands them to the container executor as binds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use tessera_core::SpecError;
use tessera_exec::Bind;
use tessera_types::{Grant, JobSpec, Mount, TaskSpec};

/// One volume: its folder (canonical) and whether tasks may write in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub dir: PathBuf,
    pub writable: bool,
}

/// The server's volumes by name.
pub type Volumes = BTreeMap<String, Volume>;

fn names(volumes: &Volumes) -> String {
    if volumes.is_empty() {
        "this server has no volumes configured (--volume NAME=DIR)".into()
    } else {
        let known: Vec<&str> = volumes.keys().map(String::as_str).collect();
        format!("this server has: {}", known.join(", "))
    }
}

/// Refuses, at submission, mounts of volumes the server does not have, and
/// writable mounts of read-only volumes.
pub(crate) fn check_job(volumes: &Volumes, spec: &JobSpec) -> Result<(), SpecError> {
    for t in &spec.tasks {
        for m in &t.mounts {
            check(volumes, m).map_err(|reason| SpecError::BadMount {
                task: t.name.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

fn check<'v>(volumes: &'v Volumes, m: &Mount) -> Result<&'v Volume, String> {
    let v = volumes
        .get(&m.volume)
        .ok_or_else(|| format!("unknown volume {:?}; {}", m.volume, names(volumes)))?;
    if !m.read_only && !v.writable {
        return Err(format!(
            "volume {} is read-only on this server; mount it read_only, or ask the operator \
             to make it writable (--writable-volume)",
            m.volume
        ));
    }
    Ok(v)
}

/// The binds of a task's mounts and the grants they add to its reach, or
/// why the attempt cannot run (a volume gone, a subpath missing or leading
/// out of its volume).
pub(crate) fn binds(volumes: &Volumes, spec: &TaskSpec) -> Result<(Vec<Bind>, Vec<Grant>), String> {
    let mut binds = Vec::with_capacity(spec.mounts.len());
    let mut grants = Vec::with_capacity(spec.mounts.len());
    for m in &spec.mounts {
        let v = check(volumes, m)?;
        let source = match &m.subpath {
            None => v.dir.clone(),
            Some(sub) => {
                let wanted = v.dir.join(sub);
                let real = std::fs::canonicalize(&wanted).map_err(|e| {
                    format!("mount of volume {}: {}: {e}", m.volume, wanted.display())
                })?;
                if !real.starts_with(&v.dir) || !real.is_dir() {
                    return Err(format!(
                        "mount of volume {}: {sub} is not a folder inside the volume",
                        m.volume
                    ));
                }
                real
            }
        };
        let read_only = m.read_only || !v.writable;
        grants.push(Grant {
            path: source.clone(),
            write: !read_only,
            folder: true,
        });
        binds.push(Bind {
            source,
            target: PathBuf::from(&m.target),
            read_only,
        });
    }
    Ok((binds, grants))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(volume: &str, subpath: Option<&str>, read_only: bool) -> Mount {
        Mount {
            volume: volume.into(),
            subpath: subpath.map(String::from),
            target: "/in".into(),
            read_only,
        }
    }

    #[test]
    fn mounts_resolve_inside_their_volume_and_refuse_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("media/shows")).unwrap();
        std::fs::create_dir_all(root.join("secret")).unwrap();
        std::os::unix::fs::symlink(root.join("secret"), root.join("media/out")).unwrap();
        let volumes = Volumes::from([
            (
                "media".into(),
                Volume {
                    dir: root.join("media"),
                    writable: false,
                },
            ),
            (
                "scratch".into(),
                Volume {
                    dir: root.join("secret"),
                    writable: true,
                },
            ),
        ]);
        let mut t = TaskSpec::new("t", tessera_types::Action::command(["true"]));
        t.mounts = vec![
            mount("media", Some("shows"), true),
            mount("scratch", None, false),
        ];
        let (binds, grants) = binds(&volumes, &t).unwrap();
        assert_eq!(binds[0].source, root.join("media/shows"));
        assert!(binds[0].read_only && !binds[1].read_only);
        assert_eq!((grants[0].write, grants[1].write), (false, true));

        for (m, want) in [
            (
                mount("nope", None, true),
                "unknown volume \"nope\"; this server has: media, scratch",
            ),
            (
                mount("media", None, false),
                "volume media is read-only on this server",
            ),
            (
                mount("media", Some("out"), true),
                "out is not a folder inside the volume",
            ),
            (mount("media", Some("gone"), true), "gone"),
        ] {
            t.mounts = vec![m];
            let err = super::binds(&volumes, &t).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let job = JobSpec::new("j", vec![t]);
        assert!(
            check_job(&volumes, &job).is_ok(),
            "a missing subpath is found at run time"
        );
    }
}
