//! The Prometheus a local run scrapes and queries.
//!
//! Debian 12 ships 2.42, which has no `kubernetes_sd_configs` (Debian strips it)
//! and no `scrape_config_files` (2.43): so one generated file, with the pods as
//! `file_sd_configs` (rewritten atomically as pods come and go; Prometheus
//! watches the file, so no reload) and the gateway and controller as
//! `static_configs`. Only the HTTP API is used (2.42's UI is unreliable there).
//! `--prometheus URL` mode uses a running server and starts nothing.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::process::Child;

use crate::http::{encode_query_value, HttpClient};
use crate::process::{self, Group, Spawner};

/// How long `start` waits for `/-/ready`. 2.42 is ready in well under a second
/// on an empty TSDB; the slack is for a loaded 2-core machine.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "the `prometheus` binary was not found {where_}; the local level needs it: \
         install it with `apt-get install prometheus`, or pass --prometheus URL to use one that is already running"
    )]
    NotFound { where_: String },
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("prometheus exited during start-up ({exit}); its log ({log}) ends:\n{tail}")]
    Exited {
        exit: String,
        log: PathBuf,
        tail: String,
    },
    #[error("prometheus at {url} was not ready within {waited:?}: {last}")]
    NotReady {
        url: String,
        waited: Duration,
        last: String,
    },
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Errors of an instant query, as KEDA's `prometheus` scaler would raise them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("prometheus query {query:?} failed: {message}")]
    Prometheus { query: String, message: String },
    #[error("prometheus query {query:?} could not be sent: {message}")]
    Transport { query: String, message: String },
    #[error("prometheus query {query:?} returned multiple elements ({count} series); the query must return one")]
    MultipleElements { query: String, count: usize },
    #[error("prometheus query {query:?} returned no elements, and null values are not ignored")]
    Empty { query: String },
    #[error("prometheus query {query:?} returned {value}, and null values are not ignored")]
    NotFinite { query: String, value: f64 },
    #[error("prometheus query {query:?}: unexpected answer: {message}")]
    Malformed { query: String, message: String },
}

