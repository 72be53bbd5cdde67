//! `--set KEY.PATH=VALUE`: change any scenario value by its key path before
//! parsing, the way CI sweeps one file.
//!
//! Path segments are TOML keys (quote keys that contain dots:
//! `services.0.resources."nvidia.com/gpu"=2`); an array element is chosen by
//! index or by its `name` (`services.resnet.minReplicas=3`), also in Helm's
//! brackets (`services[0].maxReplicas=4`, `services[resnet].minReplicas=2`). The
//! value is read as a TOML value (`3`, `"x"`, `[1, 2]`,
//! `{ strategy = "mig", layout = [...] }`), and as a plain string when it is not one.

use crate::validate::{KeyPath, Seg};
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Applies one override and returns the key path it set, array entries resolved
/// to their index (`services[0].maxReplicas`); the error says what is wrong.
pub fn apply(doc: &mut DocumentMut, spec: &str) -> Result<KeyPath, String> {
    let (path, raw) = spec
        .split_once('=')
        .ok_or_else(|| format!("`{spec}` is not KEY.PATH=VALUE"))?;
    let dotted = brackets_to_dots(path.trim())?;
    let keys = toml_edit::Key::parse(&dotted)
        .map_err(|e| format!("`{path}` is not a key path: {}", e.to_string().trim()))?;
    let segments: Vec<String> = keys.iter().map(|k| k.get().to_string()).collect();
    if segments.is_empty() {
        return Err(format!("`{spec}` has an empty key path"));
    }
    let mut walked = KeyPath::new();
    set_in_table(
        doc.as_table_mut(),
        &segments,
        parse_value(raw.trim()),
        &mut walked,
    )?;
    Ok(walked)
}

/// Helm's `services[0].maxReplicas` (or `services[resnet]`) as TOML's dotted
/// `services.0.maxReplicas`; quoted keys pass through untouched.
fn brackets_to_dots(path: &str) -> Result<String, String> {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                let mut escaped = false;
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c && !escaped {
                        break;
                    }
                    escaped = c == '"' && q == '\\' && !escaped;
                }
            }
            '[' => {
                let inner: String = chars.by_ref().take_while(|&q| q != ']').collect();
                let inner = inner.trim();
                if inner.is_empty() {
                    return Err(format!("`{path}` has an empty `[]`"));
                }
                if !out.is_empty() && !out.ends_with('.') {
                    out.push('.');
                }
                out.push_str(inner);
                if matches!(chars.peek(), Some(n) if *n != '.' && *n != '[') {
                    out.push('.');
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Applies `KEY.PATH=VALUE` overrides to scenario text and returns the edited
/// text, comments and layout kept (how `lab plan` writes its winner).
pub fn apply_all(text: &str, overrides: &[String]) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().to_string())?;
    for spec in overrides {
        apply(&mut doc, spec).map_err(|e| format!("`{spec}`: {e}"))?;
    }
    Ok(doc.to_string())
}

fn parse_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<DocumentMut>()
        .ok()
        .and_then(|d| d.get("v").and_then(|i| i.as_value()).cloned())
        .unwrap_or_else(|| Value::from(raw))
}

fn where_(walked: &KeyPath) -> String {
    if walked.0.is_empty() {
        "the top level".to_string()
    } else {
        format!("`{walked}`")
    }
}

