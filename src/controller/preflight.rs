//! Before a plan's first write: can every step finish? A restart needs systemd's bus
//! to answer for the unit; a file needs a writable directory (a read-only `/etc` under
//! `ProtectSystem`, an immutable image). A plan that cannot finish is refused before it
//! starts, in the dry run too, so the node is never left half-changed for a reason
//! that was knowable up front.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use nix::unistd::{AccessFlags, access};

use super::Controller;
use super::ports::{ContainerdPort, Prober, UnitManager};
use crate::plan::{Plan, Step};

/// How long the unit manager may take to say it is there.
const UNIT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Why `plan` could not finish, one sentence each with the way forward; empty
    /// when every step can run. With `manual_restart` the operator restarts
    /// containerd: ctrdiag must only be able to see that it did.
    pub(super) async fn preflight(&self, plan: &Plan, manual_restart: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let units: BTreeSet<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::RestartUnit { unit, .. } => Some(unit.as_str()),
                _ => None,
            })
            .collect();
        if manual_restart
            && !units.is_empty()
            && let Err(e) = self.executor.can_see_restarts().await
        {
            problems.push(e.to_string());
        }
        for unit in units.into_iter().filter(|_| !manual_restart) {
            let answer = tokio::time::timeout(UNIT_CHECK_TIMEOUT, self.units.state(unit)).await;
            let why = match answer {
                Ok(Ok(state)) if state.load_state == "loaded" => continue,
                Ok(Ok(state)) => {
                    problems.push(format!(
                        "the plan restarts {unit}, which systemd has as {:?}: containerd may run inside another unit (k3s.service, rke2-server.service, rke2-agent.service): set containerd_unit to it, or make the change by hand from the plan above",
                        state.load_state
                    ));
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!(
                    "systemd did not answer within {}s",
                    UNIT_CHECK_TIMEOUT.as_secs()
                ),
            };
            problems.push(format!(
                "the plan restarts {unit}, but ctrdiag cannot reach it through systemd ({why}): run the fix again with --restart=manual (ctrdiag writes the files, you run `{}`, ctrdiag proves the change or undoes it), or give ctrdiagd the system bus (dbus_address, or mount /run/dbus/system_bus_socket into its pod)",
                self.node.manual_restart.command
            ));
        }
        let dirs: BTreeSet<&Path> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::WriteFile { path, .. } | Step::MoveToBackup { path, .. } => {
                    path.ancestors().skip(1).find(|d| d.exists())
                }
                _ => None,
            })
            .collect();
        for dir in dirs {
            if let Err(errno) = access(dir, AccessFlags::W_OK) {
                problems.push(format!(
                    "{} is not writable ({}): a read-only /etc (ProtectSystem=, an immutable node image) or missing rights; make it writable for ctrdiagd, or apply the plan above by hand",
                    dir.display(),
                    errno.desc()
                ));
            }
        }
        problems
    }
}
