//! `tessera worker --map`: where this machine sees the server's paths.

use crate::fail::{Failure, Result};
use serde_json::Value;

/// `--map`: a server path prefix and where this machine sees it.
#[derive(Clone, Debug, Default)]
pub(super) struct PathMap(Option<(String, String)>);

impl PathMap {
    pub(super) fn parse(spec: Option<&str>) -> Result<Self> {
        let Some(spec) = spec else {
            return Ok(Self(None));
        };
        match spec.split_once('=') {
            Some((from, to)) if from.starts_with('/') && to.starts_with('/') => Ok(Self(Some((
                from.trim_end_matches('/').to_string(),
                to.trim_end_matches('/').to_string(),
            )))),
            _ => Err(Failure::input(format!(
                "--map {spec:?}: give SERVER_PREFIX=LOCAL_PREFIX, both absolute paths"
            ))),
        }
    }

    /// Rewrites every string in `v` that is the prefix or starts with it
    /// followed by `/`.
    pub(super) fn apply(&self, v: &mut Value) {
        let Some((from, to)) = &self.0 else { return };
        match v {
            Value::String(s) => {
                if let Some(rest) = s.strip_prefix(from.as_str()) {
                    if rest.is_empty() || rest.starts_with('/') {
                        *s = format!("{to}{rest}");
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.apply(i)),
            Value::Object(fields) => fields.values_mut().for_each(|f| self.apply(f)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_path_map_rewrites_whole_path_prefixes_only() {
        let map = PathMap::parse(Some("/srv/tessera/=/mnt/t")).unwrap();
        let mut v = json!({
            "workdir": "/srv/tessera/jobs/1",
            "env": {"TESSERA_JOB_DIR": "/srv/tessera", "OTHER": "/srv/tesseract/x"},
            "action": {"kind": "command", "argv": ["cat", "/srv/tessera/in.txt", "x"]},
        });
        map.apply(&mut v);
        assert_eq!(v["workdir"], "/mnt/t/jobs/1");
        assert_eq!(v["env"]["TESSERA_JOB_DIR"], "/mnt/t");
        assert_eq!(v["env"]["OTHER"], "/srv/tesseract/x", "not a path prefix");
        assert_eq!(v["action"]["argv"][1], "/mnt/t/in.txt");
        assert!(PathMap::parse(Some("relative=/x")).is_err());
        assert!(PathMap::parse(Some("/no-equals")).is_err());
    }
}
