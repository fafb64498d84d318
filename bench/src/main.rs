//! Parses the command line, runs one scenario, prints its table or JSON object, and
//! exits non-zero with a FAILED line if events were lost or duplicated or errors
//! occurred.

use std::{io::Write, process::ExitCode};

use clap::Parser;
use recordsync_bench::cli::{Cli, Scenario};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Summarize(args) = &cli.scenario {
        return match recordsync_bench::summary::summarize(&args.files) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("recordsync-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recordsync-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(recordsync_bench::run(&cli)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("FAILED: recordsync-bench could not run: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let json = report.json();
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    if let Some(path) = &cli.json_out {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{json}"));
        if let Err(e) = written {
            eprintln!("recordsync-bench: cannot write {}: {e}", path.display());
        }
    }
    // Dropping thousands of connections can take a while; nothing is left to do.
    runtime.shutdown_background();
    match report.failure() {
        Some(why) => {
            eprintln!("FAILED: {}: {why}", report.scenario);
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
