use clap::Parser;

fn main() {
    let cli = qmap::cli::Cli::parse();
    let code = match qmap::cli::run(cli) {
        Ok(outcome) => outcome.code(),
        Err(e) => {
            eprintln!("error: {e}");
            qmap::cli::Outcome::BadInput.code()
        }
    };
    std::process::exit(code);
}
