#!/usr/bin/env bash
# Installs the stack lab's cluster level runs on, with pinned upstream versions:
# cert-manager, Knative Serving with Kourier (serverless mode), KServe, KEDA and
# the Prometheus Operator (kube-prometheus-stack), optionally the NVIDIA GPU
# operator or device plugin for a GPU cluster, and loads the lab image into kind.
#
#   deploy/install-stack.sh [--mode serverless|raw] [--create-cluster] [--cluster NAME]
#                           [--context CTX] [--image REF] [--gpu operator|device-plugin]
#                           [--dry-run]
#
#   --mode serverless   (default) Knative Serving + Kourier, KServe defaulting to
#                       Knative mode; raw InferenceServices still work (per-object
#                       deploymentMode annotation)
#   --mode raw          no Knative: KServe defaults to Standard (RawDeployment)
#   --create-cluster    first `kind create cluster` with deploy/kind/cluster.yaml
#   --cluster NAME      kind cluster name (default: lab)
#   --context CTX       kube context (default: kind-NAME when --create-cluster or
#                       --image is used with kind, else the current context)
#   --image REF         `kind load docker-image REF` (the tag deploy/image/build.sh printed)
#   --gpu operator      NVIDIA GPU operator (driver, toolkit, device plugin, GFD,
#                       MIG manager), reading the device-plugin and MIG ConfigMaps
#                       `lab deploy` renders; for a real GPU cluster, not kind
#   --gpu device-plugin only the NVIDIA device plugin (+ GFD), for nodes that
#                       already have the driver and container toolkit
#   --dry-run           print every command, run none
set -euo pipefail

# ---- pinned versions (each from its project's release notes or install docs) ----
CERT_MANAGER_VERSION=v1.17.0     # the version KServe v0.17's dependency table pins
KNATIVE_VERSION=knative-v1.21.0  # Knative Serving; KServe v0.17 is tested on 1.21
KOURIER_VERSION=knative-v1.21.0  # net-kourier releases with Serving
KSERVE_VERSION=v0.17.0
KEDA_CHART_VERSION=2.21.1        # chart and app 2.21.1
KUBE_PROMETHEUS_STACK_VERSION=81.6.2
GPU_OPERATOR_VERSION=v25.10.0
DEVICE_PLUGIN_CHART_VERSION=0.18.2
KOURIER_NODE_PORT=31080          # mapped to the host in deploy/kind/cluster.yaml

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=serverless
CREATE=0
CLUSTER=lab
CONTEXT=
IMAGE=
GPU=
DRY=0
die() { echo "install-stack.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE=${2:-}; shift ;;
    --create-cluster) CREATE=1 ;;
    --cluster) CLUSTER=${2:-}; shift ;;
    --context) CONTEXT=${2:-}; shift ;;
    --image) IMAGE=${2:-}; shift ;;
    --gpu) GPU=${2:-}; shift ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
case "$MODE" in serverless|raw) ;; *) die "--mode must be serverless or raw, not '$MODE'" ;; esac
case "$GPU" in ''|operator|device-plugin) ;; *) die "--gpu must be operator or device-plugin, not '$GPU'" ;; esac
case "$IMAGE" in *:latest) die "--image $IMAGE: images are tagged by version and commit, never latest" ;; esac
if [ -z "$CONTEXT" ] && { [ "$CREATE" = 1 ] || [ -n "$IMAGE" ]; }; then CONTEXT="kind-$CLUSTER"; fi

# Prints a command as it would be typed (single-quoting words that need it),
# then runs it unless --dry-run.
run() {
  local word line='+'
  for word in "$@"; do
    case "$word" in
      *[!A-Za-z0-9_./:=,@%+-]*) line+=" '${word//\'/\'\\\'\'}'" ;;
      *) line+=" $word" ;;
    esac
  done
  printf '%s\n' "$line"
  [ "$DRY" = 1 ] || "$@"
}
KUBECTL=(kubectl)
HELM=(helm)
if [ -n "$CONTEXT" ]; then KUBECTL+=(--context "$CONTEXT"); HELM+=(--kube-context "$CONTEXT"); fi
k() { run "${KUBECTL[@]}" "$@"; }
h() { run "${HELM[@]}" "$@"; }
wait_deployments() { k wait --for=condition=Available deployment --all -n "$1" --timeout=10m; }

if [ "$DRY" = 0 ]; then
  for tool in kubectl helm; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
  if [ "$CREATE" = 1 ] || [ -n "$IMAGE" ]; then command -v kind >/dev/null || die "kind is not installed"; fi
