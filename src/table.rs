//! The shim's process table: every task (a container's init) and its exec'd
//! processes, with their exits. Pure bookkeeping, no syscalls, so the exit
//! rules are unit tested.

use crate::io::{Background, ProcessIo};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::ttrpc::{self, Code};
use myshim_runtime::cgroups::OomWatch;
use myshim_runtime::spec::Process;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub fn rpc_error(code: Code, msg: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.to_string()))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exit {
    pub status: u32,
    pub at: Timestamp,
}

/// The init or an exec'd process.
pub struct Proc {
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub io: ProcessIo,
    pub exit: Option<Exit>,
    /// An exec's process spec until it is started.
    pub pending: Option<Process>,
    /// Being started: an exit now is published after the start event.
    pub starting: bool,
    /// An exit recorded while starting, not published yet.
    pub exit_deferred: bool,
}

impl Proc {
    pub fn new(pid: i32, pidfd: Option<OwnedFd>, io: ProcessIo, pending: Option<Process>) -> Proc {
        Proc {
            pid,
            pidfd,
            io,
            exit: None,
            pending,
            starting: false,
            exit_deferred: false,
        }
    }
}

pub struct Task {
    pub bundle: PathBuf,
    pub rootfs_mounted: bool,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    /// OOM kills in the container's cgroup (none without a memory cgroup).
    pub oom: Option<OomWatch>,
    /// The task that publishes them, ending with the task.
    pub _oom_watcher: Option<Background>,
    /// A delete is running its course (poststop hooks) without the table.
    pub deleting: bool,
}

/// Which process an exit belonged to: the container's id and the process's
/// id (the container's id again for the init).
#[derive(Debug, PartialEq)]
pub struct Exited {
    pub container_id: String,
    pub id: String,
    pub pid: i32,
    pub exit: Exit,
}

impl Exited {
    pub fn is_init(&self) -> bool {
        self.container_id == self.id
    }
}

/// What became of an exit the reaper reported.
#[derive(Debug, PartialEq)]
pub enum Recorded {
    /// A known process's: publish it now.
    Publish(Exited),
    /// A process being started: its starter publishes it after the start.
    Deferred,
    /// No known process's (yet): kept for [`Table::claim_exit`].
    Unclaimed,
}

/// Exits of pids nobody claimed, kept at most: a logger's or an orphan's
/// are never claimed.
const UNCLAIMED_KEPT: usize = 256;

/// The tasks and their processes. Create, start and delete run the
/// runtime (and its hooks) without holding the table, so an exit can come
/// before its pid is registered: it waits in `unclaimed` until the spawner
/// claims it, and only if the process behind its pidfd is gone (a kept
/// exit of an earlier holder of a reused pid is never taken for it).
#[derive(Default)]
pub struct Table {
    pub tasks: HashMap<String, Task>,
    /// Ids of tasks being created, not in `tasks` yet.
    pub creating: std::collections::HashSet<String>,
    unclaimed: std::collections::VecDeque<(i32, Exit)>,
}

fn not_found(what: impl std::fmt::Display) -> ttrpc::Error {
    rpc_error(Code::NOT_FOUND, format!("{what} not found"))
}

impl Table {
    pub fn task(&self, id: &str) -> ttrpc::Result<&Task> {
        self.tasks.get(id).ok_or_else(|| not_found(format_args!("task {id}")))
    }

    pub fn task_mut(&mut self, id: &str) -> ttrpc::Result<&mut Task> {
        self.tasks
            .get_mut(id)
            .ok_or_else(|| not_found(format_args!("task {id}")))
    }

    /// The init when `exec_id` is empty, else that exec of task `id`.
    pub fn process_mut(&mut self, id: &str, exec_id: &str) -> ttrpc::Result<&mut Proc> {
        let task = self.task_mut(id)?;
        if exec_id.is_empty() {
            return Ok(&mut task.init);
        }
        task.execs
            .get_mut(exec_id)
            .ok_or_else(|| not_found(format_args!("process {exec_id} of task {id}")))
    }

    /// Whether `id` is taken, by a task or by one being created.
    pub fn has(&self, id: &str) -> bool {
        self.tasks.contains_key(id) || self.creating.contains(id)
    }

    /// Records a reaped child's exit: whose it was, or kept unclaimed for
    /// a child that is no process of a task yet (a process being spawned),
    /// or ever (a logger, an orphan, the init of a deleted task).
    pub fn record_exit(&mut self, pid: i32, exit: Exit) -> Recorded {
        for (container_id, task) in self.tasks.iter_mut() {
            let procs = std::iter::once((container_id, &mut task.init)).chain(task.execs.iter_mut());
            for (id, proc) in procs {
                if proc.pid == pid && proc.exit.is_none() {
                    proc.exit = Some(exit.clone());
                    proc.pidfd = None;
                    if proc.starting {
                        proc.exit_deferred = true;
                        return Recorded::Deferred;
                    }
                    return Recorded::Publish(Exited {
                        container_id: container_id.clone(),
                        id: id.clone(),
                        pid,
                        exit,
                    });
                }
            }
        }
        if self.unclaimed.len() == UNCLAIMED_KEPT {
            self.unclaimed.pop_front();
        }
        self.unclaimed.push_back((pid, exit));
        Recorded::Unclaimed
    }

