//! The double's object store: objects by path with the API server's
//! metadata (resourceVersion, uid, creationTimestamp, generation), a log of
//! changes for watches, paths as the API lays them out, selectors, and
//! deletion with the garbage collector's cascade.

use super::State;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Change {
    pub version: u64,
    pub path: String,
    pub kind: &'static str,
    pub object: Value,
}

pub struct Store {
    objects: BTreeMap<String, Value>,
    version: u64,
    next_uid: u64,
    log: Vec<Change>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            objects: BTreeMap::new(),
            version: 1,
            next_uid: 0,
            log: Vec::new(),
            changed: tokio::sync::watch::Sender::new(1),
        }
    }

    pub fn get(&self, path: &str) -> Option<&Value> {
        self.objects.get(path)
    }

    pub fn objects(&self) -> &BTreeMap<String, Value> {
        &self.objects
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// A fresh number, for uids and generated names.
    pub fn next_id(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// Stores `obj` at `path` with the next resource version. A new object
    /// gets a uid and creation time; an existing one keeps them, and keeps
    /// its status when `keep_status` and `obj` brings none (status is a
    /// subresource an apply of the object does not touch).
    pub fn upsert(&mut self, path: &str, mut obj: Value, keep_status: bool) -> Value {
        if !obj.is_object() {
            obj = json!({});
        }
        let old = self.objects.get(path).cloned();
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        let (uid, created, generation) = match &old {
            Some(o) => {
                let spec_changed = o.get("spec") != obj.get("spec");
                let g = o["metadata"]["generation"].as_u64().unwrap_or(1);
                (
                    o["metadata"]["uid"].clone(),
                    o["metadata"]["creationTimestamp"].clone(),
                    if spec_changed { g + 1 } else { g },
                )
            }
            None => {
                let n = self.next_id();
                (
                    Value::String(format!("00000000-0000-4000-8000-{n:012x}")),
                    Value::String(now_rfc3339()),
                    1,
                )
            }
        };
        if keep_status && obj.get("status").is_none() {
            if let Some(s) = old.as_ref().and_then(|o| o.get("status")) {
                obj["status"] = s.clone();
            }
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let m = &mut obj["metadata"];
        if m.get("uid").is_none_or(Value::is_null) {
            m["uid"] = uid;
        }
        if m.get("creationTimestamp").is_none_or(Value::is_null) {
            m["creationTimestamp"] = created;
        }
        m["generation"] = json!(generation);
        self.version += 1;
        m["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(path.to_string(), obj.clone());
        self.record(path, kind, obj.clone());
        obj
    }

    /// Removes the object at `path` alone (no cascade).
    pub fn remove(&mut self, path: &str) -> Option<Value> {
        let mut obj = self.objects.remove(path)?;
        self.version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.record(path, "DELETED", obj.clone());
        Some(obj)
    }

    fn record(&mut self, path: &str, kind: &'static str, object: Value) {
        self.log.push(Change {
            version: self.version,
            path: path.to_string(),
            kind,
            object,
        });
        self.changed.send_replace(self.version);
    }

    /// The changes after `version`.
    pub fn changes_after(&self, version: u64) -> &[Change] {
        let from = self.log.partition_point(|c| c.version <= version);
        &self.log[from..]
    }

    /// Hears of every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The paths of objects one level below `collection` (`.../pods`).
    pub fn paths_under(&self, collection: &str) -> Vec<String> {
        self.objects
            .keys()
            .filter(|p| in_collection(p, collection))
            .cloned()
            .collect()
    }
}

/// Whether the object at `path` belongs to the list at `collection`: one
/// level below it, or, for a namespaced kind listed across namespaces
/// (`/api/v1/pods`), one level below the kind in any namespace.
pub fn in_collection(path: &str, collection: &str) -> bool {
    if let Some(rest) = path.strip_prefix(collection) {
        if let Some(name) = rest.strip_prefix('/') {
            return !name.is_empty() && !name.contains('/');
        }
    }
    let Some(c) = ApiPath::parse(collection) else {
        return false;
    };
    let Some(p) = ApiPath::parse(path) else {
        return false;
    };
    c.namespace.is_none()
        && c.name.is_none()
        && c.resource != "namespaces"
        && p.namespace.is_some()
        && p.prefix == c.prefix
        && p.resource == c.resource
        && p.name.is_some()
        && p.sub.is_none()
}

/// A request path as the API lays it out:
/// `PREFIX[/namespaces/NS]/RESOURCE[/NAME[/SUB...]]`, where PREFIX is
/// `/api/v1` or `/apis/GROUP/VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    pub prefix: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl ApiPath {
    pub fn parse(path: &str) -> Option<ApiPath> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (prefix, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => (format!("/api/{v}"), rest),
            ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, more @ ..] if !more.is_empty() => (Some(ns.to_string()), more),
            _ => (None, rest),
        };
        let (resource, more) = rest.split_first()?;
        if resource.is_empty() {
            return None;
        }
        let name = more
            .first()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string());
        let sub = (more.len() > 1).then(|| more[1..].join("/"));
        Some(ApiPath {
            prefix,
            namespace,
            resource: resource.to_string(),
            name,
            sub,
        })
    }

    /// The path of the object itself (no subresource).
    pub fn object(&self) -> String {
        let mut p = self.collection();
        if let Some(n) = &self.name {
            p.push('/');
            p.push_str(n);
        }
        p
    }

    pub fn collection(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.prefix, self.resource),
            None => format!("{}/{}", self.prefix, self.resource),
        }
    }
}

