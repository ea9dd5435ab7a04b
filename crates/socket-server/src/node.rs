//! This node's sockets, and what it does with an envelope for them (one it
//! published, or one another node published).

use socketioxide::SocketIo;

use crate::bus::{self, Action, Envelope, Outcome};
use crate::revocations::Revoker;

/// What carrying out an envelope needs: the sockets, and the revocation list.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) io: SocketIo,
    pub(crate) revoker: Revoker,
}

impl Node {
    /// Carries `envelope` out on this node's sockets; says how many it
    /// reached (and, for a survey, whose they are).
    pub(crate) async fn carry_out(&self, envelope: &Envelope) -> Outcome {
        let sockets = match &envelope.action {
            Action::Emit { event, data } => {
                bus::emit_locally(&self.io, &envelope.to, event, data, envelope.offset).await
            }
            Action::End { reason } => bus::end_locally(&self.io, &envelope.to, reason).await,
            Action::Revoke { sid, until } => self.revoker.revoke_locally(sid, *until).await,
            Action::Survey => return bus::survey_locally(&self.io, &envelope.to),
        };
        Outcome {
            sockets,
            users: Vec::new(),
        }
    }
}
