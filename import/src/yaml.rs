//! Reading manifests with serde-saphyr: which documents a file holds, each object
//! typed straight from its own document through `serde_path_to_error` (so an error
//! names the line, column and key path), and where a key sits for the errors found
//! after deserialization.

use crate::{ImportError, Position, Problem};
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned};
use std::fmt;

/// One step of a key path inside an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Shorthand for a key step.
pub fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// A key path as people write it: `spec.metrics[0].resource`, with keys that are not
/// plain words quoted (`metadata.annotations["autoscaling.knative.dev/target"]`).
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => out += &format!("[{i}]"),
            Seg::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out += k;
            }
            Seg::Key(k) => out += &format!("[{k:?}]"),
        }
    }
    out
}

/// Turns serde_path_to_error's path into ours.
pub fn segments(path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|s| match s {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } => Seg::Key(key.clone()),
            Segment::Enum { variant } => Seg::Key(variant.clone()),
            Segment::Unknown => Seg::Key("?".into()),
        })
        .collect()
}

/// What the first pass reads of each document: enough to pick the importer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    kind: Option<String>,
    api_version: Option<String>,
}

/// One non-empty document of a manifest file.
pub struct Document<'a> {
    pub kind: Option<String>,
    pub api_version: Option<String>,
    /// Where the document's root mapping starts in the file.
    pub start: Position,
    /// The whole file, for quoting the text an error points at.
    file: &'a str,
    /// From the first line of this document's root to the end of the file.
    rest: &'a str,
    /// How many lines of the file come before `rest`.
    line_offset: u64,
}

/// The file's documents, empty ones (a lone `---`, `null`) left out. Syntax errors
/// anywhere in the file are reported here, with their position.
pub fn documents(file: &str) -> Result<Vec<Document<'_>>, ImportError> {
    let at = |e: &serde_saphyr::Error| e.location().and_then(|l| position(l, 0));
    // Syntax first, so that `kind: [` reads as broken YAML rather than a kind that is
    // not text.
    serde_saphyr::from_multiple::<IgnoredAny>(file).map_err(|e| ImportError {
        position: at(&e),
        path: None,
        problem: Problem::Yaml(message(&e)),
    })?;
    let heads: Vec<Spanned<Head>> = serde_saphyr::from_multiple(file).map_err(|e| ImportError {
        position: at(&e),
        path: None,
        problem: Problem::Schema {
            kind: "kind and apiVersion".into(),
            message: message(&e),
        },
    })?;
    Ok(heads
        .into_iter()
        .map(|h| {
            let line = h.referenced.line().max(1);
            let start = line_start(file, line);
            Document {
                kind: h.value.kind,
                api_version: h.value.api_version,
                start: position(h.referenced, 0).unwrap_or(Position { line, column: 1 }),
                file,
                rest: &file[start..],
                line_offset: line - 1,
            }
        })
        .collect())
}

/// The byte offset at which 1-based `line` starts.
fn line_start(text: &str, line: u64) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n')
        .nth((line - 2) as usize)
        .map_or(text.len(), |(i, _)| i + 1)
}

fn position(l: Location, line_offset: u64) -> Option<Position> {
    (l.line() > 0).then(|| Position {
        line: l.line() + line_offset,
        column: l.column().max(1),
    })
}

/// serde-saphyr's message without its own "at line X" suffix or snippet (we print the
/// position the way compilers do), control characters made visible.
fn message(e: &serde_saphyr::Error) -> String {
    serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs one deserialization over the document and hands back what `f` returned.
/// serde-saphyr's entry point expects a single document; the ones after ours, which
/// the deserializer never reaches, make it report "multiple documents" once `f` is
/// done, so only `f`'s own result counts.
fn with_document<'de, R>(
    rest: &'de str,
    f: impl for<'e> FnOnce(serde_saphyr::Deserializer<'de, 'e>) -> R,
) -> Result<R, serde_saphyr::Error> {
    let mut out = None;
    let outer = serde_saphyr::with_deserializer_from_str(rest, |de| {
        out = Some(f(de));
        Ok(())
    });
    match (out, outer) {
        (Some(r), _) => Ok(r),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(de::Error::custom("the document was not read")),
    }
}

impl Document<'_> {
    /// The document as a `T`, or an error at the first key that does not fit.
    pub fn typed<T: DeserializeOwned>(&self, kind: &str) -> Result<T, ImportError> {
        let result = with_document(self.rest, |de| {
            serde_path_to_error::deserialize::<_, T>(de).map_err(Box::new)
        })
        .map_err(|e| self.schema_error(kind, Vec::new(), &e))?;
        result.map_err(|e| self.schema_error(kind, segments(e.path()), e.inner()))
    }

    fn schema_error(&self, kind: &str, path: Vec<Seg>, e: &serde_saphyr::Error) -> ImportError {
        let mut message = message(e);
        let position = if message.starts_with("missing field") {
            // serde-saphyr places it where the mapping ends; where it starts is nearer
            // to where the field belongs.
            Some(self.locate(&path))
        } else {
            let p = e.location().and_then(|l| position(l, self.line_offset));
            if let Some(found) = p.and_then(|p| self.text_at(p)) {
                message += &format!(", found `{found}`");
            }
            p
        };
        ImportError {
            position,
            path: (!path.is_empty()).then(|| render(&path)),
            problem: Problem::Schema {
                kind: kind.to_string(),
                message,
            },
        }
    }

    /// The scalar an error points at, as written (up to the end of the line or a
    /// comment), when there is one.
    fn text_at(&self, p: Position) -> Option<String> {
        let line = self.file.lines().nth((p.line - 1) as usize)?;
        let from: String = line.chars().skip((p.column - 1) as usize).collect();
        let text = from.split(" #").next()?.trim();
        let text = text.strip_prefix("- ").unwrap_or(text).trim();
        if text.is_empty() || text.ends_with(':') || text.chars().count() > 60 {
            return None;
        }
        Some(text.to_string())
    }

    /// An error about the value at `path` (found after deserialization), placed at that
    /// value, or at the nearest enclosing one the document has.
    pub fn error_at(&self, path: &[Seg], problem: Problem) -> ImportError {
        ImportError {
            position: Some(self.locate(path)),
            path: (!path.is_empty()).then(|| render(path)),
            problem,
        }
    }

    fn locate(&self, path: &[Seg]) -> Position {
        let Ok(Ok(root)) = with_document(self.rest, |de| Spanned::<Node>::deserialize(de)) else {
            return self.start;
        };
        let mut here = &root;
        for seg in path {
            let next = match (&here.value, seg) {
                (Node::Map(entries), Seg::Key(k)) => {
                    entries.iter().find(|(name, _)| name == k).map(|(_, v)| v)
                }
                (Node::Seq(items), Seg::Index(i)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => here = n,
                None => break,
            }
        }
        position(here.referenced, self.line_offset).unwrap_or(self.start)
    }
}

/// A document's shape with the place of every value: what [`Document::error_at`]
/// walks.
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(KeyText(k)) = map.next_key()? {
            entries.push((k, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key as text, whatever scalar it is; other keys match no path.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E>(self, s: &str) -> Result<KeyText, E> {
                Ok(KeyText(s.to_string()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<KeyText, E> {
                Ok(KeyText(b.to_string()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<KeyText, E> {
                Ok(KeyText(n.to_string()))
            }
            fn visit_unit<E>(self) -> Result<KeyText, E> {
                Ok(KeyText(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(KeyText(String::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeyText(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}
