//! The `kompass` binary: parses the command line and explains failures for people.

use std::io::IsTerminal;

use clap::Parser;
use kompass::cli::Cli;

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KOMPASS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    let result = match kompass::commands::run_sync(&cli) {
        Some(result) => result,
        None => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: could not start the async runtime: {e}");
                    std::process::exit(1);
                }
            };
            runtime.block_on(kompass::commands::run(cli))
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
