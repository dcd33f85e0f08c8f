//! Bytes as a LID-DS 2021 `.zip` (`.sc` + `.json`): opening, label parsing
//! and reading must return Ok or Err, never panic. Also feeds the bytes
//! straight to the `.json` labels parser.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use chids_core::mode::Mode;
use chids_core::features::{FeatureStream, Settings};
use chids_core::source::lidds::{parse_labels, Lidds2021};
use chids_core::source::{EventSource, ReadOptions};
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process (the reader takes a path).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chids-fuzz-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_labels(text);
    }
    let path = scratch().join("input.zip");
    std::fs::write(&path, data).unwrap();
    let Ok(source) = Lidds2021::open_zip(&path) else {
        return;
    };
    let _ = source.info();
    for mode in [Mode::Modern, Mode::Compat] {
        let options = ReadOptions {
            compat_line_filter: mode.line_filter(),
            container: None,
        };
        let mut stream = FeatureStream::new(Settings::for_mode(mode, 1_000_000), None, false);
        let _ = source.read(&options, &mut |ev| {
            let _ = stream.push(ev, &mut |_| {});
            Ok(())
        });
        stream.finish(&mut |_| {});
    }
});
