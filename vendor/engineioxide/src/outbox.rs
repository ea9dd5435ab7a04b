//! The packets waiting to be written to a socket's transport (authbridge patch).
//!
//! It replaces a bounded `tokio::sync::mpsc` channel and a `watch` channel per socket.
//! tokio's channel allocates its first block of 32 slots (32 × 168 bytes for a
//! [`PacketBuf`]) when it is created, whatever its bound, and keeps it for the socket's
//! whole life: most sockets are idle most of the time, and this was the largest part of
//! an idle socket's memory. Here the queue is a [`VecDeque`] that allocates on the first
//! packet and is released as soon as the transport has taken every packet out of it; a
//! volatile packet is boxed, only while it waits.
//!
//! The semantics are those of the channels it replaces: a bound on the packets waiting
//! (reserved slots included), `Full` and `Closed` errors, permits that reserve a slot,
//! one consumer at a time (the transport that holds `Socket::internal_rx`), a
//! consumer that still drains what is queued once the queue is closed, and a
//! volatile slot where only the latest packet is kept, read after the queue.
use std::{
    collections::VecDeque,
    sync::Mutex,
    task::{Context, Poll, Waker},
};

use engineioxide_core::PacketBuf;
use tokio::sync::{Notify, mpsc::error::TrySendError};

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the tasks waiting in [`Outbox::closed`].
    closed: Notify,
}

struct State {
    queue: VecDeque<PacketBuf>,
    /// Queued packets and reserved slots.
    used: usize,
    capacity: usize,
    volatile: Option<Box<PacketBuf>>,
    closed: bool,
    /// The consumer waiting for a packet.
    waker: Option<Waker>,
}

impl State {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn pop(&mut self) -> Option<PacketBuf> {
        let packets = self.queue.pop_front()?;
        self.used -= 1;
        Some(packets)
    }

