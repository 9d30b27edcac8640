//! The command line's workflows with real containers: spec, run, the
//! create/start/list/delete sequence, kill, ps, exec, run -d with a pid file.

mod common;
use common::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn spec_writes_runc_template_and_refuses_to_overwrite() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let dir = env.dir.path().join("specdir");
    std::fs::create_dir(&dir).unwrap();
    env.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let c: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["terminal"], json!(true));
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["root"]["readonly"], json!(true));
    assert_eq!(c["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
    let e = env.fails(&["spec", "-b", dir.to_str().unwrap()]);
    assert!(e.contains("exists"), "{e}");
    // In the current directory, as runc: no -b.
    let dir2 = env.dir.path().join("specdir2");
    std::fs::create_dir(&dir2).unwrap();
    let out = env.cmd(&["spec", "--rootless"]).current_dir(&dir2).output().unwrap();
    assert!(out.status.success());
    let c: Value = serde_json::from_slice(&std::fs::read(dir2.join("config.json")).unwrap()).unwrap();
    assert!(c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
}

#[test]
fn seed_sequence_create_list_start_stopped_delete() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("seed", &["sh", "-c", "echo started > /tmp/marker; sleep 0.3"]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    env.ok(&["create", "seed", "--bundle", b.arg()]);
    let list = env.ok(&["list"]);
    assert!(
        list.lines().any(|l| l.starts_with("seed") && l.contains("created")),
        "{list}"
    );
    assert!(!b.rootfs().join("tmp/marker").exists(), "the process ran before start");
    env.ok(&["start", "seed"]);
    env.wait_status("seed", "stopped");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/marker")).unwrap(),
        "started\n"
    );
    let list = env.ok(&["list"]);
    assert!(
        list.lines().any(|l| l.starts_with("seed") && l.contains("stopped")),
        "{list}"
    );
    env.ok(&["delete", "seed"]);
    assert!(!env.ok(&["list", "-q"]).contains("seed"));
    env.assert_gone("seed", &b);
}

#[test]
fn state_list_json_and_quiet() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("st", &["sleep", "100"]);
    b.edit(|c| c["annotations"] = json!({"org.example/k": "v"}));
    env.ok(&["create", "st", "-b", b.arg()]);
    let state: Value = serde_json::from_str(&env.ok(&["state", "st"])).unwrap();
    assert_eq!(state["id"], "st");
    assert_eq!(state["status"], "created");
    assert_eq!(state["bundle"], b.arg());
    assert_eq!(state["annotations"]["org.example/k"], "v");
    assert!(state["ociVersion"].as_str().unwrap().starts_with("1."));
    let pid = state["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let list: Value = serde_json::from_str(&env.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(list[0]["id"], "st");
    assert_eq!(list[0]["pid"], json!(pid));
    assert_eq!(env.ok(&["list", "-q"]), "st\n");
    env.ok(&["delete", "st"]); // a created container needs no --force, as in runc
    env.assert_gone("st", &b);
}

#[test]
fn run_passes_stdio_and_exit_code() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("rc", &["sh", "-c", "echo out; echo err >&2; exit 42"]);
    let (code, stdout, stderr) = run_output(&env, &b, "rc");
    assert_eq!(code, 42);
    assert_eq!(stdout, "out\n");
    assert_eq!(stderr, "err\n");
    env.assert_gone("rc", &b);
    // stdin is the caller's too.
    let b = env.bundle("in", &["sh", "-c", "read x; echo got $x"]);
    let mut child = env
        .cmd(&["run", "-b", b.arg(), "in"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
}

#[test]
fn run_exit_code_is_128_plus_signal_and_kill_takes_names_and_numbers() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    for (i, sig) in ["KILL", "SIGKILL", "9"].iter().enumerate() {
        let id = format!("k{i}");
        let b = env.bundle(&id, &["sleep", "100"]);
        let mut child = env.cmd(&["run", "-b", b.arg(), &id]).spawn().unwrap();
        env.wait_status(&id, "running");
        env.ok(&["kill", &id, sig]);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(137), "kill {sig}");
        env.assert_gone(&id, &b);
    }
}

#[test]
fn run_forwards_signals_to_the_container() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle(
        "fwd",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready > /dev/shm/ready; while true; do sleep 0.05; done",
        ],
    );
    let child = env.cmd(&["run", "-b", b.arg(), "fwd"]).spawn().unwrap();
    env.wait_status("fwd", "running");
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(42));
    env.assert_gone("fwd", &b);
}

