//! Tiny test driver: `cargo run --release --example scap_dump FILE [json]`.
use chids::source::scap::{dump, DumpFormat};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: scap_dump FILE [json]");
    let fmt = if args.next().as_deref() == Some("json") {
        DumpFormat::Json
    } else {
        DumpFormat::Sysdig
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match dump(&path, fmt, &mut out) {
        Ok(s) => eprintln!(
            "{} events, {} malformed {:?}",
            s.events, s.read.malformed, s.read.first_malformed
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}
