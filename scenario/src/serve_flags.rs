//! `lab serve`'s batching flags for a service, the one mapping from the
//! scenario's Triton-style `batching` table to the predictor's command line:
//! the local level passes them to its pod processes, `lab deploy` writes them
//! into the ServingRuntime a cluster runs.

use crate::spec::ServiceSpec;

impl ServiceSpec {
    /// `--max-batch-size`, `--max-queue-delay-us`, `--instances`,
    /// `--preferred-batch-sizes` and `--max-queue-rows` as the scenario sets them.
    pub fn serve_batching_flags(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        match &self.batching {
            Some(b) => {
                args.extend(["--max-batch-size".into(), b.max_batch_size.to_string()]);
                args.extend([
                    "--max-queue-delay-us".into(),
                    b.max_queue_delay_microseconds.to_string(),
                ]);
                args.extend(["--instances".into(), b.instances.max(1).to_string()]);
                if !b.preferred_batch_size.is_empty() {
                    args.push("--preferred-batch-sizes".into());
                    args.push(
                        b.preferred_batch_size
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                }
                if b.max_queue_size > 0 {
                    args.extend(["--max-queue-rows".into(), b.max_queue_size.to_string()]);
                }
            }
            None => args.extend(["--max-batch-size".into(), "1".into()]),
        }
        if self.batching.as_ref().is_none_or(|b| b.max_queue_size == 0) {
            // The simulator's pod queue is unbounded unless max_queue_size says so.
            args.extend(["--max-queue-rows".into(), "1000000".into()]);
        }
        args
    }
}
