//! The shim v2 Task service: containerd's requests translated into calls on
//! the myshim runtime (run in process), the process table and the events
//! containerd expects. Everything runs on one thread. The runtime calls that
//! clone, run hooks or wait for processes run in the fork helper while the
//! loop awaits their reply, without holding the process table: a slow hook
//! of one container does not stall the requests for the others of its pod
//! (see [`Table`] for the exits that come meanwhile). Wait waits without it.

use crate::events::{Event, Events};
use crate::io::{Background, Paths, ProcessIo};
use crate::spawner;
use crate::table::{rpc_error, Exit, Exited, Proc, Recorded, Table, Task};
use async_trait::async_trait;
use containerd_shim::asynchronous::util::write_str_to_file;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::{well_known_types::timestamp::Timestamp, MessageField};
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{api, Config, DeleteResponse, ExitSignal, Flags, StartOpts, TtrpcContext, TtrpcResult};
use myshim_runtime::cgroups::OomWatch;
use myshim_runtime::{container, spec::Process, state};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard, Notify};

fn failed_precondition(e: anyhow::Error) -> ttrpc::Error {
    rpc_error(Code::FAILED_PRECONDITION, format!("{e:#}"))
}

fn internal(e: anyhow::Error) -> ttrpc::Error {
    rpc_error(Code::UNKNOWN, format!("{e:#}"))
}

fn raw(fds: &[OwnedFd; 3]) -> [std::os::fd::RawFd; 3] {
    [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()]
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

/// How long the OOM watch lets a burst of OOM episodes settle before it
/// counts the kills.
const OOM_SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// The runtime's state root for a containerd namespace.
fn state_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/myshim").join(namespace)
}

fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
}

/// Mounts the snapshotter's mounts at bundle/rootfs.
fn mount_rootfs(bundle: &Path, mounts: &[containerd_shim::protos::types::mount::Mount]) -> TtrpcResult<()> {
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)
        .map_err(|e| rpc_error(Code::UNKNOWN, format!("mkdir {}: {e}", rootfs.display())))?;
    for m in mounts {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        containerd_shim::mount::mount_rootfs(opt(&m.type_).as_deref(), opt(&m.source).as_deref(), &m.options, &rootfs)
            .inspect_err(|_| unmount_rootfs(bundle))?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct Service {
    /// The id containerd started this shim for (`-id`).
    id: String,
    namespace: String,
    exit: Arc<ExitSignal>,
    table: Arc<Mutex<Table>>,
    /// Woken at every recorded exit, for Wait.
    exits: Arc<Notify>,
    events: Option<Events>,
}

#[async_trait]
impl containerd_shim::Shim for Service {
    type T = Service;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            exit: Arc::new(ExitSignal::default()),
            table: Arc::new(Mutex::new(Table::default())),
            exits: Arc::new(Notify::new()),
            events: None,
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let grouping = shim_group(Path::new("."), &opts.id);
        let address = containerd_shim::spawn(opts, &grouping, Vec::new()).await?;
        write_str_to_file("address", &address).await?;
        Ok(address)
    }

    /// containerd's cleanup after a shim died: kill and remove the container,
    /// unmount its rootfs.
    async fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // containerd runs `delete` in the bundle directory.
        let bundle = std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
        let id = &self.id;
        if let Err(e) = container::delete(&state_root(&self.namespace), id, true) {
            log::warn!("deleting {id}: {e:#}");
        }
        unmount_rootfs(&bundle);
        // A dead shim could not remove its socket: do it for it. A pod
        // member's address names the pod's shared shim, which goes on
        // serving the other members while it accepts connections.
        if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
            let socket = address.trim().trim_start_matches("unix://").to_string();
            let own_shim = shim_group(&bundle, id) == *id;
            if own_shim || std::os::unix::net::UnixStream::connect(&socket).is_err() {
                let _ = std::fs::remove_file(&socket);
            }
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: MessageField::some(now()),
            ..Default::default()
        })
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        let mut service = self.clone();
        // Our own forwarder replaces the crate's publisher (see events.rs).
        service.events = Some(Events::start(&publisher.address));
        service.watch_exits().await;
        service
    }
}

