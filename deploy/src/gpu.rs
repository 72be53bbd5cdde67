//! GPUs on a real cluster: where pods land (the GPU product label that NVIDIA's
//! GPU feature discovery puts on nodes, the GPU taint), and how the NVIDIA
//! device plugin and MIG manager are configured for each pool's sharing.

use crate::{Ctx, Group};
use lab_gpu::Sharing;
use lab_scenario::{NodePoolSpec, ServiceSpec, MIG_RESOURCE_PREFIX};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A node label naming the scenario's pool, for pools GPU labels cannot tell apart.
pub const POOL_LABEL: &str = "lab.dev/node-pool";
/// GPU feature discovery's product label.
pub const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// Namespace of the NVIDIA GPU operator, where its configuration lives.
pub const GPU_OPERATOR_NAMESPACE: &str = "gpu-operator";
pub const DEVICE_PLUGIN_CONFIGMAP: &str = "lab-device-plugin-config";
pub const MIG_CONFIGMAP: &str = "lab-mig-parted-config";

/// GPU feature discovery's `nvidia.com/gpu.product` value for a GPU type of
/// the catalog (the product name with spaces as dashes), None for one it
/// does not know.
pub fn gfd_product(gpu: &str) -> Option<&'static str> {
    Some(match gpu {
        "T4" => "Tesla-T4",
        "L4" => "NVIDIA-L4",
        "A10G" => "NVIDIA-A10G",
        "A100-40GB" => "NVIDIA-A100-SXM4-40GB",
        "A100-80GB" => "NVIDIA-A100-SXM4-80GB",
        "H100-80GB" => "NVIDIA-H100-80GB-HBM3",
        _ => return None,
    })
}

/// The MIG strategy a pool needs: `mixed` when pods ask for
/// `nvidia.com/mig-<profile>`, `single` when they ask for `nvidia.com/gpu`
/// on identical instances.
fn mig_strategy(cx: &Ctx, pool: &NodePoolSpec) -> Result<&'static str, String> {
    let users: Vec<&ServiceSpec> = cx
        .sc
        .services
        .iter()
        .filter(|s| cx.sc.pool_for(s).is_some_and(|p| p.name == pool.name))
        .collect();
    let mixed = users.iter().any(|s| {
        s.resources
            .keys()
            .any(|k| k.starts_with(MIG_RESOURCE_PREFIX))
    });
    let single = users
        .iter()
        .any(|s| s.resources.contains_key(lab_scenario::GPU_RESOURCE));
    match (mixed, single) {
        (true, true) => Err(format!(
            "pool `{}` has pods asking for nvidia.com/gpu and for nvidia.com/mig-* at once; the device \
             plugin runs one MIG strategy per node: ask for the MIG profiles by name in every service",
            pool.name
        )),
        (true, false) => Ok("mixed"),
        _ => Ok("single"),
    }
}

/// Node selector and tolerations of a pod that uses a real GPU on `pool`.
pub fn place(cx: &mut Ctx, pool: &NodePoolSpec, predictor: &mut Value) {
    let Some(gpu) = &pool.gpu else {
        if cx.sc.node_pools.len() > 1 {
            predictor["nodeSelector"] = json!({ POOL_LABEL: pool.name });
        }
        return;
    };
    let Some(product) = gfd_product(gpu) else {
        cx.refuse(
            format!("node_pools.{}.gpu", pool.name),
            format!("GPU type `{gpu}` has no known GPU feature discovery product label, so pods cannot be placed on it"),
        );
        return;
    };
    // GPU feature discovery renames the product of a shared or MIG-partitioned
    // GPU; our pool label is the selector that does not depend on it.
    let product = match &pool.sharing {
        Sharing::None => product.to_string(),
        Sharing::TimeSlicing { .. } | Sharing::Mps { .. } => format!("{product}-SHARED"),
        Sharing::Mig { layout } => match mig_strategy(cx, pool) {
            Ok("single") => format!(
                "{product}-MIG-{}",
                layout.first().map_or("", |s| s.as_str())
            ),
            _ => product.to_string(),
        },
    };
    predictor["nodeSelector"] = json!({ PRODUCT_LABEL: product, POOL_LABEL: pool.name });
    predictor["tolerations"] = json!([
        { "key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule" },
    ]);
}

