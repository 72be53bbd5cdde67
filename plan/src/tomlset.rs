//! Writing the winner: the original scenario text with the winning overrides
//! applied in place, so comments and layout survive.
//!
//! `lab_scenario` applies overrides the same way but keeps that code private;
//! this is a small equivalent for text output, checked in the tests by parsing
//! the written file back and comparing with the candidate's scenario.

use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Applies `KEY.PATH=VALUE` overrides to `text`.
pub fn apply_all(text: &str, overrides: &[String]) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    for spec in overrides {
        apply(&mut doc, spec)?;
    }
    Ok(doc.to_string())
}

fn apply(doc: &mut DocumentMut, spec: &str) -> Result<(), String> {
    let (path, raw) = spec
        .split_once('=')
        .ok_or_else(|| format!("`{spec}` is not KEY.PATH=VALUE"))?;
    let keys = toml_edit::Key::parse(path.trim()).map_err(|e| format!("`{path}`: {e}"))?;
    let segs: Vec<String> = keys.iter().map(|k| k.get().to_string()).collect();
    if segs.is_empty() {
        return Err(format!("`{spec}` has an empty key path"));
    }
    let value = format!("v = {}", raw.trim())
        .parse::<DocumentMut>()
        .ok()
        .and_then(|d| d.get("v").and_then(|i| i.as_value()).cloned())
        .unwrap_or_else(|| Value::from(raw.trim()));
    set_table(doc.as_table_mut(), &segs, value).map_err(|e| format!("`{spec}`: {e}"))
}

fn set_table(t: &mut dyn TableLike, path: &[String], value: Value) -> Result<(), String> {
    if path.len() == 1 {
        // Keep the existing value's comments when replacing it.
        match t.get_mut(&path[0]) {
            Some(Item::Value(old)) => {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
            _ => {
                t.insert(&path[0], Item::Value(value));
            }
        }
        return Ok(());
    }
    if !t.contains_key(&path[0]) {
        t.insert(&path[0], Item::Table(toml_edit::Table::new()));
    }
    set_item(t.get_mut(&path[0]).expect("present"), &path[1..], value)
}

fn set_item(item: &mut Item, path: &[String], value: Value) -> Result<(), String> {
    let seg = &path[0];
    match item {
        Item::ArrayOfTables(arr) => {
            let idx = find(seg, arr.len(), |i| {
                arr.get(i)
                    .and_then(|t| t.get("name"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })?;
            if path.len() == 1 {
                return Err(format!("`{seg}` is a table"));
            }
            set_table(arr.get_mut(idx).expect("checked"), &path[1..], value)
        }
        Item::Value(Value::Array(arr)) => {
            let idx = find(seg, arr.len(), |i| {
                arr.get(i)
                    .and_then(|v| v.as_inline_table())
                    .and_then(|t| t.get("name"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })?;
            let slot = arr.get_mut(idx).expect("checked");
            if path.len() == 1 {
                *slot = value;
                return Ok(());
            }
            match slot.as_inline_table_mut() {
                Some(t) => set_table(t, &path[1..], value),
                None => Err(format!("`{seg}` is a value, not a table")),
            }
        }
        other => match other.as_table_like_mut() {
            Some(t) => set_table(t, path, value),
            None => Err(format!("cannot set `{seg}` inside a value")),
        },
    }
}

fn find(seg: &str, len: usize, name_at: impl Fn(usize) -> Option<String>) -> Result<usize, String> {
    if let Ok(i) = seg.parse::<usize>() {
        if i < len {
            return Ok(i);
        }
    }
    (0..len)
        .find(|&i| name_at(i).as_deref() == Some(seg))
        .ok_or_else(|| {
            format!(
                "{len} entries and none is `{seg}` (use an index from 0 to {} or an entry's `name`)",
                len.saturating_sub(1)
            )
        })
}
