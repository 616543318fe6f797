//! Workers: each owns one snapshot reader connection and one target writer connection, and pulls
//! chunks from a shared queue (largest tables first, so the tail of the load is short).
//!
//! A chunk is copied in one target transaction: `BEGIN`, the rows (LOAD DATA or INSERTs, fed by
//! the reader through a bounded channel), the checkpoint `UPDATE … SET done = 1`, `COMMIT` (with
//! a cluster's epoch, the epoch check and `COMMIT` in one round trip: [`ferry_core::fence`]). A
//! transient target error rolls the chunk back and retries it (fresh connection, with
//! [`Policy::CHUNK`]'s backoff and attempt budget); a source error ends the run, because the snapshot
//! connection cannot be replaced by one at the same snapshot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ferry_core::progress::{ProgressEvent, ProgressSink, RetryWindow};
use ferry_core::retry::{Policy, Retry, Verdict};
use ferry_core::throttle::Throttle;
use ferry_core::{Endpoint, ErrorKind};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::checkpoint;
use crate::chunk::ChunkPlan;
use crate::error::{Ctx, LoadError};
use crate::reader::{self, Encoding, ReadOutcome};
use crate::snapshot::ChunkViews;
use crate::statements::TableSql;
use crate::writer::{self, WriteFailure};
use crate::WriteMethod;

/// Blocks in flight between a reader and its writer.
const CHANNEL_BLOCKS: usize = 3;

/// A chunk to copy.
#[derive(Debug, Clone)]
pub struct WorkItem {
    pub table: usize,
    pub chunk: ChunkPlan,
}

/// State shared by the workers of one run.
pub struct Shared {
    pub tables: Vec<TableSql>,
    pub queue: Mutex<VecDeque<WorkItem>>,
    /// Chunks of each table not yet committed.
    pub remaining: Vec<AtomicU64>,
    /// What the caller asked for.
    pub requested: WriteMethod,
    /// Set when the target does not allow LOAD DATA LOCAL (or INSERT was asked for).
    pub insert_only: AtomicBool,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub chunks: AtomicU64,
    pub job: String,
    /// The job's ownership epoch, checked by every chunk commit ([`ferry_core::fence`]).
    pub fence: Option<ferry_core::fence::Fence>,
    /// The snapshot every chunk is read at (JSON), unless `views` opens one per chunk.
    pub snapshot: String,
    /// Lock-free: each chunk is read in a read view of its own, recorded with the chunk.
    pub views: Option<ChunkViews>,
    /// The longest a chunk's read view stayed open (lock-free loads), in milliseconds.
    pub longest_view_ms: AtomicU64,
    pub throttle: Arc<Throttle>,
    /// Session setup of the target writer connections.
    pub writer_setup: Vec<String>,
    pub progress: ProgressSink,
    pub dst: Endpoint,
    /// Target size of a LOAD DATA block.
    pub load_block: usize,
    /// Target size of an INSERT statement.
    pub insert_block: usize,
    /// Largest LOAD DATA packet.
    pub piece: usize,
}

enum Failure {
    /// The source (snapshot) side failed: the run must end.
    Source(LoadError),
    /// The target side failed: retry when transient.
    Target(LoadError),
    /// LOAD DATA LOCAL is refused by the target.
    Refused(String),
}

/// A target writer connection. With an epoch, the epoch is checked first (a newer owner's claim
/// closes this run's sessions: a retry must stop there, not write) and the connection is
/// registered so that a later owner's claim can close it (`ferry_core::fence`).
async fn connect_writer(shared: &Shared) -> Result<Conn, LoadError> {
    let mut conn = shared.dst.connect(shared.writer_setup.clone()).await?;
    if let Some(f) = &shared.fence {
        f.check(&mut conn).await?;
        f.register(&mut conn).await;
    }
    Ok(conn)
}

