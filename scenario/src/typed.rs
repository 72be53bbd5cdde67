//! The typed parse, collecting every structural problem (unknown keys, wrong
//! types, missing fields) instead of stopping at the first.
//!
//! serde stops at the first error, so each one is recorded and then neutralised
//! in the TOML document (an unknown key removed, a bad value replaced by one the
//! type accepts, found by trying a few), and the parse is retried. The
//! deserializer itself is the schema: nothing here restates the scenario's
//! types. Semantic checks later skip whatever was neutralised, since its value
//! is a stand-in.

use crate::diagnostic::{plain_words, suggest};
use crate::spec::Scenario;
use crate::validate::Seg;
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Most problems reported, and most parse attempts, before giving up on the rest.
const MAX_PROBLEMS: usize = 50;
const MAX_ATTEMPTS: usize = 400;
/// Tag keys of the internally tagged sections (`phases`, `arrivals`,
/// `sharing`, `distribution`): a value's kind, never the culprit of a field error.
const TAGS: &[&str] = &["kind", "process", "strategy"];

/// One structural problem: where, and whether it concerns the key (unknown
/// keys) or its value.
pub struct Problem {
    pub path: Vec<Seg>,
    pub at_key: bool,
    pub message: String,
}

pub struct Typed {
    pub scenario: Option<Scenario>,
    pub problems: Vec<Problem>,
    /// Paths whose values are stand-ins: semantic problems there are not real.
    pub neutralised: Vec<Vec<Seg>>,
    /// `services` or `traffic` was missing: semantic checks would only repeat it.
    pub missing_section: bool,
}

enum Outcome {
    Parsed(Box<Scenario>),
    Syntax(String),
    Failed { path: Vec<Seg>, message: String },
}

fn attempt(doc: &DocumentMut) -> Outcome {
    let text = doc.to_string();
    let de = match toml::Deserializer::parse(&text) {
        Ok(de) => de,
        Err(e) => return Outcome::Syntax(first_line(e.message())),
    };
    match serde_path_to_error::deserialize::<_, Scenario>(de) {
        Ok(s) => Outcome::Parsed(Box::new(s)),
        Err(e) => {
            let path = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    _ => None,
                })
                .collect();
            Outcome::Failed {
                path,
                message: first_line(e.inner().message()),
            }
        }
    }
}

pub fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or("").to_string()
}

