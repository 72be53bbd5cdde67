//! `lab deploy`: the manifests a cluster runs, rendered from one scenario file.