#[test]
fn run_with_terminal_gives_an_interactive_shell_with_resizes() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("tty", &["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    // script(1) gives myshim a real pty as its stdin/stdout.
    let inner = format!(
        "stty rows 33 cols 101; {MYSHIM} --root {} run -b {} tty",
        env.root().display(),
        b.arg()
    );
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    stdin.write_all(b"echo TTY=$(tty) SIZE=$(stty size); exit 5\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TTY=/dev/console") || text.contains("TTY=/dev/pts/0"),
        "{text}"
    );
    assert!(text.contains("SIZE=33 101"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");
    env.assert_gone("tty", &b);
}

#[test]
fn kill_all_and_delete_force() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("ka", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    env.ok(&["run", "-d", "-b", b.arg(), "ka"]);
    env.wait_status("ka", "running");
    std::thread::sleep(Duration::from_millis(200));
    let pids: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "-f", "json", "ka"])).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    env.ok(&["kill", "--all", "ka", "KILL"]);
    env.wait_status("ka", "stopped");
    env.ok(&["delete", "ka"]);
    env.assert_gone("ka", &b);

    let b = env.bundle("df", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "df"]);
    let e = env.fails(&["delete", "df"]);
    assert!(e.contains("running"), "{e}");
    env.ok(&["delete", "--force", "df"]);
    env.assert_gone("df", &b);
}

#[test]
fn ps_lists_container_processes() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("ps", &["sleep", "100"]);
    env.ok(&["run", "-d", "-b", b.arg(), "ps"]);
    let pid = env.pid("ps");
    let table = env.ok(&["ps", "ps"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"));
    let rows: Vec<_> = lines.collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].contains(&pid.to_string()) && rows[0].contains("sleep 100"),
        "{table}"
    );
    env.ok(&["delete", "-f", "ps"]);
}

#[test]
fn exec_runs_in_the_container_with_options() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut b = env.bundle("ex", &["sleep", "100"]);
    b.edit(|c| c["hostname"] = json!("exhost"));
    env.ok(&["run", "-d", "-b", b.arg(), "ex"]);
    let out = env.ok(&[
        "exec",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar",
        "-u",
        "65534:65534",
        "ex",
        "sh",
        "-c",
        "echo $(hostname) $(pwd) $FOO $(id -u):$(id -g); ps -o pid,comm | grep -c sleep",
    ]);
    assert_eq!(out, "exhost /tmp bar 65534:65534\n1\n");
    // --env overrides a variable of the spec: one entry, the last value.
    let out = env.ok(&[
        "exec",
        "-e",
        "PATH=/bin",
        "-e",
        "PATH=/usr/bin:/bin",
        "ex",
        "sh",
        "-c",
        "env | grep -c ^PATH=; echo $PATH",
    ]);
    assert_eq!(out, "1\n/usr/bin:/bin\n");
    let code = env.run(&["exec", "ex", "sh", "-c", "exit 9"]).status.code();
    assert_eq!(code, Some(9));
    // -p process.json
    let p = env.dir.path().join("process.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo from process.json $A"], "env": ["A=1"], "cwd": "/"}).to_string(),
    )
    .unwrap();
    assert_eq!(
        env.ok(&["exec", "-p", p.to_str().unwrap(), "ex"]),
        "from process.json 1\n"
    );
    // -d with --pid-file: the pid is a live process in the container
    let pidf = env.dir.path().join("exec.pid");
    env.ok(&["exec", "-d", "--pid-file", pidf.to_str().unwrap(), "ex", "sleep", "50"]);
    let pid: i32 = std::fs::read_to_string(&pidf).unwrap().parse().unwrap();
    // exec -d returns once the process is ready, just before its execve.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        if cmdline == "sleep\u{0}50\u{0}" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exec'd pid {pid} runs {cmdline:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pids: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "-f", "json", "ex"])).unwrap();
    assert!(pids.contains(&pid));
    // runc's other exec flags.
    let out = env.ok(&[
        "exec",
        "-g",
        "10",
        "-g",
        "20",
        "--no-new-privs",
        "ex",
        "sh",
        "-c",
        "id -G; grep NoNewPrivs /proc/self/status",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "10", "20", "NoNewPrivs:", "1"],
        "{out}"
    );
    let e = env.fails(&[
        "exec",
        "--process-label",
        "system_u:system_r:container_t:s0",
        "ex",
        "true",
    ]);
    assert!(e.contains("SELinux"), "{e}");
    // -t: a pty inside the container
    let inner = format!(
        "{MYSHIM} --root {} exec -t ex sh -c 'tty; exit 4'",
        env.root().display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(4));
    env.ok(&["delete", "-f", "ex"]);
    env.assert_gone("ex", &b);
}