/// Parses `doc` (changing it), collecting every structural problem.
/// `hint` words the message for a missing required key at a path.
/// `removal_first`: try leaving a bad key out before other stand-ins.
pub fn typed_parse(
    doc: &mut DocumentMut,
    hint: &dyn Fn(&[Seg], &str) -> String,
    removal_first: bool,
) -> Typed {
    let mut t = Typed {
        scenario: None,
        problems: Vec::new(),
        neutralised: Vec::new(),
        missing_section: false,
    };
    // Tables reset after an error that could not be pinned to one key: what
    // goes wrong inside them next is fixed without being reported again.
    let mut quiet: Vec<Vec<Seg>> = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (path, message) = match attempt(doc) {
            Outcome::Parsed(s) => {
                t.scenario = Some(*s);
                return t;
            }
            Outcome::Syntax(m) => {
                t.problems.push(Problem {
                    path: Vec::new(),
                    at_key: false,
                    message: m,
                });
                return t;
            }
            Outcome::Failed { path, message } => (path, message),
        };
        let report = !quiet.iter().any(|q| path.starts_with(q));
        if attempts > MAX_ATTEMPTS || t.problems.len() >= MAX_PROBLEMS {
            if report {
                t.problems.push(Problem {
                    path,
                    at_key: false,
                    message: plain_words(&message),
                });
            }
            return t;
        }
        let mut push = |p: Problem| {
            if report {
                t.problems.push(p)
            }
        };
        if let Some(k) = quoted_after(&message, "unknown field `") {
            let (table, full) = match path.last() {
                Some(Seg::Key(last)) if *last == k => (path[..path.len() - 1].to_vec(), path),
                _ => {
                    let mut full = path.clone();
                    full.push(Seg::Key(k.clone()));
                    (path, full)
                }
            };
            push(Problem {
                path: full,
                at_key: true,
                message: suggest(&message),
            });
            let removed = with_table(doc, &table, |tbl| tbl.remove(&k).is_some());
            if removed != Some(true) {
                return t;
            }
            continue;
        }
        if let Some(k) = quoted_after(&message, "missing field `") {
            let mut full = path.clone();
            full.push(Seg::Key(k.clone()));
            push(Problem {
                path: path.clone(),
                at_key: false,
                message: hint(&path, &k),
            });
            if path.is_empty() && (k == "services" || k == "traffic") {
                t.missing_section = true;
            }
            // Other errors in this table came first; what follows here is our
            // stand-in's doing (inside tagged tables the path stops at the
            // table), unless it is another missing key.
            let still = |p: &[Seg], m: &str| {
                p.starts_with(&path)
                    && quoted_after(m, "missing field `").is_none_or(|other| other == k)
            };
            if !fix(doc, &full, &still, &[], removal_first, &mut attempts) {
                return t;
            }
            t.neutralised.push(full);
            continue;
        }
        let variants = expected_names(&message);
        let is_variant = message.starts_with("unknown variant");
        let node = get(doc, &path);
        let leaf = matches!(&node, Some(Item::Value(v)) if !v.is_inline_table());
        let table = node.as_ref().is_some_and(|n| n.is_table_like());
        if node.is_none() {
            push(Problem {
                path,
                at_key: false,
                message: plain_words(&message),
            });
            return t;
        }
        if leaf {
            push(Problem {
                path: path.clone(),
                at_key: false,
                message: plain_words(&suggest(&message)),
            });
            // The closest name first: the stand-in most likely meant, so what
            // the rest of the table says is judged against it.
            let extra = if is_variant {
                let bad = quoted_after(&message, "unknown variant `").unwrap_or_default();
                let mut v = variants;
                if let Some(near) = closest(&bad, &v) {
                    v.retain(|x| *x != near);
                    v.insert(0, near);
                }
                v
            } else {
                Vec::new()
            };
            let still = |p: &[Seg], m: &str| {
                p.starts_with(&path)
                    || (Some(p) == path.split_last().map(|(_, parent)| parent)
                        && matches!(path.last(), Some(Seg::Key(k))
                            if quoted_after(m, "missing field `").as_deref() == Some(k.as_str())))
            };
            if !fix(doc, &path, &still, &extra, removal_first, &mut attempts) {
                return t;
            }
            t.neutralised.push(path);
            continue;
        }
        if table && is_variant {
            // The tag names an unknown kind: take the closest known one so the
            // rest can be read, and do not report what then fails inside it.
            push(Problem {
                path: path.clone(),
                at_key: false,
                message: plain_words(&suggest(&message)),
            });
            let bad = quoted_after(&message, "unknown variant `").unwrap_or_default();
            let pick = closest(&bad, &variants).or_else(|| variants.first().cloned());
            let Some(pick) = pick else { return t };
            let tag = with_table(doc, &path, |tbl| {
                let key = TAGS
                    .iter()
                    .find(|k| tbl.get(k).and_then(|i| i.as_str()) == Some(bad.as_str()))?;
                tbl.insert(key, Item::Value(Value::from(pick.as_str())));
                Some(())
            });
            if tag.flatten().is_none() {
                return t;
            }
            quiet.push(path.clone());
            t.neutralised.push(path);
            continue;
        }
        // The error names a table (an internally tagged one hides which key):
        // find the key whose replacement makes the error go away.
        let keys: Vec<String> = node
            .as_ref()
            .and_then(|n| n.as_table_like())
            .map(|tbl| tbl.iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_default();
        let mut culprit = None;
        for k in keys.iter().filter(|k| !TAGS.contains(&k.as_str())) {
            let mut at = path.clone();
            at.push(Seg::Key(k.clone()));
            let still = |p: &[Seg], _: &str| p.starts_with(&path);
            if fix(doc, &at, &still, &[], removal_first, &mut attempts) {
                culprit = Some(at);
                break;
            }
        }
        match culprit {
            Some(at) => {
                push(Problem {
                    path: at.clone(),
                    at_key: false,
                    message: plain_words(&message),
                });
                t.neutralised.push(at);
            }
            None => {
                // Several keys at fault: keep only its kind, so the rest of the
                // file can still be read, and report the table.
                push(Problem {
                    path: path.clone(),
                    at_key: false,
                    message: plain_words(&message),
                });
                let reset = with_table(doc, &path, |tbl| {
                    let drop: Vec<String> = tbl
                        .iter()
                        .map(|(k, _)| k.to_string())
                        .filter(|k| !TAGS.contains(&k.as_str()))
                        .collect();
                    for k in drop {
                        tbl.remove(&k);
                    }
                });
                if reset.is_none() {
                    return t;
                }
                quiet.push(path.clone());
                t.neutralised.push(path);
            }
        }
    }
}

