//! lab deploy's rendering of the example scenarios: which modes each supports
//! and why the others are refused, the restricted Pod Security profile field
//! by field, determinism, and a round trip through `lab import`.

mod common;

use common::{docs, example, kinds, render_example};
use lab_deploy::{Mode, Options};
use serde_json::Value;

/// Every example and the modes it renders in; the refused ones with the key
/// named in the refusal.
#[test]
fn each_example_renders_in_the_modes_its_autoscalers_allow() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        // (scenario, serverless refusal key, raw refusal key); None = renders.
        ("spike", Some("autoscaler.hpa.metrics"), None),
        ("scale-to-zero", None, Some("autoscaler.kpa")),
        (
            "keda-queue",
            Some("autoscaler.keda"),
            Some("autoscaler.keda.triggers[0]"),
        ),
        ("steady-10k", None, None),
        ("timeslice-vs-mig", None, None),
        ("diurnal-cost", Some("autoscaler.hpa.metrics"), None),
        ("fidelity-steady", None, None),
        ("plan-10k", None, None),
    ];
    for (name, serverless, raw) in cases {
        for (mode, refused) in [(Mode::Serverless, serverless), (Mode::Raw, raw)] {
            let sc = example(name, &[]);
            let got = lab_deploy::render(&sc, &Options::new(mode, "lab:0.1.0-test-cpu"));
            match (refused, got) {
                (None, Ok(r)) => assert!(r.files.contains_key("inferenceservice.yaml"), "{name}"),
                (Some(key), Err(refusals)) => assert!(
                    refusals.iter().any(|r| r.key.ends_with(key)),
                    "{name} in {mode:?}: expected a refusal of `{key}`, got {refusals:?}"
                ),
                (None, Err(e)) => panic!("{name} in {mode:?} was refused: {e:?}"),
                (Some(key), Ok(_)) => {
                    panic!("{name} in {mode:?} rendered, but `{key}` cannot be expressed")
                }
            }
        }
    }
}

#[test]
fn the_natural_mode_is_the_one_the_autoscalers_need() {
    assert_eq!(Mode::natural_for(&example("spike", &[])), Mode::Raw);
    assert_eq!(
        Mode::natural_for(&example("scale-to-zero", &[])),
        Mode::Serverless
    );
    assert_eq!(Mode::natural_for(&example("keda-queue", &[])), Mode::Raw);
}

#[test]
fn rendering_is_deterministic() {
    for (name, mode) in [
        ("spike", Mode::Raw),
        ("scale-to-zero", Mode::Serverless),
        ("timeslice-vs-mig", Mode::Raw),
    ] {
        let a = render_example(name, mode, &[], &[]);
        let b = render_example(name, mode, &[], &[]);
        assert_eq!(a.files, b.files, "{name}");
    }
}

/// Pod Security "restricted", checked field by field on every pod template
/// the objects carry (the ServingRuntime's containers and the
/// InferenceService's pod-level context), and the namespace enforcing it.
#[test]
fn every_pod_passes_the_restricted_profile() {
    for (name, mode, storage) in [
        ("spike", Mode::Raw, vec![]),
        ("scale-to-zero", Mode::Serverless, vec![]),
        (
            "timeslice-vs-mig",
            Mode::Raw,
            vec![("classifier", "s3://models/classifier")],
        ),
    ] {
        let r = render_example(name, mode, &[], &storage);
        let ns = &docs(&r, "namespace.yaml")[0];
        for m in ["enforce", "audit", "warn"] {
            assert_eq!(
                ns["metadata"]["labels"][format!("pod-security.kubernetes.io/{m}")],
                "restricted"
            );
        }
        for isvc in docs(&r, "inferenceservice.yaml") {
            let pod = &isvc["spec"]["predictor"]["securityContext"];
            assert_eq!(pod["runAsNonRoot"], true, "{name}");
            assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault", "{name}");
            assert!(pod["runAsUser"].as_u64().is_some_and(|u| u > 0), "{name}");
            assert_eq!(
                isvc["spec"]["predictor"]["serviceAccountName"],
                "lab-predictor"
            );
            // No hostPath, host namespaces or privileged settings anywhere.
            let text = serde_json::to_string(&isvc).unwrap();
            for banned in [
                "hostPath",
                "hostNetwork",
                "hostPID",
                "hostIPC",
                "privileged",
            ] {
                assert!(!text.contains(banned), "{name}: {banned}");
            }
        }
        for rt in docs(&r, "servingruntime.yaml") {
            for c in rt["spec"]["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(sc["runAsNonRoot"], true, "{name}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{name}"
                );
                assert!(sc["capabilities"].get("add").is_none(), "{name}");
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
            }
            for v in rt["spec"]["volumes"].as_array().unwrap() {
                assert!(
                    v.get("emptyDir").is_some() || v.get("configMap").is_some(),
                    "{name}: volume {v}"
                );
            }
        }
        let sa = &docs(&r, "serviceaccount.yaml")[0];
        assert_eq!(sa["automountServiceAccountToken"], false);
    }
}

