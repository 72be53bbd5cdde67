//! The container image built and run for real (issue 17): the `lab` binary is
//! built on the host, `deploy/image/build.sh` puts it with libonnxruntime on the
//! debootstrapped Debian base (built once, then reused), and testcontainers
//! starts it the way the restricted Pod Security profile runs a pod: a numeric
//! non-root user, a read-only root filesystem, every capability dropped and
//! no-new-privileges. Against it run the predictor's own conformance suite
//! (official tritonclient, HTTP and gRPC) and a second container of the same
//! image running `lab load` over a Docker network.
//!
//! Where Docker is missing or its daemon does not answer, the test says so and
//! returns. It needs the Python packages of scripts/install-test-deps.sh for the
//! conformance suite (on the host, not in the image) and, when the base image is
//! missing, root and debootstrap.

#[path = "image/api_proxy.rs"]
mod api_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testcontainers::core::wait::ExitWaitStrategy;
use testcontainers::core::{
    AccessMode, CmdWaitFor, ExecCommand, IntoContainerPort, Mount, WaitFor,
};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

/// The Docker API version testcontainers 0.28 (bollard 0.21) puts in its paths.
const CLIENT_API: (u32, u32) = (1, 53);

/// The load the second container sends: uniform arrivals, so the count is exact.
const LOAD_RATE: u32 = 50;
const LOAD_SECS: u32 = 4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deploy/ sits in the workspace")
        .to_path_buf()
}

