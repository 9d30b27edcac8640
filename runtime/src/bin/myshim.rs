//! `myshim`: the runc-compatible command line over the myshim runtime.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use myshim_runtime::container::{self, CreateOptions};
use myshim_runtime::exec::{self, ExecOptions};
use myshim_runtime::logging::{self, Format};
use myshim_runtime::{spec, state, template, terminal};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "myshim",
    about = "An OCI runtime with the command line of runc",
    disable_version_flag = true
)]
struct Cli {
    /// Directory for container state [default: /run/myshim, or $XDG_RUNTIME_DIR/myshim for non-root]
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Write log lines to this file instead of stderr
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log line format: text or json (runc's shape)
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: Format,
    /// Log debug messages too
    #[arg(long, global = true)]
    debug: bool,
    /// Manage cgroups through systemd (not available: no systemd D-Bus here)
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check whether this host can run containers, and how (ok, warn, fail, and what to do)
    Check {
        /// text or json
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Write runc's default config.json into the bundle
    Spec {
        /// Make a config for an unprivileged user (user namespace, no network namespace)
        #[arg(long)]
        rootless: bool,
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Create a container; its process waits for `start`
    Create(CreateArgs),
    /// Start a created container's process
    Start { id: String },
    /// Create and start a container; without -d, wait for it and remove it
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach: return once the container runs
        #[arg(short, long)]
        detach: bool,
    },
    /// Print a container's OCI state as JSON
    State { id: String },
    /// List containers
    List {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Send a signal (default SIGTERM) to a container's init
    Kill {
        id: String,
        signal: Option<String>,
        /// Signal every process of the container
        #[arg(short, long)]
        all: bool,
    },
    /// Remove a stopped container (--force: kill it first)
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// List the processes of a container
    Ps {
        id: String,
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Options for ps(1) [default: -ef]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a new process in a running container
    Exec(ExecArgs),
    /// Freeze every process of a container (cgroup freezer)
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a running container's resource limits
    Update(UpdateArgs),
    /// Print what this runtime supports, as JSON (runc's shape)
    Features,
    /// Print a container's resource usage (--stats) as JSON
    Events {
        id: String,
        /// Print the usage once and exit
        #[arg(long)]
        stats: bool,
    },
}

#[derive(Args)]
struct UpdateArgs {
    id: String,
    /// linux.resources JSON to apply, from a file or `-` for stdin
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes or with a unit (64m, 1g; -1: unlimited)
    #[arg(long, allow_negative_numbers = true, value_parser = ram_in_bytes)]
    memory: Option<i64>,
    /// Memory soft limit in bytes or with a unit (64m, 1g; -1: unlimited)
    #[arg(long, allow_negative_numbers = true, value_parser = ram_in_bytes)]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes or with a unit (-1: unlimited)
    #[arg(long, allow_negative_numbers = true, value_parser = ram_in_bytes)]
    memory_swap: Option<i64>,
    /// Kernel TCP buffer memory limit (cgroup v1) in bytes or with a unit
    #[arg(long, allow_negative_numbers = true, value_parser = ram_in_bytes)]
    kernel_memory_tcp: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long, allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPUs to use (e.g. 0-1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes (0 or -1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
}

#[derive(Args)]
struct CreateArgs {
    id: String,
    /// Bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master (SCM_RIGHTS)
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// File that receives the container's host pid
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long)]
    no_pivot: bool,
    /// Pass fds 3..3+N through to the container
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
}

#[derive(Args)]
struct ExecArgs {
    id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// A process.json to run instead of a command
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pty
    #[arg(short, long)]
    tty: bool,
    /// Working directory
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short, long)]
    env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// Extra capability (repeatable)
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set noNewPrivileges
    #[arg(long)]
    no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label for the process (refused: SELinux is not supported)
    #[arg(long)]
    process_label: Option<String>,
    /// Exec into a paused container (the process starts frozen)
    #[arg(long)]
    ignore_paused: bool,
    /// Run in an existing sub-cgroup: PATH, or CONTROLLER[,CONTROLLER]:PATH (repeatable)
    #[arg(long)]
    cgroup: Vec<String>,
    /// Return once the process runs
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("myshim: {e:#}");
        std::process::exit(1);
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // As runc: the logrus line goes where the log goes (containerd reads
            // the last one from --log); with a log file, stderr gets the message.
            let msg = format!("{e:#}");
            log::error!("{msg}");
            if logging::to_file() {
                eprintln!("{msg}");
            }
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        println!(
            "myshim version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            state::OCI_VERSION
        );
        return Ok(0);
    }
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver needs systemd over D-Bus, which is not reachable; use the cgroupfs driver (no flag)");
    }
    let root = cli.root.clone().unwrap_or_else(state::default_root);
    let Some(command) = cli.command else {
        bail!("no command given (try --help)");
    };
    if matches!(
        command,
        Command::State { .. } | Command::List { .. } | Command::Ps { .. } | Command::Features | Command::Events { .. }
    ) {
        // Read by pipes that may close early (`state ID | head -1`): end
        // quietly on SIGPIPE, as runc does, instead of panicking in println!.
        // SAFETY: resetting a signal disposition in a single-threaded process.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if matches!(command, Command::Create(_) | Command::Run { .. } | Command::Exec(_)) {
        // These clone processes into a container: CVE-2019-5736.
        myshim_runtime::exe_guard::ensure_protected_exe()?;
    }
    match command {
        Command::Spec { rootless, bundle } => write_spec(&bundle, rootless).map(|_| 0),
        Command::Create(args) => container::create(&create_options(&root, args, false)).map(|_| 0),
        Command::Start { id } => container::start(&root, &id).map(|_| 0),
        Command::Run { create, detach } => run_container(&root, create, detach),
        Command::State { id } => {
            println!("{}", container::state(&root, &id)?);
            Ok(0)
        }
        Command::List { format, quiet } => list(&root, &format, quiet).map(|_| 0),
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&root, &id, sig, all).map(|_| 0)
        }
        Command::Delete { id, force } => container::delete(&root, &id, force).map(|_| 0),
        Command::Ps { id, format, ps_args } => ps(&root, &id, &format, ps_args).map(|_| 0),
        Command::Exec(args) => exec_in(&root, args),
        Command::Pause { id } => container::pause(&root, &id).map(|_| 0),
        Command::Resume { id } => container::resume(&root, &id).map(|_| 0),
        Command::Update(args) => update(&root, args).map(|_| 0),
        Command::Check { format } => {
            let checks = myshim_runtime::check::run();
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&checks)?),
                "text" => print!("{}", myshim_runtime::check::text(&checks)),
                other => bail!("--format {other:?}: text or json"),
            }
            let failed = checks.iter().any(|c| c.level == myshim_runtime::check::Level::Fail);
            Ok(if failed { 1 } else { 0 })
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&myshim_runtime::features::features())?
            );
            Ok(0)
        }
        Command::Events { id, stats } => {
            if !stats {
                bail!("only `events --stats` is implemented");
            }
            let data = container::stats(&root, &id)?;
            println!("{}", serde_json::json!({"type": "stats", "id": id, "data": data}));
            Ok(0)
        }
    }
}

fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&template::default_spec(rootless))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn create_options(root: &std::path::Path, args: CreateArgs, keep_console: bool) -> CreateOptions {
    CreateOptions {
        root: root.to_path_buf(),
        id: args.id,
        bundle: args.bundle,
        console_socket: args.console_socket,
        pid_file: args.pid_file,
        no_pivot: args.no_pivot,
        preserve_fds: args.preserve_fds,
        keep_console,
        clone_parent: false,
    }
}

fn run_container(root: &std::path::Path, args: CreateArgs, detach: bool) -> Result<i32> {
    let keep_console = !detach && args.console_socket.is_none();
    let opts = create_options(root, args, keep_console);
    if detach {
        container::create(&opts)?;
        container::start(root, &opts.id)?;
        return Ok(0);
    }
    // Blocked before the init exists so no signal meant for it is lost;
    // the init resets its mask.
    terminal::block_signals()?;
    let created = container::create(&opts)?;
    let code = container::start(root, &opts.id)
        .and_then(|_| terminal::foreground(created.pid, &created.pidfd, created.console));
    let removed = container::delete(root, &opts.id, true);
    let code = code?;
    removed?;
    Ok(code)
}

fn list(root: &std::path::Path, format: &str, quiet: bool) -> Result<()> {
    let containers = state::list(root)?;
    let rows: Vec<_> = containers
        .iter()
        .map(|(_, saved)| {
            let status = saved.status(&root.join(&saved.id));
            saved.oci_state(status)
        })
        .collect();
    if quiet {
        for r in &rows {
            println!("{}", r.id);
        }
        return Ok(());
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&rows)?),
        "table" => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for r in &rows {
                table.push([
                    r.id.to_string(),
                    r.pid.to_string(),
                    r.status.to_string(),
                    r.bundle.display().to_string(),
                    r.created.to_string(),
                    r.owner.to_string(),
                ]);
            }
            print_table(&table);
        }
        other => bail!("unknown format {other:?} (table or json)"),
    }
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// A memory size as runc's update takes it: bytes, or a number with a
/// binary unit (k, m, g, t, p; an optional "b" or "ib"), or -1.
fn ram_in_bytes(text: &str) -> Result<i64, String> {
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.trim().to_ascii_lowercase();
    let unitless = lower.trim_end_matches('b').trim_end_matches('i');
    let (number, shift) = match unitless.char_indices().last() {
        Some((at, unit @ ('k' | 'm' | 'g' | 't' | 'p'))) => {
            (&unitless[..at], 10 * (1 + "kmgtp".find(unit).unwrap_or(0) as u32))
        }
        _ => (unitless, 0),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("invalid size: {text:?}"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("invalid size: {text:?}"));
    }
    Ok((value * (1u64 << shift) as f64) as i64)
}

