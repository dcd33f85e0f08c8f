//! The trait on a real (small) autoencoder bundle: a frequency-driven
//! alarm names what rose; bundles save and load through the trait.

use chids_core::event::{Direction, Event, Format, Labels, RecordingInfo};
use chids_core::features::Settings;
use chids_core::source::{EventSource, ReadOptions, ReadStats, Sink, SourceError};

use super::{load, Detector, Explain, Fit};
use crate::detect::ScoredWindow;
use crate::model::Bundle;
use crate::model::{default_thetas, TrainConfig};
use crate::train::TrainOptions;

/// Calls per window, per second: `(second, calls)`; the calls alternate
/// `read`, `write` on one thread.
struct Rhythm {
    info: RecordingInfo,
    seconds: Vec<(u64, usize)>,
}

const S: u64 = 1_000_000_000;

impl Rhythm {
    fn new(name: &str, seconds: Vec<(u64, usize)>) -> Rhythm {
        Rhythm {
            info: RecordingInfo {
                name: name.into(),
                path: name.into(),
                format: Format::SysdigText,
                labels: Labels::default(),
            },
            seconds,
        }
    }

    fn events(&self, sink: &mut dyn FnMut(&Event<'_>)) -> u64 {
        let mut n = 0;
        for &(sec, calls) in &self.seconds {
            for i in 0..calls {
                sink(&Event {
                    ts_ns: sec * S + (i as u64) * (S / 2 / calls as u64),
                    tid: 7,
                    pid: 7,
                    process: "p",
                    dir: Direction::Enter,
                    syscall: if i % 2 == 0 { "read" } else { "write" },
                    info: "",
                    params: Default::default(),
                });
                n += 1;
            }
        }
        n
    }
}

impl EventSource for Rhythm {
    fn info(&self) -> &RecordingInfo {
        &self.info
    }
    fn read(&self, _: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
        let mut result = Ok(());
        let events = self.events(&mut |e| {
            if result.is_ok() {
                result = sink(e);
            }
        });
        result.map(|()| ReadStats {
            events,
            ..ReadStats::default()
        })
    }
}

#[test]
fn a_frequency_alarm_names_what_rose_above_its_training_maximum() {
    let normal = |name: &str| -> Box<dyn EventSource> {
        Box::new(Rhythm::new(name, (0..20).map(|s| (s, 20)).collect()))
    };
    let bundle = <Bundle as Fit>::fit(
        &[normal("a"), normal("b")],
        &TrainOptions {
            settings: Settings::default(),
            model: TrainConfig::default(),
            thetas: default_thetas(),
            read: ReadOptions::default(),
        },
        &|_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    Detector::save(&bundle, dir.path()).unwrap();
    let detector = load(dir.path()).unwrap();
    assert_eq!(detector.name(), "chids");
    let maxima = detector.as_bundle().unwrap().count_maxima.clone().unwrap();
    assert_eq!(maxima.calls["read"], 10);
    assert_eq!(maxima.edges["read->write"], 10);

    // The same rhythm, then one second ten times as busy.
    let busy = Rhythm::new(
        "busy",
        vec![(0, 20), (1, 20), (2, 20), (3, 200), (4, 20), (5, 20)],
    );
    let mut stream = detector.stream(detector.operating_threshold(), Explain::Alarms);
    let mut windows: Vec<ScoredWindow> = Vec::new();
    busy.events(&mut |e| stream.push(e, &mut |w| windows.push(w)));
    stream.finish(&mut |w| windows.push(w));
    let alarms: Vec<&ScoredWindow> = windows.iter().filter(|w| w.anomalous).collect();
    assert_eq!(alarms.len(), 1, "{windows:#?}");
    assert_eq!(alarms[0].features.index, 3);
    let reasons = alarms[0].reasons.as_ref().unwrap();
    assert!(reasons.unseen_syscalls.is_empty());
    let first = &reasons.rising[0];
    assert_eq!((first.count, first.training_max), (100, 10), "{reasons:?}");
    assert!(reasons.rising.iter().any(|r| r.what == "read->write"));
    // Quiet windows carry no reasons (only alarms are explained).
    assert!(windows
        .iter()
        .filter(|w| !w.anomalous)
        .all(|w| w.reasons.is_none()));
}

/// Modern models link each thread's calls (what the kernel computes);
/// compat keeps the reference's stream edges; a bundle written before the
/// `edges` field existed keeps the stream edges it was trained with.
#[test]
fn new_modern_bundles_have_thread_edges_and_old_bundles_keep_stream_edges() {
    use chids_core::mode::Mode;
    use chids_core::ssg::EdgeOrder;
    assert_eq!(Settings::default().edges, EdgeOrder::Thread);
    assert_eq!(Settings::for_mode(Mode::Compat, S).edges, EdgeOrder::Stream);
    let normal = |name: &str| -> Box<dyn EventSource> {
        Box::new(Rhythm::new(name, (0..8).map(|s| (s, 20)).collect()))
    };
    let bundle = <Bundle as Fit>::fit(
        &[normal("a"), normal("b")],
        &TrainOptions {
            settings: Settings::default(),
            model: TrainConfig {
                epochs: 1,
                ..TrainConfig::default()
            },
            thetas: default_thetas(),
            read: ReadOptions::default(),
        },
        &|_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    Detector::save(&bundle, dir.path()).unwrap();
    let json_path = dir.path().join(crate::model::bundle::BASELINE_FILE);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["edges"], "thread");
    assert_eq!(
        Bundle::load(dir.path()).unwrap().settings.edges,
        EdgeOrder::Thread
    );

    json.as_object_mut().unwrap().remove("edges").unwrap();
    std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(
        Bundle::load(dir.path()).unwrap().settings.edges,
        EdgeOrder::Stream
    );
}