/// Replaces (or removes) the value at `at` with the first stand-in after which
/// the parse no longer fails in a way `still` recognises as the same problem.
/// Leaves the document as it was when none does.
fn fix(
    doc: &mut DocumentMut,
    at: &[Seg],
    still: &dyn Fn(&[Seg], &str) -> bool,
    extra: &[String],
    removal_first: bool,
    attempts: &mut usize,
) -> bool {
    let saved = get(doc, at);
    let mut stand_ins: Vec<Option<Value>> = Vec::new();
    if saved.is_some() && removal_first {
        stand_ins.push(None);
    }
    stand_ins.extend(extra.iter().map(|v| Some(Value::from(v.as_str()))));
    stand_ins.extend(
        [
            Value::from(1),
            Value::from("1"),
            Value::from("1s"),
            Value::from(true),
            Value::Array(Default::default()),
            Value::InlineTable(Default::default()),
            Value::from("x"),
        ]
        .map(Some),
    );
    if saved.is_some() && !removal_first {
        stand_ins.push(None);
    }
    for v in stand_ins {
        if *attempts > MAX_ATTEMPTS {
            break;
        }
        *attempts += 1;
        if set(doc, at, v.map(Item::Value)).is_none() {
            break;
        }
        let gone = match attempt(doc) {
            Outcome::Parsed(_) => true,
            Outcome::Syntax(_) => false,
            Outcome::Failed { path, message } => !still(&path, &message),
        };
        if gone {
            return true;
        }
    }
    let _ = set(doc, at, saved);
    false
}

/// The text between `start` and the next backquote.
fn quoted_after(message: &str, start: &str) -> Option<String> {
    let i = message.find(start)? + start.len();
    let rest = &message[i..];
    Some(rest[..rest.find('`')?].to_string())
}

/// Names serde lists after "expected one of".
fn expected_names(message: &str) -> Vec<String> {
    message
        .split_once("expected")
        .map(|(_, rest)| {
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn closest(bad: &str, names: &[String]) -> Option<String> {
    names
        .iter()
        .map(|n| (strsim::jaro_winkler(bad, n), n))
        .filter(|(s, _)| *s > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.clone())
}

/// A copy of the item at `path` (array elements as values).
fn get(doc: &DocumentMut, path: &[Seg]) -> Option<Item> {
    let mut item: Item = doc.as_item().clone();
    for seg in path {
        item = match (item, seg) {
            (Item::ArrayOfTables(a), Seg::Index(i)) => Item::Table(a.get(*i)?.clone()),
            (Item::Value(Value::Array(a)), Seg::Index(i)) => Item::Value(a.get(*i)?.clone()),
            (i, Seg::Key(k)) => i.as_table_like()?.get(k)?.clone(),
            _ => return None,
        };
    }
    Some(item)
}

/// Runs `f` on the table (or inline table) at `path`.
fn with_table<R>(
    doc: &mut DocumentMut,
    path: &[Seg],
    f: impl FnOnce(&mut dyn TableLike) -> R,
) -> Option<R> {
    enum Node<'a> {
        Item(&'a mut Item),
        Value(&'a mut Value),
        Table(&'a mut toml_edit::Table),
    }
    let mut node = Node::Table(doc.as_table_mut());
    for seg in path {
        node = match (node, seg) {
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => Node::Table(a.get_mut(*i)?),
            (Node::Item(Item::Value(Value::Array(a))), Seg::Index(i))
            | (Node::Value(Value::Array(a)), Seg::Index(i)) => Node::Value(a.get_mut(*i)?),
            (Node::Item(i), Seg::Key(k)) => Node::Item(i.as_table_like_mut()?.get_mut(k)?),
            (Node::Table(t), Seg::Key(k)) => Node::Item(t.get_mut(k)?),
            (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => Node::Value(t.get_mut(k)?),
            _ => return None,
        };
    }
    match node {
        Node::Item(i) => Some(f(i.as_table_like_mut()?)),
        Node::Value(v) => Some(f(v.as_inline_table_mut()?)),
        Node::Table(t) => Some(f(t)),
    }
}

/// Sets (or with `None` removes) the value at `path`; array elements are only
/// replaced, never removed, so later indices keep their meaning.
fn set(doc: &mut DocumentMut, path: &[Seg], item: Option<Item>) -> Option<()> {
    let (last, parent) = path.split_last()?;
    match last {
        Seg::Key(k) => with_table(doc, parent, |t| {
            match item {
                Some(i) => {
                    t.insert(k, i);
                }
                None => {
                    t.remove(k);
                }
            };
        }),
        Seg::Index(n) => {
            let (key, grand) = parent.split_last()?;
            let Seg::Key(key) = key else { return None };
            let Item::Value(v) = item? else { return None };
            with_table(doc, grand, |t| {
                let arr = t.get_mut(key)?.as_array_mut()?;
                (*n < arr.len()).then(|| arr.replace(*n, v)).map(|_| ())
            })
            .flatten()
        }
    }
}