/// Finds the `prometheus` binary: `explicit` if given, else on PATH.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, PrometheusError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(PrometheusError::NotFound {
                where_: format!("at {}", p.display()),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| is_executable(p))
        .ok_or_else(|| PrometheusError::NotFound {
            where_: "on PATH".into(),
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// One static scrape job (the gateway, the controller).
#[derive(Clone, Debug)]
pub struct StaticJob {
    pub job: String,
    /// `host:port` targets.
    pub targets: Vec<String>,
}

/// What the generated configuration says.
#[derive(Clone, Debug)]
pub struct PrometheusConfig {
    /// The scenario's scrape interval (`global.scrape_interval`).
    pub scrape_interval: Duration,
    /// Static jobs: the gateway and the controller.
    pub static_jobs: Vec<StaticJob>,
    /// The job name of the pods found through `file_sd_configs`.
    pub pods_job: String,
    /// The run folder: the config, the targets file, the TSDB and the log go here.
    pub run_dir: PathBuf,
}

/// One pod as a scrape target.
#[derive(Clone, Debug)]
pub struct PodTarget {
    /// `host:port`.
    pub address: String,
    /// Labels Prometheus attaches to every series of this target, named as
    /// Kubernetes service discovery names them after relabelling (`pod`,
    /// `namespace`, `service`, ...).
    pub labels: Vec<(String, String)>,
}

#[derive(Serialize)]
struct FileSdGroup<'a> {
    targets: [&'a str; 1],
    labels: std::collections::BTreeMap<&'a str, &'a str>,
}

/// The configuration file's text (YAML; JSON-quoted strings are valid YAML).
pub fn render_config(config: &PrometheusConfig, sd_file: &Path) -> String {
    let interval = prom_duration(config.scrape_interval);
    let q = |s: &str| serde_json::to_string(s).expect("string");
    let mut y = String::new();
    let _ = writeln!(y, "# Generated by lab for one local run.");
    let _ = writeln!(y, "global:");
    let _ = writeln!(y, "  scrape_interval: {interval}");
    // 2.42 rejects scrape_timeout > scrape_interval; its default is 10 s.
    let _ = writeln!(y, "  scrape_timeout: {interval}");
    let _ = writeln!(y, "  evaluation_interval: {interval}");
    let _ = writeln!(y, "scrape_configs:");
    let _ = writeln!(y, "  - job_name: {}", q(&config.pods_job));
    let _ = writeln!(y, "    file_sd_configs:");
    let _ = writeln!(y, "      - files: [{}]", q(&sd_file.to_string_lossy()));
    // The file is watched (inotify); the refresh is only a fallback.
    let _ = writeln!(y, "        refresh_interval: 5s");
    for job in &config.static_jobs {
        let _ = writeln!(y, "  - job_name: {}", q(&job.job));
        let _ = writeln!(y, "    static_configs:");
        let targets: Vec<String> = job.targets.iter().map(|t| q(t)).collect();
        let _ = writeln!(y, "      - targets: [{}]", targets.join(", "));
    }
    y
}

/// Prometheus' duration syntax, to the millisecond (`250ms`, `1s`, `1s500ms`).
fn prom_duration(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    match (ms / 1000, ms % 1000) {
        (0, m) => format!("{m}ms"),
        (s, 0) => format!("{s}s"),
        (s, m) => format!("{s}s{m}ms"),
    }
}

/// A Prometheus this run started, or one it was pointed at.
pub struct Prometheus {
    url: String,
    sd_file: Option<PathBuf>,
    child: Option<Child>,
    // Declared after `child`: dropped after it, so PDEATHSIG's thread outlives it.
    _spawner: Option<Spawner>,
    http: HttpClient,
    started_in: Option<Duration>,
}

impl Prometheus {
    /// Starts `binary` on a free loopback port with a generated config and
    /// waits for `/-/ready`. Call inside a tokio runtime.
    pub async fn start(
        binary: &Path,
        config: &PrometheusConfig,
    ) -> Result<Prometheus, PrometheusError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PrometheusError::Io { path, source }
        };
        let dir = config.run_dir.join("prometheus");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let sd_file = dir.join("pods.json");
        write_atomically(&sd_file, b"[]\n").map_err(io_err(&sd_file))?;
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, render_config(config, &sd_file))
            .map_err(io_err(&config_file))?;
        let log = dir.join("prometheus.log");
        let spawner = Spawner::new("prometheus").map_err(|source| PrometheusError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;

        // The port is free when we look; if something takes it first, try another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = process::free_port().map_err(|source| PrometheusError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
            let log_file = std::fs::File::create(&log).map_err(io_err(&log))?;
            let mut cmd = StdCommand::new(binary);
            cmd.arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file);
            let began = Instant::now();
            let child =
                spawner
                    .spawn(cmd, Group::New)
                    .await
                    .map_err(|source| PrometheusError::Spawn {
                        binary: binary.to_path_buf(),
                        source,
                    })?;
            let mut p = Prometheus {
                url: format!("http://127.0.0.1:{port}"),
                sd_file: Some(sd_file.clone()),
                child: Some(child),
                _spawner: None,
                http: HttpClient::default(),
                started_in: None,
            };
            match p.wait_ready(READY_DEADLINE).await {
                Ok(()) => {
                    p.started_in = Some(began.elapsed());
                    p._spawner = Some(spawner);
                    return Ok(p);
                }
                Err(PrometheusError::Exited { tail, .. })
                    if attempt < 3 && tail.contains("address already in use") =>
                {
                    continue
                }
                Err(PrometheusError::Exited { exit, tail, .. }) => {
                    return Err(PrometheusError::Exited { exit, log, tail })
                }
                Err(e) => {
                    p.stop().await;
                    return Err(e);
                }
            }
        }
    }

    /// One that is already running (`--prometheus URL`): nothing is started or
    /// stopped. `sd_file`, if given, is where pod targets are written for that
    /// server's own `file_sd_configs` to read.
    pub fn external(url: impl Into<String>, sd_file: Option<PathBuf>) -> Prometheus {
        Prometheus {
            url: url.into().trim_end_matches('/').to_string(),
            sd_file,
            child: None,
            _spawner: None,
            http: HttpClient::default(),
            started_in: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Spawn to `/-/ready`, for a server this run started.
    pub fn started_in(&self) -> Option<Duration> {
        self.started_in
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The file_sd targets file, if this run writes one.
    pub fn sd_file(&self) -> Option<&Path> {
        self.sd_file.as_deref()
    }

    /// Polls `/-/ready` every 50 ms until 200 or `deadline` (Prometheus has no
    /// readiness notification); a started server that exits fails at once.
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<(), PrometheusError> {
        let url = format!("{}/-/ready", self.url);
        let began = Instant::now();
        let mut last;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = self
                        .sd_file
                        .as_ref()
                        .map(|f| f.with_file_name("prometheus.log"))
                        .unwrap_or_default();
                    return Err(PrometheusError::Exited {
                        exit: status.to_string(),
                        tail: log_tail(&log),
                        log,
                    });
                }
            }
            match self.http.get(&url, Duration::from_secs(2)).await {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => {
                    last = format!("HTTP {code}: {}", String::from_utf8_lossy(&body).trim())
                }
                Err(e) => last = e,
            }
            if began.elapsed() >= deadline {
                return Err(PrometheusError::NotReady {
                    url,
                    waited: deadline,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replaces the pod targets (write to a temporary file, then rename, so
    /// Prometheus never reads half a file).
    pub fn set_pod_targets(&self, targets: &[PodTarget]) -> Result<(), PrometheusError> {
        let Some(path) = &self.sd_file else {
            return Ok(());
        };
        let groups: Vec<FileSdGroup> = targets
            .iter()
            .map(|t| FileSdGroup {
                targets: [t.address.as_str()],
                labels: t
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            })
            .collect();
        let mut text = serde_json::to_vec_pretty(&groups).expect("targets serialize");
        text.push(b'\n');
        write_atomically(path, &text).map_err(|source| PrometheusError::Io {
            path: path.clone(),
            source,
        })
    }

    /// A client for this server's query API.
    pub fn client(&self) -> PromClient {
        PromClient {
            base: self.url.clone(),
            http: self.http.clone(),
        }
    }

    /// SIGTERM, up to 10 s for a clean TSDB close, then SIGKILL. Nothing for
    /// an external server.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = process::signal(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // An unstopped server (an error path, a panic): SIGKILL now.
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// One series of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// PromQL instant queries (`/api/v1/query`).
#[derive(Clone)]
pub struct PromClient {
    base: String,
    http: HttpClient,
}

impl PromClient {
    /// The query's value as KEDA's `prometheus` trigger reads it with its
    /// default `ignoreNullValues: true`: no series is 0, NaN or ±Inf is 0, more
    /// than one series is an error.
    pub async fn query_value(&self, query: &str) -> Result<f64, QueryError> {
        self.query_value_with(query, true, None).await
    }

    /// As `query_value`, with KEDA's `ignoreNullValues` given, evaluated at
    /// `at` (Prometheus' own now when `None`; KEDA sends its now).
    pub async fn query_value_with(
        &self,
        query: &str,
        ignore_null_values: bool,
        at: Option<SystemTime>,
    ) -> Result<f64, QueryError> {
        let samples = self.query_at(query, at).await?;
        let value = match samples.as_slice() {
            [] if ignore_null_values => return Ok(0.0),
            [] => {
                return Err(QueryError::Empty {
                    query: query.into(),
                })
            }
            [one] => one.value,
            many => {
                return Err(QueryError::MultipleElements {
                    query: query.into(),
                    count: many.len(),
                })
            }
        };
        if value.is_finite() {
            Ok(value)
        } else if ignore_null_values {
            Ok(0.0)
        } else {
            Err(QueryError::NotFinite {
                query: query.into(),
                value,
            })
        }
    }

    /// GETs `path` (e.g. `/api/v1/query_range?...`) from this server: the
    /// status and body as Prometheus sent them, for callers that read other
    /// answers than an instant vector (`lab import --prometheus`).
    pub async fn get_raw(&self, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        let (code, body) = self
            .http
            .get(&format!("{}{path}", self.base), timeout)
            .await?;
        Ok((code, body.to_vec()))
    }

    /// Every series of an instant query evaluated now. A scalar result is one
    /// series without labels.
    pub async fn query(&self, query: &str) -> Result<Vec<Sample>, QueryError> {
        self.query_at(query, None).await
    }

    /// Every series of an instant query evaluated at `at` (to the
    /// millisecond: an evaluation time offset from the scrapes avoids the
    /// window-edge samples 2.x and 3.x count differently).
    pub async fn query_at(
        &self,
        query: &str,
        at: Option<SystemTime>,
    ) -> Result<Vec<Sample>, QueryError> {
        let mut url = format!(
            "{}/api/v1/query?query={}",
            self.base,
            encode_query_value(query)
        );
        if let Some(t) = at {
            let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
            let _ = write!(url, "&time={}.{:03}", ms / 1000, ms % 1000);
        }
        let (code, body) = self
            .http
            .get(&url, QUERY_TIMEOUT)
            .await
            .map_err(|message| QueryError::Transport {
                query: query.into(),
                message,
            })?;
        parse_response(query, code, &body)
    }
}

/// An instant query's answer (`/api/v1/query`), read as Prometheus writes it:
/// the series and their values, or the error it gave.
pub fn parse_response(query: &str, code: u16, body: &[u8]) -> Result<Vec<Sample>, QueryError> {
    let malformed = |message: String| QueryError::Malformed {
        query: query.into(),
        message,
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        malformed(format!(
            "HTTP {code}, not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    if v["status"] != "success" {
        let message = match (v["errorType"].as_str(), v["error"].as_str()) {
            (Some(t), Some(e)) => format!("{t}: {e}"),
            (None, Some(e)) => e.to_string(),
            _ => format!("HTTP {code}: {v}"),
        };
        return Err(QueryError::Prometheus {
            query: query.into(),
            message,
        });
    }
    let data = &v["data"];
    let number = |pair: &Value| -> Result<f64, QueryError> {
        let s = pair[1]
            .as_str()
            .ok_or_else(|| malformed(format!("value is not [time, \"number\"]: {pair}")))?;
        // Go's strconv.FormatFloat spells the specials NaN, +Inf, -Inf.
        match s {
            "NaN" => Ok(f64::NAN),
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            _ => s
                .parse()
                .map_err(|e| malformed(format!("value {s:?}: {e}"))),
        }
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .ok_or_else(|| malformed("vector result is not a list".into()))?
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Sample {
                    labels,
                    value: number(&s["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: Vec::new(),
            value: number(&data["result"])?,
        }]),
        other => Err(malformed(format!(
            "result type {other:?}; an instant query for a value must return a vector or a scalar"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_prometheus_syntax() {
        assert_eq!(prom_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(prom_duration(Duration::from_secs(15)), "15s");
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1s500ms");
    }

    #[test]
    fn scalar_and_specials_parse() {
        let body = br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#;
        let s = parse_response("0/0", 200, body).unwrap();
        assert!(s[0].value.is_nan());
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1.5,"+Inf"]}]}}"#;
        let s = parse_response("q", 200, body).unwrap();
        assert_eq!(s[0].value, f64::INFINITY);
        assert_eq!(s[0].labels, vec![("a".to_string(), "1".to_string())]);
    }

    #[test]
    fn prometheus_errors_keep_its_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let e = parse_response("rate(", 400, body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "prometheus query \"rate(\" failed: bad_data: parse error"
        );
    }
}