/// Copies chunks until the queue is empty.
pub async fn run(shared: Arc<Shared>, mut reader: Conn) -> Result<(), LoadError> {
    let mut writer = connect_writer(&shared).await?;
    loop {
        let next = shared.queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some(item) = next else { break };
        let t = &shared.tables[item.table];
        let span = tracing::info_span!("chunk", table = %t.source_name, chunk = item.chunk.chunk_no);
        let out = copy_with_retries(&shared, &mut reader, &mut writer, &item)
            .instrument(span)
            .await
            .map_err(|e| e.in_chunk(&t.source_name, item.chunk.chunk_no))?;
        shared.rows.fetch_add(out.rows, Ordering::Relaxed);
        shared.bytes.fetch_add(out.bytes, Ordering::Relaxed);
        shared.chunks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ferry_load_rows_total").increment(out.rows);
        metrics::counter!("ferry_load_bytes_total").increment(out.bytes);
        metrics::counter!("ferry_load_chunks_total").increment(1);
        (shared.progress)(ProgressEvent::ChunkDone {
            table: t.source_name.clone(),
            rows: out.rows,
            bytes: out.bytes,
        });
        if shared.remaining[item.table].fetch_sub(1, Ordering::AcqRel) == 1 {
            tracing::info!(table = %t.source_name, "table loaded");
            (shared.progress)(ProgressEvent::TableDone {
                table: t.source_name.clone(),
            });
        }
    }
    let _ = writer.disconnect().await;
    let _ = reader.disconnect().await;
    Ok(())
}

async fn copy_with_retries(
    shared: &Shared,
    reader: &mut Conn,
    writer: &mut Conn,
    item: &WorkItem,
) -> Result<ReadOutcome, LoadError> {
    let t = &shared.tables[item.table];
    // The chunk's own budget; the phase's window is the runner's ([`Policy::OUTAGE`]).
    let mut retry = Retry::new(Policy::CHUNK, RetryWindow(std::time::Duration::ZERO));
    loop {
        let method = if shared.insert_only.load(Ordering::Relaxed) {
            Encoding::Insert
        } else {
            Encoding::LoadData
        };
        match copy_chunk(shared, reader, writer, item, method).await {
            Ok(out) => return Ok(out),
            Err(Failure::Source(e)) => return Err(e),
            Err(Failure::Refused(reason)) => {
                if shared.requested == WriteMethod::LoadData {
                    return Err(LoadError::LocalInfileDisabled { reason });
                }
                tracing::warn!(%reason, "the target refuses LOAD DATA LOCAL; using INSERT");
                shared.insert_only.store(true, Ordering::Relaxed);
            }
            Err(Failure::Target(e)) => {
                if e.kind() != ErrorKind::Transient {
                    return Err(e);
                }
                let Verdict::Wait(wait) = retry.failed() else {
                    return Err(e);
                };
                let attempt = retry.attempts();
                tracing::warn!(error = %e, attempt, "transient error on the target; retrying the chunk");
                (shared.progress)(ProgressEvent::Retrying {
                    what: format!("chunk {} of {}", item.chunk.chunk_no, t.source_name),
                    error: e.to_string(),
                    attempt,
                });
                tokio::time::sleep(wait).await;
                let fresh = connect_writer(shared).await?;
                let old = std::mem::replace(writer, fresh);
                drop(old);
                // A connection lost around COMMIT leaves its outcome unknown: the checkpoint says.
                let done = checkpoint::chunk_done(
                    writer,
                    &shared.job,
                    &t.target_db,
                    &t.target_table,
                    item.chunk.chunk_no,
                )
                .await?;
                if let Some((rows, bytes)) = done {
                    return Ok(ReadOutcome {
                        rows,
                        bytes,
                        complete: true,
                    });
                }
            }
        }
    }
}

async fn rollback(writer: &mut Conn) {
    let _ = writer.query_drop("ROLLBACK").await;
}

