//! The `greenroom` binary: a thin shell around `greenroom::cli`.

use clap::Parser;
use greenroom::cli::{Cli, run};
use greenroom::error::UserError;

fn main() {
    let mut args = std::env::args_os();
    // The process driver's supervisor re-executes this binary; it must start
    // before any runtime or argument parsing.
    if args.nth(1).is_some_and(|a| a == "__supervise") {
        std::process::exit(greenroom_driver::supervise_main(args.collect()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREENROOM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e.downcast_ref::<UserError>().map(UserError::exit_code).unwrap_or(1);
            eprintln!("error: {e:#}");
            if json {
                // Scripts asked for JSON: they get the error as JSON too.
                println!(
                    "{}",
                    serde_json::json!({ "error": format!("{e:#}"), "exit_status": code })
                );
            }
            code
        }
    };
    // Do not wait for stray blocking tasks (e.g. a log follower).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
