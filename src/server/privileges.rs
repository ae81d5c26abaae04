//! Dropping root: port 53 needs privilege to bind, answering queries does not. When started as
//! root with `[server] user` set, apidns binds its sockets, then becomes that user, with that
//! user's primary group and no supplementary groups, for good (real, effective and saved IDs).
//!
//! The alternative is never to be root: start apidns as its own user with the one capability it
//! needs, e.g. systemd's `User=apidns` and `AmbientCapabilities=CAP_NET_BIND_SERVICE`, and leave
//! `user` unset (or set to that same user, which then changes nothing).
//!
//! glibc applies set*id calls to every thread of the process, so the runtime's worker threads
//! (and the probers already running on them) lose root together with the main thread.

use nix::unistd::{Gid, Uid, User, getegid, geteuid, getgid, getuid, setgid, setgroups, setuid};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("server.user: cannot look up user {user:?}: {source}")]
    Lookup { user: String, source: nix::Error },
    #[error("server.user: there is no user {0:?} on this system")]
    NoSuchUser(String),
    #[error(
        "server.user: apidns runs as uid {current}, not root, so it cannot become {user:?} (uid {target}); start it as root or as {user:?}"
    )]
    NotRoot {
        user: String,
        current: u32,
        target: u32,
    },
    #[error("cannot switch to user {user:?}: {step} failed: {source}")]
    Switch {
        user: String,
        step: &'static str,
        source: nix::Error,
    },
    #[error("switched to user {0:?}, but root could be regained; refusing to serve")]
    Regained(String),
}

/// What to do about `user`, given who the process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Already running as the user (or no user is configured): nothing to change.
    Stay,
    /// Root becomes the user.
    Switch { uid: u32, gid: u32 },
}

/// Decides the plan: root switches, the user itself stays, anyone else cannot comply.
pub fn plan(
    user: &str,
    current_euid: u32,
    target_uid: u32,
    target_gid: u32,
) -> Result<Plan, PrivilegeError> {
    if current_euid == target_uid {
        Ok(Plan::Stay)
    } else if current_euid == 0 {
        Ok(Plan::Switch {
            uid: target_uid,
            gid: target_gid,
        })
    } else {
        Err(PrivilegeError::NotRoot {
            user: user.to_string(),
            current: current_euid,
            target: target_uid,
        })
    }
}

/// Becomes `user` when one is configured; call once the privileged sockets are bound.
pub fn drop_privileges(user: Option<&str>) -> Result<(), PrivilegeError> {
    let Some(user) = user else {
        return Ok(());
    };
    let account = User::from_name(user)
        .map_err(|source| PrivilegeError::Lookup {
            user: user.to_string(),
            source,
        })?
        .ok_or_else(|| PrivilegeError::NoSuchUser(user.to_string()))?;
    let current = geteuid().as_raw();
    let Plan::Switch { uid, gid } =
        plan(user, current, account.uid.as_raw(), account.gid.as_raw())?
    else {
        return Ok(());
    };
    let step = |step: &'static str| {
        move |source| PrivilegeError::Switch {
            user: user.to_string(),
            step,
            source,
        }
    };
    // Groups first: once the user ID changes, changing groups is no longer allowed.
    setgroups(&[Gid::from_raw(gid)]).map_err(step("setgroups"))?;
    setgid(Gid::from_raw(gid)).map_err(step("setgid"))?;
    setuid(Uid::from_raw(uid)).map_err(step("setuid"))?;
    if uid != 0 && (setuid(Uid::from_raw(0)).is_ok() || geteuid().is_root()) {
        return Err(PrivilegeError::Regained(user.to_string()));
    }
    info!(
        user,
        uid = getuid().as_raw(),
        euid = geteuid().as_raw(),
        gid = getgid().as_raw(),
        egid = getegid().as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_switches_the_user_itself_stays_anyone_else_fails() {
        assert_eq!(
            plan("apidns", 0, 998, 997).unwrap(),
            Plan::Switch { uid: 998, gid: 997 }
        );
        assert_eq!(plan("apidns", 998, 998, 997).unwrap(), Plan::Stay);
        assert_eq!(plan("root", 0, 0, 0).unwrap(), Plan::Stay);
        let error = plan("apidns", 1000, 998, 997).unwrap_err();
        assert!(matches!(
            error,
            PrivilegeError::NotRoot { current: 1000, .. }
        ));
        assert!(error.to_string().contains("start it as root"), "{error}");
    }

    #[test]
    fn no_user_configured_changes_nothing() {
        drop_privileges(None).unwrap();
    }

    #[test]
    fn an_unknown_user_is_an_error() {
        let error = drop_privileges(Some("apidns-no-such-user-x")).unwrap_err();
        assert!(matches!(error, PrivilegeError::NoSuchUser(_)), "{error}");
    }
}
