//! Offsets committed behind the sinks (invariant 1).
//!
//! Each poll becomes a [`Progress`]: every sink write and dead letter made from it holds an
//! [`Ack`], which the sink completes only once the data is durable (Kafka delivery report,
//! Parquet file renamed into place). A poll's offsets become committable when all its acks are
//! done and every earlier poll's are too, so a commit never jumps over unfinished work. Rows a
//! filter removed hold no ack: they are done when the transform is.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The completion state of one poll.
#[derive(Debug, Default)]
pub struct Progress {
    /// The highest offset of the poll per partition.
    offsets: BTreeMap<Partition, i64>,
    outstanding: AtomicUsize,
    failed: Mutex<Option<String>>,
    sealed: AtomicBool,
}

impl Progress {
    /// The poll's highest offset per partition: what a sink that records offsets with its data
    /// (Delta) stores.
    pub fn offsets(&self) -> &BTreeMap<Partition, i64> {
        &self.offsets
    }

    /// A new ack that this poll waits for.
    pub fn hold(self: &Arc<Self>) -> Ack {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        Ack {
            progress: Some(Arc::clone(self)),
        }
    }

    fn fail(&self, why: String) {
        if let Ok(mut f) = self.failed.lock() {
            f.get_or_insert(why);
        }
    }

    fn is_done(&self) -> bool {
        self.sealed.load(Ordering::Acquire) && self.outstanding.load(Ordering::Acquire) == 0
    }
}

/// A promise to report one piece of a poll durable. Dropping it without [`Ack::done`] counts as a
/// failure, so a lost ack can stall commits but never advance them.
#[derive(Debug)]
pub struct Ack {
    progress: Option<Arc<Progress>>,
}

