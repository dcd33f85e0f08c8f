//! Which workload a container belongs to, and where each workload's model
//! lives.
//!
//! A workload is what shares one baseline: by default all containers of an
//! image. A JSON file can group containers differently, first matching
//! rule wins:
//!
//! ```json
//! {"workloads": [
//!   {"key": "shop-web", "namespace": "shop", "image": "*nginx*"},
//!   {"key": "batch",    "name": "job-*"},
//!   {"key": "api",      "label": "app=api"}
//! ]}
//! ```
//!
//! Patterns match the whole value; `*` stands for any run of characters.
//!
//! The same file chooses what to watch (as `--include` / `--exclude` do):
//! a container is watched when it matches some `include` selector (or
//! none is given) and no `exclude` selector.
//!
//! ```json
//! {"include": [{"namespace": "shop"}], "exclude": [{"name": "debug-*"}, {"label": "chids=off"}]}
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::Identity;
use chids_detect::model::bundle::Bundle;

/// One grouping rule: every field given must match.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub key: String,
    pub image: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// `KEY=PATTERN` on a container label.
    pub label: Option<String>,
}

/// Which containers a selector picks: every field given must match.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    pub image: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// `KEY=PATTERN` on a container label.
    pub label: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    #[serde(default)]
    pub workloads: Vec<Rule>,
    /// Watch only containers matching one of these (none: all).
    #[serde(default)]
    pub include: Vec<Selector>,
    /// Never watch containers matching one of these.
    #[serde(default)]
    pub exclude: Vec<Selector>,
}

