//! Job dependencies: the spec keeps them with the ids they resolved to,
//! and jobs are found by name within their project.

use super::{sample_spec, Backend};
use tessera_types::{Condition, JobDependency, JobId, JobState};

/// A job's dependencies, with the ids they resolved to, come back from
/// every read of its spec; `job_names` finds a
/// project's jobs (or those of no project) by exact name or all of them,
/// ascending id, and nothing of another project.
pub fn job_dependencies_and_names_round_trip(b: &mut dyn Backend) {
    let mut s = b.create();
    let ana = s.create_user("ana", false, 1).expect("ana");
    let p1 = s.create_project("p1", ana.id, 2).expect("p1").id;
    let p2 = s.create_project("p2", ana.id, 3).expect("p2").id;
    let split = s
        .create_job(Some(p1), &sample_spec("split"), None, 10)
        .expect("split");
    let enc1 = s
        .create_job(Some(p1), &sample_spec("encode1"), None, 11)
        .expect("e1");
    let other = s
        .create_job(Some(p2), &sample_spec("split"), None, 12)
        .expect("p2");
    let loose = s
        .create_job(None, &sample_spec("split"), None, 13)
        .expect("none");
    let enc2 = s
        .create_job(Some(p1), &sample_spec("encode2"), None, 14)
        .expect("e2");

    let mut by_id = JobDependency::on_id(split);
    by_id.resolved = vec![split];
    let mut by_glob = JobDependency::on_name("encode*")
        .expect("selector")
        .with_condition(Condition::Any);
    by_glob.resolved = vec![enc1, enc2];
    let spec = sample_spec("merge").after_job(by_id).after_job(by_glob);
    let merge = s.create_job(Some(p1), &spec, None, 20).expect("merge");

    let head = s.job_spec(merge).expect("read").expect("merge exists");
    assert_eq!(head.after, spec.after);
    assert!(
        head.tasks.is_empty(),
        "the head is the job without its tasks"
    );
    assert_eq!(s.job_spec(JobId(merge.0 + 100)).expect("read"), None);
    let loaded = s.load_job(merge).expect("load").expect("merge");
    assert_eq!(loaded.spec, spec);

    let names = |s: &dyn super::Database, p, n: Option<&str>| -> Vec<JobId> {
        let rows = s.job_names(p, n).expect("names");
        rows.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(names(&*s, Some(p1), Some("split")), [split]);
    assert_eq!(names(&*s, Some(p2), Some("split")), [other]);
    assert_eq!(names(&*s, None, Some("split")), [loose]);
    assert_eq!(names(&*s, Some(p1), None), [split, enc1, enc2, merge]);
    assert!(
        names(&*s, Some(p1), Some("encode*")).is_empty(),
        "exact only"
    );
    let all = s.job_names(Some(p1), None).expect("names");
    assert_eq!(all[1], (enc1, "encode1".to_string()));

    s.apply(
        &[tessera_types::Change::JobState {
            job: merge,
            state: JobState::Cancelled,
        }],
        30,
    )
    .expect("end");
    let unfinished = s.load_unfinished().expect("unfinished");
    assert!(unfinished.iter().all(|j| j.id != merge));
    let back = unfinished.iter().find(|j| j.id == split).expect("split");
    assert!(back.spec.after.is_empty());
    assert_eq!(
        s.job_spec(merge).expect("read").expect("merge").after,
        spec.after
    );
}