impl Ack {
    /// The data is durable.
    pub fn done(mut self) {
        if let Some(p) = self.progress.take() {
            p.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The data could not be written.
    pub fn fail(mut self, why: impl Into<String>) {
        if let Some(p) = self.progress.take() {
            p.fail(why.into());
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(p) = self.progress.take() {
            p.fail("a sink dropped its acknowledgement".into());
        }
    }
}

/// A (topic, partition).
pub type Partition = (Arc<str>, i32);

/// Tracks polls in order and yields what may be committed.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    pending: VecDeque<Arc<Progress>>,
    committable: BTreeMap<Partition, i64>,
    committed: BTreeMap<Partition, i64>,
}

/// A failed write: nothing past it may be committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a sink failed; offsets are not committed past it: {0}")]
pub struct WriteFailed(pub String);

impl OffsetTracker {
    /// Registers a poll whose highest offset per partition is given; returns its progress, to
    /// hand out acks from and to [`OffsetTracker::seal`] when every write has been issued.
    pub fn begin(&mut self, highest: BTreeMap<Partition, i64>) -> Arc<Progress> {
        let progress = Arc::new(Progress {
            offsets: highest,
            ..Progress::default()
        });
        self.pending.push_back(Arc::clone(&progress));
        progress
    }

    /// No more acks will be taken from this poll.
    pub fn seal(progress: &Arc<Progress>) {
        progress.sealed.store(true, Ordering::Release);
    }

    /// Moves finished polls, in order, into the committable set. Fails if a write failed.
    pub fn advance(&mut self) -> Result<(), WriteFailed> {
        while let Some(p) = self.pending.front() {
            if let Some(why) = p.failed.lock().ok().and_then(|f| f.clone()) {
                return Err(WriteFailed(why));
            }
            if !p.is_done() {
                break;
            }
            if let Some(p) = self.pending.pop_front() {
                for (tp, &offset) in &p.offsets {
                    let next = offset + 1;
                    let e = self.committable.entry(tp.clone()).or_insert(next);
                    *e = (*e).max(next);
                }
            }
        }
        Ok(())
    }

    /// The offsets (next to read) that are done but not yet committed.
    pub fn to_commit(&self) -> BTreeMap<Partition, i64> {
        self.committable
            .iter()
            .filter(|(tp, o)| self.committed.get(*tp) != Some(o))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect()
    }

    /// Records a successful commit.
    pub fn committed(&mut self, offsets: &BTreeMap<Partition, i64>) {
        for (tp, o) in offsets {
            self.committed.insert(tp.clone(), *o);
        }
    }

    /// Forgets finished offsets of partitions this worker no longer holds: after a rebalance
    /// their new owner resumes from the last commit (at-least-once: re-read, never skipped).
    pub fn retain_partitions(&mut self, held: impl Fn(&Partition) -> bool) {
        self.committable.retain(|tp, _| held(tp));
    }

    /// What has been committed so far.
    pub fn committed_offsets(&self) -> &BTreeMap<Partition, i64> {
        &self.committed
    }

    /// Abandons every poll still in flight (a sink dropped their rows: they will be read
    /// again). Returns where each partition resumes: the next offset after what is done, for
    /// the partitions something is known of.
    pub fn rewind(&mut self) -> BTreeMap<Partition, i64> {
        self.pending.clear();
        let mut at = self.committed.clone();
        at.extend(self.committable.iter().map(|(tp, o)| (tp.clone(), *o)));
        at
    }

    /// Polls still waiting for their sinks.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Partition {
        ("t".into(), p)
    }

    #[test]
    fn commits_only_behind_every_earlier_poll() {
        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 9)].into());
        let ack_a = a.hold();
        OffsetTracker::seal(&a);
        let b = t.begin([(tp(0), 19), (tp(1), 4)].into());
        let ack_b = b.hold();
        OffsetTracker::seal(&b);

        ack_b.done();
        t.advance().unwrap();
        assert!(
            t.to_commit().is_empty(),
            "b is done but a is not: nothing may commit"
        );

        ack_a.done();
        t.advance().unwrap();
        let c = t.to_commit();
        assert_eq!(c, [(tp(0), 20), (tp(1), 5)].into());
        t.committed(&c);
        assert!(t.to_commit().is_empty());
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn revoked_partitions_are_not_committed() {
        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 9), (tp(1), 9)].into());
        OffsetTracker::seal(&a);
        t.advance().unwrap();
        t.retain_partitions(|p| p.1 == 1);
        assert_eq!(t.to_commit(), [(tp(1), 10)].into());
    }

    #[test]
    fn an_unsealed_poll_is_not_done_even_with_no_acks_out() {
        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 1)].into());
        a.hold().done();
        t.advance().unwrap();
        assert!(t.to_commit().is_empty());
        OffsetTracker::seal(&a);
        t.advance().unwrap();
        assert_eq!(t.to_commit(), [(tp(0), 2)].into());
    }

    #[test]
    fn a_failed_or_dropped_ack_blocks_commits() {
        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 1)].into());
        drop(a.hold());
        OffsetTracker::seal(&a);
        assert!(t.advance().is_err());
        assert!(t.to_commit().is_empty());

        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 1)].into());
        a.hold().fail("disk full");
        OffsetTracker::seal(&a);
        assert_eq!(t.advance().unwrap_err().0, "disk full");
    }

    #[test]
    fn a_rewind_drops_what_is_in_flight_and_resumes_after_what_is_done() {
        let mut t = OffsetTracker::default();
        let a = t.begin([(tp(0), 9)].into());
        OffsetTracker::seal(&a);
        t.advance().unwrap();
        t.committed(&t.to_commit());
        let b = t.begin([(tp(0), 19), (tp(1), 3)].into());
        OffsetTracker::seal(&b);
        t.advance().unwrap();
        let c = t.begin([(tp(0), 29)].into());
        let _held = c.hold();
        assert_eq!(t.rewind(), [(tp(0), 20), (tp(1), 4)].into());
        assert_eq!(t.in_flight(), 0);
    }
}
