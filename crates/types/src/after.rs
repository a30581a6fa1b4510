//! Dependencies between jobs: a job may wait for other jobs of its project
//! (`JobSpec::after`), by id or by name (exact, glob or regex, written as
//! task selectors are), each with a [`Condition`].
//!
//! ```
//! use tessera_types::{Condition, JobDependency, JobId, JobSpec};
//! let yaml = "
//! name: merge
//! after:
//!   - job: 12                # a job id
//!   - job: encode*           # every job of the project whose name matches
//!     condition: any
//! tasks: [{name: m, action: {kind: noop}}]
//! ";
//! let spec: JobSpec = serde_yaml::from_str(yaml).unwrap();
//! assert_eq!(spec.after[0], JobDependency::on_id(JobId(12)));
//! assert_eq!(spec.after[1].job.to_string(), "encode*");
//! assert_eq!(spec.after[1].condition, Condition::Any);
//! ```

use crate::{Condition, JobId, Selector, SelectorError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One dependency of a job on other jobs of its project.
///
/// `job` is what the user wrote. `resolved` is what it matched when the job
/// was submitted (job ids, ascending): the scheduler's driver fills it in
/// and the store keeps it, so a restart never resolves the selector again
/// against a different set of jobs. A client never sets it: a submission
/// that carries it is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDependency {
    pub job: JobSelector,
    #[serde(default)]
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<JobId>,
}

impl JobDependency {
    /// Waits for job `id` to succeed.
    pub fn on_id(id: JobId) -> Self {
        Self {
            job: JobSelector::Id(id),
            condition: Condition::Success,
            resolved: Vec::new(),
        }
    }

    /// Waits for the jobs whose names `selector` matches (`split`,
    /// `encode*`, `re:^encode-\d+$`) to succeed.
    pub fn on_name(selector: &str) -> Result<Self, SelectorError> {
        Ok(Self {
            job: JobSelector::Name(selector.parse()?),
            condition: Condition::Success,
            resolved: Vec::new(),
        })
    }

    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }
}

/// Which jobs a [`JobDependency`] names: one job by its id (written as a
/// number), or the jobs of the project whose names a [`Selector`] matches
/// (written as a string; `"12"` is the name "12", not job 12).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobSelector {
    Id(JobId),
    Name(Selector),
}

impl fmt::Display for JobSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobSelector::Id(id) => write!(f, "{id}"),
            JobSelector::Name(s) => write!(f, "{s}"),
        }
    }
}

impl Serialize for JobSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JobSelector::Id(id) => s.serialize_i64(id.0),
            JobSelector::Name(sel) => s.collect_str(sel),
        }
    }
}

impl<'de> Deserialize<'de> for JobSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SelectorVisitor)
    }
}

struct SelectorVisitor;

impl serde::de::Visitor<'_> for SelectorVisitor {
    type Value = JobSelector;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a job id (a number) or a job name selector (a string: `split`, `encode*`)")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JobSelector, E> {
        match i64::try_from(v) {
            Ok(id) if id > 0 => Ok(JobSelector::Id(JobId(id))),
            _ => Err(E::custom(format!("{v} is not a job id"))),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JobSelector, E> {
        if v > 0 {
            Ok(JobSelector::Id(JobId(v)))
        } else {
            Err(E::custom(format!(
                "{v} is not a job id; job ids start at 1"
            )))
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JobSelector, E> {
        v.parse()
            .map(JobSelector::Name)
            .map_err(|e: SelectorError| E::custom(format!("{e} in `after`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;

    #[test]
    fn ids_are_numbers_and_names_are_strings() {
        let yaml = "name: j\nafter: [{job: 7}, {job: '7'}, {job: 're:^e\\d$', condition: failure}]\ntasks: []";
        let spec: JobSpec = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(spec.after[0].job, JobSelector::Id(JobId(7)));
        assert_eq!(
            spec.after[1].job,
            JobSelector::Name(Selector::Name("7".into()))
        );
        assert_eq!(
            spec.after[2].job,
            JobSelector::Name(Selector::Regex("^e\\d$".into()))
        );
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(r#"{"job":7,"condition":"success"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<JobSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn nonsense_selectors_are_refused_with_a_message() {
        for (bad, says) in [
            (r#"{"job":0}"#, "0 is not a job id"),
            (r#"{"job":-3}"#, "-3 is not a job id"),
            (r#"{"job":""}"#, "empty dependency selector"),
            (
                r#"{"job":1.5}"#,
                "a job id (a number) or a job name selector",
            ),
            (
                r#"{"job":[1]}"#,
                "a job id (a number) or a job name selector",
            ),
            (r#"{"job":1,"colour":2}"#, "unknown field `colour`"),
        ] {
            let err = serde_json::from_str::<JobDependency>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
