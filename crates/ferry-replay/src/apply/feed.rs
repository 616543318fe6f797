//! The binlog reader in a task of its own, ahead of the applier: it reads and translates events
//! into a bounded queue (blocking when the applier is slower or paused), and publishes the read
//! position for the progress report.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tracing::Instrument;

use super::AbortOnDrop;
use crate::error::ReplayError;
use crate::event::{BinlogPos, ReplEvent};
use crate::stream::BinlogReader;

/// An event and, for a group-ending event, the GTID state after it.
pub(crate) struct FedEvent {
    pub ev: ReplEvent,
    pub gtid: Option<String>,
}

/// The receiving end of the reader task.
pub(crate) struct Feed {
    rx: mpsc::Receiver<Result<FedEvent, ReplayError>>,
    read_pos: Arc<Mutex<BinlogPos>>,
    _task: AbortOnDrop,
}

impl Feed {
    /// Moves `reader` into a task that fills a queue of `capacity` events.
    pub fn spawn(mut reader: BinlogReader, capacity: usize) -> Feed {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let read_pos = Arc::new(Mutex::new(reader.position()));
        let rp = read_pos.clone();
        let span = tracing::info_span!("binlog_feed");
        let task = tokio::spawn(
            async move {
                loop {
                    let item = match reader.next().await {
                        Ok(Some(ev)) => {
                            // The whole state after the group (MySQL: the executed set, which
                            // the checkpoint stores; an empty set is no state to store).
                            let gtid = if ev.ends_group() {
                                reader
                                    .gtid_position()
                                    .map(|p| p.to_string())
                                    .filter(|t| !t.is_empty())
                            } else {
                                None
                            };
                            if let Ok(mut g) = rp.lock() {
                                *g = reader.position();
                            }
                            Ok(FedEvent { ev, gtid })
                        }
                        Ok(None) => Err(ReplayError::Disconnected {
                            position: reader.position().to_string(),
                            reason: "the binlog stream ended".into(),
                        }),
                        Err(e) => Err(e),
                    };
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
                reader.close().await;
            }
            .instrument(span),
        );
        Feed {
            rx,
            read_pos,
            _task: AbortOnDrop(task),
        }
    }

    /// The next event (an error ends the feed).
    pub async fn recv(&mut self) -> Result<FedEvent, ReplayError> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(ReplayError::Disconnected {
                position: self.read_position().to_string(),
                reason: "the binlog reader task ended".into(),
            }),
        }
    }

    /// True when no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// The position after the last event read from the source.
    pub fn read_position(&self) -> BinlogPos {
        self.read_pos
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| BinlogPos::new("", 4))
    }
}
