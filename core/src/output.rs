//! The output queue every state machine's `poll_transmit` drains.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Body chunks at least this large are queued as they are instead of copied.
const ZERO_COPY_MIN: usize = 1024;

/// Bytes waiting to be written, in order.
///
/// Small pieces (heads, chunk-size lines, small bodies) are gathered in a reusable staging
/// buffer; large body chunks are queued as the `Bytes` the caller gave, without a copy.
#[derive(Debug, Default)]
pub(crate) struct Output {
    queue: VecDeque<Bytes>,
    staging: BytesMut,
}

impl Output {
    /// The buffer to append small writes to; it follows everything already queued.
    pub(crate) fn staging(&mut self) -> &mut BytesMut {
        &mut self.staging
    }

    /// Appends body bytes, copying only small ones.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.len() < ZERO_COPY_MIN {
            self.staging.extend_from_slice(&data);
        } else {
            if !self.staging.is_empty() {
                let staged = self.staging.split().freeze();
                self.queue.push_back(staged);
            }
            self.queue.push_back(data);
        }
    }

    /// The next bytes to write, oldest first.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if let Some(front) = self.queue.pop_front() {
            return Some(front);
        }
        if self.staging.is_empty() {
            None
        } else {
            Some(self.staging.split().freeze())
        }
    }

    /// Whether everything has been handed out.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.staging.is_empty()
    }
}
