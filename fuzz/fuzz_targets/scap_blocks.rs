//! Block + event parser on arbitrary bytes: must return Ok or Err, never
//! panic, and never allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz-input");
    let mut info = String::new();
    let _ = chids_core::source::scap::read_stream(path, data, &mut |ev| {
        info.clear();
        ev.format_info(&mut info);
        let _ = ev.process();
        Ok(())
    });
});
