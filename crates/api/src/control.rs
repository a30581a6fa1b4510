//! The job control service: suspend, resume, retry, priority. Each asks the
//! driver, which answers once the change is committed; the view returned is
//! read back from the store afterwards.

use crate::views::JobView;
use crate::{ApiError, AppState};
use tessera_driver::{DriverError, DriverHandle};
use tessera_store::JobRecord;

/// The range a job's priority offset may take through the API.
pub(crate) const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = 0..=100;

/// What to do to a job.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Control {
    Suspend,
    Resume,
    Retry,
    Priority(i32),
}

impl Control {
    fn send(self, driver: &DriverHandle, job: &JobRecord) -> Result<(), DriverError> {
        match self {
            Control::Suspend => driver.suspend(job.id),
            Control::Resume => driver.resume(job.id),
            Control::Retry => driver.retry(job.id),
            Control::Priority(p) => driver.set_priority(job.id, p),
        }
    }
}

/// Carries out `what` on `job` and returns the job as it is now. Refusals
/// (resume of a job that is not suspended, retry of a running or succeeded
/// job...) are 409s with the scheduler's words.
pub(crate) async fn control(
    state: &AppState,
    job: JobRecord,
    what: Control,
) -> Result<JobView, ApiError> {
    if let Control::Priority(p) = what {
        if !PRIORITY_RANGE.contains(&p) {
            return Err(ApiError::Invalid(format!(
                "priority {p} is out of range; give {} to {}",
                PRIORITY_RANGE.start(),
                PRIORITY_RANGE.end()
            )));
        }
    }
    let driver = state.driver.clone();
    let id = job.id;
    tokio::task::spawn_blocking(move || what.send(&driver, &job)).await??;
    let job = state
        .db(move |db| {
            db.job(id)?
                .ok_or_else(|| ApiError::NotFound(format!("job {id} does not exist")))
        })
        .await?;
    crate::jobs::view(state, job).await
}
