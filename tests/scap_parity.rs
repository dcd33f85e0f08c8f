//! Parity of the native scap reader with `sysdig -r` text (sysdig 0.29.3)
//! on the shared captures. Needs `CHIDS_SHARED` (e.g. `/work/shared`), so
//! every test is `#[ignore]`d: run them with `--include-ignored`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chids_core::source::scap::{dump, read_stream, DumpOptions, ScapSource};
use chids_core::source::{EventSource, Position, ReadOptions};

fn shared() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CHIDS_SHARED")
            .expect("CHIDS_SHARED is not set: point it at the shared data folder"),
    )
}

const CAPTURES: &[&str] = &[
    "falco/cat_write",
    "falco/connect_localhost",
    "falco/empty",
    "falco/open-multiple-files",
    "falco/ping_sendto",
    "falco/psp_privileged",
    "falco/psp_run_as_user_0_container",
    "falco/psp_run_as_user_65534_container",
    "falco/psp_write_tmp_test",
    "falco/syscall",
    "libs/curl_google",
    "libs/curl_google_comments",
    "libs/sample",
    "libs/single_ipv6_conn",
    "libs/test_ipv6_client",
    "sysdig-opensource-examples/example0_nginx",
    "sysdig-opensource-examples/example2_502error",
    "sysdig-opensource-examples/example4_example4-1",
    "sysdig-opensource-examples/example4_example4-2",
    "sysdig-opensource-examples/example5_httpd",
    "sysdig-opensource-examples/example5_nginx",
    "troubleshooting-docker-kubernetes-sysdig/capture",
];

/// Event types whose arguments chids uses.
const FAMILY: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "stat",
    "lstat",
    "newfstatat",
    "stat64",
    "lstat64",
    "execve",
    "execveat",
    "clone",
    "clone3",
    "fork",
    "vfork",
];
const USED: &[&str] = &["name=", "path=", "filename=", "exe=", "res=", "fd="];

/// `evt.num` -> line, for lines that look like event lines.
fn lines_by_num(text: &str) -> HashMap<u64, &str> {
    let mut m = HashMap::new();
    for l in text.lines() {
        let mut t = l.split(' ');
        let (Some(n), Some(time)) = (t.next(), t.next()) else {
            continue;
        };
        if time.len() == 18 && time.as_bytes()[2] == b':' {
            if let Ok(n) = n.parse() {
                m.insert(n, l);
            }
        }
    }
    m
}

