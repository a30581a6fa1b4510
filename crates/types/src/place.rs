//! Placement rules beyond the labels a node must carry: labels it must not
//! carry, and the nodes other jobs ran on (to join them or keep away), hard
//! or soft. The docker endpoint writes Swarm classic's `constraint:` and
//! `affinity:` filters as these; placement among workers enforces them.

use crate::JobId;
use serde::{Deserialize, Serialize};

/// Rules per task at most.
pub const MAX_RULES: usize = 64;
/// Jobs one rule names at most.
pub const MAX_RULE_JOBS: usize = 1000;

/// One rule: the node carries a label, or ran an attempt of one of some
/// jobs (`not`: it does not); a hard rule keeps the attempt off nodes that
/// break it, a soft one only prefers nodes that keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRule {
    pub near: Near,
    /// The node must *not* carry the label, or not be one those jobs ran on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub not: bool,
    /// A preference: nodes that break it are only passed over for a while.
    #[serde(default, skip_serializing_if = "is_false")]
    pub soft: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a rule matches a node against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Near {
    /// The node carries `key=value` (a worker's `--labels`).
    Label { key: String, value: String },
    /// The node ran (or runs) an attempt of one of these jobs.
    Jobs(Vec<JobId>),
}

impl PlaceRule {
    /// The rule in words, as a placement message shows it: "a node with
    /// zone=eu", "not the node job 12 ran on".
    pub fn describe(&self) -> String {
        let soft = if self.soft { " (preferred)" } else { "" };
        let what = match (&self.near, self.not) {
            (Near::Label { key, value }, false) => format!("a node with {key}={value}"),
            (Near::Label { key, value }, true) => format!("a node without {key}={value}"),
            (Near::Jobs(jobs), not) => {
                let ids: Vec<String> = jobs.iter().map(|j| j.to_string()).collect();
                let which = if not { "not the node" } else { "the node" };
                format!("{which} job {} ran on", ids.join(", "))
            }
        };
        format!("{what}{soft}")
    }

    /// Why a task's rules are refused (too many, a rule naming no job or
    /// too many, an empty label), if they are.
    pub fn check(rules: &[PlaceRule]) -> Result<(), String> {
        if rules.len() > MAX_RULES {
            return Err(format!(
                "{} placement rules; a task may have at most {MAX_RULES}",
                rules.len()
            ));
        }
        for r in rules {
            match &r.near {
                Near::Label { key, .. } if key.is_empty() => {
                    return Err("a placement rule names an empty label".into())
                }
                Near::Jobs(jobs) if jobs.is_empty() || jobs.len() > MAX_RULE_JOBS => {
                    return Err(format!(
                        "a placement rule names {} jobs; name between 1 and {MAX_RULE_JOBS}",
                        jobs.len()
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_back_and_describe_themselves() {
        let rules = vec![
            PlaceRule {
                near: Near::Label {
                    key: "zone".into(),
                    value: "eu".into(),
                },
                not: true,
                soft: false,
            },
            PlaceRule {
                near: Near::Jobs(vec![JobId(12)]),
                not: false,
                soft: true,
            },
        ];
        let json = serde_json::to_string(&rules).unwrap();
        let back: Vec<PlaceRule> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
        assert_eq!(rules[0].describe(), "a node without zone=eu");
        assert_eq!(rules[1].describe(), "the node job 12 ran on (preferred)");
        assert!(PlaceRule::check(&rules).is_ok());
        let empty = PlaceRule {
            near: Near::Jobs(vec![]),
            not: false,
            soft: false,
        };
        assert!(PlaceRule::check(&[empty]).is_err());
    }
}
