//! The fleet's model store as blocking calls: publish a bundle, fetch a
//! workload's current one, find an alert by id. Each call runs on a small
//! current-thread tokio runtime owned by the store (the rest of chids is
//! synchronous), so a store belongs to one thread at a time.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use tokio::io::AsyncReadExt;

use super::{bucket_key, bundle_digest, now_ns, FleetOptions, ModelVersion, MAX_BUNDLE_FILE};
use chids_detect::accept::AlertReasons;
use chids_detect::model::Bundle;

/// How long one broker call may take before it is an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Versions of a workload's record the KV bucket keeps (the audit of who
/// published what; older bundle files stay in the object store).
const KV_HISTORY: i64 = 16;
/// Most alerts `find_alert` reads back, newest first.
const MAX_ALERTS_SCANNED: u64 = 200_000;

pub struct FleetStore {
    rt: tokio::runtime::Runtime,
    kv: kv::Store,
    objects: object_store::ObjectStore,
    js: jetstream::Context,
    node: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("start the NATS runtime: {e}"))
}

/// Opens (or creates) the two buckets.
async fn open(
    opts: &FleetOptions,
) -> Result<(jetstream::Context, kv::Store, object_store::ObjectStore), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CALL_TIMEOUT)
        .connect(opts.url.as_str())
        .await
        .map_err(|e| format!("NATS {}: {e}", opts.url))?;
    let js = jetstream::new(client);
    let kv = match js.get_key_value(&opts.models_bucket).await {
        Ok(kv) => kv,
        Err(_) => {
            // The stream a KV bucket is, made directly: async-nats'
            // `create_key_value` first reads account details that servers
            // before 2.10 answer in a form it cannot parse.
            js.get_or_create_stream(jetstream::stream::Config {
                name: format!("KV_{}", opts.models_bucket),
                description: Some("chids: model version per workload".into()),
                subjects: vec![format!("$KV.{}.>", opts.models_bucket)],
                max_messages_per_subject: KV_HISTORY,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("KV bucket {}: {e}", opts.models_bucket))?;
            js.get_key_value(&opts.models_bucket)
                .await
                .map_err(|e| format!("KV bucket {}: {e}", opts.models_bucket))?
        }
    };
    let objects = match js.get_object_store(&opts.bundles_bucket).await {
        Ok(o) => o,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: opts.bundles_bucket.clone(),
                description: Some("chids: model bundle files".into()),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("object store {}: {e}", opts.bundles_bucket))?,
    };
    Ok((js, kv, objects))
}

impl FleetStore {
    /// Connects and opens the buckets, creating them when missing.
    pub fn connect(opts: &FleetOptions) -> Result<FleetStore, String> {
        let rt = runtime()?;
        let (js, kv, objects) = rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT, open(opts))
                .await
                .map_err(|_| format!("NATS {}: no answer in {CALL_TIMEOUT:?}", opts.url))?
        })?;
        Ok(FleetStore {
            rt,
            kv,
            objects,
            js,
            node: opts.node.clone(),
        })
    }

    /// Publishes `bundle` as the workload's next version.
    pub fn publish(
        &self,
        workload: &str,
        bundle: &Bundle,
        reason: &str,
    ) -> Result<ModelVersion, String> {
        self.publish_learnt_from(workload, bundle, reason, &[])
    }

    /// Publishes `bundle`, trained on the learning data of `learnt_from`
    /// (pooled learning), as the workload's next version.
    pub fn publish_learnt_from(
        &self,
        workload: &str,
        bundle: &Bundle,
        reason: &str,
        learnt_from: &[String],
    ) -> Result<ModelVersion, String> {
        let (baseline, weights) = bundle.to_bytes()?;
        self.rt.block_on(async {
            tokio::time::timeout(
                CALL_TIMEOUT * 3,
                publish(
                    &self.kv,
                    &self.objects,
                    &self.node,
                    workload,
                    (reason, learnt_from),
                    &baseline,
                    &weights,
                ),
            )
            .await
            .map_err(|_| format!("publishing {workload}: no answer in time"))?
        })
    }

    /// The workload's current version and bundle, checked; `None` when the
    /// fleet has none.
    pub fn fetch(&self, workload: &str) -> Result<Option<(ModelVersion, Bundle)>, String> {
        self.rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT * 3, async {
                let Some(entry) = self
                    .kv
                    .entry(bucket_key(workload))
                    .await
                    .map_err(|e| format!("reading the version of {workload}: {e}"))?
                else {
                    return Ok(None);
                };
                if entry.operation != kv::Operation::Put {
                    return Ok(None);
                }
                let version = parse_version(&entry.value, workload)?;
                let bundle = fetch_bundle(&self.objects, &version).await?;
                Ok(Some((version, bundle)))
            })
            .await
            .map_err(|_| format!("fetching {workload}: no answer in time"))?
        })
    }

    /// The alert with id `id` in the JetStream stream `stream`, newest
    /// first.
    pub fn find_alert(&self, stream: &str, id: &str) -> Result<AlertReasons, String> {
        self.rt.block_on(async {
            let mut s = self
                .js
                .get_stream(stream)
                .await
                .map_err(|e| format!("alert stream {stream}: {e}"))?;
            let state = s
                .info()
                .await
                .map_err(|e| format!("alert stream {stream}: {e}"))?
                .state
                .clone();
            let first = state
                .first_sequence
                .max(state.last_sequence.saturating_sub(MAX_ALERTS_SCANNED));
            for seq in (first..=state.last_sequence).rev() {
                let Ok(msg) = s.get_raw_message(seq).await else {
                    continue;
                };
                let Ok(text) = std::str::from_utf8(&msg.payload) else {
                    continue;
                };
                let Ok(alert) = AlertReasons::parse(text, &format!("{stream}#{seq}")) else {
                    continue;
                };
                if alert.id().as_deref() == Some(id) {
                    return Ok(alert);
                }
            }
            Err(format!(
                "no alert {id:?} in stream {stream} (messages {}..={} read)",
                first, state.last_sequence
            ))
        })
    }
}

