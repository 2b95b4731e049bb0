//! The `qmap` binary: parses the command line and runs it (see `qmap::cli`).

use clap::Parser;

// The exhaustive search and the table builder allocate per evaluated mapping; mimalloc makes
// that markedly cheaper than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = qmap::cli::Cli::parse();
    let code = match qmap::cli::run(cli) {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            eprintln!("error: {e}");
            e.code()
        }
    };
    qmap::cli::flush_stdout();
    std::process::exit(code);
}