/// The id whose shim serves the container of `bundle`: containers of one
/// pod share the sandbox's shim, as with containerd's runc shim.
fn shim_group(bundle: &Path, id: &str) -> String {
    myshim_runtime::spec::Spec::load(bundle)
        .ok()
        .and_then(|spec| spec.annotations.get("io.kubernetes.cri.sandbox-id").cloned())
        .unwrap_or_else(|| id.to_string())
}

impl Service {
    fn publish<E: Event>(&self, topic: &'static str, event: E) {
        if let Some(events) = &self.events {
            events.publish(topic, &self.namespace, event);
        }
    }

    async fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().await
    }

    /// Records every child exit the reaper reports and publishes TaskExit.
    async fn watch_exits(&self) {
        use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
        let mut sub = match monitor_subscribe(Topic::Pid).await {
            Ok(sub) => sub,
            Err(e) => {
                log::error!("cannot subscribe to exits: {e}");
                return;
            }
        };
        let service = self.clone();
        tokio::spawn(async move {
            while let Some(event) = sub.rx.recv().await {
                if let Subject::Pid(pid) = event.subject {
                    service.record_exit(pid, event.exit_code as u32).await;
                }
            }
        });
    }

    async fn record_exit(&self, pid: i32, status: u32) {
        let mut table = self.lock().await;
        if let Recorded::Publish(exited) = table.record_exit(pid, Exit { status, at: now() }) {
            self.publish_exit_of(&mut table, exited);
        }
        drop(table);
        self.exits.notify_waiters();
    }

    /// TaskExit, after what must come before it: for an init, a TaskOOM
    /// for a kill not reported yet, and the end of what it left behind.
    fn publish_exit_of(&self, table: &mut Table, exited: Exited) {
        if exited.is_init() {
            self.publish_new_ooms(table, &exited.container_id);
            if let Err(e) = container::kill_leftovers(&state_root(&self.namespace), &exited.container_id) {
                log::warn!("container {:?}: killing what its init left: {e:#}", exited.container_id);
            }
        }
        self.publish_exit(exited);
    }

    /// Publishes the exit of `id`'s process `exec_id` (the init when empty)
    /// if it came while it was being started or spawned.
    fn publish_exit_held_back(&self, table: &mut Table, id: &str, exec_id: &str) {
        let Ok(proc) = table.process_mut(id, exec_id) else {
            return;
        };
        proc.starting = false;
        let held_back = std::mem::take(&mut proc.exit_deferred);
        if let (true, Some(exit)) = (held_back, proc.exit.clone()) {
            let exited = Exited {
                container_id: id.to_string(),
                id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
                pid: proc.pid,
                exit,
            };
            self.publish_exit_of(table, exited);
            self.exits.notify_waiters();
        }
    }

    /// Registers a just-spawned process's pid, taking an exit that came
    /// before (see [`Table::claim_exit`]); it is published by the caller
    /// after the process's start event.
    fn claim_early_exit(table: &mut Table, id: &str, exec_id: &str) -> TtrpcResult<()> {
        let proc = table.process_mut(id, exec_id)?;
        let (pid, gone) = (
            proc.pid,
            proc.pidfd.as_ref().is_none_or(|fd| container::pidfd_exited(fd, 0)),
        );
        if let Some(exit) = table.claim_exit(pid, gone) {
            let proc = table.process_mut(id, exec_id)?;
            proc.exit = Some(exit);
            proc.pidfd = None;
            proc.exit_deferred = true;
        }
        Ok(())
    }

    /// TaskOOM for OOM kills in the container not reported yet.
    fn publish_new_ooms(&self, table: &mut Table, id: &str) {
        let Some(watch) = table.tasks.get_mut(id).and_then(|t| t.oom.as_mut()) else {
            return;
        };
        match watch.new_kills() {
            Ok(0) => {}
            Ok(_) => self.publish(
                TASK_OOM_EVENT_TOPIC,
                TaskOOM {
                    container_id: id.into(),
                    ..Default::default()
                },
            ),
            Err(e) => log::debug!("{id}: {e:#}"),
        }
    }

    /// Publishes TaskOOM as OOM kills happen, until the task is deleted.
    fn watch_ooms(&self, id: &str, watch: &OomWatch) -> Option<Background> {
        let readable = watch
            .as_fd()
            .try_clone_to_owned()
            .map_err(anyhow::Error::from)
            .and_then(crate::io::register);
        let readable = match readable {
            Ok(fd) => fd,
            Err(e) => {
                log::warn!("{id}: not watching for OOM kills: {e:#}");
                return None;
            }
        };
        let (service, id) = (self.clone(), id.to_string());
        Some(Background::spawn(async move {
            while let Ok(mut ready) = readable.readable().await {
                // One look per burst: a process being OOM-killed can set off
                // hundreds of OOM episodes, and its kill is counted after the
                // first one is signalled (v1).
                tokio::time::sleep(OOM_SETTLE).await;
                let mut table = service.lock().await;
                let Some(task) = table.tasks.get_mut(&id) else { return };
                if task.init.exit.is_none() {
                    service.publish_new_ooms(&mut table, &id);
                } else if let Some(watch) = task.oom.as_mut() {
                    // Kills while the container is torn down come after its
                    // TaskExit, which had the last TaskOOM: not reported.
                    let _ = watch.new_kills();
                }
                ready.clear_ready();
            }
        }))
    }

    fn publish_exit(&self, exited: Exited) {
        self.publish(
            TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: exited.container_id,
                id: exited.id,
                pid: exited.pid as u32,
                exit_status: exited.exit.status,
                exited_at: MessageField::some(exited.exit.at),
                ..Default::default()
            },
        );
    }

    fn status_of(&self, id: &str, proc: &Proc, exec: bool) -> api::Status {
        if proc.exit.is_some() {
            return api::Status::STOPPED;
        }
        if exec {
            return if proc.pending.is_some() {
                api::Status::CREATED
            } else {
                api::Status::RUNNING
            };
        }
        let root = state_root(&self.namespace);
        match state::ContainerDir::open(&root, id).and_then(|d| Ok(d.load()?.status(&d.path))) {
            Ok(state::Status::Created) => api::Status::CREATED,
            Ok(state::Status::Running) => api::Status::RUNNING,
            Ok(state::Status::Paused) => api::Status::PAUSED,
            Ok(state::Status::Stopped) => api::Status::STOPPED,
            Ok(state::Status::Creating) | Err(_) => api::Status::UNKNOWN,
        }
    }

    /// Creates container `id` with `io` as its stdio; whatever fails after
    /// the runtime made it removes it again.
    async fn spawn_init(&self, id: &str, bundle: &Path, mut io: ProcessIo) -> anyhow::Result<Proc> {
        let root = state_root(&self.namespace);
        let stdio = io.take_stdio()?;
        let spawned = spawner::create(root.clone(), id, bundle.to_path_buf(), raw(&stdio)).await?;
        if let Some(master) = spawned.console {
            if let Err(e) = io.attach_console(master) {
                let _ = spawner::delete(root, id).await;
                return Err(e);
            }
        }
        Ok(Proc::new(spawned.pid, Some(spawned.pidfd), io, None))
    }

    /// Starts the pending exec `exec_id` of task `id`, the table free while
    /// the helper spawns it; returns its pid. A failed spawn leaves it
    /// created (it can be deleted); a process that runs but cannot be wired
    /// up is killed (its exit is reported as usual).
    async fn spawn_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<i32> {
        let (process, stdio) = {
            let mut table = self.lock().await;
            let proc = table.process_mut(id, exec_id)?;
            let process = proc
                .pending
                .take()
                .ok_or_else(|| rpc_error(Code::FAILED_PRECONDITION, format!("process {exec_id} already started")))?;
            match proc.io.take_stdio() {
                Ok(stdio) => (process, stdio),
                Err(e) => {
                    proc.pending = Some(process);
                    return Err(internal(e));
                }
            }
        };
        let spawned = spawner::exec(state_root(&self.namespace), id, process.clone(), raw(&stdio)).await;
        drop(stdio);
        let mut table = self.lock().await;
        let table = &mut *table;
        let proc = match table.process_mut(id, exec_id) {
            Ok(proc) => proc,
            Err(e) => {
                // Deleted meanwhile: what was spawned must not run on untracked.
                if let Ok(spawned) = &spawned {
                    let _ = container::pidfd_kill(&spawned.pidfd, libc::SIGKILL);
                }
                return Err(e);
            }
        };
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                proc.pending = Some(process);
                return Err(internal(e));
            }
        };
        proc.pid = spawned.pid;
        proc.pidfd = Some(spawned.pidfd);
        if let Some(master) = spawned.console {
            if let Err(e) = proc.io.attach_console(master) {
                if let Some(pidfd) = &proc.pidfd {
                    let _ = container::pidfd_kill(pidfd, libc::SIGKILL);
                }
                return Err(internal(e));
            }
        }
        // Until the caller has published TaskExecStarted, an exit waits.
        proc.starting = true;
        let pid = proc.pid;
        Self::claim_early_exit(table, id, exec_id)?;
        Ok(pid)
    }
}

