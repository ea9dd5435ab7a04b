//! Connection state recovery at a socket's connect, changes and disconnect:
//! a recovering socket gets its `pid` (and, coming back, its old id, rooms
//! and missed events); its session is kept current for as long as it could
//! come back. The token always decides first: a `pid` only ever restores the
//! same user's state, and a revoked login session's `pid` restores nothing.

use socketioxide::extract::SocketRef;
use socketioxide::socket::{ConnectAnswer, DisconnectReason};
use socketioxide::{ProtocolVersion, SocketIo};

use crate::backplane::Backplane;
use crate::identity::Identity;
use crate::recovery::{Asked, Missed, RECOVERY_ROOM, Recoverable, Session};
use crate::state::AppState;

/// What a recovered socket gets back once connected (kept in its extensions
/// until then).
#[derive(Clone, Debug)]
struct Resume {
    rooms: Vec<String>,
    missed: Vec<Missed>,
    /// Where the history is read again once the socket is in its rooms.
    targets: Vec<String>,
    after: u64,
}

/// In the connect middleware, once the token is accepted: a socket that
/// opted in gets its `pid` in the CONNECT answer; one that comes back in
/// time with the `pid` of the same user gets its old id too, and what it
/// missed is fetched.
pub(crate) async fn on_handshake(
    state: &AppState,
    socket: &SocketRef,
    identity: &Identity,
    auth: Option<&serde_json::Value>,
) {
    let Some(_) = state.backplane.recovery() else {
        return;
    };
    let asked = Asked::of(auth);
    // Protocol v4 clients have no recovery (their CONNECT has no answer).
    if !asked.opted_in || socket.protocol() != ProtocolVersion::V5 {
        return;
    }
    let recovered = match &asked.pid {
        Some(pid) => resume(state, socket, identity, pid, asked.offset).await,
        None => None,
    };
    state.metrics.recovery(match (&asked.pid, &recovered) {
        (None, _) => "new",
        (Some(_), Some(_)) => "recovered",
        (Some(_), None) => "not recovered",
    });
    let (pid, public_sid, since) = match &recovered {
        Some((session, _, _)) => (
            session.pid.clone(),
            session.public_sid.clone(),
            session.since,
        ),
        None => {
            // Where its history starts; unknown while Redis is away: then no
            // `pid` (the socket works, without recovery), never a start at 0
            // that would replay the whole history to it later.
            let Ok(since) = state.backplane.current_offset().await else {
                tracing::debug!("recovery not offered to a socket: Redis unavailable");
                return;
            };
            (
                uuid::Uuid::new_v4().simple().to_string(),
                socket.id.as_str().to_owned(),
                since,
            )
        }
    };
    socket.extensions.insert(ConnectAnswer {
        sid: public_sid.clone(),
        pid: Some(pid.clone()),
    });
    socket.extensions.insert(Recoverable::new(
        &pid,
        &public_sid,
        since,
        recovered.is_some(),
    ));
    // Before the socket can be reached (it enters the namespace after the
    // middleware): from its first event on, broadcasts leave it to the gate,
    // which adds the offset and holds live events behind missed ones.
    socket.join(RECOVERY_ROOM);
    if let Some((session, missed, after)) = recovered {
        socket.extensions.insert(Resume {
            targets: session.targets(),
            rooms: session.rooms,
            missed,
            after,
        });
    }
}

/// The stored session of `pid` when it is this user's, not revoked, and its
/// history is whole since `offset`; with what the socket missed, and the
/// offset it missed them after.
async fn resume(
    state: &AppState,
    socket: &SocketRef,
    identity: &Identity,
    pid: &str,
    offset: Option<u64>,
) -> Option<(Session, Vec<Missed>, u64)> {
    let mut session = state
        .backplane
        .take_session(pid, &identity.username, socket.id.as_str())
        .await
        .ok()
        .flatten()?;
    if session
        .session_id
        .as_deref()
        .is_some_and(|sid| state.revocations.is_revoked(sid, claims::unix_now()))
    {
        return None;
    }
    // The rooms the fresh token still allows.
    session
        .rooms
        .retain(|name| crate::targets::allowed(&identity.rooms, name));
    let after = offset.unwrap_or(session.since);
    let missed = state
        .backplane
        .missed(&session.targets(), after)
        .await
        .ok()
        .flatten()?;
    Some((session, missed, after))
}