    /// An empty queue gives its memory back: an idle socket keeps no buffer.
    fn release_if_empty(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                used: 0,
                capacity: capacity.max(1),
                volatile: None,
                closed: false,
                waker: None,
            }),
            closed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while the lock is held leaves the state consistent: every
        // mutation is a single step.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a packet sent later with [`Outbox::send_reserved`], or
    /// given back with [`Outbox::release`].
    pub(crate) fn try_reserve(&self) -> Result<(), TrySendError<()>> {
        let mut state = self.state();
        if state.closed {
            Err(TrySendError::Closed(()))
        } else if state.used >= state.capacity {
            Err(TrySendError::Full(()))
        } else {
            state.used += 1;
            Ok(())
        }
    }

    /// Gives back a slot taken by [`Outbox::try_reserve`] and not used.
    pub(crate) fn release(&self) {
        let mut state = self.state();
        state.used -= 1;
    }

    /// Queues packets in a slot taken by [`Outbox::try_reserve`]. Once the queue
    /// is closed they are dropped, as tokio's permits do.
    pub(crate) fn send_reserved(&self, packets: PacketBuf) {
        let mut state = self.state();
        if state.closed {
            state.used -= 1;
            return;
        }
        state.queue.push_back(packets);
        state.wake();
    }

    #[allow(clippy::result_large_err, reason = "the error of the mpsc channel it replaces")]
    pub(crate) fn try_send(&self, packets: PacketBuf) -> Result<(), TrySendError<PacketBuf>> {
        let mut state = self.state();
        if state.closed {
            return Err(TrySendError::Closed(packets));
        }
        if state.used >= state.capacity {
            return Err(TrySendError::Full(packets));
        }
        state.used += 1;
        state.queue.push_back(packets);
        state.wake();
        Ok(())
    }

    /// Queues packets even when the queue is full (a control packet of the
    /// transport itself, such as the `Noop` that ends a poll during an upgrade).
    pub(crate) fn force_send(&self, packets: PacketBuf) -> Result<(), ()> {
        let mut state = self.state();
        if state.closed {
            return Err(());
        }
        state.used += 1;
        state.queue.push_back(packets);
        state.wake();
        Ok(())
    }

    /// Keeps `packets` as the volatile packet, in place of any earlier one.
    pub(crate) fn send_volatile(&self, packets: PacketBuf) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.volatile = Some(Box::new(packets));
        state.wake();
        true
    }

    /// Wakes the consumer, to look at something else than the queue (the session's
    /// cancellation).
    pub(crate) fn wake(&self) {
        self.state().wake();
    }

    /// The next queued packet; `None` once the queue is closed and empty.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<PacketBuf>> {
        let mut state = self.state();
        if let Some(packets) = state.pop() {
            return Poll::Ready(Some(packets));
        }
        state.release_if_empty();
        if state.closed {
            return Poll::Ready(None);
        }
        register(&mut state.waker, cx);
        Poll::Pending
    }

    /// The next queued packet, if there is one now.
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Option<PacketBuf> {
        let mut state = self.state();
        let packets = state.pop();
        if packets.is_none() {
            state.release_if_empty();
        }
        packets
    }

    /// The volatile packet, when one is waiting.
    pub(crate) fn poll_volatile(&self, cx: &mut Context<'_>) -> Poll<Option<PacketBuf>> {
        let mut state = self.state();
        if let Some(packets) = state.volatile.take() {
            return Poll::Ready(Some(*packets));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        register(&mut state.waker, cx);
        Poll::Pending
    }

    /// No packet is accepted any more; the consumer still gets those queued.
    pub(crate) fn close(&self) {
        {
            let mut state = self.state();
            state.closed = true;
            state.volatile = None;
            state.wake();
        }
        self.closed.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Resolves once [`Outbox::close`] was called.
    pub(crate) async fn closed(&self) {
        let notified = self.closed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_closed() {
            return;
        }
        notified.await;
    }
}

fn register(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("Outbox")
            .field("queued", &state.queue.len())
            .field("used", &state.used)
            .field("capacity", &state.capacity)
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use engineioxide_core::Packet;
    use smallvec::smallvec;

    use super::*;

    fn packet() -> PacketBuf {
        smallvec![Packet::Ping]
    }

    #[test]
    fn nothing_is_allocated_before_the_first_packet_nor_after_the_last() {
        let outbox = Outbox::new(128);
        assert_eq!(outbox.state().queue.capacity(), 0);
        outbox.try_send(packet()).unwrap();
        assert!(outbox.state().queue.capacity() > 0);
        assert!(outbox.try_recv().is_some());
        assert!(outbox.try_recv().is_none());
        assert_eq!(outbox.state().queue.capacity(), 0);
    }

    #[test]
    fn the_bound_counts_reserved_slots() {
        let outbox = Outbox::new(2);
        outbox.try_reserve().unwrap();
        outbox.try_send(packet()).unwrap();
        assert!(matches!(
            outbox.try_send(packet()),
            Err(TrySendError::Full(_))
        ));
        assert!(matches!(outbox.try_reserve(), Err(TrySendError::Full(()))));
        outbox.release();
        outbox.try_reserve().unwrap();
        outbox.send_reserved(packet());
        assert!(outbox.try_recv().is_some());
        assert!(outbox.try_recv().is_some());
        assert!(outbox.try_recv().is_none());
        outbox.try_send(packet()).unwrap();
    }

    #[tokio::test]
    async fn a_closed_outbox_refuses_packets_and_still_gives_those_queued() {
        let outbox = Outbox::new(8);
        outbox.try_send(packet()).unwrap();
        outbox.close();
        assert!(outbox.is_closed());
        assert!(matches!(
            outbox.try_send(packet()),
            Err(TrySendError::Closed(_))
        ));
        assert!(matches!(
            outbox.try_reserve(),
            Err(TrySendError::Closed(()))
        ));
        assert!(!outbox.send_volatile(packet()));
        let poll = std::future::poll_fn(|cx| Poll::Ready(outbox.poll_recv(cx))).await;
        assert!(matches!(poll, Poll::Ready(Some(_))));
        let poll = std::future::poll_fn(|cx| Poll::Ready(outbox.poll_recv(cx))).await;
        assert!(matches!(poll, Poll::Ready(None)));
        outbox.closed().await;
    }

    #[tokio::test]
    async fn a_packet_wakes_the_waiting_consumer() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let consumer = tokio::spawn({
            let outbox = outbox.clone();
            async move { std::future::poll_fn(|cx| outbox.poll_recv(cx)).await }
        });
        tokio::task::yield_now().await;
        outbox.try_send(packet()).unwrap();
        assert!(consumer.await.unwrap().is_some());
    }

    #[test]
    fn only_the_latest_volatile_packet_is_kept() {
        let outbox = Outbox::new(8);
        assert!(outbox.send_volatile(smallvec![Packet::Ping]));
        assert!(outbox.send_volatile(smallvec![Packet::Pong]));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match outbox.poll_volatile(&mut cx) {
            Poll::Ready(Some(packets)) => assert_eq!(packets[0], Packet::Pong),
            other => panic!("{other:?}"),
        }
        assert!(outbox.poll_volatile(&mut cx).is_pending());
    }
}
