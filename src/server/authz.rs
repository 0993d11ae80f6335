//! Who may call what: decided from the caller's kernel credentials (SO_PEERCRED),
//! never from anything the caller says. Read-only RPCs are for root and members of
//! the daemon's group; RPCs that change the node are for uid 0 only.

use nix::unistd::{Gid, Group, Uid, User};

/// What an RPC does to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Looks only (status, listings, a test pull that leaves nothing behind).
    Read,
    /// Changes the node (removes images, edits config, restarts containerd).
    Mutate,
}

/// The calling process as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("permission denied: {rpc} changes the node and needs root (caller uid {uid})")]
    NeedsRoot { rpc: &'static str, uid: u32 },
    #[error(
        "permission denied: uid {uid} is neither root nor in group {group:?}; ask an administrator to add you to it"
    )]
    NotInGroup { uid: u32, group: String },
    #[error(
        "permission denied: the caller's credentials are unknown (not a Unix socket connection)"
    )]
    UnknownCaller,
}

/// The daemon's authorization policy.
#[derive(Debug, Clone)]
pub struct Policy {
    group: String,
}

impl Policy {
    pub fn new(group: impl Into<String>) -> Self {
        Policy {
            group: group.into(),
        }
    }

    /// Decides whether `caller` may make an RPC with `access`. Group membership is
    /// looked up per call, so adding or removing a member takes effect at once.
    pub fn authorize(
        &self,
        caller: Option<Caller>,
        rpc: &'static str,
        access: Access,
    ) -> Result<(), Denied> {
        let caller = caller.ok_or(Denied::UnknownCaller)?;
        if caller.uid == 0 {
            return Ok(());
        }
        if access == Access::Mutate {
            return Err(Denied::NeedsRoot {
                rpc,
                uid: caller.uid,
            });
        }
        if self.is_member(caller) {
            Ok(())
        } else {
            Err(Denied::NotInGroup {
                uid: caller.uid,
                group: self.group.clone(),
            })
        }
    }

    /// Primary group from the socket credentials, or a supplementary listing in the
    /// group database for the caller's user name.
    fn is_member(&self, caller: Caller) -> bool {
        let Ok(Some(group)) = Group::from_name(&self.group) else {
            return false;
        };
        if group.gid == Gid::from_raw(caller.gid) {
            return true;
        }
        match User::from_uid(Uid::from_raw(caller.uid)) {
            Ok(Some(user)) => user.gid == group.gid || group.mem.contains(&user.name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32) -> Option<Caller> {
        Some(Caller {
            uid,
            gid,
            pid: None,
        })
    }

    #[test]
    fn root_may_do_everything() {
        let p = Policy::new("no-such-group-here");
        assert!(
            p.authorize(caller(0, 0), "RemoveImage", Access::Mutate)
                .is_ok()
        );
        assert!(p.authorize(caller(0, 0), "GetStatus", Access::Read).is_ok());
    }

    #[test]
    fn group_members_may_read_but_not_mutate() {
        // Group "root" (gid 0) exists on every Linux system.
        let p = Policy::new("root");
        assert!(
            p.authorize(caller(4242, 0), "GetStatus", Access::Read)
                .is_ok()
        );
        assert_eq!(
            p.authorize(caller(4242, 0), "RemoveImage", Access::Mutate),
            Err(Denied::NeedsRoot {
                rpc: "RemoveImage",
                uid: 4242
            })
        );
    }

    #[test]
    fn strangers_and_unknown_callers_are_refused() {
        let p = Policy::new("root");
        assert!(matches!(
            p.authorize(caller(4242, 4242), "GetStatus", Access::Read),
            Err(Denied::NotInGroup { uid: 4242, .. })
        ));
        assert_eq!(
            p.authorize(None, "GetStatus", Access::Read),
            Err(Denied::UnknownCaller)
        );
        let missing = Policy::new("no-such-group-here");
        assert!(
            missing
                .authorize(caller(4242, 0), "GetStatus", Access::Read)
                .is_err()
        );
    }
}