#[test]
fn the_runtime_carries_the_scenario_batching_and_probes() {
    let r = render_example("spike", Mode::Raw, &[], &[]);
    let rt = &docs(&r, "servingruntime.yaml")[0];
    let c = &rt["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--max-batch-size"), "16");
    assert_eq!(after("--max-queue-delay-us"), "2000");
    assert_eq!(after("--host"), "0.0.0.0");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
    assert_eq!(
        rt["spec"]["protocolVersions"],
        serde_json::json!(["v2", "grpc-v2"])
    );
    assert_eq!(rt["spec"]["supportedModelFormats"][0]["name"], "onnx");
}

#[test]
fn an_emulated_service_asks_for_no_gpu_and_a_real_one_for_the_scenario_gpus() {
    let emulated = render_example("spike", Mode::Raw, &[], &[]);
    let isvc = &docs(&emulated, "inferenceservice.yaml")[0];
    let p = &isvc["spec"]["predictor"];
    assert!(p["model"]["resources"]["limits"]
        .get("nvidia.com/gpu")
        .is_none());
    assert!(p.get("nodeSelector").is_none());
    let args = p["model"]["args"].to_string();
    assert!(
        args.contains("--emulate") && args.contains("--gpu-type"),
        "{args}"
    );
    let profiles = docs(&emulated, "configmap.yaml")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "lab-emulated-gpu-profiles")
        .unwrap();
    let prof: Value =
        serde_json::from_str(profiles["data"]["resnet.json"].as_str().unwrap()).unwrap();
    assert_eq!(prof["gpu"], "L4");
    assert_eq!(prof["points"][0]["mean_seconds"], 0.006);

    let real = render_example(
        "spike",
        Mode::Raw,
        &[],
        &[("resnet", "s3://models/resnet50")],
    );
    let p = &docs(&real, "inferenceservice.yaml")[0]["spec"]["predictor"];
    assert_eq!(p["model"]["storageUri"], "s3://models/resnet50");
    assert_eq!(p["model"]["resources"]["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(p["model"]["resources"]["requests"]["cpu"], "3");
    assert_eq!(p["model"]["resources"]["requests"]["memory"], "12Gi");
    assert_eq!(p["nodeSelector"]["nvidia.com/gpu.product"], "NVIDIA-L4");
    assert_eq!(p["tolerations"][0]["key"], "nvidia.com/gpu");
    assert_eq!(p["terminationGracePeriodSeconds"], 30);
    assert_eq!(p["minReplicas"], 2);
    assert_eq!(p["maxReplicas"], 16);
    assert_eq!(p["timeout"], 30);
}

#[test]
fn gpu_sharing_configures_the_device_plugin() {
    let storage = [("classifier", "s3://m/c"), ("ranker", "s3://m/r")];
    let ts = render_example("timeslice-vs-mig", Mode::Raw, &[], &storage);
    let cm = &docs(&ts, "cluster-config/configmap.yaml")[0];
    assert_eq!(cm["metadata"]["namespace"], "gpu-operator");
    let config: Value = serde_saphyr::from_str(cm["data"]["a100"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["sharing"]["timeSlicing"]["resources"][0]["replicas"],
        2
    );
    assert_eq!(
        config["sharing"]["timeSlicing"]["resources"][0]["name"],
        "nvidia.com/gpu"
    );
    let p = &docs(&ts, "inferenceservice.yaml")[0]["spec"]["predictor"];
    assert_eq!(
        p["nodeSelector"]["nvidia.com/gpu.product"],
        "NVIDIA-A100-SXM4-40GB-SHARED"
    );

    let mig = render_example(
        "timeslice-vs-mig",
        Mode::Raw,
        &[r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#],
        &storage,
    );
    let cms = docs(&mig, "cluster-config/configmap.yaml");
    let parted = cms
        .iter()
        .find(|c| c["metadata"]["name"] == "lab-mig-parted-config")
        .unwrap();
    let config: Value =
        serde_saphyr::from_str(parted["data"]["config.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["mig-configs"]["lab-a100"][0]["mig-devices"]["3g.20gb"],
        2
    );
    let plugin = cms
        .iter()
        .find(|c| c["metadata"]["name"] == "lab-device-plugin-config")
        .unwrap();
    let flags: Value = serde_saphyr::from_str(plugin["data"]["a100"].as_str().unwrap()).unwrap();
    assert_eq!(flags["flags"]["migStrategy"], "single");
    assert!(
        mig.notes
            .iter()
            .any(|n| n.contains("nvidia.com/mig.config=lab-a100")),
        "{:?}",
        mig.notes
    );
}

#[test]
fn a_mixed_mig_request_is_placed_by_its_profile_resource() {
    let r = render_example(
        "timeslice-vs-mig",
        Mode::Raw,
        &[
            r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#,
            r#"services.classifier.resources={ cpu = "4", memory = "16Gi", "nvidia.com/mig-3g.20gb" = 1 }"#,
            r#"services.ranker.resources={ cpu = "4", memory = "16Gi", "nvidia.com/mig-3g.20gb" = 1 }"#,
        ],
        &[("classifier", "s3://m/c"), ("ranker", "s3://m/r")],
    );
    let p = &docs(&r, "inferenceservice.yaml")[0]["spec"]["predictor"];
    assert_eq!(
        p["model"]["resources"]["limits"]["nvidia.com/mig-3g.20gb"],
        "1"
    );
    let plugin = &docs(&r, "cluster-config/configmap.yaml")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "lab-device-plugin-config")
        .unwrap();
    let flags: Value = serde_saphyr::from_str(plugin["data"]["a100"].as_str().unwrap()).unwrap();
    assert_eq!(flags["flags"]["migStrategy"], "mixed");
}

#[test]
fn autoscaling_follows_the_scenario() {
    // Raw: an HPA aimed at KServe's Deployment with the scenario's metric.
    let r = render_example("spike", Mode::Raw, &[], &[]);
    let hpa = &docs(&r, "horizontalpodautoscaler.yaml")[0];
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "resnet-predictor");
    assert_eq!(
        hpa["spec"]["metrics"][0]["pods"]["metric"]["name"],
        "lab_predictor_inflight_requests"
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"],
        "8"
    );
    let isvc = &docs(&r, "inferenceservice.yaml")[0];
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"],
        "external"
    );
    assert_eq!(
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
        "Standard"
    );

    // Serverless: Knative's annotations, and scale to zero from minReplicas 0.
    let r = render_example("scale-to-zero", Mode::Serverless, &[], &[]);
    let isvc = &docs(&r, "inferenceservice.yaml")[0];
    let ann = &isvc["metadata"]["annotations"];
    assert_eq!(
        ann["autoscaling.knative.dev/class"],
        "kpa.autoscaling.knative.dev"
    );
    assert_eq!(ann["autoscaling.knative.dev/target"], "5");
    assert_eq!(isvc["spec"]["predictor"]["minReplicas"], 0);
    assert_eq!(isvc["spec"]["predictor"]["containerConcurrency"], 10);
    assert!(!r.files.contains_key("horizontalpodautoscaler.yaml"));

    // Cluster-wide KPA keys land in config-autoscaler, apart from the scenario's objects.
    let r = render_example(
        "scale-to-zero",
        Mode::Serverless,
        &[r#"services.sentiment.autoscaler.kpa.scale-to-zero-grace-period="45s""#],
        &[],
    );
    let cms = docs(&r, "cluster-config/configmap.yaml");
    let ca = cms
        .iter()
        .find(|c| c["metadata"]["name"] == "config-autoscaler")
        .unwrap();
    assert_eq!(ca["metadata"]["namespace"], "knative-serving");
    assert_eq!(ca["data"]["scale-to-zero-grace-period"], "45s");
    assert!(!r.files["kustomization.yaml"].contains("cluster-config"));
}

#[test]
fn slos_become_alerts_on_the_predictor_series() {
    let r = render_example("spike", Mode::Raw, &[], &[]);
    let rule = &docs(&r, "prometheusrule.yaml")[0];
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let p99 = rules
        .iter()
        .find(|r| {
            r["expr"]
                .as_str()
                .unwrap()
                .contains("histogram_quantile(0.99")
        })
        .unwrap();
    assert!(
        p99["expr"].as_str().unwrap().ends_with("> 0.25"),
        "{}",
        p99["expr"]
    );
    assert!(p99["expr"]
        .as_str()
        .unwrap()
        .contains(&format!("namespace=\"{}\"", r.namespace)));
    let err = rules
        .iter()
        .find(|r| {
            r["expr"].as_str().unwrap().contains("code=~\\\"5..\\\"")
                || r["expr"].as_str().unwrap().contains("code=~\"5..\"")
        })
        .unwrap();
    assert!(
        err["expr"].as_str().unwrap().ends_with("> 0.01"),
        "{}",
        err["expr"]
    );
    // The cost SLO has no series in the cluster: said, not invented.
    assert!(
        r.notes.iter().any(|n| n.contains("monthly_cost_usd")),
        "{:?}",
        r.notes
    );
    let pm = &docs(&r, "podmonitor.yaml")[0];
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["portNumber"], 8080);
    assert_eq!(pm["metadata"]["labels"]["release"], "kube-prometheus-stack");
}

#[test]
fn a_canary_split_becomes_an_inference_graph() {
    let r = render_example(
        "steady-10k",
        Mode::Serverless,
        &[
            r#"services.detector.versions=[{ name = "v1", trafficPercent = 80 }, { name = "v2", trafficPercent = 20 }]"#,
        ],
        &[],
    );
    let svc = "detector";
    let g = &docs(&r, "inferencegraph.yaml")[0];
    let steps = g["spec"]["nodes"]["root"]["steps"].as_array().unwrap();
    assert_eq!(g["spec"]["nodes"]["root"]["routerType"], "Splitter");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["serviceName"], format!("{svc}-v1"));
    assert_eq!(steps[0]["weight"], 80);
    assert_eq!(steps[1]["weight"], 20);
    assert_eq!(docs(&r, "inferenceservice.yaml").len(), 2);
}

