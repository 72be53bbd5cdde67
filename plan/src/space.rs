//! The search space: knobs, each a list of choices, and every choice a list of
//! `--set`-style overrides. A candidate is one choice per knob; the grid is their
//! cartesian product, numbered with the last knob varying fastest.
//!
//! Declared by a search file (TOML) or by `--vary KEY.PATH=V1,V2,...` flags.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One dimension of the space.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    pub name: String,
    pub choices: Vec<Choice>,
    /// Choices are in ascending order of capacity and cost (replica counts): if
    /// one passes, every later one passes and costs at least as much. Searched
    /// by bisection instead of one by one.
    pub monotone: bool,
}

/// One setting of a knob.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub label: String,
    /// `KEY.PATH=VALUE` overrides, applied in order.
    pub sets: Vec<String>,
}

/// How the search runs, from the search file's `[plan]` table and the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Seeds every finalist must pass (the first is the scenario's or `--seed`).
    pub seeds: u32,
    /// Cheapest passing candidates re-run with all seeds.
    pub finalists: usize,
    /// Most simulations in all (seeds included); `None` for no limit.
    pub budget: Option<usize>,
    /// Candidates simulated together per round. Fixed rather than taken from the
    /// core count so the set of candidates simulated is the same on any machine.
    pub round: usize,
    /// Failing candidates listed after the passing ones.
    pub nearest_failures: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: 3,
            finalists: 3,
            budget: None,
            round: 4,
            nearest_failures: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    pub knobs: Vec<Knob>,
    pub settings: Settings,
}

/// One point of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Position in the grid (the stable sort key for ties).
    pub id: usize,
    /// Choice index per knob.
    pub choice: Vec<usize>,
}

impl Space {
    /// Candidates in the full grid (saturating: a huge grid is still searchable).
    pub fn grid_size(&self) -> usize {
        self.knobs
            .iter()
            .fold(1usize, |n, k| n.saturating_mul(k.choices.len()))
    }

    pub fn candidate(&self, id: usize) -> Candidate {
        let mut rest = id;
        let mut choice = vec![0; self.knobs.len()];
        for (i, k) in self.knobs.iter().enumerate().rev() {
            choice[i] = rest % k.choices.len();
            rest /= k.choices.len();
        }
        Candidate { id, choice }
    }

    pub fn id_of(&self, choice: &[usize]) -> usize {
        self.knobs
            .iter()
            .zip(choice)
            .fold(0, |id, (k, c)| id * k.choices.len() + c)
    }

