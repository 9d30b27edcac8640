//! Docker 26 with our shim (`runtimeType`) and with containerd's Go runc
//! shim driving our CLI (`path`): what users do every day, each effect read
//! from inside the container. One private dockerd (temp dir, network none)
//! serves the tests that run at the same time; see common/docker.rs.
//! Every test runs once per runtime: `shim::NAME` and `cli::NAME`.

#[path = "common/docker.rs"]
mod docker;

use docker::{shared, skip_reason, Container, Dockerd, Out, IMAGE, RT_CLI, RT_SHIM};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn with_daemon(f: impl FnOnce(&Dockerd)) {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = shared();
    f(&d);
}

macro_rules! for_both_runtimes {
    ($($name:ident),* $(,)?) => {
        /// Through containerd-shim-myshim-v2 (`runtimeType`).
        mod shim {
            $(#[test]
            fn $name() {
                super::with_daemon(|d| super::$name(d, super::RT_SHIM));
            })*
        }
        /// Through the Go runc shim running the myshim CLI (`path`).
        mod cli {
            $(#[test]
            fn $name() {
                super::with_daemon(|d| super::$name(d, super::RT_CLI));
            })*
        }
    };
}

for_both_runtimes!(
    run_exit_codes,
    missing_executable_exit_codes,
    tty_and_resize,
    exec,
    logs,
    attach,
    top,
    stats_memory_limit,
    pause_unpause,
    stop_and_restart,
    restart_policy,
    oom_killed,
    update_up_and_down,
    read_only_and_tmpfs,
    bind_mounts,
    read_only_volume_is_read_only_below_too,
    user,
    cap_drop_all,
    default_seccomp,
    privileged,
    init,
    healthcheck,
    cp,
    limits_inside,
    run_options,
    shared_namespaces,
    device_rules,
    home_from_passwd,
    io_integrity,
    rm_with_execs_running,
    cgroup_ns_parent_and_pids,
    exec_gets_the_process_settings,
    short_lived_output_kept,
);

/// `docker run --rm --runtime RT --network none OPTIONS IMAGE CMD`.
fn run_rm(d: &Dockerd, rt: &str, options: &[&str], cmd: &[&str]) -> Out {
    let mut args = vec!["run", "--rm", "--runtime", rt, "--network", "none"];
    args.extend(options);
    args.push(IMAGE);
    args.extend(cmd);
    d.docker(&args)
}

/// Like run_rm, for `sh -c SCRIPT`, which must succeed; its stdout trimmed.
fn sh_rm(d: &Dockerd, rt: &str, options: &[&str], script: &str) -> String {
    let out = run_rm(d, rt, options, &["sh", "-c", script]);
    assert!(out.success(), "{rt}: {out}\n{}", d.log());
    out.stdout.trim().to_string()
}

