//! The `chids` command line: argument parsing and printing only; the work
//! is done by the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            // One line, naming the file and position where there is one.
            let mut msg = err.to_string();
            for cause in err.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("chids: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
