//! The live feed: what the driver commits and the progress attempts report,
//! broadcast to whoever listens (the API's event streams, live log follow).
//!
//! Publishing costs nothing while nobody listens. A listener that falls
//! behind by more than the buffer loses the oldest items and is told how many
//! (`RecvError::Lagged`); it should then re-read the state it shows from the
//! store, which is always at least as new as the feed.

use std::sync::Arc;
use tessera_types::{AttemptNo, Change, Millis, Progress, TaskRef};
use tokio::sync::broadcast;

/// Items a listener may miss before it is told it lagged.
const BUFFER: usize = 4096;

/// One item of the feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedItem {
    /// Changes just committed, in order, at `at`.
    Changes { at: Millis, changes: Vec<Change> },
    /// An attempt's process is running (its start was committed earlier).
    Running {
        task: TaskRef,
        attempt: AttemptNo,
        at: Millis,
    },
    /// An attempt reported progress (not durable).
    Progress {
        task: TaskRef,
        attempt: AttemptNo,
        progress: Progress,
    },
}

/// The sending side, held by the driver; [`Feed::subscribe`] is on every
/// [`DriverHandle`](crate::DriverHandle).
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Arc<FeedItem>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl Feed {
    /// A receiver of every item published from now on. Usable from async
    /// code (`recv().await`) and from threads (`blocking_recv`).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    /// Whether anyone listens (so callers can skip building an item).
    pub(crate) fn listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub(crate) fn publish(&self, item: FeedItem) {
        // An error only means nobody listens any more.
        let _ = self.tx.send(Arc::new(item));
    }
}