fi

# ---- cluster and image ----
if [ "$CREATE" = 1 ]; then
  run kind create cluster --name "$CLUSTER" --config "$ROOT/deploy/kind/cluster.yaml"
fi
if [ -n "$IMAGE" ]; then
  run kind load docker-image "$IMAGE" --name "$CLUSTER"
fi

# ---- cert-manager: webhook certificates for KServe ----
k apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
wait_deployments cert-manager

# ---- Knative Serving + Kourier (serverless mode) ----
if [ "$MODE" = serverless ]; then
  k apply -f "https://github.com/knative/serving/releases/download/$KNATIVE_VERSION/serving-crds.yaml"
  k apply -f "https://github.com/knative/serving/releases/download/$KNATIVE_VERSION/serving-core.yaml"
  k apply -f "https://github.com/knative/net-kourier/releases/download/$KOURIER_VERSION/kourier.yaml"
  k patch configmap/config-network -n knative-serving --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  # Kourier's gateway on a fixed NodePort, which the kind config maps to the host.
  k patch service/kourier -n kourier-system \
    -p "{\"spec\":{\"type\":\"NodePort\",\"ports\":[{\"port\":80,\"nodePort\":$KOURIER_NODE_PORT}]}}"
  wait_deployments knative-serving
  wait_deployments kourier-system
fi

# ---- KServe ----
if [ "$MODE" = serverless ]; then
  # Kourier, not Istio: KServe must not write Istio VirtualServices.
  KSERVE_SET=(--set kserve.controller.deploymentMode=Knative
              --set kserve.controller.gateway.disableIstioVirtualHost=true)
else
  # No ingress controller on kind: reach predictors through their Services.
  KSERVE_SET=(--set kserve.controller.deploymentMode=Standard
              --set kserve.controller.gateway.disableIngressCreation=true)
fi
h upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version "$KSERVE_VERSION" \
  --namespace kserve --create-namespace --wait
h upgrade --install kserve oci://ghcr.io/kserve/charts/kserve --version "$KSERVE_VERSION" \
  --namespace kserve "${KSERVE_SET[@]}" --wait
wait_deployments kserve

# ---- KEDA (raw-mode ScaledObjects) ----
h repo add kedacore https://kedacore.github.io/charts --force-update
h upgrade --install keda kedacore/keda --version "$KEDA_CHART_VERSION" \
  --namespace keda --create-namespace --wait

# ---- Prometheus Operator, Prometheus, Grafana ----
# Release `kube-prometheus-stack` in `monitoring`: the Prometheus URL that
# `lab deploy` gives KEDA's prometheus triggers by default. The selectors take
# every PodMonitor, ServiceMonitor and PrometheusRule (the rendered ones carry no
# chart label), and Grafana's sidecar loads dashboard ConfigMaps from every
# namespace.
h repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
h upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
  --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace \
  --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false \
  --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false \
  --set grafana.sidecar.dashboards.searchNamespace=ALL \
  --wait --timeout 15m

# ---- GPUs (real GPU clusters) ----
# The ConfigMaps named here are the ones `lab deploy` renders into the
# gpu-operator namespace (cluster-config/): time-slicing or MPS replicas per
# pool, and the MIG layouts. Apply the render's cluster config before GPU pods.
# DCGM's exporter gets a ServiceMonitor, so the cluster's Prometheus has the
# GPU use `lab run --level cluster` reads (DCGM_FI_DEV_GPU_UTIL).
case "$GPU" in
  operator)
    h repo add nvidia https://helm.ngc.nvidia.com/nvidia --force-update
    h upgrade --install gpu-operator nvidia/gpu-operator --version "$GPU_OPERATOR_VERSION" \
      --namespace gpu-operator --create-namespace \
      --set devicePlugin.config.name=lab-device-plugin-config \
      --set migManager.config.name=lab-mig-parted-config \
      --set mig.strategy=mixed \
      --set dcgmExporter.serviceMonitor.enabled=true \
      --wait --timeout 20m
    ;;
  device-plugin)
    h repo add nvdp https://nvidia.github.io/k8s-device-plugin --force-update
    h upgrade --install nvdp nvdp/nvidia-device-plugin --version "$DEVICE_PLUGIN_CHART_VERSION" \
      --namespace gpu-operator --create-namespace \
      --set config.name=lab-device-plugin-config \
      --set gfd.enabled=true \
      --wait
    ;;
esac

echo "install-stack.sh: done ($MODE mode${GPU:+, GPU: $GPU}${CONTEXT:+, context $CONTEXT})"