fn already_exists(table: &Table, id: &str) -> TtrpcResult<()> {
    match table.has(id) {
        true => Err(rpc_error(Code::ALREADY_EXISTS, format!("task {id} already exists"))),
        false => Ok(()),
    }
}

/// Runs a handler's body to its end even if containerd gives up on the
/// request (ttrpc drops a handler's future on a timeout or a lost
/// connection): a create, start or delete cut halfway would leave what it
/// made running untracked.
async fn detached<T: Send + 'static>(
    body: impl std::future::Future<Output = TtrpcResult<T>> + Send + 'static,
) -> TtrpcResult<T> {
    tokio::spawn(body)
        .await
        .map_err(|e| rpc_error(Code::INTERNAL, format!("handler: {e}")))?
}

/// The bodies of the handlers that must not be cut halfway (see `detached`).
impl Service {
    async fn create_task(&self, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        {
            let mut table = self.lock().await;
            already_exists(&table, &req.id)?;
            table.creating.insert(req.id.clone());
        }
        let made = self.make_task(&req).await;
        let mut table = self.lock().await;
        table.creating.remove(&req.id);
        let task = made?;
        let pid = task.init.pid;
        table.tasks.insert(req.id.clone(), task);
        // An exit before the pid was registered (an OOM kill, a kill from
        // outside) waits for TaskCreate.
        Self::claim_early_exit(&mut table, &req.id, "")?;
        self.publish(
            TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: pid as u32,
                ..Default::default()
            },
        );
        self.publish_exit_held_back(&mut table, &req.id, "");
        drop(table);
        crate::trim_heap();
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// The part of create that runs without the table: stdio, the rootfs,
    /// the runtime's create (hooks included) and the OOM watch.
    async fn make_task(&self, req: &api::CreateTaskRequest) -> TtrpcResult<Task> {
        let paths = Paths::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let io = ProcessIo::open(paths).await.map_err(internal)?;
        let bundle = PathBuf::from(&req.bundle);
        let rootfs_mounted = !req.rootfs.is_empty();
        if rootfs_mounted {
            mount_rootfs(&bundle, &req.rootfs)?;
        }
        let init = self.spawn_init(&req.id, &bundle, io).await.inspect_err(|_| {
            if rootfs_mounted {
                unmount_rootfs(&bundle);
            }
        });
        let init = init.map_err(internal)?;
        let oom = container::oom_watch(&state_root(&self.namespace), &req.id)
            .inspect_err(|e| log::debug!("{}: no OOM events: {e:#}", req.id))
            .ok();
        let oom_watcher = oom.as_ref().and_then(|watch| self.watch_ooms(&req.id, watch));
        Ok(Task {
            bundle,
            rootfs_mounted,
            init,
            execs: HashMap::new(),
            oom,
            _oom_watcher: oom_watcher,
            deleting: false,
        })
    }