/// The path an object with this apiVersion and kind lives at.
pub fn path_of(api_version: &str, plural: &str, ns: Option<&str>, name: &str) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    match ns {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{prefix}/{plural}/{name}"),
    }
}

/// One term of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Exists(String),
    Absent(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector: every term must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(Vec<Term>);

impl LabelSelector {
    /// Comma-separated terms: `k`, `!k`, `k=v`, `k==v`, `k!=v`,
    /// `k in (a,b)`, `k notin (a,b)`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut terms = Vec::new();
        for raw in split_outside_parens(s) {
            let t = raw.trim();
            if t.is_empty() {
                continue;
            }
            let term = if let Some(k) = t.strip_prefix('!') {
                Term::Absent(label_key(k)?)
            } else if let Some((k, v)) = t.split_once("!=") {
                Term::NotEquals(label_key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = t.split_once("==") {
                Term::Equals(label_key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = t.split_once('=') {
                Term::Equals(label_key(k)?, v.trim().to_string())
            } else if let Some((k, set)) = split_set(t, " notin ") {
                Term::NotIn(label_key(k)?, set?)
            } else if let Some((k, set)) = split_set(t, " in ") {
                Term::In(label_key(k)?, set?)
            } else {
                Term::Exists(label_key(t)?)
            };
            terms.push(term);
        }
        Ok(LabelSelector(terms))
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|t| match t {
            Term::Exists(k) => get(k).is_some(),
            Term::Absent(k) => get(k).is_none(),
            Term::Equals(k, v) => get(k) == Some(v.as_str()),
            Term::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Term::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Term::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        })
    }
}

fn label_key(k: &str) -> Result<String, String> {
    let k = k.trim();
    let valid = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(k.to_string())
    } else {
        Err(format!("invalid label key {k:?}"))
    }
}

fn split_set<'a>(t: &'a str, op: &str) -> Option<(&'a str, Result<Vec<String>, String>)> {
    let (k, rest) = t.split_once(op)?;
    let rest = rest.trim();
    let set = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| inner.split(',').map(|v| v.trim().to_string()).collect())
        .ok_or_else(|| format!("a set must be in parentheses: {t:?}"));
    Some((k, set))
}