#[test]
fn what_a_mode_cannot_express_is_refused_not_approximated() {
    let sc = example(
        "scale-to-zero",
        &[r#"services.sentiment.autoscaler.kpa.metric-bucket="250ms""#],
    );
    let e = lab_deploy::render(&sc, &Options::new(Mode::Serverless, "lab:t")).unwrap_err();
    assert!(
        e.iter().any(|r| r.key.ends_with("kpa.metric-bucket")),
        "{e:?}"
    );
    // Raw mode cannot enforce containerConcurrency, nor can an HPA scale to zero.
    let e = lab_deploy::render(
        &example("scale-to-zero", &[]),
        &Options::new(Mode::Raw, "lab:t"),
    )
    .unwrap_err();
    assert!(
        e.iter().any(|r| r.key.ends_with("containerConcurrency")),
        "{e:?}"
    );
    // An HPA at zero is what the scenario says, and needs a feature gate: rendered, and said.
    let spike_min0 = example(
        "spike",
        &[
            "services.resnet.minReplicas=0",
            r#"services.resnet.autoscaler.hpa.metrics=[{ type = "External", external = { metric = { name = "queue_messages", signal = "queue_depth" }, target = { type = "AverageValue", averageValue = "8" } } }]"#,
        ],
    );
    let r = lab_deploy::render(&spike_min0, &Options::new(Mode::Raw, "lab:t")).unwrap();
    assert_eq!(
        docs(&r, "horizontalpodautoscaler.yaml")[0]["spec"]["minReplicas"],
        0
    );
    assert!(
        r.notes.iter().any(|n| n.contains("HPAScaleToZero")),
        "{:?}",
        r.notes
    );
    assert!(
        docs(&r, "horizontalpodautoscaler.yaml")[0]["spec"]["metrics"][0]["external"]["metric"]
            .get("signal")
            .is_none(),
        "lab's own `signal` key stays out of the API object"
    );
}

#[test]
fn every_object_is_labelled_for_teardown_and_namespaced() {
    let r = render_example("spike", Mode::Raw, &[], &[]);
    for (file, _) in r
        .files
        .iter()
        .filter(|(f, _)| !f.starts_with("cluster-config/") && *f != "kustomization.yaml")
    {
        for d in docs(&r, file) {
            assert_eq!(
                d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "lab-deploy",
                "{file}"
            );
            let cluster_scoped =
                ["Namespace", "PriorityClass"].contains(&d["kind"].as_str().unwrap());
            if !cluster_scoped {
                assert_eq!(d["metadata"]["namespace"], r.namespace.as_str(), "{file}");
            }
        }
    }
    let k: Value = serde_saphyr::from_str(&r.files["kustomization.yaml"]).unwrap();
    let listed: Vec<&str> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        listed[0], "namespace.yaml",
        "the namespace is applied first"
    );
    assert_eq!(kinds(&r).len(), listed.len());
}