    /// `pool=l4 replicas=12`.
    pub fn label(&self, c: &Candidate) -> String {
        self.knobs
            .iter()
            .zip(&c.choice)
            .map(|(k, &i)| format!("{}={}", k.name, k.choices[i].label))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn overrides(&self, c: &Candidate) -> Vec<String> {
        self.knobs
            .iter()
            .zip(&c.choice)
            .flat_map(|(k, &i)| k.choices[i].sets.iter().cloned())
            .collect()
    }

    /// The knob searched by bisection, if any.
    pub fn monotone_knob(&self) -> Option<usize> {
        self.knobs.iter().position(|k| k.monotone)
    }
}

// ------------------------------------------------------------ search file

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plan: RawSettings,
    #[serde(default)]
    knobs: Vec<RawKnob>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    seeds: Option<u32>,
    finalists: Option<usize>,
    budget: Option<usize>,
    round: Option<usize>,
    nearest_failures: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKnob {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    values: Option<Vec<toml::Value>>,
    #[serde(default)]
    options: Option<Vec<RawOption>>,
    #[serde(default)]
    monotone: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    #[serde(default)]
    label: Option<String>,
    /// Key path → TOML value; keys with dots are quoted in the file.
    set: BTreeMap<String, toml::Value>,
}

/// Parses a search file; errors name the file and the key, and say how to fix it.
pub fn parse_search_file(text: &str, file: &str) -> Result<Space, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        format!("{file}{at}: {msg}")
    })?;
    let mut knobs = Vec::new();
    for (i, k) in raw.knobs.into_iter().enumerate() {
        let at = format!("{file}: knobs[{i}] (`{}`)", k.name);
        let choices = match (k.key, k.values, k.options) {
            (Some(key), Some(values), None) => {
                if values.is_empty() {
                    return Err(format!("{at}: `values` is empty; list at least one value"));
                }
                values
                    .iter()
                    .map(|v| Choice {
                        label: value_label(v),
                        sets: vec![format!("{key}={}", value_text(v))],
                    })
                    .collect()
            }
            (None, None, Some(options)) => {
                if options.is_empty() {
                    return Err(format!("{at}: `options` is empty; list at least one option"));
                }
                let mut out = Vec::new();
                for (j, o) in options.into_iter().enumerate() {
                    if o.set.is_empty() {
                        return Err(format!(
                            "{at}: options[{j}].set is empty; give at least one `\"key.path\" = value`"
                        ));
                    }
                    let sets: Vec<String> = o
                        .set
                        .iter()
                        .map(|(k, v)| format!("{k}={}", value_text(v)))
                        .collect();
                    let label = o.label.unwrap_or_else(|| {
                        o.set.values().map(value_label).collect::<Vec<_>>().join(",")
                    });
                    out.push(Choice { label, sets });
                }
                out
            }
            _ => {
                return Err(format!(
                    "{at}: give either `key` with `values = [...]`, or `options = [{{ label = \"...\", set = {{ \"key.path\" = value }} }}, ...]`"
                ))
            }
        };
        knobs.push(Knob {
            name: k.name,
            choices,
            monotone: k.monotone,
        });
    }
    if knobs.is_empty() {
        return Err(format!(
            "{file}: no `[[knobs]]`; declare at least one knob to search"
        ));
    }
    if knobs.iter().filter(|k| k.monotone).count() > 1 {
        return Err(format!(
            "{file}: more than one knob has `monotone = true`; keep it on one (the replica count)"
        ));
    }
    let d = Settings::default();
    let p = raw.plan;
    let settings = Settings {
        seeds: p.seeds.unwrap_or(d.seeds),
        finalists: p.finalists.unwrap_or(d.finalists),
        budget: p.budget,
        round: p.round.unwrap_or(d.round),
        nearest_failures: p.nearest_failures.unwrap_or(d.nearest_failures),
    };
    check_settings(&settings, &format!("{file}: [plan]"))?;
    let space = Space { knobs, settings };
    check_names(&space)?;
    Ok(space)
}

pub fn check_settings(s: &Settings, at: &str) -> Result<(), String> {
    if s.seeds == 0 {
        return Err(format!("{at} seeds is 0; use 1 or more"));
    }
    if s.round == 0 {
        return Err(format!("{at} round is 0; use 1 or more"));
    }
    if s.finalists == 0 {
        return Err(format!("{at} finalists is 0; use 1 or more"));
    }
    Ok(())
}

