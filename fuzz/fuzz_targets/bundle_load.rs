//! Bytes split into `baseline.json` + `model.safetensors` in a scratch
//! directory, then the autoencoder and STIDE bundle loaders: Ok or Err,
//! never a panic. Layout: 4-byte little-endian json length, json, second part.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use chids_detect::model::Bundle;
use chids_detect::stide::StideModel;
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process (the loaders take a dir).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chids-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (len, rest) = data.split_at(4);
    let len = (u32::from_le_bytes(len.try_into().unwrap()) as usize).min(rest.len());
    let (json, weights) = rest.split_at(len);
    let dir = scratch();
    std::fs::write(dir.join("baseline.json"), json).unwrap();
    // The second part is the autoencoder's weights and STIDE's sequences.
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    std::fs::write(dir.join(chids_detect::stide::SEQUENCES_FILE), weights).unwrap();
    if let Ok(bundle) = Bundle::load(dir) {
        let _ = bundle.error(&[0.5, 1.0, 0.0]);
        let _ = bundle.operating_threshold();
        let _ = bundle.threshold(0.5);
    }
    if let Ok(model) = StideModel::load(dir) {
        let _ = model.operating_threshold();
        let _ = model.threshold(0.5);
    }
});