fn cgroup2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A field of a /proc/PID/status text.
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Single quotes for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Waits (bounded) until `sh -c SCRIPT` succeeds inside `c`.
fn wait_inside(c: &Container, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.d.docker(&["exec", &c.name, "sh", "-c", script]).success() {
        assert!(Instant::now() < deadline, "{}: never true inside: {script}", c.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Nothing of container `id` is left: no shim, no runtime state, no cgroup.
fn assert_gone(d: &Dockerd, rt: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !d.shims(Some(id)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{rt}: shims left for {id}: {:?}",
            d.shims(Some(id))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for state in [
        Path::new("/run/containerd/myshim/moby").join(id),
        d.path("exec/runtime-runc/moby").join(id),
    ] {
        assert!(!state.exists(), "{rt}: runtime state left: {}", state.display());
    }
    let rel = format!("{}/{id}", d.cgroup_parent.trim_start_matches('/'));
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let cg = h.path().join(&rel);
        assert!(!cg.exists(), "{rt}: cgroup left: {}", cg.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "{rt}: a mount of {id} is left");
}

fn run_exit_codes(d: &Dockerd, rt: &str) {
    let cid = d.path(&format!("cid-{rt}"));
    let _ = std::fs::remove_file(&cid);
    let out = run_rm(
        d,
        rt,
        &["--cidfile", cid.to_str().unwrap()],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.code(), Some(3), "{rt}: {out}\n{}", d.log());
    assert_eq!(out.stdout, "out\n", "{rt}");
    assert_eq!(out.stderr, "err\n", "{rt}");
    let id = std::fs::read_to_string(&cid).unwrap();
    assert_gone(d, rt, id.trim());

    let out = run_rm(d, rt, &[], &["true"]);
    assert_eq!(out.code(), Some(0), "{rt}: {out}");
    // docker kill: 128 + SIGKILL; a signal the init handles.
    let c = Container::run(d, &format!("kill-{rt}"), rt, &[], &["sleep", "1000"]);
    d.ok(&["kill", &c.name]);
    assert_eq!(d.ok(&["wait", &c.name]).trim(), "137", "{rt}");
    let c = Container::run(
        d,
        &format!("usr1-{rt}"),
        rt,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 9' USR1; touch /tmp/ready; while :; do sleep 0.1; done",
        ],
    );
    wait_inside(&c, "test -e /tmp/ready");
    d.ok(&["kill", "-s", "USR1", &c.name]);
    assert_eq!(d.ok(&["wait", &c.name]).trim(), "9", "{rt}");

    // Detached, then waited for.
    let c = Container::run(d, &format!("exit-{rt}"), rt, &[], &["sh", "-c", "exit 42"]);
    assert_eq!(d.ok(&["wait", &c.name]).trim(), "42", "{rt}");
    assert_eq!(d.inspect(&c.name, "{{.State.ExitCode}}"), "42");
    let id = c.id();
    drop(c);
    assert_gone(d, rt, &id);
}

/// Docker turns a failed `docker run` into 127 (not found) or 126 (not
/// executable) by matching runc's words in the runtime's error:
/// "executable file not found", "no such file or directory", "permission
/// denied"; any other text gives 125. (docker exec gives 126 for both,
/// with runc too.)
fn missing_executable_exit_codes(d: &Dockerd, rt: &str) {
    let out = run_rm(d, rt, &[], &["nosuchcommand"]);
    assert_eq!(out.code(), Some(127), "{rt}: {out}");
    let out = run_rm(d, rt, &[], &["/no/such/file"]);
    assert_eq!(out.code(), Some(127), "{rt}: {out}");
    let out = run_rm(d, rt, &[], &["/etc/passwd"]);
    assert_eq!(out.code(), Some(126), "{rt}: {out}");
}

/// `sh -c SCRIPT` on a new pseudo-terminal (script(1)).
fn in_pty(d: &Dockerd, script: &str) -> Out {
    let mut cmd = Command::new("script");
    cmd.env("DOCKER_CONFIG", d.path("client"))
        .args(["-qec", script, "/dev/null"]);
    docker::run(cmd, None)
}

/// `docker run -it` and `docker exec -it` on a pty (script(1)): the size
/// the client had at start, then a resize (SIGWINCH to the client).
fn tty_and_resize(d: &Dockerd, rt: &str) {
    let marks = d.path(&format!("tty-{rt}"));
    let _ = std::fs::remove_dir_all(&marks);
    std::fs::create_dir(&marks).unwrap();
    let ready = marks.join("ready");
    let docker = d.cmd(&[]);
    let prefix = std::iter::once(docker.get_program())
        .chain(docker.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    // The size at start; /m/ready tells the pty's side to resize; the new
    // size (stty sets rows and cols one at a time: both are awaited).
    let inside = quote(
        "tty; stty size; touch /m/ready; i=0; \
         while [ \"$(stty size)\" != '40 120' ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         touch /m/done; stty size; exit 4",
    );
    // The client may start watching SIGWINCH after the process has started
    // (docker exec does): the resize is followed by SIGWINCHs to the
    // client's process group until the container has seen the new size.
    let resize = format!(
        "stty rows 30 cols 100; (while [ ! -e {ready} ]; do sleep 0.1; done; stty rows 40 cols 120 </dev/tty; \
         i=0; while [ ! -e {done} ] && [ $i -lt 300 ]; do kill -WINCH 0; sleep 0.1; i=$((i+1)); done) & ",
        ready = quote(&ready.to_string_lossy()),
        done = quote(&marks.join("done").to_string_lossy()),
    );
    let check = |what: &str, out: Out| {
        // The pty echoes a NUL the client writes as "^@", on any line.
        let text = out.stdout.replace("^@", "").replace(['\0', '\r'], "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(out.code(), Some(4), "{rt}: {what}: {out}");
        assert!(
            lines.iter().any(|l| l.contains("/dev/pts/")),
            "{rt}: {what}: no pty: {out}"
        );
        let sizes: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.contains(' ') && l.chars().all(|c| c.is_ascii_digit() || c == ' '))
            .collect();
        assert_eq!(sizes, ["30 100", "40 120"], "{rt}: {what}: {out}");
    };
    let bind = format!("{}:/m", marks.display());
    let name = format!("tty-{rt}");
    let _c = Container::named(d, &name);
    let script = format!(
        "{resize}{prefix} run -it --name {name} --runtime {rt} --network none -v {bind} {IMAGE} sh -c {inside}",
        bind = quote(&bind),
    );
    check("docker run -it", in_pty(d, &script));

    let c = Container::run(d, &format!("ttyexec-{rt}"), rt, &["-v", &bind], &["sleep", "1000"]);
    std::fs::remove_file(&ready).unwrap();
    std::fs::remove_file(marks.join("done")).unwrap();
    let script = format!("{resize}{prefix} exec -it {} sh -c {inside}", c.name);
    check("docker exec -it", in_pty(d, &script));
}

fn exec(d: &Dockerd, rt: &str) {
    let c = Container::run(d, &format!("exec-{rt}"), rt, &[], &["sleep", "1000"]);
    let out = d.docker(&["exec", &c.name, "sh", "-c", "echo hi; echo oops >&2; exit 5"]);
    assert_eq!(out.code(), Some(5), "{rt}: {out}");
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("hi\n", "oops\n"), "{rt}");
    assert_eq!(c.exec_with(&["-u", "1000:1000"], &["id", "-u"]).trim(), "1000", "{rt}");
    assert_eq!(
        c.exec_with(&["-e", "FOO=bar"], &["sh", "-c", "echo $FOO"]).trim(),
        "bar",
        "{rt}"
    );
    assert_eq!(c.exec_with(&["-w", "/tmp"], &["pwd"]).trim(), "/tmp", "{rt}");
    let out = d.docker_input(&["exec", "-i", &c.name, "sh", "-c", "read x; echo got $x"], b"hello\n");
    assert_eq!(out.stdout, "got hello\n", "{rt}: {out}");
    // The exec'd process is in the container's pid namespace.
    assert_eq!(
        c.exec(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"]).trim(),
        "sleep 1000"
    );
    // A detached exec keeps running after docker exec returns.
    c.exec_with(&["-d"], &["sh", "-c", "sleep 1; touch /tmp/detached; sleep 1000"]);
    wait_inside(&c, "test -e /tmp/detached");
}

fn logs(d: &Dockerd, rt: &str) {
    let c = Container::run(
        d,
        &format!("logs-{rt}"),
        rt,
        &[],
        &["sh", "-c", "echo out1; echo err1 >&2; echo out2"],
    );
    d.ok(&["wait", &c.name]);
    let out = d.docker(&["logs", &c.name]);
    assert!(out.success(), "{rt}: {out}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out1\nout2\n", "err1\n"),
        "{rt}"
    );
    // One stream only: the order between stdout and stderr is not kept.
    let c = Container::run(
        d,
        &format!("tail-{rt}"),
        rt,
        &[],
        &["sh", "-c", "echo a; echo b; echo c"],
    );
    d.ok(&["wait", &c.name]);
    assert_eq!(d.ok(&["logs", "--tail", "1", &c.name]), "c\n", "{rt}");
}

/// docker attach with stdin kept open while the output is read: the
/// client stops printing output once its stdin is closed (runc alike).
fn attach(d: &Dockerd, rt: &str) {
    use std::io::{BufRead, Write};
    let c = Container::run(
        d,
        &format!("attach-{rt}"),
        rt,
        &["-i"],
        &["sh", "-c", "read x; echo got $x; read y; echo got $y; exit 6"],
    );
    let mut child = d
        .cmd(&["attach", &c.name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = vec![];
    for word in ["hello", "bye"] {
        writeln!(stdin, "{word}").unwrap();
        let line = rx.recv_timeout(Duration::from_secs(30));
        seen.push(line.clone());
        if line.as_deref() != Ok(&format!("got {word}")) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{rt}: attach output {seen:?}, wanted got {word}");
        }
    }
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{rt}: docker attach did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(6), "{rt}");
}

fn top(d: &Dockerd, rt: &str) {
    let c = Container::run(d, &format!("top-{rt}"), rt, &[], &["sleep", "1000"]);
    c.exec_with(&["-d"], &["sleep", "999"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let top = d.ok(&["top", &c.name]);
        if top.contains("sleep 1000") && top.contains("sleep 999") {
            break;
        }
        assert!(Instant::now() < deadline, "{rt}: docker top: {top}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The LIMIT column comes from the shim's Metrics (memory limit).
fn stats_memory_limit(d: &Dockerd, rt: &str) {
    let stats = |c: &Container| {
        let s = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", &c.name]);
        let (usage, pids) = s.trim().split_once('|').unwrap().to_owned();
        let (used, limit) = usage.split_once(" / ").unwrap_or((usage, ""));
        (used.to_string(), limit.to_string(), pids.to_string())
    };
    let c = Container::run(d, &format!("stats-{rt}"), rt, &["--memory", "64m"], &["sleep", "1000"]);
    let (used, limit, pids) = stats(&c);
    assert_eq!(limit, "64MiB", "{rt}: docker stats shows {used} / {limit}");
    assert_ne!(used, "0B", "{rt}");
    assert_eq!(pids, "1", "{rt}");
    // Unlimited: the machine's memory, as with runc.
    let c = Container::run(d, &format!("statsnl-{rt}"), rt, &[], &["sleep", "1000"]);
    let runc = Container::run(d, &format!("statsnl-runc-{rt}"), "runc", &[], &["sleep", "1000"]);
    let ((_, limit, _), (_, want, _)) = (stats(&c), stats(&runc));
    assert_eq!(limit, want, "{rt}: unlimited container's limit, runc's");
}

fn freezer_state(d: &Dockerd, id: &str) -> String {
    let rel = format!("{}/{id}", d.cgroup_parent.trim_start_matches('/'));
    if cgroup2_host() {
        let f = Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze");
        match std::fs::read_to_string(f).unwrap_or_default().trim() {
            "1" => "FROZEN".into(),
            _ => "THAWED".into(),
        }
    } else {
        let f = Path::new("/sys/fs/cgroup/freezer").join(rel).join("freezer.state");
        std::fs::read_to_string(f).unwrap_or_default().trim().to_string()
    }
}

fn pause_unpause(d: &Dockerd, rt: &str) {
    let c = Container::run(
        d,
        &format!("pause-{rt}"),
        rt,
        &[],
        &["sh", "-c", "while :; do echo tick >> /tmp/ticks; sleep 0.05; done"],
    );
    let id = c.id();
    d.ok(&["pause", &c.name]);
    assert_eq!(d.inspect(&c.name, "{{.State.Status}}"), "paused", "{rt}");
    assert_eq!(freezer_state(d, &id), "FROZEN", "{rt}");
    let out = d.docker(&["exec", &c.name, "true"]);
    assert!(!out.success() && out.stderr.contains("paused"), "{rt}: {out}");
    d.ok(&["unpause", &c.name]);
    assert_eq!(d.inspect(&c.name, "{{.State.Status}}"), "running", "{rt}");
    assert_eq!(freezer_state(d, &id), "THAWED", "{rt}");
    // The loop runs again: lines are added (appended: a rewrite could be
    // read half done).
    let before = c.sh("wc -l < /tmp/ticks");
    wait_inside(&c, &format!("[ $(wc -l < /tmp/ticks) -gt {before} ]"));
}

fn stop_and_restart(d: &Dockerd, rt: &str) {
    // pid 1 without a TERM handler ignores TERM: KILL after the timeout.
    let c = Container::run(d, &format!("stopkill-{rt}"), rt, &[], &["sleep", "1000"]);
    d.ok(&["stop", "-t", "1", &c.name]);
    assert_eq!(
        d.inspect(&c.name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137",
        "{rt}"
    );

    // A TERM handler runs and its exit code is the container's.
    let c = Container::run(
        d,
        &format!("stopterm-{rt}"),
        rt,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; touch /tmp/ready; while :; do sleep 0.1; done",
        ],
    );
    wait_inside(&c, "test -e /tmp/ready");
    d.ok(&["stop", "-t", "60", &c.name]);
    assert_eq!(
        d.inspect(&c.name, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 7",
        "{rt}"
    );

    // --stop-signal is what docker stop sends.
    let s = Container::run(
        d,
        &format!("stopsig-{rt}"),
        rt,
        &["--stop-signal", "USR1"],
        &[
            "sh",
            "-c",
            "trap 'exit 8' USR1; touch /tmp/ready; while :; do sleep 0.1; done",
        ],
    );
    wait_inside(&s, "test -e /tmp/ready");
    d.ok(&["stop", "-t", "60", &s.name]);
    assert_eq!(
        d.inspect(&s.name, "{{.State.ExitCode}}"),
        "8",
        "{rt}: --stop-signal USR1"
    );

    // docker start of the stopped container, then docker restart.
    d.ok(&["start", &c.name]);
    wait_inside(&c, "test -e /tmp/ready");
    let pid = d.inspect(&c.name, "{{.State.Pid}}");
    d.ok(&["restart", "-t", "60", &c.name]);
    assert_eq!(d.inspect(&c.name, "{{.State.Status}}"), "running", "{rt}");
    assert_ne!(
        d.inspect(&c.name, "{{.State.Pid}}"),
        pid,
        "{rt}: same init after restart"
    );
    wait_inside(&c, "test -e /tmp/ready");
}

fn restart_policy(d: &Dockerd, rt: &str) {
    let c = Container::run(
        d,
        &format!("restart-{rt}"),
        rt,
        &["--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 1"],
    );
    d.wait_inspect(&c.name, "{{.RestartCount}} {{.State.Status}}", "2 exited");
    assert_eq!(d.inspect(&c.name, "{{.State.ExitCode}}"), "1", "{rt}");
    assert_eq!(d.ok(&["logs", &c.name]), "run\nrun\nrun\n", "{rt}");
}

fn oom_killed(d: &Dockerd, rt: &str) {
    let name = format!("oom-{rt}");
    let _c = Container::named(d, &name);
    // tail keeps the last line of /dev/zero, which never ends.
    let out = d.docker(&[
        "run",
        "--name",
        &name,
        "--runtime",
        rt,
        "--network",
        "none",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        IMAGE,
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.code(), Some(137), "{rt}: {out}");
    assert_eq!(d.inspect(&name, "{{.State.OOMKilled}}"), "true", "{rt}");
}

/// (memory limit, swap limit as Docker counts it: memory + swap) read inside.
fn memory_limits_inside(c: &Container) -> (u64, u64) {
    let num = |s: String| s.trim().parse::<u64>().unwrap_or(u64::MAX);
    if cgroup2_host() {
        let mem = num(c.sh("cat /sys/fs/cgroup/memory.max"));
        let swap = num(c.sh("cat /sys/fs/cgroup/memory.swap.max"));
        (mem, mem.saturating_add(swap))
    } else {
        let mem = num(c.sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes"));
        let memsw = num(c.sh("cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"));
        (mem, memsw)
    }
}

const MIB: u64 = 1 << 20;

/// Up: memory and swap raised together (memsw first on v1); down again.
fn update_up_and_down(d: &Dockerd, rt: &str) {
    let c = Container::run(d, &format!("update-{rt}"), rt, &["--memory", "64m"], &["sleep", "1000"]);
    // Docker's default swap limit is twice the memory limit.
    assert_eq!(memory_limits_inside(&c), (64 * MIB, 128 * MIB), "{rt}");
    let out = d.docker(&["update", "--memory", "256m", "--memory-swap", "512m", &c.name]);
    assert!(out.success(), "{rt}: raising the limit: {out}");
    assert_eq!(memory_limits_inside(&c), (256 * MIB, 512 * MIB), "{rt}");
    assert_eq!(d.inspect(&c.name, "{{.HostConfig.Memory}}"), (256 * MIB).to_string());
    let out = d.docker(&["update", "--memory", "32m", "--memory-swap", "64m", &c.name]);
    assert!(out.success(), "{rt}: lowering the limit: {out}");
    assert_eq!(memory_limits_inside(&c), (32 * MIB, 64 * MIB), "{rt}");

    d.ok(&["update", "--cpus", "0.5", "--pids-limit", "20", &c.name]);
    let (quota, pids) = if cgroup2_host() {
        (
            c.sh("cut -d' ' -f1 /sys/fs/cgroup/cpu.max"),
            c.sh("cat /sys/fs/cgroup/pids.max"),
        )
    } else {
        (
            c.sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
            c.sh("cat /sys/fs/cgroup/pids/pids.max"),
        )
    };
    assert_eq!((quota.as_str(), pids.as_str()), ("50000", "20"), "{rt}");

    // Paused, and stopped (applied at the next start).
    d.ok(&["pause", &c.name]);
    d.ok(&["update", "--cpus", "1.5", &c.name]);
    d.ok(&["unpause", &c.name]);
    let quota = if cgroup2_host() {
        c.sh("cut -d' ' -f1 /sys/fs/cgroup/cpu.max")
    } else {
        c.sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    };
    assert_eq!(quota, "150000", "{rt}: updated while paused");
    d.ok(&["stop", "-t", "0", &c.name]);
    d.ok(&["update", "--memory", "128m", "--memory-swap", "256m", &c.name]);
    d.ok(&["start", &c.name]);
    assert_eq!(
        memory_limits_inside(&c),
        (128 * MIB, 256 * MIB),
        "{rt}: updated while stopped"
    );
}

fn read_only_and_tmpfs(d: &Dockerd, rt: &str) {
    let out = run_rm(d, rt, &["--read-only"], &["touch", "/x"]);
    assert!(
        !out.success() && out.stderr.contains("Read-only file system"),
        "{rt}: {out}"
    );
    let got = sh_rm(
        d,
        rt,
        &["--read-only", "--tmpfs", "/scratch:size=1m"],
        "touch /scratch/x && grep ' /scratch ' /proc/mounts",
    );
    let fields: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(fields.get(2), Some(&"tmpfs"), "{rt}: {got}");
    assert!(fields.get(3).is_some_and(|o| o.contains("size=1024k")), "{rt}: {got}");
    // Without --read-only the root is writable.
    sh_rm(d, rt, &[], "touch /x");
}

fn bind_mounts(d: &Dockerd, rt: &str) {
    let dir = d.path(&format!("bind-{rt}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", dir.display());
    let ro = format!("{}:/ro:ro", dir.display());
    let got = sh_rm(
        d,
        rt,
        &["-v", &rw, "-v", &ro],
        "cat /data/in; echo from container > /data/out",
    );
    assert_eq!(got, "from host", "{rt}");
    assert_eq!(std::fs::read_to_string(dir.join("out")).unwrap(), "from container\n");
    let out = run_rm(d, rt, &["-v", &ro], &["touch", "/ro/x"]);
    assert!(
        !out.success() && out.stderr.contains("Read-only file system"),
        "{rt}: {out}"
    );
    assert!(!dir.join("x").exists(), "{rt}");
}

/// Docker 25+ asks the runtime's `features` for `rro` and then makes a
/// `:ro` volume read-only recursively: a mount below the volume's source
/// is read-only inside too (a plain `ro` bind leaves it writable). Docker
/// can ask only a runtime with a `path`: our CLI.
fn read_only_volume_is_read_only_below_too(d: &Dockerd, rt: &str) {
    let dir = d.path(&format!("rro-{rt}"));
    let sub = dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(sub.clone());
    let ro = format!("{}:/ro:ro", dir.display());
    let got = sh_rm(
        d,
        rt,
        &["-v", &ro],
        "grep ' /ro/sub ' /proc/self/mountinfo | cut -d' ' -f6; touch /ro/sub/x 2>&1 || true",
    );
    let lines: Vec<&str> = got.lines().collect();
    if rt == RT_SHIM {
        // Docker 26 learns a runtime's mount options only by running its
        // `path features`; a `runtimeType` shim has none to run, so Docker
        // sends a plain `ro` (read-only at the top, which bind_mounts checks).
        eprintln!(
            "{rt}: Docker 26 does not ask a shim runtime for rro; /ro/sub is {}",
            lines[0]
        );
        return;
    }
    assert!(
        lines[0].split(',').any(|f| f == "ro"),
        "{rt}: /ro/sub is not read-only: {got}"
    );
    assert!(got.contains("Read-only file system"), "{rt}: {got}");
    assert!(!sub.join("x").exists(), "{rt}");
}

fn user(d: &Dockerd, rt: &str) {
    let got = sh_rm(
        d,
        rt,
        &["--user", "1000:1000", "--group-add", "2000"],
        "id -u; id -g; id -G; touch /tmp/f; stat -c %u:%g /tmp/f",
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["1000", "1000", "1000 2000", "1000:1000"],
        "{rt}"
    );
    let out = run_rm(d, rt, &["--user", "1000:1000"], &["touch", "/root/x"]);
    assert!(
        !out.success() && out.stderr.contains("Permission denied"),
        "{rt}: {out}"
    );
}

fn cap_drop_all(d: &Dockerd, rt: &str) {
    let status = sh_rm(d, rt, &["--cap-drop", "ALL"], "cat /proc/self/status");
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&status, f), "0000000000000000", "{rt}: {f}");
    }
    let out = run_rm(d, rt, &["--cap-drop", "ALL"], &["chown", "1:1", "/tmp"]);
    assert!(!out.success(), "{rt}: chown without CAP_CHOWN: {out}");
    // Docker's default set, and one added to it (CAP_NET_ADMIN, bit 12).
    let status = sh_rm(d, rt, &[], "cat /proc/self/status");
    assert_eq!(status_field(&status, "CapEff"), "00000000a80425fb", "{rt}");
    let status = sh_rm(d, rt, &["--cap-add", "NET_ADMIN"], "cat /proc/self/status");
    assert_eq!(status_field(&status, "CapEff"), "00000000a80435fb", "{rt}");
}

/// Docker's default profile denies unshare(CLONE_NEWUSER) without
/// CAP_SYS_ADMIN; unconfined allows it.
fn default_seccomp(d: &Dockerd, rt: &str) {
    let out = run_rm(
        d,
        rt,
        &[],
        &["sh", "-c", "grep '^Seccomp:' /proc/self/status; unshare -U true"],
    );
    assert!(out.stdout.contains("Seccomp:\t2"), "{rt}: {out}");
    assert!(
        !out.success() && out.stderr.contains("Operation not permitted"),
        "{rt}: {out}"
    );
    let got = sh_rm(
        d,
        rt,
        &["--security-opt", "seccomp=unconfined"],
        "grep '^Seccomp:' /proc/self/status; unshare -U true",
    );
    assert_eq!(got, "Seccomp:\t0", "{rt}");
}

fn privileged(d: &Dockerd, rt: &str) {
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let status = sh_rm(d, rt, &["--privileged"], "cat /proc/self/status");
    // Every capability this host's root has.
    assert_eq!(status_field(&status, "CapEff"), status_field(&ours, "CapBnd"), "{rt}");
    assert_eq!(status_field(&status, "Seccomp"), "0", "{rt}");
    sh_rm(d, rt, &["--privileged"], "mount -t tmpfs none /tmp && umount /tmp");
    // Host devices appear; unprivileged, only Docker's default few.
    let devices = |opts: &[&str]| sh_rm(d, rt, opts, "ls /dev | wc -l").parse::<u32>().unwrap();
    let (privileged, plain) = (devices(&["--privileged"]), devices(&[]));
    assert!(
        privileged > plain,
        "{rt}: /dev has {privileged} entries privileged, {plain} not"
    );
    let out = run_rm(d, rt, &[], &["mount", "-t", "tmpfs", "none", "/tmp"]);
    assert!(!out.success(), "{rt}: mount without --privileged: {out}");
}

fn init(d: &Dockerd, rt: &str) {
    let got = sh_rm(d, rt, &["--init"], "tr '\\0' ' ' < /proc/1/cmdline");
    assert!(got.starts_with("/sbin/docker-init -- sh -c"), "{rt}: pid 1 is {got:?}");
    let out = run_rm(d, rt, &["--init"], &["sh", "-c", "exit 3"]);
    assert_eq!(out.code(), Some(3), "{rt}: {out}");
    // docker-init passes docker stop's TERM on: sleep dies of it (128 + 15).
    let c = Container::run(d, &format!("init-{rt}"), rt, &["--init"], &["sleep", "1000"]);
    d.ok(&["stop", "-t", "60", &c.name]);
    assert_eq!(d.inspect(&c.name, "{{.State.ExitCode}}"), "143", "{rt}");
}

fn healthcheck(d: &Dockerd, rt: &str) {
    let opts = ["--health-interval", "1s", "--health-retries", "1", "--health-cmd"];
    let mut good = opts.to_vec();
    good.push("cat /tmp/ok");
    let c = Container::run(
        d,
        &format!("healthy-{rt}"),
        rt,
        &good,
        &["sh", "-c", "echo yes > /tmp/ok; sleep 1000"],
    );
    let mut bad = opts.to_vec();
    bad.push("false");
    let b = Container::run(d, &format!("unhealthy-{rt}"), rt, &bad, &["sleep", "1000"]);
    d.wait_inspect(&c.name, "{{.State.Health.Status}}", "healthy");
    d.wait_inspect(&b.name, "{{.State.Health.Status}}", "unhealthy");
}

fn cp(d: &Dockerd, rt: &str) {
    let c = Container::run(d, &format!("cp-{rt}"), rt, &[], &["sleep", "1000"]);
    let dir = d.path(&format!("cp-{rt}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in"), "copied in\n").unwrap();
    d.ok(&["cp", dir.join("in").to_str().unwrap(), &format!("{}:/tmp/in", c.name)]);
    assert_eq!(c.sh("cat /tmp/in"), "copied in", "{rt}");
    c.sh("echo made inside > /tmp/out");
    d.ok(&["cp", &format!("{}:/tmp/out", c.name), dir.join("out").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "made inside\n",
        "{rt}"
    );
    d.ok(&[
        "cp",
        &format!("{}:/etc/passwd", c.name),
        dir.join("passwd").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.join("passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // docker commit pauses the running container while it copies.
    let image = format!("committed-{rt}:latest");
    d.ok(&["commit", &c.name, &image]);
    let got = d.ok(&[
        "run",
        "--rm",
        "--runtime",
        rt,
        "--network",
        "none",
        &image,
        "cat",
        "/tmp/out",
    ]);
    let _ = d.docker(&["rmi", &image]);
    assert_eq!(got, "made inside\n", "{rt}: the committed image");
    assert_eq!(d.inspect(&c.name, "{{.State.Status}}"), "running", "{rt}: after commit");
    c.sh("true");
}

/// What JVMs and Go's automaxprocs read: the container's own limits.
fn limits_inside(d: &Dockerd, rt: &str) {
    let opts = [
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
    ];
    let got = if cgroup2_host() {
        sh_rm(
            d,
            rt,
            &opts,
            "cd /sys/fs/cgroup; cat memory.max cpu.max pids.max cpuset.cpus",
        )
    } else {
        sh_rm(
            d,
            rt,
            &opts,
            "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us \
             pids/pids.max cpu/cpu.shares cpuset/cpuset.cpus",
        )
    };
    let want: &[&str] = if cgroup2_host() {
        &["67108864", "50000 100000", "50", "0"]
    } else {
        &["67108864", "50000", "100000", "50", "512", "0"]
    };
    assert_eq!(got.lines().collect::<Vec<_>>(), want, "{rt}");
}

/// Options of docker run that reach the runtime's config: env, cwd,
/// hostname, rlimits, /dev/shm size, a namespaced sysctl.
fn run_options(d: &Dockerd, rt: &str) {
    let got = sh_rm(
        d,
        rt,
        &[
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "--hostname",
            "box",
            "--ulimit",
            "nofile=1024:2048",
            "--shm-size",
            "8m",
            "--sysctl",
            "kernel.shm_rmid_forced=1",
        ],
        "echo $FOO; pwd; hostname; ulimit -n; ulimit -Hn; df -k /dev/shm | awk 'NR == 2 { print $2 }'; \
         cat /proc/sys/kernel/shm_rmid_forced",
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["bar", "/tmp", "box", "1024", "2048", "8192", "1"],
        "{rt}"
    );
}

/// --pid/--ipc/--network container:X join X's namespaces; --pid host the host's.
fn shared_namespaces(d: &Dockerd, rt: &str) {
    let x = Container::run(
        d,
        &format!("nsowner-{rt}"),
        rt,
        &["--ipc", "shareable"],
        &["sleep", "1000"],
    );
    let ns = "for n in pid ipc net; do readlink /proc/self/ns/$n; done";
    let theirs = x.sh(ns);
    let with = format!("container:{}", x.name);
    let mut args = vec![
        "run",
        "--rm",
        "--runtime",
        rt,
        "--network",
        &with,
        "--pid",
        &with,
        "--ipc",
        &with,
    ];
    args.extend([IMAGE, "sh", "-c", ns]);
    let ours = d.ok(&args);
    assert_eq!(ours.trim(), theirs, "{rt}");
    // The joined pid namespace: X's init is pid 1.
    let got = sh_rm(d, rt, &["--pid", &with], "tr '\\0' ' ' < /proc/1/cmdline");
    assert_eq!(got, "sleep 1000", "{rt}");
    let host = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let got = sh_rm(d, rt, &["--pid", "host"], "readlink /proc/self/ns/pid");
    assert_eq!(got, host.to_string_lossy(), "{rt}");
}

/// The devices cgroup as runc sets it: the config's rules, then runc's
/// defaults (mknod of any node, `c *:* m` and `b *:* m`; the standard
/// nodes; ptys; /dev/net/tun), and no rule of its own for the nodes of
/// linux.devices (Docker sends `--device`'s permissions as a rule).
/// Known to fail today: myshim allows rwm on every linux.devices node (so
/// `--device X:r` is writable) and lacks the mknod and tun rules.
fn device_rules(d: &Dockerd, rt: &str) {
    let fuse = Path::new("/dev/fuse");
    if fuse.exists() {
        let got = sh_rm(
            d,
            rt,
            &["--device", "/dev/fuse:/dev/myfuse:r"],
            "cat /dev/null < /dev/myfuse && echo read; echo -n 2>/dev/null > /dev/myfuse && echo written; true",
        );
        assert_eq!(got, "read", "{rt}: --device /dev/fuse:r");
        let got = sh_rm(d, rt, &["--device", "/dev/fuse"], "echo -n > /dev/fuse && echo written");
        assert_eq!(got, "written", "{rt}: --device /dev/fuse");
    }
    // Any node may be made; only the allowed ones opened.
    let out = run_rm(
        d,
        rt,
        &[],
        &["sh", "-c", "mknod /tmp/tty1 c 4 1 && mknod /tmp/loop b 7 0"],
    );
    assert!(out.success(), "{rt}: mknod: {out}");
    let out = run_rm(
        d,
        rt,
        &[],
        &["sh", "-c", "mknod /tmp/tty1 c 4 1 && cat /dev/null < /tmp/tty1"],
    );
    assert!(
        !out.success() && out.stderr.contains("Operation not permitted"),
        "{rt}: {out}"
    );
    let out = run_rm(
        d,
        rt,
        &[],
        &["sh", "-c", "mknod /tmp/tun c 10 200 && cat /dev/null < /tmp/tun"],
    );
    assert!(out.success(), "{rt}: /dev/net/tun: {out}");
    let got = sh_rm(
        d,
        rt,
        &["--device-cgroup-rule", "c 4:1 r"],
        "mknod /tmp/tty1 c 4 1 && cat /dev/null < /tmp/tty1 && echo read",
    );
    assert_eq!(got, "read", "{rt}: --device-cgroup-rule");
}

/// HOME, when the config has none, is the user's home in the container's
/// /etc/passwd ("/" without an entry), for the init and for docker exec, as
/// runc sets it (HOME was always / before 713aaae).
fn home_from_passwd(d: &Dockerd, rt: &str) {
    let passwd = d.path(&format!("passwd-{rt}"));
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
    )
    .unwrap();
    let bind = format!("{}:/etc/passwd:ro", passwd.display());
    assert_eq!(sh_rm(d, rt, &[], "echo $HOME"), "/root", "{rt}: root");
    assert_eq!(
        sh_rm(d, rt, &["--user", "1000:1000"], "echo $HOME"),
        "/",
        "{rt}: no entry"
    );
    assert_eq!(
        sh_rm(d, rt, &["-v", &bind, "--user", "1000:1000"], "echo $HOME"),
        "/home/u",
        "{rt}: uid 1000"
    );
    assert_eq!(sh_rm(d, rt, &["-e", "HOME=/x"], "echo $HOME"), "/x", "{rt}: -e HOME");
    let c = Container::run(d, &format!("home-{rt}"), rt, &["-v", &bind], &["sleep", "1000"]);
    assert_eq!(c.sh("echo $HOME"), "/root", "{rt}: exec");
    assert_eq!(
        c.exec_with(&["-u", "1000"], &["sh", "-c", "echo $HOME"]).trim(),
        "/home/u",
        "{rt}: exec -u 1000"
    );
}

/// Megabytes through stdin (docker run -i ends at EOF) and stdout (attached,
/// and in the log), byte for byte.
fn io_integrity(d: &Dockerd, rt: &str) {
    // xorshift: deterministic bytes without a dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let input: Vec<u8> = (0..5_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut md5 = Command::new("md5sum");
    md5.arg("-");
    let want = docker::run(md5, Some(&input)).stdout;
    let mut args = vec![
        "run",
        "-i",
        "--rm",
        "--runtime",
        rt,
        "--network",
        "none",
        IMAGE,
        "md5sum",
    ];
    let out = d.docker_input(&args, &input);
    assert!(out.success(), "{rt}: {out}");
    assert_eq!(out.stdout, want, "{rt}: stdin");

    let seq: String = (1..=300_000).map(|n| format!("{n}\n")).collect();
    args.truncate(1);
    args.extend([
        "--rm",
        "--runtime",
        rt,
        "--network",
        "none",
        IMAGE,
        "seq",
        "1",
        "300000",
    ]);
    let out = d.docker(&args);
    assert!(
        out.stdout == seq,
        "{rt}: attached stdout differs: {} bytes",
        out.stdout.len()
    );
    let c = Container::run(d, &format!("seq-{rt}"), rt, &[], &["seq", "1", "300000"]);
    d.ok(&["wait", &c.name]);
    let logs = d.ok(&["logs", &c.name]);
    assert!(logs == seq, "{rt}: logged stdout differs: {} bytes", logs.len());
}

/// docker rm -f of a container with execs running removes them all.
fn rm_with_execs_running(d: &Dockerd, rt: &str) {
    let c = Container::run(d, &format!("rmexec-{rt}"), rt, &[], &["sleep", "1000"]);
    c.exec_with(&["-d"], &["sleep", "999"]);
    c.exec_with(&["-d"], &["sh", "-c", "sleep 998"]);
    let id = c.id();
    drop(c);
    assert_gone(d, rt, &id);
    // No process is left in any cgroup of the container.
    let left: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&id)))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{rt}: processes left: {left:?}");
}

/// --cgroupns private roots every hierarchy at the container's cgroup;
/// --cgroup-parent places it; --pids-limit stops a fork.
fn cgroup_ns_parent_and_pids(d: &Dockerd, rt: &str) {
    let got = sh_rm(
        d,
        rt,
        &["--cgroupns", "private"],
        "cut -d: -f3 /proc/self/cgroup | sort -u",
    );
    assert_eq!(got, "/", "{rt}: /proc/self/cgroup in a private cgroup namespace");
    let parent = format!("{}/custom-{rt}", d.cgroup_parent);
    let c = Container::run(
        d,
        &format!("parent-{rt}"),
        rt,
        &["--cgroup-parent", &parent],
        &["sleep", "1000"],
    );
    let pid = d.inspect(&c.name, "{{.State.Pid}}");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("{parent}/{}", c.id());
    for line in cgroups.lines() {
        assert!(line.ends_with(&format!(":{want}")), "{rt}: {line}, not in {want}");
    }
    let out = run_rm(
        d,
        rt,
        &["--pids-limit", "5"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 10 & done; kill $(jobs -p) 2>/dev/null; true",
        ],
    );
    assert!(out.stderr.contains("can't fork"), "{rt}: {out}");
}

/// docker exec sends the container's process settings (a copy of its
/// process with other args): the exec'd process gets the same
/// capabilities, no_new_privs, seccomp, rlimits and oom_score_adj as the
/// init, as runc gives it (before 713aaae the exec'd process kept the
/// shim's oom_score_adj).
fn exec_gets_the_process_settings(d: &Dockerd, rt: &str) {
    let c = Container::run(
        d,
        &format!("execset-{rt}"),
        rt,
        &[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            "--security-opt",
            "no-new-privileges",
            "--ulimit",
            "nofile=512:1024",
            "--oom-score-adj",
            "300",
        ],
        &["sleep", "1000"],
    );
    let settings = |pid: &str| {
        c.sh(&format!(
            "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/{pid}/status; cat /proc/{pid}/oom_score_adj"
        ))
    };
    let want = "CapEff:\t0000000000000001\nCapBnd:\t0000000000000001\nNoNewPrivs:\t1\nSeccomp:\t2\n300";
    assert_eq!(settings("1"), want, "{rt}: the init");
    assert_eq!(settings("self"), want, "{rt}: the exec'd process");
    assert_eq!(
        c.sh("ulimit -n; ulimit -Hn"),
        "512\n1024",
        "{rt}: the exec'd process's nofile"
    );
}

/// The output of short containers, four started at a time, is all there.
/// Seen failing intermittently with our CLI under the Go shim (`cli::`),
/// on a loaded machine: 3 runs of some 300 printed nothing though the
/// container ran (its marker file was made); never with runc or our shim.
fn short_lived_output_kept(d: &Dockerd, rt: &str) {
    let dir = d.path(&format!("short-{rt}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in"), "from host\n").unwrap();
    let bind = format!("{}:/data", dir.display());
    let ro = &format!("{}:/ro:ro", dir.display());
    let lost: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|k| {
                let bind = &bind;
                s.spawn(move || {
                    let mut lost = vec![];
                    for i in 0..25 {
                        let script = format!("cat /data/in; echo out > /data/out; touch /data/ran-{k}-{i}");
                        let out = run_rm(d, rt, &["-v", bind, "-v", ro], &["sh", "-c", &script]);
                        if out.stdout != "from host\n" {
                            lost.push(format!("{k}-{i}: {out}"));
                        }
                    }
                    lost
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let ran = std::fs::read_dir(&dir).unwrap().count() - 2;
    assert!(
        lost.is_empty(),
        "{rt}: {} of 100 outputs lost ({ran} ran):\n{}",
        lost.len(),
        lost.join("\n")
    );
}

/// dockerd stopped with containers running (one paused) under both
/// runtimes stops them: no shim, container process or runtime state is left.
#[test]
fn daemon_stop_leaves_nothing() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = Dockerd::start();
    let mut ids = vec![];
    for rt in [RT_SHIM, RT_CLI] {
        for (name, paused) in [(format!("keep-{rt}"), false), (format!("paused-{rt}"), true)] {
            let c = Container::run(&d, &name, rt, &["--stop-timeout", "1"], &["sleep", "1000"]);
            if paused {
                d.ok(&["pause", &c.name]);
            }
            ids.push((rt, c.id()));
            // Left running for dockerd to stop.
            std::mem::forget(c);
        }
    }
    assert!(!d.shims(None).is_empty());
    assert!(d.stop_daemon(), "dockerd needed SIGKILL:\n{}", d.log());
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.containerd_pid().is_some() || !d.shims(None).is_empty() || !d.container_procs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left after dockerd stopped: containerd {:?}, shims {:?}, container processes {:?}\n{}",
            d.containerd_pid(),
            d.shims(None),
            d.container_procs(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (rt, id) in &ids {
        for state in [
            Path::new("/run/containerd/myshim/moby").join(id),
            d.path("exec/runtime-runc/moby").join(id),
        ] {
            assert!(!state.exists(), "{rt}: runtime state left: {}", state.display());
        }
    }
}

/// live-restore: dockerd restarted while containers of both runtimes run
/// (its managed containerd with it); they keep running and logging, and
/// exec, stop and rm work on them afterwards.
#[test]
fn live_restore() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = Dockerd::start_with(serde_json::json!({"live-restore": true}));
    let ticks = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done";
    let cs: Vec<_> = [RT_SHIM, RT_CLI]
        .into_iter()
        .map(|rt| {
            (
                rt,
                Container::run(&d, &format!("live-{rt}"), rt, &[], &["sh", "-c", ticks]),
            )
        })
        .collect();
    let pids: Vec<String> = cs.iter().map(|(_, c)| d.inspect(&c.name, "{{.State.Pid}}")).collect();
    d.restart_daemon();
    for ((rt, c), pid) in cs.iter().zip(&pids) {
        assert_eq!(
            d.inspect(&c.name, "{{.State.Status}} {{.State.Pid}}"),
            format!("running {pid}"),
            "{rt}"
        );
        assert_eq!(c.sh("echo exec ok"), "exec ok", "{rt}");
        let before = d.ok(&["logs", &c.name]).lines().count();
        let deadline = Instant::now() + Duration::from_secs(30);
        let logs = loop {
            let logs = d.ok(&["logs", &c.name]);
            if logs.lines().count() > before {
                break logs;
            }
            assert!(Instant::now() < deadline, "{rt}: no output after the restart");
            std::thread::sleep(Duration::from_millis(100));
        };
        // Not a line lost across the restart.
        let lines: Vec<&str> = logs.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            assert_eq!(*line, format!("tick {}", n + 1), "{rt}");
        }
        d.ok(&["stop", "-t", "1", &c.name]);
        assert_eq!(
            d.inspect(&c.name, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137",
            "{rt}"
        );
        let id = c.id();
        d.ok(&["rm", &c.name]);
        assert_gone(&d, rt, &id);
    }
}

/// `--restart always` containers of both runtimes come back when dockerd
/// (no live-restore) is restarted; `unless-stopped` after docker stop does not.
#[test]
fn restart_always_across_daemon_restart() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let d = Dockerd::start();
    let mut cs = vec![];
    for rt in [RT_SHIM, RT_CLI] {
        let always = Container::run(
            &d,
            &format!("always-{rt}"),
            rt,
            &["--restart", "always"],
            &["sleep", "1000"],
        );
        let stopped = Container::run(
            &d,
            &format!("stopped-{rt}"),
            rt,
            &["--restart", "unless-stopped"],
            &["sleep", "1000"],
        );
        d.ok(&["stop", "-t", "0", &stopped.name]);
        let pid = d.inspect(&always.name, "{{.State.Pid}}");
        cs.push((rt, always, stopped, pid));
    }
    d.restart_daemon();
    for (rt, always, stopped, pid) in &cs {
        d.wait_inspect(&always.name, "{{.State.Status}}", "running");
        assert_ne!(&d.inspect(&always.name, "{{.State.Pid}}"), pid, "{rt}: the old init");
        assert_eq!(always.sh("echo exec ok"), "exec ok", "{rt}");
        assert_eq!(d.inspect(&stopped.name, "{{.State.Status}}"), "exited", "{rt}");
    }
}

#[test]
fn both_runtimes_registered() {
    with_daemon(|d| {
        let info = d.ok(&["info", "--format", "{{json .Runtimes}}"]);
        for rt in [RT_SHIM, RT_CLI] {
            assert!(info.contains(&format!("\"{rt}\"")), "{rt} missing: {info}");
        }
    });
}
