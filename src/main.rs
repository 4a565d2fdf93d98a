//! The `warren` binary: command line, tracing, configuration, process set-up, then the
//! library's runtime.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use warren::config::{self, Loaded};
use warren::runtime::{process, Handle, Warren};

const USAGE: &str = "usage: warren -f <haproxy.cfg|warren.toml> [-c] [-D|-db] [-d|-q]
       warren convert <haproxy.cfg>   print the equivalent TOML
  -f FILE  configuration (HAProxy syntax or warren's TOML, by extension or content)
  -c       check the configuration and exit (0 valid, 1 invalid)
  -D       go to the background (as 'daemon' in global)   -db  stay in the foreground
  -d       debug output    -q  errors only
signals: SIGHUP reloads the file (a bad file keeps the old one serving), SIGTERM stops politely, SIGINT faster";

struct Args {
    file: PathBuf,
    check: bool,
    daemon: Option<bool>,
    verbosity: &'static str,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        file: PathBuf::new(),
        check: false,
        daemon: None,
        verbosity: "info",
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-f" => a.file = PathBuf::from(args.next().context("-f needs a file")?),
            "-c" => a.check = true,
            "-D" => a.daemon = Some(true),
            "-db" => a.daemon = Some(false),
            "-d" => a.verbosity = "debug",
            "-q" => a.verbosity = "error",
            "-v" | "-vv" | "--version" => return version(),
            "convert" => {
                let path = PathBuf::from(args.next().context("convert needs a file")?);
                print!("{}", config::to_toml(&load(&path)?.config));
                return Ok(None);
            }
            "-h" | "--help" => return help(),
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    if a.file.as_os_str().is_empty() {
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

fn load(path: &Path) -> Result<Loaded> {
    let loaded = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &loaded.warnings {
        eprintln!("[WARNING] {w}");
    }
    Ok(loaded)
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
    let config = load(&args.file)?.config;
    if args.check {
        println!("Configuration file is valid");
        return Ok(());
    }
    process::raise_fd_limit(config.global.maxconn)?;
    let mut warren = Warren::bind(&config)?;
    if let Some(limit) = config.global.hard_stop_after {
        warren.hard_stop_after(limit);
    }
    if args.daemon.unwrap_or(config.global.daemon) {
        process::daemonize()?;
    }
    process::drop_privileges(&config.global)?;
    if let Some(path) = &config.global.pidfile {
        process::write_pidfile(path)?;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.global.nbthread {
        rt.worker_threads(n);
    }
    rt.enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(async {
            tokio::spawn(reload_on_sighup(args.file.clone(), warren.handle()));
            tracing::info!(
                "warren {} started with {}",
                env!("CARGO_PKG_VERSION"),
                args.file.display()
            );
            warren.run(warren::runtime::stop_signal()).await
        })?;
    // The last sessions' lines are still with the log writer.
    warren::log::flush(std::time::Duration::from_secs(1));
    Ok(())
}

/// SIGHUP: re-read and validate the file; apply it, or log why not and keep serving.
async fn reload_on_sighup(path: PathBuf, handle: Handle) {
    let Ok(mut hup) = warren::runtime::reload_signal() else {
        tracing::error!("cannot install the SIGHUP handler: reloads are unavailable");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading {}", path.display());
        let result = match config::load(&path) {
            Ok(loaded) => handle
                .reload(loaded.config)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!("reload failed; the previous configuration keeps serving:\n{e}");
        }
    }
}