async fn copy_chunk(
    shared: &Shared,
    reader: &mut Conn,
    writer: &mut Conn,
    item: &WorkItem,
    enc: Encoding,
) -> Result<ReadOutcome, Failure> {
    let t = &shared.tables[item.table];
    // Lock-free: this chunk's own read view, and where it is in the binlog.
    let view = match &shared.views {
        Some(v) => {
            let opened = std::time::Instant::now();
            let at = v.open(reader).await.map_err(Failure::Source)?;
            Some((v, opened, checkpoint::snapshot_text(&at)))
        }
        None => None,
    };
    let snapshot = view
        .as_ref()
        .map_or(shared.snapshot.as_str(), |(_, _, s)| s.as_str());
    writer
        .query_drop("BEGIN")
        .await
        .ctx(|| "starting a target transaction".into())
        .map_err(Failure::Target)?;
    let (tx, rx) = mpsc::channel(CHANNEL_BLOCKS);
    let enum_error_value = AtomicBool::new(false);
    let block_size = match enc {
        Encoding::LoadData => shared.load_block,
        Encoding::Insert => shared.insert_block,
    };
    let read = reader::read_chunk(
        reader,
        t,
        &item.chunk,
        enc,
        block_size,
        tx,
        &shared.throttle,
        &enum_error_value,
    );
    let write = async {
        match enc {
            Encoding::LoadData => writer::load_data(writer, t, rx, shared.piece, &enum_error_value).await,
            Encoding::Insert => writer::insert(writer, t, rx, &enum_error_value).await,
        }
    };
    let (read, written) = tokio::join!(read, write);
    if let Some((v, opened, _)) = &view {
        let ms = opened.elapsed().as_millis() as u64;
        shared.longest_view_ms.fetch_max(ms, Ordering::Relaxed);
        if let Err(e) = v.close(reader).await {
            rollback(writer).await;
            return Err(Failure::Source(e));
        }
    }
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            rollback(writer).await;
            return Err(Failure::Source(e));
        }
    };
    let written = match written {
        Ok(n) => n,
        Err(f) => {
            rollback(writer).await;
            return Err(match f {
                WriteFailure::Refused(r) => Failure::Refused(r),
                WriteFailure::Error(e) => Failure::Target(e),
            });
        }
    };
    if !read.complete || written != read.rows {
        rollback(writer).await;
        return Err(Failure::Target(LoadError::RowCount {
            read: read.rows,
            written,
        }));
    }
    if let Err(e) = ferry_core::fault::point(ferry_core::fault::LOAD_CHUNK_WRITTEN)
        .ctx(|| "writing the chunk on the target".into())
    {
        rollback(writer).await;
        return Err(Failure::Target(e));
    }
    let marked = async {
        writer
            .exec_drop(
                checkpoint::mark_done_sql(),
                (
                    read.rows,
                    read.bytes,
                    snapshot,
                    shared.job.as_str(),
                    t.target_db.as_str(),
                    t.target_table.as_str(),
                    item.chunk.chunk_no,
                ),
            )
            .await?;
        let n = writer.affected_rows();
        Ok::<u64, mysql_async::Error>(n)
    }
    .await;
    let marked = match marked.ctx(|| "marking the chunk done on the target".into()) {
        Ok(n) => n,
        Err(e) => {
            rollback(writer).await;
            return Err(Failure::Target(e));
        }
    };
    if marked != 1 {
        rollback(writer).await;
        return Err(Failure::Target(LoadError::Checkpoint(
            "the chunk is already marked done (is another run of this job loading at the same time?)".into(),
        )));
    }
    let fence = shared.fence.as_ref();
    if let Err(e) = writer
        .query_drop(format!("{}COMMIT", ferry_core::fence::check_sql(fence)))
        .await
    {
        if let Some(fenced) = ferry_core::fence::after_failed_commit(fence, writer).await {
            return Err(Failure::Target(fenced.into()));
        }
        return Err(Failure::Target(LoadError::Mysql {
            context: "committing the chunk on the target".into(),
            source: e,
        }));
    }
    Ok(read)
}