#[test]
fn the_load_job_shards_one_schedule_and_starts_paused() {
    let sc = example("spike", &[]);
    let text = std::fs::read_to_string(common::scenarios_dir().join("spike.toml")).unwrap();
    let objs = lab_deploy::load_job(
        &sc,
        &Options::new(Mode::Raw, "lab:t"),
        "lab-spike",
        4,
        &text,
        &["run.seed=9".into()],
    )
    .unwrap();
    let job = objs.iter().find(|o| o["kind"] == "Job").unwrap();
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    assert_eq!(job["spec"]["parallelism"], 4);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "the shards have no API rights"
    );
    assert_eq!(pod["serviceAccountName"], "lab-load");
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--shard"), "$(SHARD_INDEX)/4");
    assert_eq!(
        after("--target"),
        "http://resnet-predictor.lab-spike.svc.cluster.local"
    );
    assert_eq!(after("--await-start"), "0.0.0.0:9000");
    assert_eq!(after("-o"), "-", "results go to the log");
    assert_eq!(after("--set"), "run.seed=9");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    // The NetworkPolicy lets exactly these pods in.
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
        "lab-load"
    );
    let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    assert_eq!(cm["data"]["scenario.toml"], text.as_str());
    // Several services: one Job cannot hold them.
    let two = example("timeslice-vs-mig", &[]);
    let e =
        lab_deploy::load_job(&two, &Options::new(Mode::Raw, "lab:t"), "x", 2, "", &[]).unwrap_err();
    assert!(e[0].message.contains("one service"), "{e:?}");
}