fn check_names(space: &Space) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for k in &space.knobs {
        if !seen.insert(k.name.as_str()) {
            return Err(format!(
                "knob `{}` is declared twice; give each knob its own name",
                k.name
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------ --vary

/// Last key segments of knobs that `--vary` searches by bisection when their
/// values are ascending numbers: a fixed replica count and execution
/// instances. Not `minReplicas`: under an autoscaler a low floor can cost more
/// (the autoscaler overshoots), so cost is not monotone in it.
const MONOTONE_KEYS: [&str; 2] = ["replicas", "instances"];

/// Builds a space from `--vary KEY.PATH=V1,V2,...` flags (commas inside
/// brackets, braces or quotes do not split).
pub fn from_vary(flags: &[String], settings: Settings) -> Result<Space, String> {
    let mut knobs = Vec::new();
    for flag in flags {
        let (key, list) = flag.split_once('=').ok_or_else(|| {
            format!("--vary `{flag}` is not KEY.PATH=V1,V2,... (e.g. services.0.autoscaler.fixed.replicas=4,8,12)")
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("--vary `{flag}` has an empty key path"));
        }
        let raw: Vec<&str> = split_top_level(list)
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if raw.is_empty() {
            return Err(format!("--vary `{flag}` lists no values"));
        }
        let numbers: Option<Vec<f64>> = raw.iter().map(|v| v.parse::<f64>().ok()).collect();
        let last = key.rsplit('.').next().unwrap_or(key);
        let ascending = numbers
            .as_ref()
            .is_some_and(|n| n.windows(2).all(|w| w[0] < w[1]));
        let monotone =
            ascending && MONOTONE_KEYS.contains(&last) && !knobs.iter().any(|k: &Knob| k.monotone);
        knobs.push(Knob {
            name: key.to_string(),
            choices: raw
                .iter()
                .map(|v| Choice {
                    label: v.trim_matches('"').to_string(),
                    sets: vec![format!("{key}={v}")],
                })
                .collect(),
            monotone,
        });
    }
    if knobs.is_empty() {
        return Err(
            "give a search space: --search FILE or at least one --vary KEY.PATH=V1,V2,...".into(),
        );
    }
    let space = Space { knobs, settings };
    check_names(&space)?;
    Ok(space)
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, ch) in s.char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A TOML value as override text (`"l4"`, `12`, `{ strategy = "mig", ... }`).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => toml_edit::Value::from(s.as_str())
            .to_string()
            .trim()
            .to_string(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => {
            let s = f.to_string();
            if s.contains(['.', 'e', 'E', 'n', 'i']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(value_text).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::Table(t) => {
            let inner: Vec<String> = t
                .iter()
                .map(|(k, v)| {
                    let key = toml_edit::Key::new(k.as_str()).to_string();
                    format!("{} = {}", key.trim(), value_text(v))
                })
                .collect();
            if inner.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

/// Short label of a value for tables: strings bare, the rest as TOML.
fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => value_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_ids_round_trip() {
        let space = from_vary(
            &["a=1,2,3".into(), "b=x,y".into(), "c=[1,2],{ k = 1 }".into()],
            Settings::default(),
        )
        .unwrap();
        assert_eq!(space.grid_size(), 12);
        assert_eq!(space.knobs[2].choices.len(), 2);
        for id in 0..12 {
            let c = space.candidate(id);
            assert_eq!(space.id_of(&c.choice), id);
        }
        assert_eq!(space.candidate(1).choice, vec![0, 0, 1]);
    }

    #[test]
    fn vary_bisects_ascending_replica_counts_only() {
        let s = from_vary(
            &[
                "services.0.autoscaler.fixed.replicas=2,4,8".into(),
                "services.0.maxReplicas=8,4".into(),
            ],
            Settings::default(),
        )
        .unwrap();
        assert!(s.knobs[0].monotone);
        assert!(!s.knobs[1].monotone);
    }

    #[test]
    fn search_file_values_and_options() {
        let text = r#"
[plan]
seeds = 2
budget = 40

[[knobs]]
name = "pool"
options = [
  { label = "mig", set = { "services.0.nodePool" = "a100", "node_pools.a100.sharing" = { strategy = "mig", layout = ["3g.20gb", "3g.20gb"] } } },
]

[[knobs]]
name = "replicas"
key = "services.0.autoscaler.fixed.replicas"
values = [2, 4]
monotone = true
"#;
        let s = parse_search_file(text, "s.toml").unwrap();
        assert_eq!(s.settings.seeds, 2);
        assert_eq!(s.settings.budget, Some(40));
        assert_eq!(
            s.knobs[0].choices[0].sets,
            vec![
                r#"node_pools.a100.sharing={ layout = ["3g.20gb", "3g.20gb"], strategy = "mig" }"#,
                r#"services.0.nodePool="a100""#,
            ]
        );
        assert_eq!(
            s.knobs[1].choices[1].sets,
            vec!["services.0.autoscaler.fixed.replicas=4"]
        );
        assert_eq!(s.monotone_knob(), Some(1));
    }

    #[test]
    fn search_file_errors_name_the_knob_and_the_fix() {
        let e = parse_search_file("[[knobs]]\nname = \"x\"\nkey = \"a\"\n", "s.toml").unwrap_err();
        assert!(e.contains("knobs[0] (`x`)") && e.contains("values"), "{e}");
        let e = parse_search_file("[[knobs]]\nname = \"x\"\nvalus = 1\n", "s.toml").unwrap_err();
        assert!(e.contains("valus"), "{e}");
        let e = parse_search_file(
            "[plan]\nseeds = 0\n[[knobs]]\nname = \"x\"\nkey = \"a\"\nvalues = [1]\n",
            "s.toml",
        )
        .unwrap_err();
        assert!(e.contains("seeds"), "{e}");
        assert!(from_vary(&["novalues".into()], Settings::default()).is_err());
    }
}
