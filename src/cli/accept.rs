//! `chids accept`: fold what alerts named into a workload's model as
//! normal, with an audit record per alert (see `chids_detect::accept`).
//! Offline on a bundle folder (`--model DIR FILE`); with `--nats`, on the
//! fleet's current bundle, publishing the new version to every agent.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use chids_detect::accept::{accept, read_alert_file, Acceptance, Accepted, AlertReasons};
use chids_detect::model::Bundle;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder to update (offline triage).
    #[arg(long, value_name = "DIR", required_unless_present = "nats")]
    model: Option<PathBuf>,
    /// NATS server of the fleet: update the workload's shared bundle there
    /// and publish the new version (needs a build with `--features live`).
    #[arg(long, value_name = "URL", conflicts_with = "model")]
    nats: Option<String>,
    /// Key-value bucket of the fleet's model versions.
    #[arg(long, default_value = "chids-models", value_name = "NAME")]
    models_bucket: String,
    /// Object-store bucket of the fleet's bundle files.
    #[arg(long, default_value = "chids-bundles", value_name = "NAME")]
    bundles_bucket: String,
    /// JetStream stream holding the fleet's alerts (to find an ALERT_ID).
    #[arg(long, default_value = "CHIDS_ALERTS", value_name = "NAME")]
    alerts_stream: String,
    /// Only the alerts of this workload (a file may mix workloads).
    #[arg(long, value_name = "KEY")]
    workload: Option<String>,
    /// Who accepts, for the audit list (default: $SUDO_USER, $USER, then "unknown").
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// A file of alert JSON lines (agent alerts or `evaluate --alerts`),
    /// or with `--nats` an alert id.
    #[arg(value_name = "ALERT_ID|FILE")]
    alerts: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let by = who(args.by.as_deref());
    if let Some(url) = &args.nats {
        return fleet(&args, url, &by);
    }
    let dir = args
        .model
        .as_ref()
        .expect("clap requires --model or --nats");
    let alerts = selected(
        read_alert_file(std::path::Path::new(&args.alerts)).map_err(anyhow::Error::msg)?,
        args.workload.as_deref(),
    )?;
    let mut bundle = Bundle::load(dir).context("loading the model")?;
    let changed = accept_all(&mut bundle, &alerts, &by).print();
    if changed > 0 {
        bundle
            .save(dir)
            .with_context(|| format!("saving {}", dir.display()))?;
    }
    println!(
        "{changed} of {} alerts accepted into {}",
        alerts.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The alerts of one workload: `--workload`'s, or all when they agree.
fn selected(alerts: Vec<AlertReasons>, workload: Option<&str>) -> Result<Vec<AlertReasons>> {
    let alerts: Vec<AlertReasons> = match workload {
        Some(w) => alerts
            .into_iter()
            .filter(|a| a.workload.as_deref() == Some(w))
            .collect(),
        None => {
            let mut names: Vec<&str> = alerts
                .iter()
                .filter_map(|a| a.workload.as_deref())
                .collect();
            names.sort();
            names.dedup();
            if names.len() > 1 {
                bail!(
                    "the alerts are of {} workloads ({}); choose one with --workload",
                    names.len(),
                    names.join(", ")
                );
            }
            alerts
        }
    };
    if alerts.is_empty() {
        bail!("no alert to accept");
    }
    Ok(alerts)
}

/// What folding alerts into one bundle did.
#[derive(Default)]
pub(crate) struct Folded {
    /// How many alerts changed the bundle.
    pub changed: usize,
    /// Per alert, in words.
    pub lines: Vec<String>,
    /// What deserves a second look (names the alert did not list).
    pub warnings: Vec<String>,
    /// The bundle's audit entries of these alerts (new or earlier).
    pub audit: Vec<Acceptance>,
}

impl Folded {
    /// Prints what happened (warnings to stderr); gives `changed`.
    fn print(&self) -> usize {
        for l in &self.lines {
            println!("{l}");
        }
        for w in &self.warnings {
            eprintln!("chids: warning: {w}");
        }
        self.changed
    }
}

/// Folds every alert into `bundle` (`chids_detect::accept`) and says
/// what each did.
pub(crate) fn accept_all(bundle: &mut Bundle, alerts: &[AlertReasons], by: &str) -> Folded {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut out = Folded::default();
    for alert in alerts {
        match accept(bundle, alert, by, now_ns) {
            Accepted::AlreadyAccepted(id) => {
                out.lines.push(format!("alert {id}: already accepted"));
                out.audit
                    .extend(bundle.accepted.iter().find(|a| a.alert_id == id).cloned());
            }
            Accepted::Added(a) => {
                out.changed += 1;
                let mut what = vec![
                    format!("{} syscalls", a.syscalls_added.len()),
                    format!("{} arguments", a.args_added.len()),
                ];
                if let Some([from, to]) = a.max_freq_raised {
                    what.push(format!("max_freq {from} -> {to}"));
                }
                if !a.maxima_raised.is_empty() {
                    what.push(format!("{} training maxima raised", a.maxima_raised.len()));
                }
                out.lines
                    .push(format!("alert {}: added {}", a.alert_id, what.join(", ")));
                if a.names_not_listed > 0 {
                    out.warnings.push(format!(
                        "alert {}: {} unseen names were not listed in it and stay unseen",
                        a.alert_id, a.names_not_listed
                    ));
                }
                if let Some(s) = a.score_after {
                    let verdict = if s < 1.0 {
                        "no longer alarms"
                    } else {
                        "still alarms"
                    };
                    out.lines.push(format!(
                        "  the window now scores {s:.3} of the threshold: {verdict}"
                    ));
                }
                out.audit.push(a);
            }
        }
    }
    out
}

/// Who accepts, for the audit list.
fn who(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(not(feature = "live"))]
fn fleet(_args: &Args, _url: &str, _by: &str) -> Result<ExitCode> {
    bail!(
        "`chids accept --nats` talks to the fleet's broker, which this build leaves out: \
         build with `cargo build --release --features live`"
    )
}

#[cfg(feature = "live")]
fn fleet(args: &Args, url: &str, by: &str) -> Result<ExitCode> {
    let store = fleet_store(url, &args.models_bucket, &args.bundles_bucket, by)?;
    let path = std::path::Path::new(&args.alerts);
    let alerts = if path.is_file() {
        read_alert_file(path).map_err(anyhow::Error::msg)?
    } else {
        vec![store
            .find_alert(&args.alerts_stream, &args.alerts)
            .map_err(anyhow::Error::msg)?]
    };
    let alerts = selected(alerts, args.workload.as_deref())?;
    let Some(workload) = alerts[0].workload.clone() else {
        bail!("the alerts name no workload: give --workload, or accept offline with --model");
    };
    let done = into_fleet(&store, &workload, &alerts, by)?;
    let changed = done.folded.print();
    match done.published {
        Some(v) => println!(
            "{changed} of {} alerts accepted: {workload} version {v} published",
            alerts.len()
        ),
        None => println!("nothing new: version {} of {workload} stays", done.version),
    }
    Ok(ExitCode::SUCCESS)
}

/// The fleet's model store, for accepting on behalf of `by`.
#[cfg(feature = "live")]
pub(crate) fn fleet_store(
    url: &str,
    models_bucket: &str,
    bundles_bucket: &str,
    by: &str,
) -> Result<chids_agent::fleet::FleetStore> {
    use chids_agent::fleet::{FleetOptions, FleetStore};
    FleetStore::connect(&FleetOptions {
        url: url.to_string(),
        models_bucket: models_bucket.to_string(),
        bundles_bucket: bundles_bucket.to_string(),
        learning_bucket: None,
        node: format!("accept:{by}"),
    })
    .map_err(anyhow::Error::msg)
}

/// What accepting into the fleet's bundle did.
#[cfg(feature = "live")]
pub(crate) struct FleetAccepted {
    pub folded: Folded,
    /// The version the alerts were folded into.
    pub version: u64,
    /// The version published, when something changed.
    pub published: Option<u64>,
}

/// Folds `alerts` into the fleet's current bundle of `workload` and
/// publishes it as the next version (`chids accept --nats` and the
/// console's accept button).
#[cfg(feature = "live")]
pub(crate) fn into_fleet(
    store: &chids_agent::fleet::FleetStore,
    workload: &str,
    alerts: &[AlertReasons],
    by: &str,
) -> Result<FleetAccepted> {
    let (version, mut bundle) = store
        .fetch(workload)
        .map_err(anyhow::Error::msg)?
        .with_context(|| format!("the fleet has no model of workload {workload}"))?;
    let folded = accept_all(&mut bundle, alerts, by);
    let published = if folded.changed == 0 {
        None
    } else {
        let v = store
            .publish(workload, &bundle, &format!("accepted by {by}"))
            .map_err(anyhow::Error::msg)?;
        Some(v.version)
    };
    Ok(FleetAccepted {
        folded,
        version: version.version,
        published,
    })
}