impl WorkloadConfig {
    /// Reads a config file; errors name the file and line.
    pub fn load(path: &Path) -> Result<WorkloadConfig, String> {
        let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > 1 << 20 {
            return Err(format!("{}: larger than 1 MiB", path.display()));
        }
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cfg: WorkloadConfig = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: line {} column {}: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        for (i, r) in cfg.workloads.iter().enumerate() {
            if r.key.trim().is_empty() {
                return Err(format!("{}: rule {}: empty key", path.display(), i + 1));
            }
            if let Some(l) = &r.label {
                if !l.contains('=') {
                    return Err(format!(
                        "{}: rule {}: label {l:?} is not KEY=PATTERN",
                        path.display(),
                        i + 1
                    ));
                }
            }
        }
        for (what, list) in [("include", &cfg.include), ("exclude", &cfg.exclude)] {
            for (i, sel) in list.iter().enumerate() {
                if sel.label.as_ref().is_some_and(|l| !l.contains('=')) {
                    return Err(format!(
                        "{}: {what} {}: label is not KEY=PATTERN",
                        path.display(),
                        i + 1
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// Why a container is not watched, if it is not: it matches no
    /// `include` selector (when there are some), or an `exclude` one.
    pub fn excluded(&self, ident: &Identity) -> Option<String> {
        if let Some(x) = self.exclude.iter().find(|x| x.matches(ident)) {
            return Some(format!("matches --exclude {}", x.describe()));
        }
        if !self.include.is_empty() && !self.include.iter().any(|x| x.matches(ident)) {
            let all: Vec<String> = self.include.iter().map(Selector::describe).collect();
            return Some(format!("matches no --include ({})", all.join(", ")));
        }
        None
    }

    /// The workload key of a container: the first matching rule's key, else
    /// its image, else (no identity) its name or id.
    pub(crate) fn key_of(&self, ident: &Identity) -> String {
        for r in &self.workloads {
            if r.matches(ident) {
                return r.key.clone();
            }
        }
        ident
            .image
            .clone()
            .unwrap_or_else(|| format!("container-{}", ident.display_name()))
    }
}

impl Rule {
    fn matches(&self, ident: &Identity) -> bool {
        Fields {
            image: &self.image,
            name: &self.name,
            namespace: &self.namespace,
            pod: &self.pod,
            label: &self.label,
        }
        .match_(ident)
    }
}

impl Selector {
    /// `FIELD=PATTERN` as given on the command line: `name`, `image`,
    /// `namespace`, `pod` or `label` (`label=KEY=PATTERN`).
    pub fn parse(arg: &str) -> Result<Selector, String> {
        let (field, pattern) = arg.split_once('=').ok_or_else(|| {
            format!("{arg:?}: not FIELD=PATTERN (name, image, namespace, pod, label)")
        })?;
        let mut s = Selector::default();
        let slot = match field {
            "name" => &mut s.name,
            "image" => &mut s.image,
            "namespace" => &mut s.namespace,
            "pod" => &mut s.pod,
            "label" if pattern.contains('=') => &mut s.label,
            "label" => return Err(format!("{arg:?}: a label selector is label=KEY=PATTERN")),
            _ => {
                return Err(format!(
                    "{arg:?}: {field:?} is not one of name, image, namespace, pod, label"
                ))
            }
        };
        *slot = Some(pattern.to_string());
        Ok(s)
    }

    pub fn matches(&self, ident: &Identity) -> bool {
        Fields {
            image: &self.image,
            name: &self.name,
            namespace: &self.namespace,
            pod: &self.pod,
            label: &self.label,
        }
        .match_(ident)
    }

    /// As given: `image=*nginx*`, several joined by `,`.
    pub fn describe(&self) -> String {
        [
            ("name", &self.name),
            ("image", &self.image),
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("label", &self.label),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// The patterns of a rule or selector; every one given must match.
struct Fields<'a> {
    image: &'a Option<String>,
    name: &'a Option<String>,
    namespace: &'a Option<String>,
    pod: &'a Option<String>,
    label: &'a Option<String>,
}

impl Fields<'_> {
    fn match_(&self, ident: &Identity) -> bool {
        let field = |pat: &Option<String>, value: &Option<String>| match pat {
            None => true,
            Some(p) => value.as_deref().is_some_and(|v| glob(p, v)),
        };
        let label_ok = match self.label {
            None => true,
            Some(l) => {
                let (k, p) = l.split_once('=').unwrap_or((l, "*"));
                ident.labels.get(k).is_some_and(|v| glob(p, v))
            }
        };
        field(self.image, &ident.image)
            && field(self.name, &ident.name)
            && field(self.namespace, &ident.namespace)
            && field(self.pod, &ident.pod)
            && label_ok
    }
}

/// Whole-string match where `*` is any run of characters. Written here
/// because a glob crate's path semantics (`/` never matched by `*`) are
/// wrong for image names like `registry/team/app:1`.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// A folder name for a workload key: safe characters only, and a short
/// hash of the key when anything had to change (so `a/b` and `a_b` do not
/// share a folder).
pub fn folder_name(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe == key && !safe.is_empty() {
        return safe.to_string();
    }
    // FNV-1a: a stable short tag, not a security boundary.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{safe}-{:08x}", h as u32)
}

/// The file beside a bundle that names its workload (folder names are
/// sanitised, so the key cannot be read back from them).
const WORKLOAD_FILE: &str = "workload.json";
/// The file beside a bundle that says where it comes from (fleet version,
/// node, reason, time): `agent status` shows it after a restart too.
const ORIGIN_FILE: &str = "origin.json";
/// Largest origin file read (it is a few hundred bytes).
const MAX_ORIGIN_BYTES: u64 = 64 << 10;

#[derive(serde::Serialize, Deserialize)]
struct WorkloadTag {
    workload: String,
}

/// `--models DIR`: one bundle folder per workload.
pub struct ModelStore {
    dir: PathBuf,
}

/// True when `p` is a real directory, not a symlink to one.
fn real_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir())
}

fn real_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

impl ModelStore {
    pub fn open(dir: &Path) -> Result<ModelStore, String> {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "--models {}: is a symbolic link; give the real folder",
                dir.display()
            ));
        }
        // 0700 (the bundles in it are 0640: a service group may read a
        // model where the folder lets it).
        crate::sink::private_fs::private_dir(dir).map_err(|e| format!("--models {e}"))?;
        Ok(ModelStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every stored bundle with its workload key. Folders that are
    /// symlinks, or hold symlinks where the bundle's files should be, are
    /// passed over with a warning: nobody can make the agent read a file
    /// outside the store by planting a link.
    pub(crate) fn load_all(&self) -> (Vec<(String, Bundle)>, Vec<String>) {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return (out, warnings);
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let name = d.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if !real_dir(&d) {
                warnings.push(format!(
                    "{}: not a folder (or a symlink); skipped",
                    d.display()
                ));
                continue;
            }
            let files = ["baseline.json", "model.safetensors", WORKLOAD_FILE];
            if let Some(bad) = files.iter().map(|f| d.join(f)).find(|p| !real_file(p)) {
                warnings.push(format!(
                    "{}: missing or not a regular file; bundle skipped",
                    bad.display()
                ));
                continue;
            }
            let key = match fs::read_to_string(d.join(WORKLOAD_FILE))
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<WorkloadTag>(&t).map_err(|e| e.to_string()))
            {
                Ok(t) => t.workload,
                Err(e) => {
                    warnings.push(format!(
                        "{}: {e}; bundle skipped",
                        d.join(WORKLOAD_FILE).display()
                    ));
                    continue;
                }
            };
            match Bundle::load(&d) {
                Ok(b) => out.push((key, b)),
                Err(e) => warnings.push(format!("{}: {e}; bundle skipped", d.display())),
            }
        }
        (out, warnings)
    }

    /// Where the stored bundle of `key` comes from, when the agent wrote
    /// that down (a missing, linked, oversized or damaged file: unknown).
    pub fn origin(&self, key: &str) -> Option<crate::status::ModelOrigin> {
        let path = self.dir.join(folder_name(key)).join(ORIGIN_FILE);
        if !real_file(&path) || fs::metadata(&path).ok()?.len() > MAX_ORIGIN_BYTES {
            return None;
        }
        serde_json::from_slice(&fs::read(&path).ok()?).ok()
    }

    /// Records where the stored bundle of `key` comes from (written whole
    /// under a fresh name, then renamed).
    pub(crate) fn set_origin(
        &self,
        key: &str,
        origin: &crate::status::ModelOrigin,
    ) -> Result<(), String> {
        let dir = self.dir.join(folder_name(key));
        if !real_dir(&dir) {
            return Err(format!("{}: no stored bundle", dir.display()));
        }
        let text = serde_json::to_vec_pretty(origin).expect("an origin serialises");
        chids_core::output::write_file(
            &dir.join(ORIGIN_FILE),
            &text,
            chids_core::output::OUTPUT_MODE,
        )
        .map_err(|e| format!("{}: {e}", dir.join(ORIGIN_FILE).display()))
    }

    /// The stored bundle of workload `key` and its folder, with the same
    /// checks as [`ModelStore::load_all`] (no symlinks, the folder's
    /// `workload.json` names `key`); `None` when there is none.
    pub fn load(&self, key: &str) -> Result<Option<(Bundle, PathBuf)>, String> {
        let d = self.dir.join(folder_name(key));
        if fs::symlink_metadata(&d).is_err() {
            return Ok(None);
        }
        if !real_dir(&d) {
            return Err(format!("{}: not a folder (or a symlink)", d.display()));
        }
        for f in ["baseline.json", "model.safetensors", WORKLOAD_FILE] {
            if !real_file(&d.join(f)) {
                return Err(format!(
                    "{}: missing or not a regular file",
                    d.join(f).display()
                ));
            }
        }
        let tag = fs::read_to_string(d.join(WORKLOAD_FILE))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<WorkloadTag>(&t).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", d.join(WORKLOAD_FILE).display()))?;
        if tag.workload != key {
            return Err(format!(
                "{}: holds workload {:?}, not {key:?}",
                d.display(),
                tag.workload
            ));
        }
        let bundle = Bundle::load(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        Ok(Some((bundle, d)))
    }

    /// Stores a workload's bundle: written into a fresh folder, then moved
    /// into place, so a reader never sees half a bundle and nothing is
    /// written through a link planted at the destination.
    pub fn save(&self, key: &str, bundle: &Bundle) -> Result<PathBuf, String> {
        let name = folder_name(key);
        let dest = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        if fs::symlink_metadata(&tmp).is_ok() {
            let _ = fs::remove_dir_all(&tmp).or_else(|_| fs::remove_file(&tmp));
        }
        // create_dir fails on anything already there, symlinks included.
        std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700)
            .create(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        bundle
            .save(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let tag = serde_json::to_string(&WorkloadTag {
            workload: key.to_string(),
        })
        .expect("tag serialises");
        chids_core::output::write_file(
            &tmp.join(WORKLOAD_FILE),
            tag.as_bytes(),
            chids_core::output::OUTPUT_MODE,
        )
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
        if let Ok(m) = fs::symlink_metadata(&dest) {
            if m.file_type().is_dir() {
                let old = self.dir.join(format!(".{name}.old-{}", std::process::id()));
                fs::rename(&dest, &old).map_err(|e| format!("{}: {e}", dest.display()))?;
                let _ = fs::remove_dir_all(&old);
            } else {
                fs::remove_file(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
            }
        }
        fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(image: &str, name: &str) -> Identity {
        Identity {
            runtime: "podman".into(),
            id: "ab".repeat(32),
            name: Some(name.into()),
            image: Some(image.into()),
            ..Identity::default()
        }
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("*nginx*", "docker.io/library/nginx:1.25"));
        assert!(glob("job-*", "job-17"));
        assert!(!glob("job-*", "myjob-17"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    #[test]
    fn include_and_exclude_choose_what_is_watched() {
        let mut debug = ident("localhost/shop:1", "debug-shell");
        debug.namespace = Some("shop".into());
        let mut web = ident("localhost/shop:1", "web-1");
        web.namespace = Some("shop".into());
        web.labels.insert("chids".into(), "off".into());
        let mut api = ident("localhost/api:1", "api-1");
        api.namespace = Some("shop".into());
        let other = ident("localhost/other:1", "x");

        // Nothing given: everything is watched.
        let all = WorkloadConfig::default();
        assert_eq!(all.excluded(&other), None);

        let cfg: WorkloadConfig = serde_json::from_str(
            r#"{"include":[{"namespace":"shop"}],"exclude":[{"name":"debug-*"}]}"#,
        )
        .unwrap();
        let mut cfg = cfg;
        cfg.exclude
            .push(Selector::parse("label=chids=off").unwrap());
        assert_eq!(cfg.excluded(&api), None);
        let why = cfg.excluded(&debug).unwrap();
        assert!(why.contains("--exclude name=debug-*"), "{why}");
        let why = cfg.excluded(&web).unwrap();
        assert!(why.contains("label=chids=off"), "{why}");
        let why = cfg.excluded(&other).unwrap();
        assert!(why.contains("no --include (namespace=shop)"), "{why}");
    }

    #[test]
    fn selectors_from_the_command_line() {
        assert_eq!(
            Selector::parse("image=*nginx*").unwrap().image.as_deref(),
            Some("*nginx*")
        );
        assert_eq!(
            Selector::parse("label=app=web").unwrap().label.as_deref(),
            Some("app=web")
        );
        for bad in ["nginx", "label=app", "colour=red"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.json");
        fs::write(&p, r#"{"exclude":[{"label":"x"}]}"#).unwrap();
        let e = WorkloadConfig::load(&p).unwrap_err();
        assert!(e.contains("exclude 1") && e.contains("KEY=PATTERN"), "{e}");
    }

    #[test]
    fn keys_from_rules_else_image() {
        let mut labelled = ident("quay.io/acme/api:2", "api-1");
        labelled.labels.insert("app".into(), "api".into());
        let cfg: WorkloadConfig = serde_json::from_str(
            r#"{"workloads":[{"key":"batch","name":"job-*"},{"key":"api","label":"app=api"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.key_of(&ident("busybox", "job-3")), "batch");
        assert_eq!(cfg.key_of(&labelled), "api");
        assert_eq!(
            cfg.key_of(&ident("localhost/web:1", "w")),
            "localhost/web:1"
        );
        let bare = Identity {
            id: "cd".repeat(32),
            ..Identity::default()
        };
        assert_eq!(cfg.key_of(&bare), "container-cdcdcdcdcdcd");
    }

    #[test]
    fn config_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.json");
        fs::write(&p, "{\"workloads\": [\n {\"key\": \"a\", \"colour\": 1}]}").unwrap();
        let e = WorkloadConfig::load(&p).unwrap_err();
        assert!(e.contains("w.json: line 2"), "{e}");
        fs::write(&p, r#"{"workloads":[{"key":"a","label":"noequals"}]}"#).unwrap();
        assert!(WorkloadConfig::load(&p).unwrap_err().contains("rule 1"));
    }

    #[test]
    fn origins_round_trip_and_refuse_links_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::open(&dir.path().join("models")).unwrap();
        let key = "localhost/web:1";
        let origin = crate::status::ModelOrigin {
            version: Some(3),
            node: "node-a".into(),
            reason: "trained".into(),
            time_ns: 42,
            digest: Some("ab".repeat(32)),
            learnt_from: vec!["node-a".into(), "node-b".into()],
        };
        // No bundle folder: nothing to attach it to.
        assert!(store.set_origin(key, &origin).is_err());
        assert_eq!(store.origin(key), None);
        let folder = store.dir().join(folder_name(key));
        fs::create_dir(&folder).unwrap();
        store.set_origin(key, &origin).unwrap();
        assert_eq!(store.origin(key), Some(origin));
        fs::write(folder.join(ORIGIN_FILE), "{\"node\": 7}").unwrap();
        assert_eq!(store.origin(key), None);
        let elsewhere = dir.path().join("elsewhere.json");
        fs::write(&elsewhere, r#"{"node":"x","reason":"y","time_ns":1}"#).unwrap();
        fs::remove_file(folder.join(ORIGIN_FILE)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, folder.join(ORIGIN_FILE)).unwrap();
        assert_eq!(store.origin(key), None, "read through a planted link");
    }

    #[test]
    fn folder_names_are_safe_and_distinct() {
        assert_eq!(folder_name("web"), "web");
        let a = folder_name("localhost/web:latest");
        assert!(a.starts_with("localhost_web_latest-"), "{a}");
        assert_ne!(folder_name("a/b"), folder_name("a_b"));
        assert!(!folder_name("../../etc").contains('/'));
        assert!(!folder_name("..").starts_with('.'));
        assert!(!folder_name("").is_empty());
    }

    #[test]
    fn load_one_refuses_links_and_other_workloads() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ModelStore::open(&tmp.path().join("models")).unwrap();
        assert!(store.load("web").unwrap().is_none(), "no folder: no model");
        // A folder whose workload.json names another key (planted or stale).
        let d = store.dir().join(folder_name("web"));
        fs::create_dir(&d).unwrap();
        for f in ["baseline.json", "model.safetensors"] {
            fs::write(d.join(f), "x").unwrap();
        }
        fs::write(d.join(WORKLOAD_FILE), r#"{"workload": "db"}"#).unwrap();
        let e = store.load("web").unwrap_err();
        assert!(e.contains("holds workload \"db\""), "{e}");
        // A link where the folder should be.
        fs::remove_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(tmp.path(), &d).unwrap();
        let e = store.load("web").unwrap_err();
        assert!(e.contains("symlink"), "{e}");
    }
}
