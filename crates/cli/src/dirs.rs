//! Where per-user files go: `$XDG_<KIND>_HOME`, else the XDG default under `$HOME`.

use std::path::PathBuf;

/// `$var` when set and not empty, else `$HOME/<home_default>`; `None` when
/// neither is set.
pub fn xdg(var: &str, home_default: &str) -> Option<PathBuf> {
    match (std::env::var_os(var), std::env::var_os("HOME")) {
        (Some(x), _) if !x.is_empty() => Some(PathBuf::from(x)),
        (_, Some(h)) => Some(PathBuf::from(h).join(home_default)),
        _ => None,
    }
}

/// The state directory base (`$XDG_STATE_HOME` or `~/.local/state`).
pub fn state_home() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state")
}
