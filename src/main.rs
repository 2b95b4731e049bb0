//! The `qmap` binary: parses the command line and runs it (see `qmap::cli`).

use clap::Parser;

// The exhaustive search and the table builder allocate per evaluated mapping; mimalloc makes
// that markedly cheaper than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = qmap::cli::Cli::parse();
    let result = qmap::cli::run(cli);
    if let Err(e) = &result {
        eprintln!("error: {e}");
    }
    let code = qmap::error::exit_code(&result);
    qmap::cli::flush_stdout();
    std::process::exit(code);
}