    async fn start_process(&self, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        if req.exec_id.is_empty() {
            let pid = {
                let mut table = self.lock().await;
                let init = &mut table.task_mut(&req.id)?.init;
                init.starting = true;
                init.pid
            };
            let started = spawner::start(state_root(&self.namespace), &req.id).await;
            let mut table = self.lock().await;
            if started.is_ok() {
                self.publish(
                    TASK_START_EVENT_TOPIC,
                    TaskStart {
                        container_id: req.id.clone(),
                        pid: pid as u32,
                        ..Default::default()
                    },
                );
            }
            self.publish_exit_held_back(&mut table, &req.id, "");
            started.map_err(failed_precondition)?;
            return Ok(api::StartResponse {
                pid: pid as u32,
                ..Default::default()
            });
        }
        let pid = self.spawn_exec(&req.id, &req.exec_id).await?;
        let mut table = self.lock().await;
        self.publish(
            TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
        self.publish_exit_held_back(&mut table, &req.id, &req.exec_id);
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn delete_process(&self, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        let mut table = self.lock().await;
        if !req.exec_id.is_empty() {
            let task = table.task_mut(&req.id)?;
            let proc = task.execs.get(&req.exec_id).ok_or_else(|| {
                rpc_error(
                    Code::NOT_FOUND,
                    format!("process {} of task {} not found", req.exec_id, req.id),
                )
            })?;
            if proc.exit.is_none() && proc.pending.is_none() {
                return Err(rpc_error(
                    Code::FAILED_PRECONDITION,
                    format!("process {} is running", req.exec_id),
                ));
            }
            let proc = task.execs.remove(&req.exec_id).expect("checked above");
            let exit = proc.exit.unwrap_or(Exit { status: 0, at: now() });
            return Ok(api::DeleteResponse {
                pid: proc.pid as u32,
                exit_status: exit.status,
                exited_at: MessageField::some(exit.at),
                ..Default::default()
            });
        }
        let task = table.task(&req.id)?;
        if task.deleting {
            return Err(rpc_error(
                Code::FAILED_PRECONDITION,
                format!("task {} is being deleted", req.id),
            ));
        }
        if task.init.exit.is_none() && self.status_of(&req.id, &task.init, false) == api::Status::RUNNING {
            return Err(rpc_error(
                Code::FAILED_PRECONDITION,
                format!("task {} is running", req.id),
            ));
        }
        table.task_mut(&req.id)?.deleting = true;
        drop(table);
        // poststop hooks run here: the table is free for the others.
        let deleted = spawner::delete(state_root(&self.namespace), &req.id).await;
        let mut table = self.lock().await;
        if let Err(e) = deleted {
            table.task_mut(&req.id)?.deleting = false;
            return Err(internal(e));
        }
        let task = table.tasks.remove(&req.id).expect("kept while deleting");
        if task.rootfs_mounted {
            unmount_rootfs(&task.bundle);
        }
        // Execs that outlived the init (no pid namespace of its own) were
        // killed with the container: their exits, not reaped yet, would find
        // no task any more.
        for (exec_id, proc) in &task.execs {
            if proc.exit.is_none() && proc.pending.is_none() {
                self.publish_exit(Exited {
                    container_id: req.id.clone(),
                    id: exec_id.clone(),
                    pid: proc.pid,
                    exit: Exit {
                        status: 128 + libc::SIGKILL as u32,
                        at: now(),
                    },
                });
            }
        }
        let exit = task.init.exit.unwrap_or(Exit {
            status: 128 + libc::SIGKILL as u32,
            at: now(),
        });
        let pid = task.init.pid as u32;
        self.publish(
            TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: MessageField::some(exit.at.clone()),
                ..Default::default()
            },
        );
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(exit.at),
            ..Default::default()
        })
    }
}

