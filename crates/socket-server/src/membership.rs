//! One lock per stripe of sockets, held while a socket's rooms are counted and
//! changed.

use std::sync::{Mutex, MutexGuard, PoisonError};

use socketioxide::extract::SocketRef;

/// Held while a socket's rooms are counted and changed, so that joins of one
/// socket arriving together (each handler is a task) cannot both take the
/// last place. Striped by socket: no state per socket.
#[derive(Debug)]
pub(crate) struct Membership(Box<[Mutex<()>]>);

impl Default for Membership {
    fn default() -> Self {
        Self((0..64).map(|_| Mutex::new(())).collect())
    }
}

impl Membership {
    pub(crate) fn lock(&self, socket: &SocketRef) -> MutexGuard<'_, ()> {
        // A socket id is random base64: its last character picks a stripe.
        let last = socket.id.as_str().bytes().last().unwrap_or_default();
        let stripe = &self.0[usize::from(last) % self.0.len()];
        stripe.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
