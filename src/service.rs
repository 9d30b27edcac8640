//! The shim v2 Task service over the myshim runtime: the process table,
//! exit tracking and the events containerd expects.

use crate::io::{Paths, ProcessIo};
use crate::spawner;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::{well_known_types::timestamp::Timestamp, MessageDyn, MessageField};
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{api, Config, DeleteResponse, ExitSignal, Flags, StartOpts, TtrpcContext, TtrpcResult};
use myshim_runtime::{container, spec::Process, state};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

fn rpc_error(code: Code, msg: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.to_string()))
}

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

/// The runtime's state root for a containerd namespace.
fn state_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/myshim").join(namespace)
}

#[derive(Clone)]
struct Exit {
    status: u32,
    at: Timestamp,
}

/// The init or an exec'd process.
struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    io: ProcessIo,
    exit: Option<Exit>,
    /// An exec's process spec until it is started.
    pending: Option<Process>,
}

struct Task {
    bundle: PathBuf,
    rootfs_mounted: bool,
    init: Proc,
    execs: HashMap<String, Proc>,
}

#[derive(Default)]
struct Table {
    tasks: HashMap<String, Task>,
    /// Exits of pids not (yet) in the table: an exec can exit before its
    /// start returned its pid.
    early_exits: HashMap<i32, Exit>,
}

impl Table {
    fn task(&self, id: &str) -> TtrpcResult<&Task> {
        self.tasks
            .get(id)
            .ok_or_else(|| rpc_error(Code::NOT_FOUND, format!("task {id} not found")))
    }

    fn task_mut(&mut self, id: &str) -> TtrpcResult<&mut Task> {
        self.tasks
            .get_mut(id)
            .ok_or_else(|| rpc_error(Code::NOT_FOUND, format!("task {id} not found")))
    }

    fn process_mut(&mut self, id: &str, exec_id: &str) -> TtrpcResult<&mut Proc> {
        let task = self.task_mut(id)?;
        if exec_id.is_empty() {
            return Ok(&mut task.init);
        }
        task.execs
            .get_mut(exec_id)
            .ok_or_else(|| rpc_error(Code::NOT_FOUND, format!("process {exec_id} of task {id} not found")))
    }
}

#[derive(Clone)]
pub struct Service {
    /// The id containerd started this shim for (`-id`).
    id: String,
    namespace: String,
    exit: Arc<ExitSignal>,
    table: Arc<(Mutex<Table>, Condvar)>,
    publisher: Option<Arc<Mutex<RemotePublisher>>>,
}

impl containerd_shim::Shim for Service {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            exit: Arc::new(ExitSignal::default()),
            table: Arc::new((Mutex::new(Table::default()), Condvar::new())),
            publisher: None,
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        // Containers of one pod share a shim, as with containerd's runc shim.
        let mut grouping = opts.id.clone();
        if let Ok(spec) = myshim_runtime::spec::Spec::load(Path::new(".")) {
            if let Some(sandbox) = spec.annotations.get("io.kubernetes.cri.sandbox-id") {
                grouping = sandbox.clone();
            }
        }
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    /// containerd's cleanup after a shim died: kill and remove the container,
    /// unmount its rootfs.
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // containerd runs `delete` in the bundle directory.
        let bundle = std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
        let id = &self.id;
        if let Err(e) = container::delete(&state_root(&self.namespace), id, true) {
            log::warn!("deleting {id}: {e:#}");
        }
        unmount_rootfs(&bundle);
        // The dead shim could not remove its socket: do it for it.
        if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
            let _ = std::fs::remove_file(address.trim().trim_start_matches("unix://"));
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: MessageField::some(now()),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        let mut service = self.clone();
        service.publisher = Some(Arc::new(Mutex::new(publisher)));
        service.watch_exits();
        service
    }
}

fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
}