fn set_in_table(
    table: &mut dyn TableLike,
    path: &[String],
    value: Value,
    walked: &mut KeyPath,
) -> Result<(), String> {
    let seg = &path[0];
    walked.0.push(Seg::Key(seg.clone()));
    if path.len() == 1 {
        // Keep the replaced value's comments: the text may be written back out.
        match table.get_mut(seg) {
            Some(Item::Value(old)) => {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
            _ => {
                table.insert(seg, Item::Value(value));
            }
        }
        return Ok(());
    }
    if !table.contains_key(seg) {
        table.insert(seg, Item::Table(toml_edit::Table::new()));
    }
    let child = table.get_mut(seg).expect("present");
    set_in_item(child, &path[1..], value, walked)
}

fn set_in_item(
    item: &mut Item,
    path: &[String],
    value: Value,
    walked: &mut KeyPath,
) -> Result<(), String> {
    let seg = &path[0];
    match item {
        Item::ArrayOfTables(arr) => {
            let len = arr.len();
            let idx = index_of(seg, len, |i| {
                name_of(arr.get(i).and_then(|t| t.get("name")))
            })
            .ok_or_else(|| no_entry(walked, seg, len))?;
            walked.0.push(Seg::Index(idx));
            let t = arr.get_mut(idx).expect("index checked");
            if path.len() == 1 {
                return Err(format!(
                    "{} is a table: set one of its keys",
                    where_(walked)
                ));
            }
            set_in_table(t, &path[1..], value, walked)
        }
        Item::Value(Value::Array(arr)) => {
            let len = arr.len();
            let idx = index_of(seg, len, |i| {
                arr.get(i)
                    .and_then(|v| v.as_inline_table())
                    .and_then(|t| t.get("name"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .ok_or_else(|| no_entry(walked, seg, len))?;
            walked.0.push(Seg::Index(idx));
            let slot = arr.get_mut(idx).expect("index checked");
            if path.len() == 1 {
                *slot = value;
                return Ok(());
            }
            match slot.as_inline_table_mut() {
                Some(t) => set_in_table(t, &path[1..], value, walked),
                None => Err(format!("{} is a value, not a table", where_(walked))),
            }
        }
        other => match other.as_table_like_mut() {
            Some(t) => set_in_table(t, path, value, walked),
            None => Err(format!(
                "{} is a value, not a table: cannot set `{seg}` in it",
                where_(walked)
            )),
        },
    }
}

fn name_of(item: Option<&Item>) -> Option<String> {
    item.and_then(|i| i.as_str()).map(str::to_string)
}

fn no_entry(walked: &KeyPath, seg: &str, len: usize) -> String {
    format!(
        "{} has {len} entries and none is `{seg}` (use an index from 0 to {} or an entry's `name`)",
        where_(walked),
        len.saturating_sub(1)
    )
}

fn index_of(seg: &str, len: usize, name_at: impl Fn(usize) -> Option<String>) -> Option<usize> {
    if let Ok(i) = seg.parse::<usize>() {
        return (i < len).then_some(i);
    }
    (0..len).find(|&i| name_at(i).as_deref() == Some(seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"name = "x"
[[services]]
name = "resnet"
minReplicas = 1
resources = { cpu = "2" }
[[services]]
name = "bert"
"#;

    fn set(spec: &str) -> Result<String, String> {
        let mut d: DocumentMut = DOC.parse().unwrap();
        apply(&mut d, spec).map(|_| d.to_string())
    }

    #[test]
    fn sets_by_index_by_name_and_quoted_keys() {
        assert!(set("services.0.minReplicas=3")
            .unwrap()
            .contains("minReplicas = 3"));
        let by_name = set("services.bert.maxReplicas=9").unwrap();
        assert!(by_name.contains("maxReplicas = 9"), "{by_name}");
        let quoted = set(r#"services.resnet.resources."nvidia.com/gpu"=1"#).unwrap();
        assert!(quoted.contains(r#""nvidia.com/gpu" = 1"#), "{quoted}");
        let created = set("run.seed=7").unwrap();
        assert!(created.contains("seed = 7"), "{created}");
        assert!(set("name=plain words")
            .unwrap()
            .contains(r#"name = "plain words""#));
    }

    #[test]
    fn helm_brackets_read_as_dotted_keys() {
        assert_eq!(
            brackets_to_dots("services[0].maxReplicas").unwrap(),
            "services.0.maxReplicas"
        );
        assert_eq!(
            brackets_to_dots(r#"services[resnet].resources."nvidia.com/gpu""#).unwrap(),
            r#"services.resnet.resources."nvidia.com/gpu""#
        );
        assert_eq!(brackets_to_dots(r#"a."b[0]".c"#).unwrap(), r#"a."b[0]".c"#);
        let mut d: DocumentMut = DOC.parse().unwrap();
        let at = apply(&mut d, "services[bert].minReplicas=2").unwrap();
        assert_eq!(at.to_string(), "services[1].minReplicas");
        assert!(set("services[1].minReplicas=4")
            .unwrap()
            .contains("minReplicas = 4"));
        assert!(set("services[].x=1").unwrap_err().contains("empty `[]`"));
    }

    #[test]
    fn bad_paths_say_why() {
        assert!(set("services.7.minReplicas=1")
            .unwrap_err()
            .contains("none is `7`"));
        assert!(set("name.x=1").unwrap_err().contains("is a value"));
        assert!(set("no-equals-sign")
            .unwrap_err()
            .contains("KEY.PATH=VALUE"));
    }
}
