//! `cargo bench --bench scap`: events/s decoding and formatting the k8s
//! capture, against `sysdig -r` when it is installed.
use std::path::PathBuf;
use std::time::Instant;

use chids::source::scap::ScapSource;

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
                "sysdig -r: {ts:.3} s; ratio vs decode {:.1}x, vs info {:.1}x",
                ts / t_dec,
                ts / t_fmt
            );
        }
        _ => println!("sysdig not available: no ratio"),
    }
}
