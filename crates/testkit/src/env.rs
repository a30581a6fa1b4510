//! What a test does when a part it needs is missing (a Docker engine,
//! PostgreSQL, Chromium, Prometheus, root): one rule for every crate.
//!
//! A run is **strict** when the environment variable `CI` is set to
//! anything but the empty string, `0` or `false` (any case). GitHub, GitLab
//! and most CI services set `CI=true`; `CI=1`, `CI=yes` count too, and
//! `CI=` or `CI=false` in a developer's shell do not.
//!
//! - In a strict run a missing part **fails** the test: CI must exercise
//!   every part.
//! - Otherwise the test prints one line on stderr, `skipping TEST: WHAT IS
//!   MISSING; HOW TO PROVIDE IT`, and passes (see it with `--nocapture`).
//!
//! ```
//! use tessera_testkit::env;
//! fn postgres_url() -> Option<String> {
//!     match std::env::var("TESSERA_TEST_POSTGRES") {
//!         Ok(url) if !url.is_empty() => Some(url),
//!         _ => {
//!             env::skip(
//!                 "TESSERA_TEST_POSTGRES is not set",
//!                 "set it to the URL of a PostgreSQL database the tests may use",
//!             );
//!             None
//!         }
//!     }
//! }
//! # std::env::remove_var("CI");
//! # std::env::remove_var("TESSERA_TEST_POSTGRES");
//! assert_eq!(postgres_url(), None);
//! ```

/// Whether `value` (the value of `CI`, if set) makes a run strict.
pub fn strict_value(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// Whether this run is strict (see the module's doc): a missing part fails.
pub fn strict() -> bool {
    strict_value(std::env::var("CI").ok().as_deref())
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("this test")
        .to_string()
}

/// `missing` (what is not there) stops the test: in a strict run it fails
/// (a panic naming `missing` and `how`); otherwise one line on stderr says
/// the test skips, why, and `how` to provide the part. The caller returns
/// after it.
#[track_caller]
pub fn skip(missing: &str, how: &str) {
    let test = test_name();
    if strict() {
        panic!("{test}: {missing}; {how} (CI is set, so a missing part fails the test)");
    }
    eprintln!("skipping {test}: {missing}; {how}");
}

#[cfg(test)]
mod tests {
    use super::strict_value;

    #[test]
    fn ci_set_to_something_other_than_empty_0_or_false_is_strict() {
        for strict in ["true", "TRUE", "1", "yes", "woodpecker"] {
            assert!(strict_value(Some(strict)), "{strict}");
        }
        for lax in ["", " ", "0", "false", "False"] {
            assert!(!strict_value(Some(lax)), "{lax:?}");
        }
        assert!(!strict_value(None));
    }
}
