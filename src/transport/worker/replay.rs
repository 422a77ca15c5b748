//! Sending the disk buffer again: a segment at a time, oldest first, once the server answers.

use super::{Delivery, Packed, Replay};

impl Delivery {
    /// An envelope read back from disk was dealt with; its segment goes once all were.
    pub(super) fn resolved(&mut self, packed: &Packed) {
        let (Some(seq), Some(replay)) = (packed.spooled, self.replay.as_mut()) else {
            return;
        };
        if replay.seq != seq {
            return;
        }
        replay.outstanding = replay.outstanding.saturating_sub(1);
        if replay.outstanding == 0 {
            self.replay = None;
            if let Some(spool) = self.spool.as_mut() {
                spool.done(seq);
            }
            self.publish_spool();
        }
    }

    /// The server stopped answering while a segment was being sent again: what is left of it
    /// stays on disk, for later.
    pub(super) fn abandon_replay(&mut self, seq: u64) {
        if self.replay.as_ref().is_some_and(|r| r.seq == seq) {
            self.replay = None;
        }
        self.queue.retain(|p| p.spooled != Some(seq));
    }

    /// Sends the disk buffer again, oldest segment first, once the server answers and the
    /// queue has room.
    pub(super) fn maybe_replay(&mut self) {
        // A segment may go when the circuit is closed, or as the probe of an open one (nothing
        // else may be waiting to probe with).
        let probing = self.queue.is_empty() && self.in_flight.is_empty();
        let allowed = self.circuit.allowed(
            std::time::Instant::now(),
            self.transport.options.concurrency,
        );
        if self.replay.is_some()
            || !(self.circuit.is_closed() || (probing && allowed > 0))
            || self.queue.len() > self.capacity() / 2
            || self.transport.all_limited()
        {
            return;
        }
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let Some((seq, packed)) = spool.oldest() else {
            return;
        };
        if packed.is_empty() {
            spool.done(seq);
            self.publish_spool();
            return;
        }
        self.replay = Some(Replay {
            seq,
            outstanding: packed.len(),
        });
        self.queue.extend(packed);
    }
}
