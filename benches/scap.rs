//! `cargo bench --bench scap`: events/s decoding and formatting the k8s
//! capture, against `sysdig -r` when it is installed.
use std::path::PathBuf;
use std::time::Instant;

use chids_core::features::{read_recording, Settings};
use chids_core::mode::Mode;
use chids_core::source::scap::ScapSource;
use chids_core::source::ReadOptions;

fn main() {
    let shared = std::env::var("CHIDS_SHARED").unwrap_or_else(|_| "../shared".into());
    let path = PathBuf::from(shared)
        .join("data/scap/troubleshooting-docker-kubernetes-sysdig/capture.scap");
    if !path.exists() {
        println!("skipped: {} not found", path.display());
        return;
    }
    let src = ScapSource::open(&path).unwrap();
    let best = |f: &dyn Fn() -> u64| {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..5 {
            let t = Instant::now();
            n = f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        (n, best)
    };
    let (n, t_dec) = best(&|| {
        let mut n = 0u64;
        src.for_each_raw(&mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    });
    println!(
        "decode only: {n} events in {t_dec:.3} s = {:.2} M events/s",
        n as f64 / t_dec / 1e6
    );
    let (n2, t_fmt) = best(&|| {
        let mut n = 0u64;
        let mut s = String::new();
        src.for_each_raw(&mut |ev| {
            s.clear();
            ev.format_info(&mut s);
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    });
    println!(
        "decode + info: {n2} events in {t_fmt:.3} s = {:.2} M events/s",
        n2 as f64 / t_fmt / 1e6
    );
    // The same capture uncompressed: the parser's own speed, without inflate.
    let plain = std::env::temp_dir().join(format!("chids-bench-{}.scap", std::process::id()));
    {
        let mut gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap());
        let mut out = std::fs::File::create(&plain).unwrap();
        std::io::copy(&mut gz, &mut out).unwrap();
    }
    let plain_src = ScapSource::open(&plain).unwrap();
    let (n_plain, t_plain) = best(&|| {
        let mut n = 0u64;
        plain_src
            .for_each_raw(&mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
        n
    });
    let _ = std::fs::remove_file(&plain);
    println!(
        "decode only, uncompressed copy: {n_plain} events in {t_plain:.3} s = {:.2} M events/s",
        n_plain as f64 / t_plain / 1e6
    );

    // Reading + windows + anomaly vectors (the pipeline's whole front end),
    // in both modes, against a baseline made from the capture itself.
    let mut t_feat = 0.0;
    for mode in [Mode::Compat, Mode::Modern] {
        let settings = Settings::for_mode(mode, 1_000_000_000);
        let read = ReadOptions {
            compat_line_filter: mode.line_filter(),
            container: None,
        };
        let baseline = read_recording(&src, settings, None, false, &read)
            .unwrap()
            .elements;
        let (n3, t) = best(&|| {
            read_recording(&src, settings, Some(&baseline), false, &read)
                .unwrap()
                .read
                .events
        });
        println!(
            "read + features ({mode:?}): {n3} events in {t:.3} s = {:.2} M events/s",
            n3 as f64 / t / 1e6
        );
        t_feat = t;
    }
    let t = Instant::now();
    match std::process::Command::new("sysdig")
        .arg("-r")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()
    {
        Ok(st) if st.success() => {
            let ts = t.elapsed().as_secs_f64();
            println!(
                "sysdig -r: {ts:.3} s; ratio vs decode {:.1}x, vs info {:.1}x, vs read + features {:.1}x",
                ts / t_dec,
                ts / t_fmt,
                ts / t_feat
            );
        }
        _ => println!("sysdig not available: no ratio"),
    }
}
