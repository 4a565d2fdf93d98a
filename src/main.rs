//! The `warren` binary: command line, tracing, configuration, then the library's runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use warren::config::{self, Loaded};
use warren::runtime::Warren;

const USAGE: &str = "usage: warren -f <haproxy.cfg|warren.toml> [-c] [-d] [-q]
       warren convert <haproxy.cfg>   print the equivalent TOML
  -f FILE  configuration (HAProxy syntax or warren's TOML, chosen by extension or content)
  -c       check the configuration and exit (0 valid, 1 invalid)
  -d       debug output    -q  quiet (errors only)    -db  foreground (the default)";

struct Args {
    file: PathBuf,
    check: bool,
    verbosity: &'static str,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = std::env::args().skip(1);
    let (mut file, mut check, mut verbosity) = (None, false, "info");
    while let Some(a) = args.next() {
        match a.as_str() {
            "-f" => file = Some(PathBuf::from(args.next().context("-f needs a file")?)),
            "-c" => check = true,
            "-d" => verbosity = "debug",
            "-q" => verbosity = "error",
            "-db" => {}
            "-v" | "-vv" | "--version" => {
                println!("warren {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "convert" => {
                let path = PathBuf::from(args.next().context("convert needs a file")?);
                print!("{}", config::to_toml(&load(&path)?.config));
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    let file = file.context(format!("no configuration given\n{USAGE}"))?;
    Ok(Some(Args { file, check, verbosity }))
}

fn load(path: &std::path::Path) -> Result<Loaded> {
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
    let Some(args) = parse_args()? else { return Ok(()) };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warren={}", args.verbosity)));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    let loaded = load(&args.file)?;
    if args.check {
        println!("Configuration file is valid");
        return Ok(());
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = loaded.config.global.nbthread {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async {
        let warren = Warren::bind(&loaded.config)?;
        if let Err(e) = warren::runtime::write_pidfile(&loaded.config.global) {
            tracing::error!("{e}; continuing without a pidfile");
        }
        tracing::info!("warren {} started with {}", env!("CARGO_PKG_VERSION"), args.file.display());
        warren.run(warren::runtime::stop_signal()).await?;
        Ok(())
    })
}