impl Service {
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        if let Some(p) = &self.publisher {
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = p.publish(containerd_shim::Context::default(), topic, &self.namespace, event) {
                log::warn!("publishing {topic}: {e}");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records every child exit the reaper reports and publishes TaskExit.
    fn watch_exits(&self) {
        let Ok(sub) = containerd_shim::monitor::monitor_subscribe(containerd_shim::monitor::Topic::Pid) else {
            log::error!("cannot subscribe to exits");
            return;
        };
        let service = self.clone();
        std::thread::spawn(move || {
            for event in sub.rx.iter() {
                let containerd_shim::monitor::Subject::Pid(pid) = event.subject else {
                    continue;
                };
                service.record_exit(pid, event.exit_code as u32);
            }
        });
    }

    fn record_exit(&self, pid: i32, status: u32) {
        let exit = Exit { status, at: now() };
        let mut table = self.lock();
        let mut found = None;
        for (id, task) in table.tasks.iter_mut() {
            let procs = std::iter::once((id.clone(), &mut task.init))
                .chain(task.execs.iter_mut().map(|(exec_id, p)| (exec_id.clone(), p)));
            for (name, proc) in procs {
                if proc.pid == pid && proc.exit.is_none() {
                    proc.exit = Some(exit.clone());
                    proc.pidfd = None;
                    found = Some((id.clone(), name));
                }
            }
        }
        match found {
            Some((container_id, id)) => {
                // An init killed for memory: TaskOOM comes before its TaskExit.
                if container_id == id && self.oom_killed(&container_id) {
                    self.publish(
                        TASK_OOM_EVENT_TOPIC,
                        Box::new(TaskOOM {
                            container_id: container_id.clone(),
                            ..Default::default()
                        }),
                    );
                }
                // Published under the lock: a start that is still publishing
                // its own event holds it, so the exit comes after.
                self.publish(
                    TASK_EXIT_EVENT_TOPIC,
                    Box::new(TaskExit {
                        container_id,
                        id,
                        pid: pid as u32,
                        exit_status: status,
                        exited_at: MessageField::some(exit.at),
                        ..Default::default()
                    }),
                );
            }
            None => {
                table.early_exits.insert(pid, exit);
            }
        }
        drop(table);
        self.table.1.notify_all();
    }

    fn oom_killed(&self, id: &str) -> bool {
        container::stats(&state_root(&self.namespace), id).is_ok_and(|s| s.oom_kills > 0)
    }

    /// Registers a started process's pid, taking an exit that came first.
    fn claim_early_exit(table: &mut Table, pid: i32) -> Option<Exit> {
        table.early_exits.remove(&pid)
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
            Ok(state::Status::Creating) => api::Status::UNKNOWN,
            Err(_) => api::Status::UNKNOWN,
        }
    }
}

impl containerd_shim::Task for Service {
    fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        let mut table = self.lock();
        if table.tasks.contains_key(&req.id) {
            return Err(rpc_error(
                Code::ALREADY_EXISTS,
                format!("task {} already exists", req.id),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let rootfs_mounted = !req.rootfs.is_empty();
        if rootfs_mounted {
            let rootfs = bundle.join("rootfs");
            std::fs::create_dir_all(&rootfs).map_err(|e| rpc_error(Code::UNKNOWN, format!("mkdir rootfs: {e}")))?;
            for m in req.rootfs.iter() {
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
                containerd_shim::mount::mount_rootfs(
                    opt(&m.type_).as_deref(),
                    opt(&m.source).as_deref(),
                    &m.options,
                    &rootfs,
                )
                .inspect_err(|_| unmount_rootfs(&bundle))?;
            }
        }
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let created = ProcessIo::open(paths.clone()).and_then(|mut io| {
            let stdio = io.take_stdio()?;
            let spawned = spawner::create(state_root(&self.namespace), &req.id, bundle.clone(), raw(&stdio))?;
            Ok((io, spawned))
        });
        let created = created.map_err(internal);
        let (mut io, spawned) = match created {
            Ok(ok) => ok,
            Err(e) => {
                if rootfs_mounted {
                    unmount_rootfs(&bundle);
                }
                return Err(e);
            }
        };
        if let Some(master) = spawned.console {
            io.attach_console(master).map_err(internal)?;
        }
        let pid = spawned.pid;
        let exit = Self::claim_early_exit(&mut table, pid);
        table.tasks.insert(
            req.id.clone(),
            Task {
                bundle,
                rootfs_mounted,
                init: Proc {
                    pid,
                    pidfd: Some(spawned.pidfd),
                    io,
                    exit,
                    pending: None,
                },
                execs: HashMap::new(),
            },
        );
        self.publish(
            TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: paths.stdin,
                    stdout: paths.stdout,
                    stderr: paths.stderr,
                    terminal: paths.terminal,
                    ..Default::default()
                }),
                pid: pid as u32,
                ..Default::default()
            }),
        );
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let mut table = self.lock();
        if req.exec_id.is_empty() {
            let pid = table.task(&req.id)?.init.pid;
            container::start(&state_root(&self.namespace), &req.id)
                .map_err(|e| rpc_error(Code::FAILED_PRECONDITION, format!("{e:#}")))?;
            self.publish(
                TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: req.id.clone(),
                    pid: pid as u32,
                    ..Default::default()
                }),
            );
            return Ok(api::StartResponse {
                pid: pid as u32,
                ..Default::default()
            });
        }
        let proc = table.process_mut(&req.id, &req.exec_id)?;
        let Some(process) = proc.pending.take() else {
            return Err(rpc_error(
                Code::FAILED_PRECONDITION,
                format!("process {} already started", req.exec_id),
            ));
        };
        let stdio = proc.io.take_stdio().map_err(internal)?;
        let spawned = spawner::exec(state_root(&self.namespace), &req.id, process, raw(&stdio)).map_err(internal)?;
        drop(stdio);
        if let Some(master) = spawned.console {
            proc.io.attach_console(master).map_err(internal)?;
        }
        proc.pid = spawned.pid;
        proc.pidfd = Some(spawned.pidfd);
        let pid = spawned.pid;
        if let Some(exit) = Self::claim_early_exit(&mut table, pid) {
            table.process_mut(&req.id, &req.exec_id)?.exit = Some(exit.clone());
            self.publish_exec_started(&req.id, &req.exec_id, pid);
            self.publish(
                TASK_EXIT_EVENT_TOPIC,
                Box::new(TaskExit {
                    container_id: req.id.clone(),
                    id: req.exec_id.clone(),
                    pid: pid as u32,
                    exit_status: exit.status,
                    exited_at: MessageField::some(exit.at),
                    ..Default::default()
                }),
            );
        } else {
            self.publish_exec_started(&req.id, &req.exec_id, pid);
        }
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let mut table = self.lock();
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

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let mut table = self.lock();
        loop {
            if let Some(exit) = &table.process_mut(&req.id, &req.exec_id)?.exit {
                return Ok(api::WaitResponse {
                    exit_status: exit.status,
                    exited_at: MessageField::some(exit.at.clone()),
                    ..Default::default()
                });
            }
            table = self.table.1.wait(table).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let mut table = self.lock();
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

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let mut table = self.lock();
        let task = table.task_mut(&req.id)?;
        if task.execs.contains_key(&req.exec_id) {
            return Err(rpc_error(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        let spec = req.spec.as_ref().map(|a| a.value.as_slice()).unwrap_or_default();
        let mut process: Process = serde_json::from_slice(spec)
            .map_err(|e| rpc_error(Code::INVALID_ARGUMENT, format!("exec process spec: {e}")))?;
        process.terminal = req.terminal;
        let io = ProcessIo::open(Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        })
        .map_err(internal)?;
        task.execs.insert(
            req.exec_id.clone(),
            Proc {
                pid: 0,
                pidfd: None,
                io,
                exit: None,
                pending: Some(process),
            },
        );
        self.publish(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let mut table = self.lock();
        let proc = table.process_mut(&req.id, &req.exec_id)?;
        proc.io.resize(req.width, req.height).map_err(internal)?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let sink = self.lock().process_mut(&req.id, &req.exec_id)?.io.stdin_handle();
        // Outside the table lock: nothing here may wait on a process.
        sink.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(api::Empty::new())
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let table = self.lock();
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

    fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        let mut table = self.lock();
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
        if task.init.exit.is_none() && self.status_of(&req.id, &task.init, false) == api::Status::RUNNING {
            return Err(rpc_error(
                Code::FAILED_PRECONDITION,
                format!("task {} is running", req.id),
            ));
        }
        container::delete(&state_root(&self.namespace), &req.id, true).map_err(internal)?;
        let task = table.tasks.remove(&req.id).expect("checked above");
        if task.rootfs_mounted {
            unmount_rootfs(&task.bundle);
        }
        let exit = task.init.exit.unwrap_or(Exit {
            status: 128 + libc::SIGKILL as u32,
            at: now(),
        });
        let pid = task.init.pid as u32;
        self.publish(
            TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                pid,
                exit_status: exit.status,
                exited_at: MessageField::some(exit.at.clone()),
                ..Default::default()
            }),
        );
        Ok(api::DeleteResponse {
            pid,
            exit_status: exit.status,
            exited_at: MessageField::some(exit.at),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let table = self.lock();
        let task_pid = table.tasks.get(&req.id).map(|t| t.init.pid as u32).unwrap_or_default();
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.lock().tasks.is_empty() {
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: api::CheckpointTaskRequest) -> TtrpcResult<api::Empty> {
        Err(rpc_error(Code::UNIMPLEMENTED, "checkpoint is not implemented"))
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock();
        table.task(&req.id)?;
        container::pause(&state_root(&self.namespace), &req.id).map_err(failed_precondition)?;
        self.publish(
            TASK_PAUSED_EVENT_TOPIC,
            Box::new(TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock();
        table.task(&req.id)?;
        container::resume(&state_root(&self.namespace), &req.id).map_err(failed_precondition)?;
        self.publish(
            TASK_RESUMED_EVENT_TOPIC,
            Box::new(TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::new())
    }

    /// The resources arrive as the OCI LinuxResources JSON in an Any.
    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let table = self.lock();
        table.task(&req.id)?;
        let value = req.resources.as_ref().map(|a| a.value.as_slice()).unwrap_or_default();
        let resources: myshim_runtime::resources::Resources =
            serde_json::from_slice(value).map_err(|e| rpc_error(Code::INVALID_ARGUMENT, format!("resources: {e}")))?;
        container::update(&state_root(&self.namespace), &req.id, &resources).map_err(internal)?;
        Ok(api::Empty::new())
    }

    fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        self.lock().task(&req.id)?;
        let stats = container::stats(&state_root(&self.namespace), &req.id).map_err(internal)?;
        let unified = myshim_runtime::cgroups::is_unified_host();
        let any = crate::metrics::to_any(&stats, unified).map_err(|e| rpc_error(Code::INTERNAL, e))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }
}

impl Service {
    fn publish_exec_started(&self, id: &str, exec_id: &str, pid: i32) {
        self.publish(
            TASK_EXEC_STARTED_EVENT_TOPIC,
            Box::new(TaskExecStarted {
                container_id: id.into(),
                exec_id: exec_id.into(),
                pid: pid as u32,
                ..Default::default()
            }),
        );
    }
}