/// The daemon's API version, or why Docker cannot be used here.
fn docker_api_version() -> Result<String, String> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .map_err(|e| format!("no docker command ({e})"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.is_empty() {
        return Err(format!(
            "the Docker daemon does not answer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(text)
}

fn parse_version(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or(("0", "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Points testcontainers at the daemon, through the version relay when the
/// daemon is older than the client library (see api_proxy.rs).
fn connect_testcontainers(daemon_api: &str) -> Option<api_proxy::ApiProxy> {
    if parse_version(daemon_api) >= CLIENT_API {
        return None;
    }
    let socket =
        match std::env::var("DOCKER_HOST") {
            Ok(h) => PathBuf::from(h.strip_prefix("unix://").unwrap_or_else(|| {
                panic!("DOCKER_HOST={h}: the version relay needs a unix socket")
            })),
            Err(_) => PathBuf::from("/var/run/docker.sock"),
        };
    let proxy = api_proxy::start(&socket, daemon_api).expect("starting the Docker API relay");
    eprintln!(
        "image test: Docker API {daemon_api} is older than testcontainers' {}.{}; relaying through {}",
        CLIENT_API.0,
        CLIENT_API.1,
        proxy.socket.display()
    );
    // Set before any container exists; the other tests of this binary (the
    // relay's own) read no environment.
    std::env::set_var("DOCKER_HOST", format!("unix://{}", proxy.socket.display()));
    Some(proxy)
}

/// `cargo build -p lab-harness --bin lab` (quick when the workspace is built) and
/// the binary it produced, wherever the target folder is.
fn build_lab() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "-p",
            "lab-harness",
            "--bin",
            "lab",
            "--message-format=json",
        ])
        .current_dir(repo())
        .output()
        .expect("running cargo build");
    let messages: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !out.status.success() {
        // With JSON messages the compiler's errors are on stdout, not stderr.
        let errors: String = messages
            .iter()
            .filter(|m| m["reason"] == "compiler-message" && m["message"]["level"] == "error")
            .filter_map(|m| m["message"]["rendered"].as_str())
            .collect();
        panic!(
            "cargo build -p lab-harness failed:\n{errors}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    messages
        .iter()
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "lab")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no `lab` executable")
}

/// `deploy/image/build.sh --binary BIN`: the reference it tagged.
fn build_image(binary: &Path) -> String {
    let out = Command::new(repo().join("deploy/image/build.sh"))
        .args(["--variant", "cpu", "--binary"])
        .arg(binary)
        .output()
        .expect("running deploy/image/build.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "deploy/image/build.sh failed:\n{stderr}"
    );
    let tag = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    assert!(!tag.ends_with(":latest"), "{tag}");
    tag
}

/// Removes the image this test built, so repeated runs (a new tag per commit)
/// do not pile images up; the base image stays for the next run.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", &self.0])
            .output();
    }
}

/// Runs a command in the container to its end: (exit code, stdout, stderr).
fn exec(c: &Container<GenericImage>, cmd: &[&str]) -> (i64, String, String) {
    let mut r = c
        .exec(ExecCommand::new(cmd.iter().copied()).with_cmd_ready_condition(CmdWaitFor::exit()))
        .unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&r.stdout_to_vec().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&r.stderr_to_vec().unwrap()).into_owned();
    let code = r.exit_code().unwrap().expect("the command has exited");
    (code, stdout, stderr)
}

fn docker_inspect(what: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, what])
        .output()
        .expect("docker inspect");
    assert!(
        out.status.success(),
        "docker inspect {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The restricted profile's container settings, as a pod spec would ask for them.
fn restricted(image: GenericImage) -> testcontainers::ContainerRequest<GenericImage> {
    image
        .with_readonly_rootfs(true)
        .with_cap_drop("ALL")
        .with_security_opt("no-new-privileges:true")
}

/// `lab_predictor_requests_total{model="iris",code="200"}` from /metrics.
fn iris_ok_count(http_port: u16) -> u64 {
    use std::io::{Read, Write};
    let mut conn =
        std::net::TcpStream::connect(("127.0.0.1", http_port)).expect("connecting to /metrics");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).expect("reading /metrics");
    let key = r#"lab_predictor_requests_total{model="iris",code="200"} "#;
    body.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no iris 200 counter in /metrics:\n{body}"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn image_serves_non_root_read_only_passes_conformance_and_takes_load() {
    let api = match docker_api_version() {
        Ok(v) => v,
        Err(why) => {
            eprintln!("image test skipped: {why}");
            return;
        }
    };
    let _relay = connect_testcontainers(&api);
    let t0 = Instant::now();

    let binary = build_lab();
    let t_binary = t0.elapsed();
    let tag = build_image(&binary);
    let t_image = t0.elapsed();
    eprintln!(
        "image test: {tag} built (lab binary {:.1}s, image {:.1}s)",
        t_binary.as_secs_f64(),
        (t_image - t_binary).as_secs_f64()
    );
    let _remove_image = RemoveImage(tag.clone());
    let (repository, version) = tag.split_once(':').expect("a tagged reference");

    // What the image itself declares: a numeric non-root user and `lab` as the
    // entrypoint, with nothing telling it where ONNX Runtime is.
    let image_user = docker_inspect(&tag, "{{.Config.User}}");
    assert_eq!(image_user, "65532:65532");
    assert_eq!(
        docker_inspect(&tag, "{{json .Config.Entrypoint}}"),
        r#"["/usr/bin/lab"]"#
    );
    let env = docker_inspect(&tag, "{{json .Config.Env}}");
    assert!(
        !env.contains("ORT_DYLIB_PATH"),
        "the image must find ONNX Runtime by itself: {env}"
    );

    let id = std::process::id();
    let network = format!("lab-image-test-{id}");
    let server_name = format!("lab-image-test-{id}-serve");
    let models = repo().join("predictor/models");
    let mut serve_cmd: Vec<String> = [
        "serve",
        "--host",
        "0.0.0.0",
        "--http-port",
        "8080",
        "--grpc-port",
        "8081",
    ]
    .map(String::from)
    .to_vec();
    for name in ["iris", "mlp", "linear64", "int32"] {
        serve_cmd.extend(["--model".into(), format!("{name}=/models/{name}.onnx")]);
    }
    // The conformance suite's own server flags (test_conformance.py).
    serve_cmd.extend(["--max-batch-size", "64", "--max-body-bytes", "200000"].map(String::from));

    // testcontainers pulls only when creating the container answers 404 (no
    // such image); the image was just built here, so nothing is pulled.
    let server = restricted(
        GenericImage::new(repository, version)
            .with_exposed_port(8080.tcp())
            .with_exposed_port(8081.tcp())
            .with_wait_for(WaitFor::message_on_stdout("lab-predictor ready")),
    )
    .with_user("65532:65532")
    .with_cmd(serve_cmd)
    .with_mount(
        Mount::bind_mount(models.to_string_lossy(), "/models")
            .with_access_mode(AccessMode::ReadOnly),
    )
    .with_network(network.clone())
    .with_container_name(server_name.clone())
    .with_startup_timeout(Duration::from_secs(120))
    .start()
    .expect("starting the predictor container");
    let t_up = t0.elapsed();

    // Who runs, and what it may write.
    let (code, uid, _) = exec(&server, &["id", "-u"]);
    assert_eq!(
        (code, uid.trim()),
        (0, "65532"),
        "the predictor runs as root"
    );
    let (code, _, err) = exec(&server, &["sh", "-c", "echo x > /written-by-lab"]);
    assert_ne!(code, 0, "writing to / succeeded");
    assert!(!err.is_empty());
    // /tmp is world-writable in the image, so only a read-only root stops this.
    let (code, _, err) = exec(&server, &["sh", "-c", "echo x > /tmp/written-by-lab"]);
    assert_ne!(
        code, 0,
        "writing to /tmp succeeded: the root filesystem is writable"
    );
    assert!(err.contains("Read-only file system"), "{err}");
    // No Python anywhere in the image: ONNX Runtime was found without it.
    let (code, found, _) = exec(
        &server,
        &[
            "sh",
            "-c",
            "command -v python3 python; ls -d /usr/lib/python3*",
        ],
    );
    assert_ne!(code, 0, "the image carries Python: {found}");
    let ctl = docker_inspect(
        server.id(),
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}",
    );
    assert_eq!(ctl, "true [ALL] [no-new-privileges:true]");

    // The predictor's conformance suite, unchanged, against the mapped ports.
    let http = server.get_host_port_ipv4(8080.tcp()).unwrap();
    let grpc = server.get_host_port_ipv4(8081.tcp()).unwrap();
    let suite = repo().join("deploy/tests/image");
    let out = Command::new(python())
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_image_conformance.py",
        ])
        .current_dir(&suite)
        .env("LAB_IMAGE_HTTP", format!("127.0.0.1:{http}"))
        .env("LAB_IMAGE_GRPC", format!("127.0.0.1:{grpc}"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/install-test-deps.sh",
                python()
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "conformance against the container failed:\n{text}"
    );
    assert!(text.contains(" passed"), "pytest ran no test:\n{text}");
    let t_conformance = t0.elapsed();

    // Load from a second container of the same image, by name over the network.
    let load = restricted(
        GenericImage::new(repository, version)
            .with_wait_for(WaitFor::exit(ExitWaitStrategy::new())),
    )
    .with_cmd(
        [
            "load",
            "--target",
            &format!("http://{server_name}:8080"),
            "--model",
            "iris",
            "--rate",
            &LOAD_RATE.to_string(),
            "--duration",
            &format!("{LOAD_SECS}s"),
            "--json",
            "-o",
            "/tmp/load.json",
        ]
        .map(String::from),
    )
    .with_mount(Mount::tmpfs_mount("/tmp"))
    .with_network(network)
    .with_container_name(format!("lab-image-test-{id}-load"))
    .with_startup_timeout(Duration::from_secs(120))
    .start()
    .expect("running lab load in a second container");
    let stdout = String::from_utf8_lossy(&load.stdout_to_vec().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&load.stderr_to_vec().unwrap()).into_owned();
    assert_eq!(
        load.exit_code().unwrap(),
        Some(0),
        "lab load failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("lab load --json printed no JSON ({e}):\n{stdout}\n{stderr}"));
    let want = u64::from(LOAD_RATE * LOAD_SECS);
    let count = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no `{k}` in {report}"))
    };
    assert_eq!(count("arrived"), want, "{report}");
    assert_eq!(count("completed"), want, "{report}");
    assert_eq!(count("failed"), 0, "{report}");
    assert_eq!(count("refused"), 0, "{report}");
    eprintln!(
        "image test: lab load sent {} requests in {LOAD_SECS}s from a second container: {} completed, {} failed, p99 {:.2} ms",
        count("arrived"),
        count("completed"),
        count("failed"),
        report["latency_seconds"]["p99"].as_f64().unwrap_or(f64::NAN) * 1e3
    );
    // The predictor counted them too: the load reached it, not only the client.
    let served = iris_ok_count(http);
    assert!(
        served >= want,
        "the predictor counted {served} iris 200s, fewer than the {want} sent"
    );
    eprintln!(
        "image test: container up at {:.1}s, conformance done at {:.1}s, load done at {:.1}s",
        t_up.as_secs_f64(),
        t_conformance.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
