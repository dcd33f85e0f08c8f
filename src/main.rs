//! The `chids` command line: argument parsing and printing only; the work
//! is done by the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `chids vectors ... | head` into a
    // failed write (and println! into a panic). Restore the Unix default:
    // the process ends quietly when its reader goes away.
    // SAFETY: called first thing, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