    /// The exit of a just-registered `pid` that came before it was known:
    /// taken only when `gone` (its pidfd says the process has exited), else
    /// any kept for that pid was an earlier holder's and is dropped.
    pub fn claim_exit(&mut self, pid: i32, gone: bool) -> Option<Exit> {
        let mut found = None;
        self.unclaimed.retain(|(p, exit)| {
            if *p == pid {
                found = Some(exit.clone());
            }
            *p != pid
        });
        found.filter(|_| gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: u32) -> Exit {
        Exit {
            status,
            at: Timestamp::default(),
        }
    }

    fn proc(pid: i32, pending: bool) -> Proc {
        Proc::new(pid, None, ProcessIo::none(), pending.then(Process::default))
    }

    fn table_with_task(id: &str, init_pid: i32) -> Table {
        let mut table = Table::default();
        table.tasks.insert(
            id.into(),
            Task {
                bundle: PathBuf::from("/b"),
                rootfs_mounted: false,
                init: proc(init_pid, false),
                execs: HashMap::new(),
                oom: None,
                _oom_watcher: None,
                deleting: false,
            },
        );
        table
    }

    fn published(r: Recorded) -> Exited {
        match r {
            Recorded::Publish(exited) => exited,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_exit_before_its_pid_is_known_is_claimed_once_it_is() {
        let mut table = table_with_task("c1", 10);
        assert_eq!(table.record_exit(11, exit(7)), Recorded::Unclaimed);
        assert_eq!(table.claim_exit(11, true), Some(exit(7)));
        assert_eq!(table.claim_exit(11, true), None, "claimed twice");
    }

    #[test]
    fn a_kept_exit_of_a_reused_pid_is_not_a_live_process_s() {
        let mut table = table_with_task("c1", 10);
        table.record_exit(11, exit(7));
        // pid 11 was reused by a process that still runs: the exit was not its.
        assert_eq!(table.claim_exit(11, false), None);
        assert_eq!(table.claim_exit(11, true), None, "the stale exit was dropped");
    }

    #[test]
    fn an_exit_while_starting_is_deferred() {
        let mut table = table_with_task("c1", 10);
        table.task_mut("c1").unwrap().init.starting = true;
        assert_eq!(table.record_exit(10, exit(0)), Recorded::Deferred);
        let init = &table.task("c1").unwrap().init;
        assert!(init.exit_deferred && init.exit == Some(exit(0)));
    }

    #[test]
    fn unclaimed_exits_are_bounded() {
        let mut table = Table::default();
        for pid in 0..(UNCLAIMED_KEPT as i32 + 10) {
            table.record_exit(1000 + pid, exit(0));
        }
        assert_eq!(table.unclaimed.len(), UNCLAIMED_KEPT);
        assert_eq!(table.claim_exit(1000, true), None, "the oldest went first");
    }

    #[test]
    fn exit_of_the_init_names_the_container() {
        let mut table = table_with_task("c1", 10);
        let exited = published(table.record_exit(10, exit(0)));
        assert!(exited.is_init());
        assert_eq!(exited.container_id, "c1");
        assert_eq!(table.task("c1").unwrap().init.exit, Some(exit(0)));
    }

    #[test]
    fn exit_of_an_exec_names_the_exec() {
        let mut table = table_with_task("c1", 10);
        table.task_mut("c1").unwrap().execs.insert("e1".into(), proc(11, false));
        let exited = published(table.record_exit(11, exit(42)));
        assert_eq!((exited.container_id.as_str(), exited.id.as_str()), ("c1", "e1"));
        assert!(!exited.is_init());
        assert!(table.task("c1").unwrap().init.exit.is_none());
    }

    #[test]
    fn an_exit_of_no_known_process_is_nobody_s() {
        let mut table = table_with_task("c1", 10);
        assert_eq!(table.record_exit(12, exit(3)), Recorded::Unclaimed);
        assert!(table.task("c1").unwrap().init.exit.is_none());
    }

    #[test]
    fn a_reused_pid_does_not_overwrite_a_recorded_exit() {
        let mut table = table_with_task("c1", 10);
        table.record_exit(10, exit(1));
        assert_eq!(table.record_exit(10, exit(2)), Recorded::Unclaimed);
        assert_eq!(table.task("c1").unwrap().init.exit, Some(exit(1)));
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let mut table = table_with_task("c1", 10);
        let code = |e: ttrpc::Error| match e {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(table.task("nope").err().unwrap()), Code::NOT_FOUND);
        assert_eq!(code(table.process_mut("c1", "nope").err().unwrap()), Code::NOT_FOUND);
    }
}