/// The device plugin's per-pool configuration (time-slicing or MPS replicas,
/// the MIG strategy) and the MIG manager's layouts, in the GPU operator's
/// namespace. Rendered only when some service uses a real GPU.
pub fn device_plugin(cx: &mut Ctx) {
    let real_pools: Vec<NodePoolSpec> = cx
        .sc
        .node_pools
        .iter()
        .filter(|p| p.gpu.is_some())
        .filter(|p| {
            cx.sc.services.iter().any(|s| {
                crate::serving::serves_real_model(cx, s)
                    && cx.sc.pool_for(s).is_some_and(|q| q.name == p.name)
            })
        })
        .cloned()
        .collect();
    if real_pools.is_empty() {
        return;
    }
    let mut plugin = BTreeMap::new();
    let mut mig = BTreeMap::new();
    for pool in &real_pools {
        let (strategy, sharing) = match &pool.sharing {
            Sharing::None => ("none", None),
            Sharing::TimeSlicing { replicas } => (
                "none",
                Some(
                    json!({ "timeSlicing": { "resources": [{ "name": "nvidia.com/gpu", "replicas": replicas }] } }),
                ),
            ),
            Sharing::Mps { replicas } => (
                "none",
                Some(
                    json!({ "mps": { "resources": [{ "name": "nvidia.com/gpu", "replicas": replicas }] } }),
                ),
            ),
            Sharing::Mig { layout } => match mig_strategy(cx, pool) {
                Ok(s) => {
                    let mut devices = BTreeMap::new();
                    for p in layout {
                        *devices.entry(p.clone()).or_insert(0u32) += 1;
                    }
                    mig.insert(
                        mig_config_name(pool),
                        json!([{ "devices": "all", "mig-enabled": true, "mig-devices": devices }]),
                    );
                    (s, None)
                }
                Err(msg) => {
                    cx.refuse(format!("node_pools.{}.sharing", pool.name), msg);
                    continue;
                }
            },
        };
        let mut config = json!({ "version": "v1", "flags": { "migStrategy": strategy } });
        if let Some(s) = sharing {
            config["sharing"] = s;
        }
        plugin.insert(pool.name.clone(), crate::yaml::plain(&config));
        cx.notes.push(format!(
            "label the nodes of pool `{pool}`: `kubectl label node NODE {POOL_LABEL}={pool} nvidia.com/device-plugin.config={pool}{mig}`",
            pool = pool.name,
            mig = if matches!(pool.sharing, Sharing::Mig { .. }) {
                format!(" nvidia.com/mig.config={}", mig_config_name(pool))
            } else {
                String::new()
            }
        ));
    }
    let v = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": DEVICE_PLUGIN_CONFIGMAP,
            "namespace": GPU_OPERATOR_NAMESPACE,
            "labels": cx.labels("gpu-sharing"),
        },
        "data": plugin,
    });
    cx.push_to(Group::ClusterConfig, v);
    cx.notes.push(format!(
        "point the GPU operator at the device plugin configuration: `kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p '{{\"spec\":{{\"devicePlugin\":{{\"config\":{{\"name\":\"{DEVICE_PLUGIN_CONFIGMAP}\"}}}}}}}}'`"
    ));
    if !mig.is_empty() {
        let config = json!({ "version": "v1", "mig-configs": mig });
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": MIG_CONFIGMAP,
                "namespace": GPU_OPERATOR_NAMESPACE,
                "labels": cx.labels("gpu-sharing"),
            },
            "data": { "config.yaml": crate::yaml::plain(&config) },
        });
        cx.push_to(Group::ClusterConfig, v);
        cx.notes.push(format!(
            "point the GPU operator's MIG manager at the layouts: `kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge -p '{{\"spec\":{{\"migManager\":{{\"config\":{{\"name\":\"{MIG_CONFIGMAP}\"}}}}}}}}'`"
        ));
    }
}

fn mig_config_name(pool: &NodePoolSpec) -> String {
    format!("lab-{}", crate::dns_label(&pool.name))
}
