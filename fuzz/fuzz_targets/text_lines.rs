//! Sysdig text and LID-DS 2021 `.sc` lines through their readers and the
//! feature stream, in modern and compat mode: Ok or Err, never a panic.
//! The first byte picks the reader; the rest is the file.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use chids_core::mode::Mode;
use chids_core::features::{FeatureStream, Settings};
use chids_core::source::lidds::Lidds2021;
use chids_core::source::sysdig_text::SysdigText;
use chids_core::source::{EventSource, ReadOptions};
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process, reused by every iteration:
/// the readers take a path, not bytes.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chids-fuzz-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn run(source: &dyn EventSource) {
    for mode in [Mode::Modern, Mode::Compat] {
        let options = ReadOptions {
            compat_line_filter: mode.line_filter(),
            container: None,
        };
        let mut stream = FeatureStream::new(Settings::for_mode(mode, 1_000_000), None, true);
        let _ = source.read(&options, &mut |ev| {
            let _ = stream.push(ev, &mut |_| {});
            Ok(())
        });
        let (_, elements) = stream.finish(&mut |_| {});
        // Second pass against the first pass's baseline: the scoring side.
        let mut scored =
            FeatureStream::new(Settings::for_mode(mode, 1_000_000), Some(&elements), true);
        let _ = source.read(&options, &mut |ev| {
            let _ = scored.push(ev, &mut |_| {});
            Ok(())
        });
        scored.finish(&mut |_| {});
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        let path = scratch().join("input.txt");
        std::fs::write(&path, body).unwrap();
        run(&SysdigText::new(&path));
    } else {
        // No .json beside it: labels come from the lidds_zip target.
        let path = scratch().join("input.sc");
        std::fs::write(&path, body).unwrap();
        if let Ok(source) = Lidds2021::open_sc(&path) {
            run(&source);
        }
    }
});