#[test]
fn run_detached_writes_pid_file_and_delete_cleans_up() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("sd", &["sleep", "0.5"]);
    let pidf = env.dir.path().join("sd.pid");
    env.ok(&["run", "-d", "--pid-file", pidf.to_str().unwrap(), "-b", b.arg(), "sd"]);
    let pid: i32 = std::fs::read_to_string(&pidf).unwrap().parse().unwrap();
    assert_eq!(pid, env.pid("sd"));
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap(), "sleep\n");
    env.wait_status("sd", "stopped");
    env.ok(&["delete", "sd"]);
    env.assert_gone("sd", &b);
}

/// `myshim state ID | head -1`: a reader that goes away ends the command
/// quietly (SIGPIPE, as runc), not with a panic on stderr.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let b = env.bundle("ep", &["sleep", "100"]);
    env.ok(&["create", "-b", b.arg(), "ep"]);
    for args in [&["state", "ep"][..], &["list"], &["features"]] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = env.cmd(args).stdout(write).stderr(Stdio::piped()).output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
    env.ok(&["delete", "--force", "ep"]);
    env.assert_gone("ep", &b);
}

#[test]
fn version_and_json_log() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    assert!(env.ok(&["--version"]).starts_with("myshim version"));
    let log = env.dir.path().join("log.json");
    let out = env.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nosuch",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("nosuch"), "{last}");
    // runc: with a log file, stderr gets the plain message.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{}\n", last["msg"].as_str().unwrap())
    );
    // Without one, stderr gets the logrus line: logfmt when it is no
    // terminal (error_message checks the shape), `ERRO[0000] ` on one.
    let e = env.fails(&["state", "nosuch"]);
    assert!(e.contains("nosuch") && e.contains("does not exist"), "{e}");
    let on_tty = Command::new("script")
        .args([
            "-qec",
            &format!("{MYSHIM} --root {} state nosuch", env.root().display()),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&on_tty.stdout);
    assert!(
        text.starts_with("ERRO[0000] container \"nosuch\" does not exist"),
        "{text:?}"
    );
    // --debug logs at debug level into the same file.
    let b = env.bundle("dbg", &["true"]);
    let out = env.run(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "-b",
        b.arg(),
        "dbg",
    ]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"level\":\"debug\"") && l.contains("dbg")),
        "{text}"
    );
}

#[test]
fn run_with_terminal_follows_window_size_changes() {
    if !is_root() {
        return;
    }
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let mut b = env.bundle("winch", &["sh", "-c", "read a; stty size; read b; stty size"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let size = |rows, cols| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size(20, 70)), None).unwrap();
    let slave: OwnedFd = pty.slave;
    let mut cmd = env.cmd(&["run", "-b", b.arg(), "winch"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: setsid and TIOCSCTTY between fork and exec are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    env.wait_status("winch", "running");
    use std::io::Write;
    master.write_all(b"x\r").unwrap();
    read_until(&mut master, "20 70");
    // The kernel sends SIGWINCH to myshim, which resizes the container's pty.
    let ws = size(40, 120);
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
    master.write_all(b"y\r").unwrap();
    read_until(&mut master, "40 120");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    env.assert_gone("winch", &b);
}

/// `myshim check` as root: every check answers, the cgroup mode is this
/// host's, and the exit code says whether any failed.
#[test]
fn check_reports_this_host() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let out = env.run(&["check", "--format", "json"]);
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    for c in &checks {
        assert!(["ok", "warn", "fail"].contains(&c["level"].as_str().unwrap()), "{c}");
        assert_eq!(
            c["level"] != "ok",
            c.get("fix").is_some(),
            "a warn or fail says what to do: {c}"
        );
    }
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270);
    let mode = by_name("cgroup mode")["found"].as_str().unwrap().to_string();
    assert_eq!(mode.starts_with("v2"), unified, "{mode}");
    assert_eq!(by_name("kernel interfaces")["level"], "ok");
    assert_eq!(by_name("subordinate ids")["found"], "not needed for root");
    let failed = checks.iter().any(|c| c["level"] == "fail");
    assert_eq!(out.status.success(), !failed);
    let text = String::from_utf8_lossy(&env.run(&["check"]).stdout).into_owned();
    assert!(
        text.lines().any(|l| l.starts_with("ok    kernel interfaces: clone3")),
        "{text}"
    );
}