/// Parses and checks a version record.
pub(super) fn parse_version(value: &[u8], workload: &str) -> Result<ModelVersion, String> {
    let v: ModelVersion = serde_json::from_slice(value)
        .map_err(|e| format!("the version record of {workload} is damaged ({e})"))?;
    v.check(workload)?;
    Ok(v)
}

/// Fetches the two files a version names, checks them against its digest
/// and loads the bundle.
pub(super) async fn fetch_bundle(
    objects: &object_store::ObjectStore,
    version: &ModelVersion,
) -> Result<Bundle, String> {
    let [json_name, weights_name] = version.objects();
    let baseline = read_object(objects, &json_name, version.baseline_bytes).await?;
    let weights = read_object(objects, &weights_name, version.weights_bytes).await?;
    let digest = bundle_digest(&baseline, &weights);
    if digest != version.digest {
        return Err(format!(
            "{} version {}: the files' digest is {digest}, the record says {}; not loaded",
            version.workload, version.version, version.digest
        ));
    }
    let origin = format!("nats:{}", json_name.rsplit_once('/').map_or("", |p| p.0));
    Bundle::from_bytes(&baseline, &weights, Path::new(&origin)).map_err(|e| e.to_string())
}

/// Reads an object of the expected size, never more than that.
async fn read_object(
    objects: &object_store::ObjectStore,
    name: &str,
    size: u64,
) -> Result<Vec<u8>, String> {
    let mut object = objects
        .get(name)
        .await
        .map_err(|e| format!("object {name}: {e}"))?;
    let mut bytes = Vec::with_capacity(size.min(MAX_BUNDLE_FILE) as usize);
    (&mut object)
        .take(size.min(MAX_BUNDLE_FILE) + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("object {name}: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!(
            "object {name}: {} bytes where the record says {size}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Stores the files under their digest, then sets the record with a
/// compare-and-set on the previous one, retried when another publisher
/// got there first.
async fn publish(
    kv: &kv::Store,
    objects: &object_store::ObjectStore,
    node: &str,
    workload: &str,
    (reason, learnt_from): (&str, &[String]),
    baseline: &[u8],
    weights: &[u8],
) -> Result<ModelVersion, String> {
    let key = bucket_key(workload);
    let mut record = ModelVersion {
        workload: workload.to_string(),
        version: 1,
        node: node.to_string(),
        published_ns: now_ns(),
        reason: reason.to_string(),
        digest: bundle_digest(baseline, weights),
        baseline_bytes: baseline.len() as u64,
        weights_bytes: weights.len() as u64,
        learnt_from: learnt_from.to_vec(),
    };
    for (name, bytes) in record.objects().iter().zip([baseline, weights]) {
        objects
            .put(name.as_str(), &mut std::io::Cursor::new(bytes))
            .await
            .map_err(|e| format!("storing {name}: {e}"))?;
    }
    let mut last_error = String::new();
    for _attempt in 0..8 {
        let current = kv
            .entry(&key)
            .await
            .map_err(|e| format!("reading the version of {workload}: {e}"))?;
        let (revision, previous) = match &current {
            Some(e) if e.operation == kv::Operation::Put => (
                e.revision,
                parse_version(&e.value, workload).map_or(0, |v| v.version),
            ),
            Some(e) => (e.revision, 0),
            None => (0, 0),
        };
        record.version = previous + 1;
        let value = serde_json::to_vec(&record).expect("a version record serialises");
        let done = if revision == 0 {
            kv.create(&key, value.into())
                .await
                .map_err(|e| e.to_string())
        } else {
            kv.update(&key, value.into(), revision)
                .await
                .map_err(|e| e.to_string())
        };
        match done {
            Ok(_) => return Ok(record),
            // Another publisher moved the record on: read it again.
            Err(e) => {
                last_error = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Err(format!(
        "publishing {workload}: could not set the version record ({last_error}); gave up"
    ))
}