/// Once connected (already where offsets are sent: the middleware put it
/// there): a recovered socket rejoins its rooms and gets what it missed,
/// before any live event; a recovering socket's session is kept.
pub(crate) async fn on_connected(state: &AppState, socket: &SocketRef) {
    let Some(recoverable) = socket.extensions.get::<Recoverable>() else {
        return;
    };
    if let Some(mut resume) = socket.extensions.remove::<Resume>() {
        for name in &resume.rooms {
            socket.join(crate::targets::room(name));
        }
        // Now in every room: what was kept since the handshake's read (and
        // carried out before the joins) is read again; what comes later
        // reaches the gate. The gate sends each offset once, in order.
        if let Ok(Some(more)) = state.backplane.missed(&resume.targets, resume.after).await {
            resume.missed.extend(more);
        }
        recoverable.replay(socket, resume.missed);
    }
    save(state, socket).await;
}

/// Keeps the session of a recovering socket as it is now (after a join, a
/// leave, a reauth): for the window and one refresh, saved again every
/// refresh while connected ([`keep_sessions`]).
pub(crate) async fn save(state: &AppState, socket: &SocketRef) {
    let (Some(config), Some(recoverable), Some(identity)) = (
        state.backplane.recovery(),
        socket.extensions.get::<Recoverable>(),
        socket.extensions.get::<Identity>(),
    ) else {
        return;
    };
    let session = session_of(socket, &recoverable, &identity);
    state
        .backplane
        .save_sessions(
            &[(socket.id.as_str().to_owned(), session)],
            config.live_session_ttl(),
        )
        .await;
}

/// While the server runs: the sessions of its connected recovering sockets
/// are saved again every refresh, so that a node that dies without a word
/// leaves them for at most the window and one refresh — never past the
/// history they may be owed — and a transport that died unseen can still
/// come back.
pub(crate) async fn keep_sessions(backplane: Backplane, io: SocketIo) {
    let (Some(config), Some(namespace)) = (backplane.recovery(), io.of("/")) else {
        return;
    };
    let mut ticks = tokio::time::interval(config.refresh());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let sockets = namespace.clone().within(RECOVERY_ROOM).sockets();
        backplane
            .save_sessions(&sessions_of(&sockets), config.live_session_ttl())
            .await;
    }
}

/// At a disconnect: a socket that lost its transport may come back within the
/// window; one ended on purpose (logout, expiry, the API, the client itself)
/// may not.
pub(crate) async fn on_disconnect(state: &AppState, socket: &SocketRef, reason: DisconnectReason) {
    let (Some(config), Some(recoverable), Some(identity)) = (
        state.backplane.recovery(),
        socket.extensions.get::<Recoverable>(),
        socket.extensions.get::<Identity>(),
    ) else {
        return;
    };
    match reason {
        DisconnectReason::TransportClose
        | DisconnectReason::TransportError
        | DisconnectReason::HeartbeatTimeout
        | DisconnectReason::ClosingServer => {
            let session = session_of(socket, &recoverable, &identity);
            state
                .backplane
                .save_sessions(&[(socket.id.as_str().to_owned(), session)], config.window)
                .await;
        }
        _ => {
            state
                .backplane
                .forget_session(&recoverable.pid, socket.id.as_str())
                .await;
        }
    }
}

/// At a graceful shutdown, before the transports close (socketioxide's close
/// runs no disconnect handler): every recovering socket's session is kept for
/// the window from now, as after any lost transport — not longer, past which
/// a client must not come back as recovered (the history it would be owed may
/// be gone).
pub(crate) async fn on_shutdown(backplane: &Backplane, io: &SocketIo) {
    let (Some(config), Some(namespace)) = (backplane.recovery(), io.of("/")) else {
        return;
    };
    let sockets = namespace.within(RECOVERY_ROOM).sockets();
    backplane
        .save_sessions(&sessions_of(&sockets), config.window)
        .await;
}

/// The sessions of `sockets` as they are now, each with its owner.
fn sessions_of(sockets: &[SocketRef]) -> Vec<(String, Session)> {
    sockets
        .iter()
        .filter_map(|socket| {
            let recoverable = socket.extensions.get::<Recoverable>()?;
            let identity = socket.extensions.get::<Identity>()?;
            Some((
                socket.id.as_str().to_owned(),
                session_of(socket, &recoverable, &identity),
            ))
        })
        .collect()
}

fn session_of(socket: &SocketRef, recoverable: &Recoverable, identity: &Identity) -> Session {
    Session {
        pid: recoverable.pid.to_string(),
        user: identity.username.to_string(),
        session_id: identity.session_id.as_deref().map(str::to_owned),
        public_sid: recoverable.public_sid.to_string(),
        rooms: crate::targets::joined(socket),
        since: recoverable.since,
    }
}