/// runc's update: the flags change the container's current resources; -r
/// replaces them with a linux.resources document.
fn update(root: &std::path::Path, args: UpdateArgs) -> Result<()> {
    use myshim_runtime::resources::{Cpu, Memory, Pids, Resources};
    let mut r: Resources = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)?;
                t
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
            };
            serde_json::from_str(&text).context("invalid linux.resources JSON")?
        }
        None => {
            let saved = state::ContainerDir::open(root, &args.id)?.load()?;
            saved.config.linux().resources.clone().unwrap_or_default()
        }
    };
    let memory = r.memory.get_or_insert_with(Memory::default);
    memory.limit = args.memory.or(memory.limit);
    memory.reservation = args.memory_reservation.or(memory.reservation);
    memory.swap = args.memory_swap.or(memory.swap);
    memory.kernel_tcp = args.kernel_memory_tcp.or(memory.kernel_tcp);
    let cpu = r.cpu.get_or_insert_with(Cpu::default);
    cpu.shares = args.cpu_shares.or(cpu.shares);
    cpu.quota = args.cpu_quota.or(cpu.quota);
    cpu.period = args.cpu_period.or(cpu.period);
    cpu.cpus = args.cpuset_cpus.or(cpu.cpus.take());
    cpu.mems = args.cpuset_mems.or(cpu.mems.take());
    if let Some(limit) = args.pids_limit {
        r.pids = Some(Pids { limit });
    }
    container::update(root, &args.id, &r)
}

fn ps(root: &std::path::Path, id: &str, format: &str, ps_args: Vec<String>) -> Result<()> {
    let saved = state::ContainerDir::open(root, id)?.load()?;
    let pids = if state::process_state(saved.pid, saved.pid_start_time).is_some() {
        container::container_pids(&saved)?
    } else {
        vec![]
    };
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            return Ok(());
        }
        "table" => {}
        other => bail!("unknown format {other:?} (table or json)"),
    }
    let args = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

fn exec_in(root: &std::path::Path, args: ExecArgs) -> Result<i32> {
    let mut process = match &args.process {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<spec::Process>(&text).with_context(|| format!("invalid {}", path.display()))?
        }
        None => {
            if args.command.is_empty() {
                bail!("exec needs a command or --process");
            }
            let mut p = exec::base_process(root, &args.id)?;
            p.args = args.command.clone();
            p.terminal = args.tty;
            p.console_size = None;
            p
        }
    };
    if let Some(cwd) = &args.cwd {
        process.cwd = cwd.clone();
    }
    for entry in &args.env {
        myshim_runtime::process::set_env(&mut process.env, entry);
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        process.user.uid = uid
            .parse()
            .with_context(|| format!("--user {user:?}: uid is not a number"))?;
        process.user.gid = gid
            .parse()
            .with_context(|| format!("--user {user:?}: gid is not a number"))?;
    }
    if !args.cap.is_empty() {
        let caps = process.capabilities.get_or_insert_with(Default::default);
        for set in [
            &mut caps.bounding,
            &mut caps.effective,
            &mut caps.permitted,
            &mut caps.ambient,
        ] {
            set.get_or_insert_with(Vec::new).extend(args.cap.iter().cloned());
        }
    }
    if args.no_new_privs {
        process.no_new_privileges = true;
    }
    process.user.additional_gids.extend(&args.additional_gids);
    if let Some(profile) = args.apparmor {
        process.apparmor_profile = Some(profile);
    }
    if let Some(label) = args.process_label {
        process.selinux_label = Some(label);
    }
    if !args.detach {
        terminal::block_signals()?;
    }
    exec::exec(&ExecOptions {
        root: root.to_path_buf(),
        id: args.id,
        process,
        console_socket: args.console_socket,
        pid_file: args.pid_file,
        detach: args.detach,
        preserve_fds: args.preserve_fds,
        clone_parent: false,
        ignore_paused: args.ignore_paused,
        sub_cgroup: args.cgroup,
    })
}

#[cfg(test)]
mod tests {
    use super::ram_in_bytes;

    #[test]
    fn memory_sizes_as_runc_update_takes_them() {
        assert_eq!(ram_in_bytes("-1"), Ok(-1));
        assert_eq!(ram_in_bytes("1048576"), Ok(1 << 20));
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("2KiB"), Ok(2048));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert!(ram_in_bytes("-2").is_err());
        assert!(ram_in_bytes("lots").is_err());
    }
}
