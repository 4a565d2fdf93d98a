//! The `warren` binary: command line, tracing, configuration, process set-up, then the
//! library's runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use warren::config::{self, Loaded};
use warren::runtime::{process, Handle, Warren};

const USAGE: &str = "usage: warren -f <haproxy.cfg|warren.toml|dir> [-f ...] [-c] [-D|-db] [-W] [-d|-q]
       warren convert <haproxy.cfg|dir>...   print the equivalent TOML
  -f FILE  configuration (HAProxy syntax or warren's TOML, by extension or content);
           repeat it to read several files in order; a directory gives its *.cfg files
  -W       master-worker mode: accepted; warren reloads in its own process
  -c       check the configuration and exit (0 valid, 1 invalid)
  -D       go to the background (as 'daemon' in global)   -db  stay in the foreground
  -d       debug output    -q  errors only
signals: SIGHUP reloads the file (a bad file keeps the old one serving), SIGTERM stops politely, SIGINT faster";

struct Args {
    files: Vec<PathBuf>,
    check: bool,
    daemon: Option<bool>,
    verbosity: &'static str,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        files: Vec::new(),
        check: false,
        daemon: None,
        verbosity: "info",
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-f" => a
                .files
                .push(PathBuf::from(args.next().context("-f needs a file")?)),
            // HAProxy's master-worker mode exists so a master can re-exec workers on
            // reload; warren reloads within its one process (SIGHUP), so there is nothing
            // to switch on.
            "-W" | "-Ws" => eprintln!(
                "[NOTICE] {arg}: warren has no master process; it reloads in process on SIGHUP"
            ),
            "-c" => a.check = true,
            "-D" => a.daemon = Some(true),
            "-db" => a.daemon = Some(false),
            "-d" => a.verbosity = "debug",
            "-q" => a.verbosity = "error",
            "-v" | "-vv" | "--version" => return version(),
            "convert" => {
                let paths: Vec<PathBuf> = args.by_ref().map(PathBuf::from).collect();
                if paths.is_empty() {
                    bail!("convert needs a file\n{USAGE}");
                }
                print!("{}", config::to_toml(&load(&paths)?.config));
                return Ok(None);
            }
            "-h" | "--help" => return help(),
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    if a.files.is_empty() {
        bail!("no configuration given\n{USAGE}");
    }
    Ok(Some(a))
}

fn version() -> Result<Option<Args>> {
    println!("warren {}", env!("CARGO_PKG_VERSION"));
    Ok(None)
}

fn help() -> Result<Option<Args>> {
    println!("{USAGE}");
    Ok(None)
}

/// Loads the files, printing notices and warnings whether or not the configuration is valid.
fn load(paths: &[PathBuf]) -> Result<Loaded> {
    match config::load_files(paths) {
        Ok(loaded) => {
            print_diagnostics(&loaded.notices, &loaded.warnings);
            Ok(loaded)
        }
        Err(rejected) => {
            print_diagnostics(&rejected.notices, &rejected.warnings);
            Err(anyhow::anyhow!("{}", rejected.error))
        }
    }
}

fn print_diagnostics(notices: &[config::Diagnostic], warnings: &[config::Diagnostic]) {
    for n in notices {
        eprintln!("[NOTICE] {n}");
    }
    for w in warnings {
        eprintln!("[WARNING] {w}");
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[ALERT] {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("warren={}", args.verbosity))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let config = load(&args.files)?.config;
    if args.check {
        println!("Configuration file is valid");
        return Ok(());
    }
    match config.global.ulimit_n {
        Some(n) => process::set_fd_limit(n, config.global.maxconn)?,
        None => {
            process::raise_fd_limit(config.global.maxconn)?;
        }
    }
    let mut warren = Warren::bind(&config)?;
    if let Some(limit) = config.global.hard_stop_after {
        warren.hard_stop_after(limit);
    }
    if args.daemon.unwrap_or(config.global.daemon) {
        process::daemonize()?;
    }
    // The pidfile is written before chroot (its path is outside) and before privileges
    // are dropped, as HAProxy does.
    if let Some(path) = &config.global.pidfile {
        process::write_pidfile(path)?;
    }
    if let Some(dir) = &config.global.chroot {
        process::chroot(dir)?;
        tracing::info!(
            "chrooted to {}: SIGHUP reloads read the configuration inside it",
            dir.display()
        );
    }
    process::drop_privileges(&config.global)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.global.nbthread {
        rt.worker_threads(n);
    }
    if !config.global.cpu_map.is_empty() {
        let maps = config.global.cpu_map.clone();
        let workers = config
            .global
            .nbthread
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        rt.on_thread_start(move || {
            // Worker threads start first, in order; threads started later (blocking pool)
            // are not pinned.
            let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n <= workers {
                process::pin_thread(n as u32, &maps);
            }
        });
    }
    rt.enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(async {
            tracing::info!(
                "warren {} started with {}",
                env!("CARGO_PKG_VERSION"),
                names(&args.files)
            );
            tokio::spawn(reload_on_sighup(args.files, warren.handle()));
            warren.run(warren::runtime::stop_signal()).await
        })?;
    // The last sessions' lines are still with the log writer.
    warren::log::flush(std::time::Duration::from_secs(1));
    Ok(())
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// SIGHUP: re-read and validate the files; apply them, or log why not and keep serving.
async fn reload_on_sighup(paths: Vec<PathBuf>, handle: Handle) {
    let Ok(mut hup) = warren::runtime::reload_signal() else {
        tracing::error!("cannot install the SIGHUP handler: reloads are unavailable");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading {}", names(&paths));
        let result = match config::load_files(&paths) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                }
                handle
                    .reload(loaded.config)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(rejected) => Err(rejected.error.to_string()),
        };
        if let Err(e) = result {
            tracing::error!("reload failed; the previous configuration keeps serving:\n{e}");
        }
    }
}
