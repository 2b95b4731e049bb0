//! The command line: its arguments ([`args`]) and the commands (one function each), each a thin
//! layer over the library: arguments → an `app` call → a `report` printer → an [`Outcome`].

mod accuracy;
pub mod args;
mod commands;
mod table;

pub use crate::error::{Error, Outcome};
pub use accuracy::{AccuracyArgs, AccuracyCommand, MeasureArgs};
pub use args::*;

/// Writes to stdout. When stdout is a closed pipe (`qmap ... | head`), the run ends quietly
/// with exit code 0, as `grep` does; any other failure (a full disk) is a clear error, exit
/// code 2. Never a panic.
pub fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// Flushes stdout at the end of a run, like [`emit`] on failure.
pub fn flush_stdout() {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().flush() {
        stdout_failed(e);
    }
}

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(Outcome::Ok.code());
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(crate::error::BAD_INPUT);
}

/// Runs a parsed command line; failures come back as `Err` (exit code 2 or 3).
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    let ran = run_command(cli);
    for line in crate::notices::take() {
        eprintln!("{line}");
    }
    ran
}

/// The command's function.
fn run_command(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Eval(a) => commands::eval(a),
        Command::Map(a) => commands::map(a),
        Command::Search(a) => commands::search(a),
        Command::Export(a) => commands::export(a),
        Command::Baseline(a) => commands::baseline(a),
        Command::Gap(a) => commands::gap(a),
        Command::Front(a) => commands::front(a),
        Command::Table(a) => table::table_cmd(a),
        Command::Cache(a) => table::cache_cmd(a),
        Command::Import(a) => commands::import(a),
        Command::Accuracy(a) => accuracy::accuracy_cmd(a),
    }
}
