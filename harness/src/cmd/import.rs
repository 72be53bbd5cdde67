//! `lab import MANIFEST.yaml` (or `-f FILE`, `-f -` for standard input): an HPA
//! (autoscaling/v2), KEDA ScaledObject or KServe InferenceService manifest to a
//! scenario's `[services.autoscaler]` table. `lab import --prometheus URL
//! --query PROMQL --start T --end T`: a cluster's recorded request rate to
//! `[[traffic]]` sections whose phase replays it (`kind = "series"`).

use anyhow::Context;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = crate::exit::IMPORT_HELP)]
pub struct Args {
    /// The manifest: a HorizontalPodAutoscaler, ScaledObject or InferenceService (YAML,
    /// several documents allowed; the first autoscaling object is used). `-` reads
    /// standard input.
    #[arg(
        required_unless_present_any = ["filename", "prometheus"],
        conflicts_with_all = ["filename", "prometheus"]
    )]
    pub manifest: Option<PathBuf>,
    /// The manifest, as kubectl spells it: `kubectl get hpa web -o yaml | lab import -f -`.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with = "prometheus"
    )]
    pub filename: Option<PathBuf>,
    /// Write the TOML here instead of standard output. With --prometheus, a
    /// series of more than 100 samples goes to a CSV beside it (FILE's name
    /// with .csv, or .SERVICE.csv for several services) that the TOML names.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read a request rate from this Prometheus (http://HOST:PORT) with a range
    /// query and write it as [[traffic]] sections that replay it.
    #[arg(long, value_name = "URL", requires_all = ["query", "start", "end"])]
    pub prometheus: Option<String>,
    /// PromQL of a request rate in req/s, one series per service, e.g.
    /// 'sum by (model_name) (rate(kserve_inference_request_total[5m]))': each
    /// series' label value names its service. A single series may be named
    /// with --service.
    #[arg(long, value_name = "PROMQL", requires = "prometheus")]
    pub query: Option<String>,
    /// Start of the range: now, a duration before now (-7d, -90m, now-1h), an
    /// RFC 3339 instant (2026-11-24T09:00:00Z) or Unix seconds.
    #[arg(
        long,
        value_name = "T",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub start: Option<String>,
    /// End of the range, in the same forms as --start.
    #[arg(
        long,
        value_name = "T",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub end: Option<String>,
    /// Resolution of the range query (Prometheus' `step`): 30s, 1m, 5m.
    #[arg(long, value_name = "D", default_value = "60s", requires = "prometheus")]
    pub step: String,
    /// The service a single series' traffic is for.
    #[arg(long, value_name = "NAME", requires = "prometheus")]
    pub service: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.prometheus.is_some() {
        return run_prometheus(args);
    }
    let Some(path) = args.filename.or(args.manifest) else {
        return Err(crate::exit::bad_input(
            "give a manifest: lab import FILE (or -f -)",
        ));
    };
    let (name, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| crate::exit::bad_input(format!("cannot read standard input: {e}")))?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::exit::bad_input(format!("cannot read {}: {e}", path.display())))?;
        (path.display().to_string(), text)
    };
    let imported =
        lab_import::import_yaml(&text).map_err(|e| crate::exit::bad_input(e.in_file(&name)))?;
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    for (key, msg) in &imported.problems {
        eprintln!("warning: autoscaler.{key}: {msg}");
    }
    let toml = imported.to_toml();
    match &args.output {
        Some(path) => {
            std::fs::write(path, toml).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{toml}"),
    }
    Ok(crate::exit::PASS)
}

/// How long one range query may take: a week at 1 m is 10,080 steps a series.
const RANGE_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn run_prometheus(args: Args) -> anyhow::Result<i32> {
    use lab_import::prometheus as prom;
    let bad = |m: String| crate::exit::bad_input(m);
    let (Some(url), Some(query), Some(start), Some(end)) =
        (&args.prometheus, &args.query, &args.start, &args.end)
    else {
        return Err(bad("--prometheus needs --query, --start and --end".into()));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .floor();
    let start = prom::parse_time(start, now).map_err(|e| bad(format!("--start: {e}")))?;
    let end = prom::parse_time(end, now).map_err(|e| bad(format!("--end: {e}")))?;
    let step = prom::parse_duration_secs(&args.step).map_err(|e| bad(format!("--step: {e}")))?;
    if end <= start {
        return Err(bad(format!(
            "--end ({}) is not after --start ({})",
            prom::rfc3339(end),
            prom::rfc3339(start)
        )));
    }
    if !url.starts_with("http://") {
        return Err(bad(format!(
            "--prometheus {url}: give the server's http:// URL, e.g. http://127.0.0.1:9090"
        )));
    }
    let req = prom::Request {
        url: url.trim_end_matches('/').to_string(),
        query: query.clone(),
        start,
        end,
        step,
        service: args.service.clone(),
    };
    let client = lab_local::Prometheus::external(req.url.clone(), None).client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP client's runtime")?;
    // One grid of steps, cut into queries Prometheus accepts.
    let fetch = |q: &str| -> anyhow::Result<Result<Vec<prom::Series>, prom::PromError>> {
        let mut parts = Vec::new();
        for chunk in prom::chunks(start, end, step) {
            let path = prom::range_path(q, &chunk, step);
            let (code, body) = runtime
                .block_on(client.get_raw(&path, RANGE_QUERY_TIMEOUT))
                .map_err(|e| {
                    anyhow::anyhow!("Prometheus at {} could not be queried: {e}", req.url)
                })?;
            match prom::parse_matrix(code, &body) {
                Ok(s) => parts.push(s),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(Ok(prom::merge(parts)))
    };
    let series = fetch(query)?.map_err(|e| bad(format!("{e} (query: {query})")))?;
    let resets_query = prom::resets_query(query);
    let resets = match &resets_query {
        Some(q) => match fetch(q)? {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("warning: counter resets could not be looked for ({q}): {e}");
                None
            }
        },
        None => None,
    };
    let imported = prom::to_services(&req, series, resets).map_err(|e| bad(e.to_string()))?;
    for f in prom::findings(&imported) {
        eprintln!("warning: {f}");
    }
    let stem = args
        .output
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().to_string());
    let out = prom::render(&imported, &req, resets_query.as_deref(), stem.as_deref());
    for i in &imported {
        eprintln!(
            "imported {} samples{} from {} to {}",
            i.points.len(),
            i.service
                .as_deref()
                .map(|s| format!(" for {s}"))
                .unwrap_or_default(),
            prom::rfc3339(start + i.points[0][0]),
            prom::rfc3339(start + i.points[i.points.len() - 1][0]),
        );
    }
    match &args.output {
        Some(path) => {
            let dir = path.parent().unwrap_or(std::path::Path::new(""));
            for (name, text) in &out.files {
                let csv = dir.join(name);
                std::fs::write(&csv, text).with_context(|| format!("writing {}", csv.display()))?;
                eprintln!("wrote {}", csv.display());
            }
            std::fs::write(path, &out.toml)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if imported
                .iter()
                .any(|i| i.points.len() > prom::MAX_INLINE_SAMPLES)
            {
                eprintln!(
                    "note: long series written inline; with -o FILE they go to a CSV beside FILE"
                );
            }
            print!("{}", out.toml)
        }
    }
    Ok(crate::exit::PASS)
}