fn split_outside_parens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A parsed field selector: `a.b=x`, `a.b==x`, `a.b!=x`, comma-separated,
/// each naming a field by its dotted path in the object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(Vec<(Vec<String>, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = t.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector term {t:?}"));
            };
            let path: Vec<String> = field.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("invalid field {field:?}"));
            }
            terms.push((path, equal, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, o: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let mut v = o;
            for seg in path {
                v = &v[seg.as_str()];
            }
            let actual = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// The selectors of a list or watch query.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selectors {
    pub fn from_query(q: &BTreeMap<String, String>) -> Result<Selectors, String> {
        Ok(Selectors {
            labels: match q.get("labelSelector") {
                Some(s) => LabelSelector::parse(s)?,
                None => LabelSelector::default(),
            },
            fields: match q.get("fieldSelector") {
                Some(s) => FieldSelector::parse(s)?,
                None => FieldSelector::default(),
            },
        })
    }

    pub fn matches(&self, o: &Value) -> bool {
        self.labels.matches(&o["metadata"]["labels"]) && self.fields.matches(o)
    }
}

/// Deletes the object at `path` and, as the garbage collector does, what it
/// owns; deleting a namespace deletes everything in it. A pod the kubelet
/// runs is stopped.
pub fn delete(st: &mut State, path: &str) -> Option<Value> {
    let obj = st.store.remove(path)?;
    super::kubelet::forget_pod(st, path);
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut dependents: Vec<String> = st
        .store
        .objects()
        .iter()
        .filter(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()))
        })
        .map(|(p, _)| p.clone())
        .collect();
    if let Some(ns) = path.strip_prefix("/api/v1/namespaces/") {
        if !ns.contains('/') {
            let inside = format!("/namespaces/{ns}/");
            dependents.extend(
                st.store
                    .objects()
                    .keys()
                    .filter(|p| p.contains(&inside))
                    .cloned(),
            );
        }
    }
    for d in dependents {
        delete(st, &d);
    }
    Some(obj)
}

/// An owner reference to `owner`, as controllers set it.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Now, in RFC 3339 to the second, as the API server writes times.
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

/// `n` as `len` characters of the alphabet Kubernetes uses for generated
/// name suffixes (no vowels, no look-alikes).
pub fn name_suffix(n: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // A multiplicative hash, so consecutive numbers do not look consecutive.
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..len)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_read_every_form_the_api_server_does() {
        let labels = json!({ "app": "a", "tier": "web" });
        let yes = [
            "app",
            "!missing",
            "app=a",
            "app==a",
            "app!=b",
            "missing!=b",
            "app=a,tier=web",
            "tier in (db, web)",
            "tier notin (db)",
            "",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        let no = [
            "missing",
            "!app",
            "app=b",
            "app!=a",
            "app=a,tier=db",
            "tier in (db)",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&labels), "{s}");
        }
        assert!(LabelSelector::parse("a b=c").is_err());
        assert!(LabelSelector::parse("t in db").is_err());
    }

    #[test]
    fn field_selectors_follow_dotted_paths() {
        let ev = json!({ "involvedObject": { "name": "p" }, "metadata": { "name": "e" } });
        assert!(FieldSelector::parse("involvedObject.name=p")
            .unwrap()
            .matches(&ev));
        assert!(
            FieldSelector::parse("metadata.name==e,involvedObject.name!=q")
                .unwrap()
                .matches(&ev)
        );
        assert!(!FieldSelector::parse("metadata.name=x")
            .unwrap()
            .matches(&ev));
        assert!(FieldSelector::parse("nothing").is_err());
    }

    #[test]
    fn paths_split_into_their_parts() {
        let p = ApiPath::parse("/api/v1/namespaces/ns/pods/p-0:9000/proxy/start").unwrap();
        assert_eq!(p.namespace.as_deref(), Some("ns"));
        assert_eq!(p.resource, "pods");
        assert_eq!(p.name.as_deref(), Some("p-0:9000"));
        assert_eq!(p.sub.as_deref(), Some("proxy/start"));
        let n = ApiPath::parse("/api/v1/namespaces/ns").unwrap();
        assert_eq!(
            (n.resource.as_str(), n.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        let l = ApiPath::parse("/apis/apps/v1/namespaces/ns/deployments").unwrap();
        assert_eq!(l.name, None);
        assert!(in_collection("/api/v1/namespaces/a/pods/x", "/api/v1/pods"));
        assert!(!in_collection(
            "/api/v1/namespaces/a/pods/x/log",
            "/api/v1/pods"
        ));
        assert!(!in_collection("/api/v1/namespaces/a", "/api/v1/pods"));
        assert!(ApiPath::parse("/version").is_none());
    }
}
