//! The `server` binary: parses the command line and hands over to `server::cli`.
use clap::Parser;

fn main() -> std::process::ExitCode {
    // A missing .env is normal; a malformed one is reported by clap below
    // only if it leaves a required setting unset.
    let _ = dotenvy::dotenv();
    let cli = server::cli::Cli::parse();
    server::cli::run(cli)
}