/// The reference dumps come from sysdig 0.29.3, which did not know the event
/// types libs added after id 351 (libs/sample holds `useradded` events): it
/// skipped them without a number. Renumber our lines the same way.
fn as_sysdig_029_numbers<'a>(scap: &Path, ours: HashMap<u64, &'a str>) -> HashMap<u64, &'a str> {
    let mut newer = Vec::new();
    ScapSource::open(scap)
        .unwrap()
        .for_each_raw(&mut |ev| {
            if ev.ty > 351 {
                newer.push(ev.num);
            }
            Ok(())
        })
        .unwrap();
    ours.into_iter()
        .filter(|(num, _)| newer.binary_search(num).is_err())
        .map(|(num, line)| {
            let before = newer.partition_point(|&n| n < num) as u64;
            (num - before, line)
        })
        .collect()
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn every_line_matches_sysdig_headers_and_used_params() {
    let root = shared();
    for cap in CAPTURES {
        let scap = root.join("data/scap").join(format!("{cap}.scap"));
        assert!(scap.exists(), "missing shared capture {}", scap.display());
        let txt = root
            .join("parity/sysdig_text")
            .join(format!("{}.txt", cap.replace('/', "__")));
        if !txt.exists() {
            assert_eq!(
                *cap,
                "libs/curl_google_comments",
                "missing {}",
                txt.display()
            );
            continue;
        }
        let reference = std::fs::read_to_string(&txt).unwrap();
        let mut out = Vec::new();
        dump(&scap, &DumpOptions::default(), &mut out).unwrap();
        let ours = String::from_utf8(out).unwrap();
        let ours = as_sysdig_029_numbers(&scap, lines_by_num(&ours));
        let refs = lines_by_num(&reference);
        let (mut full, mut total) = (0usize, 0usize);
        for (num, r) in &refs {
            total += 1;
            let o = ours
                .get(num)
                .unwrap_or_else(|| panic!("{cap}: event {num} missing"));
            if o == r {
                full += 1;
                continue;
            }
            let rt: Vec<&str> = r.split_ascii_whitespace().collect();
            let ot: Vec<&str> = o.split_ascii_whitespace().collect();
            assert_eq!(
                rt[1..7],
                ot[1..7.min(ot.len())],
                "{cap}: header of event {num}"
            );
            if FAMILY.contains(&rt[6]) {
                for (i, tok) in rt.iter().enumerate().skip(7) {
                    if USED.iter().any(|u| tok.starts_with(u)) {
                        assert_eq!(
                            Some(tok),
                            ot.get(i),
                            "{cap}: event {num} token {i}\n ref {r}\n our {o}"
                        );
                    }
                }
            }
        }
        println!(
            "{cap}: {full}/{total} lines fully equal ({:.1}%)",
            100.0 * full as f64 / total.max(1) as f64
        );
    }
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn every_capture_reads_to_the_end() {
    let root = shared();
    for cap in CAPTURES {
        let scap = root.join("data/scap").join(format!("{cap}.scap"));
        let src = ScapSource::open(&scap).unwrap();
        let mut n = 0u64;
        let stats = src
            .read(&ReadOptions::default(), &mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{cap}: {e}"));
        assert_eq!(stats.events, n);
        // Every block to the end, metadata events included.
        let mut raw = 0u64;
        src.for_each_raw(&mut |_| {
            raw += 1;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{cap}: {e}"));
        assert!(raw >= n);
        if *cap != "falco/empty" {
            assert!(raw > 0, "{cap}: no events");
        }
        // psp_privileged holds only container metadata: no system call.
        if *cap != "falco/empty" && *cap != "falco/psp_privileged" {
            assert!(n > 0, "{cap}: no system-call events");
        }
    }
}

/// The compat noise filter, answered from the decoded fields, agrees with
/// the reference's rule on the rendered `sysdig -r` line, on every event.
#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn noise_words_from_fields_match_the_rendered_line() {
    const WORDS: [&str; 4] = ["container", "json", "expecting", "falcosecurity-libs"];
    let root = shared();
    let (mut events, mut noisy) = (0u64, 0u64);
    for cap in CAPTURES {
        let scap = root.join("data/scap").join(format!("{cap}.scap"));
        let (mut info, mut line, mut head) = (String::new(), String::new(), String::new());
        ScapSource::open(&scap)
            .unwrap()
            .for_each_raw(&mut |ev| {
                info.clear();
                line.clear();
                ev.format_info(&mut info);
                chids_core::source::scap::format::sysdig_line(ev, &info, &mut line);
                let want = WORDS.iter().any(|w| line.contains(w));
                assert_eq!(ev.has_noise_word(), want, "{cap}: {line}");
                // Compat renders only the tokens it reads: they are the
                // whole text's first tokens.
                for n in 1..=3 {
                    head.clear();
                    chids_core::source::scap::format::info_tokens(ev, &mut head, n);
                    let got: Vec<&str> = head.split_ascii_whitespace().take(n).collect();
                    let full: Vec<&str> = info.split_ascii_whitespace().take(n).collect();
                    assert_eq!(got, full, "{cap}: {line}");
                }
                events += 1;
                noisy += want as u64;
                Ok(())
            })
            .unwrap();
    }
    assert!(noisy > 100 && events > 100_000, "{noisy} of {events}");
}

fn decompressed(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut v)
            .unwrap();
        v
    } else {
        raw
    }
}

fn collect(path: &Path) -> Vec<String> {
    let mut v = Vec::new();
    ScapSource::open(path)
        .unwrap()
        .read(&ReadOptions::default(), &mut |e| {
            v.push(format!(
                "{} {} {} {} {}",
                e.ts_ns, e.tid, e.process, e.syscall, e.info
            ));
            Ok(())
        })
        .unwrap();
    v
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn gzip_and_plain_read_the_same_events() {
    let root = shared();
    let src = root.join("data/scap/falco/cat_write.scap");
    let plain = decompressed(&src);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plain.scap");
    std::fs::write(&p, &plain).unwrap();
    let gz = dir.path().join("again.scap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let a = collect(&p);
    assert!(!a.is_empty());
    assert_eq!(a, collect(&gz));
    assert_eq!(a, collect(&src));
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn container_filter_keeps_only_that_container() {
    let root = shared();
    let p = root.join("data/scap/falco/psp_run_as_user_0_container.scap");
    let src = ScapSource::open(&p).unwrap();
    let all = src.read(&ReadOptions::default(), &mut |_| Ok(())).unwrap();
    let opts = ReadOptions {
        container: Some("697956520d89".into()),
        ..ReadOptions::default()
    };
    let mut n = 0;
    let some = src
        .read(&opts, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert!(n > 0 && some.events < all.events, "{n} of {}", all.events);
}

fn small_capture() -> Vec<u8> {
    decompressed(&shared().join("data/scap/libs/test_ipv6_client.scap"))
}

fn run(bytes: &[u8]) -> Result<u64, chids_core::source::SourceError> {
    let mut n = 0;
    read_stream(Path::new("t.scap"), bytes, &mut |ev| {
        let mut s = String::new();
        ev.format_info(&mut s);
        n += 1;
        Ok(())
    })
    .map(|_| n)
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn truncated_files_fail_with_a_byte_offset() {
    let data = small_capture();
    let full = run(&data).unwrap();
    let step = (data.len() / 2000).max(1);
    for cut in (1..data.len()).step_by(step) {
        match run(&data[..cut]) {
            Ok(n) => assert!(n <= full),
            Err(e) => assert!(matches!(e.position, Position::Byte(_)), "{e}"),
        }
    }
}

/// A large gzip capture is inflated on a thread of its own: a cut or a
/// corrupted one still fails with the file and a byte offset, after the
/// same events as when it is read inline.
#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn damaged_large_gzip_captures_fail_naming_file_and_offset() {
    let src = shared().join("data/scap/troubleshooting-docker-kubernetes-sysdig/capture.scap");
    let gz = std::fs::read(&src).unwrap();
    assert!(gz.len() > 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let count = |path: &Path| {
        let mut n = 0u64;
        let r = ScapSource::open(path).unwrap().for_each_raw(&mut |_| {
            n += 1;
            Ok(())
        });
        (n, r)
    };
    let (all, r) = count(&src);
    r.unwrap();
    let cut = dir.path().join("cut.scap");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let bad = dir.path().join("bad.scap");
    std::fs::write(&bad, &flipped).unwrap();
    for path in [&cut, &bad] {
        let (n, r) = count(path);
        let e = r.unwrap_err();
        assert!(n > 0 && n < all, "{n} of {all}");
        assert!(matches!(e.position, Position::Byte(_)), "{e}");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        // The same events and error when read inline, without the thread.
        let mut m = 0u64;
        let inline = read_stream(
            path,
            flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()),
            &mut |_| {
                m += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!((n, e.to_string()), (m, inline.to_string()));
    }
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn corrupt_inputs_are_errors_or_counted_skips() {
    let data = small_capture();
    // Wrong magic.
    let mut bad = data.clone();
    bad[0] = 0;
    let e = run(&bad).unwrap_err();
    assert_eq!(e.position, Position::Byte(0));
    // Second block's length runs past the limit.
    let mut bad = data.clone();
    bad[28 + 4..28 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = run(&bad).unwrap_err();
    assert_eq!(e.position, Position::Byte(28), "{e}");
    assert!(e.to_string().contains("limit"), "{e}");
    // Find the first event block and damage it.
    let mut off = 0usize;
    let ev_off = loop {
        let ty = u32::from_le_bytes(data[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap()) as usize;
        if ty == 0x204 || ty == 0x216 {
            break off;
        }
        off += len;
    };
    // Block length past the end of the file.
    let mut bad = data[..ev_off + 64].to_vec();
    bad[ev_off + 4..ev_off + 8].copy_from_slice(&4096u32.to_le_bytes());
    let e = run(&bad).unwrap_err();
    assert_eq!(e.position, Position::Byte(ev_off as u64), "{e}");
    // Unknown event type: header at +8 (block) +2 (cpu) +8 (ts) +8 (tid) +4 (len).
    let mut bad = data.clone();
    bad[ev_off + 30..ev_off + 32].copy_from_slice(&999u16.to_le_bytes());
    let stats = read_stream(Path::new("t"), &bad[..], &mut |_| Ok(())).unwrap();
    assert_eq!(stats.malformed, 1);
    assert!(
        matches!(stats.first_malformed, Some((Position::Byte(o), _)) if o == ev_off as u64),
        "{:?}",
        stats.first_malformed
    );
    // Absurd parameter length: the first length word after the header.
    let mut bad = data.clone();
    let v2 = u32::from_le_bytes(data[ev_off..ev_off + 4].try_into().unwrap()) == 0x216;
    let lens = ev_off + 32 + if v2 { 4 } else { 0 };
    bad[lens..lens + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    let stats = read_stream(Path::new("t"), &bad[..], &mut |_| Ok(())).unwrap();
    assert_eq!(stats.malformed, 1);
}
