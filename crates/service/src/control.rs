//! Job control: suspend, resume, retry, priority. Each asks the driver,
//! which answers once the change is committed; the job returned is read
//! back from the store afterwards.

use crate::access::{JobAccess, MayAct};
use crate::jobs::JobStatus;
use crate::{Service, ServiceError};
use tessera_driver::{DriverError, DriverHandle};
use tessera_types::JobId;

/// The range a job's priority offset may take.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = 0..=100;

/// What to do to a job.
#[derive(Clone, Copy, Debug)]
pub enum Control {
    Suspend,
    Resume,
    Retry,
    Priority(i32),
}

impl Control {
    fn send(self, driver: &DriverHandle, job: JobId) -> Result<(), DriverError> {
        match self {
            Control::Suspend => driver.suspend(job),
            Control::Resume => driver.resume(job),
            Control::Retry => driver.retry(job),
            Control::Priority(p) => driver.set_priority(job, p),
        }
    }
}

impl Service {
    /// Carries out `what` on the job and returns it as it is now. Refusals
    /// (resume of a job that is not suspended, retry of a running or
    /// succeeded job...) are `Conflict`s with the scheduler's words.
    pub async fn control<R: MayAct>(
        &self,
        job: &JobAccess<R>,
        what: Control,
    ) -> Result<JobStatus, ServiceError> {
        if let Control::Priority(p) = what {
            if !PRIORITY_RANGE.contains(&p) {
                return Err(ServiceError::Invalid(format!(
                    "priority {p} is out of range; give {} to {}",
                    PRIORITY_RANGE.start(),
                    PRIORITY_RANGE.end()
                )));
            }
        }
        let id = job.id();
        self.ask(move |d| what.send(d, id)).await?;
        let job = self
            .reload(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("job {id} does not exist")))?;
        self.status_of(job).await
    }
}
