//! The rooms every socket sits in by who it is: `user:NAME` and
//! `session:SID`. Delivery to a user or a login session is delivery to its room.

/// The room holding every socket of one user.
pub(crate) fn user_room(username: &str) -> String {
    format!("user:{username}")
}

/// The room holding every socket of one login session.
pub(crate) fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}