#[async_trait]
impl containerd_shim::Task for Service {
    async fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        let this = self.clone();
        detached(async move { this.create_task(req).await }).await
    }

    async fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let this = self.clone();
        detached(async move { this.start_process(req).await }).await
    }

    async fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let mut table = self.lock().await;
        let bundle = table.task(&req.id)?.bundle.display().to_string();
        let proc = table.process_mut(&req.id, &req.exec_id)?;
        let status = self.status_of(&req.id, proc, !req.exec_id.is_empty());
        let mut resp = api::StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle,
            pid: proc.pid as u32,
            stdin: proc.io.paths.stdin.clone(),
            stdout: proc.io.paths.stdout.clone(),
            stderr: proc.io.paths.stderr.clone(),
            terminal: proc.io.paths.terminal,
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        resp.set_status(status);
        if let Some(exit) = &proc.exit {
            resp.exit_status = exit.status;
            resp.exited_at = MessageField::some(exit.at.clone());
        }
        Ok(resp)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        loop {
            // Registered before looking, so an exit in between is not missed.
            let woken = self.exits.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let exit = self.lock().await.process_mut(&req.id, &req.exec_id)?.exit.clone();
            if let Some(exit) = exit {
                return Ok(api::WaitResponse {
                    exit_status: exit.status,
                    exited_at: MessageField::some(exit.at),
                    ..Default::default()
                });
            }
            woken.await;
        }
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let mut table = self.lock().await;
        let proc = table.process_mut(&req.id, &req.exec_id)?;
        if proc.exit.is_some() {
            return Err(rpc_error(Code::NOT_FOUND, "process already finished"));
        }
        if req.exec_id.is_empty() {
            container::kill(&state_root(&self.namespace), &req.id, req.signal as i32, req.all).map_err(internal)?;
        } else if let Some(pidfd) = &proc.pidfd {
            container::pidfd_kill(pidfd, req.signal as i32).map_err(internal)?;
        } else {
            return Err(rpc_error(Code::FAILED_PRECONDITION, "process not started"));
        }
        Ok(api::Empty::new())
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let exec_exists = |table: &mut Table| -> TtrpcResult<()> {
            match table.task_mut(&req.id)?.execs.contains_key(&req.exec_id) {
                true => Err(rpc_error(
                    Code::ALREADY_EXISTS,
                    format!("exec {} already exists", req.exec_id),
                )),
                false => Ok(()),
            }
        };
        exec_exists(&mut *self.lock().await)?;
        let spec = req.spec.as_ref().map(|a| a.value.as_slice()).unwrap_or_default();
        let mut process: Process = serde_json::from_slice(spec)
            .map_err(|e| rpc_error(Code::INVALID_ARGUMENT, format!("exec process spec: {e}")))?;
        process.terminal = req.terminal;
        // Opened before the table is taken: a binary:// logger may take its time.
        let paths = Paths::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let io = ProcessIo::open(paths).await.map_err(internal)?;
        let mut table = self.lock().await;
        exec_exists(&mut table)?;
        let task = table.task_mut(&req.id)?;
        task.execs
            .insert(req.exec_id.clone(), Proc::new(0, None, io, Some(process)));
        self.publish(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let mut table = self.lock().await;
        let proc = table.process_mut(&req.id, &req.exec_id)?;
        proc.io.resize(req.width, req.height).map_err(internal)?;
        Ok(api::Empty::new())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        self.lock().await.process_mut(&req.id, &req.exec_id)?.io.close_stdin();
        Ok(api::Empty::new())
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let table = self.lock().await;
        table.task(&req.id)?;
        let root = state_root(&self.namespace);
        let saved = state::ContainerDir::open(&root, &req.id)
            .and_then(|d| d.load())
            .map_err(internal)?;
        let pids = if state::process_state(saved.pid, saved.pid_start_time).is_some() {
            container::container_pids(&saved).map_err(internal)?
        } else {
            vec![]
        };
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim::protos::types::task::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        let this = self.clone();
        detached(async move { this.delete_process(req).await }).await
    }

    async fn connect(&self, _ctx: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let table = self.lock().await;
        let task_pid = table.tasks.get(&req.id).map(|t| t.init.pid as u32).unwrap_or_default();
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.lock().await.tasks.is_empty() {
            // Serving stops now (containerd waits for that, at boot too);
            // what is still queued is delivered before the process exits
            // (events::drain_before_exit, from main).
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }

    async fn checkpoint(&self, _ctx: &TtrpcContext, _req: api::CheckpointTaskRequest) -> TtrpcResult<api::Empty> {
        Err(rpc_error(Code::UNIMPLEMENTED, "checkpoint is not implemented"))
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock().await;
        table.task(&req.id)?;
        container::pause(&state_root(&self.namespace), &req.id).map_err(failed_precondition)?;
        self.publish(
            TASK_PAUSED_EVENT_TOPIC,
            TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock().await;
        table.task(&req.id)?;
        container::resume(&state_root(&self.namespace), &req.id).map_err(failed_precondition)?;
        self.publish(
            TASK_RESUMED_EVENT_TOPIC,
            TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            },
        );
        Ok(api::Empty::new())
    }

    /// The resources arrive as the OCI LinuxResources JSON in an Any.
    async fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock().await;
        table.task(&req.id)?;
        let value = req.resources.as_ref().map(|a| a.value.as_slice()).unwrap_or_default();
        let resources: myshim_runtime::resources::Resources =
            serde_json::from_slice(value).map_err(|e| rpc_error(Code::INVALID_ARGUMENT, format!("resources: {e}")))?;
        container::update(&state_root(&self.namespace), &req.id, &resources).map_err(internal)?;
        Ok(api::Empty::new())
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        self.lock().await.task(&req.id)?;
        let stats = container::stats(&state_root(&self.namespace), &req.id).map_err(internal)?;
        let unified = myshim_runtime::cgroups::is_unified_host();
        let any = crate::metrics::to_any(&stats, unified).map_err(|e| rpc_error(Code::INTERNAL, e))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }
}
