//! A tiny synthetic world for driving an autoscaler through time: pods that take a
//! fixed time to become ready, and a load given as a function of time that is shared
//! evenly by the ready pods. No simulator needed.

#![allow(dead_code)]

use lab_autoscale::{Autoscaler, Decision, Observation, PodPhase, PodSample, SignalValues, Time};

/// Service-wide demand at one instant.
#[derive(Clone, Copy, Default, Debug)]
pub struct Load {
    pub cpu_milli: f64,
    pub concurrency: f64,
    pub queue: f64,
}

pub struct World {
    /// Creation time of each pod, oldest first.
    pub pods: Vec<Time>,
    pub startup: Time,
    pub cpu_request_milli: u64,
    /// (time, spec replicas after the decision, decision) for every decision made.
    pub log: Vec<(Time, u32, Decision)>,
    pub spec: u32,
    pub initial: u32,
}

impl World {
    pub fn new(initial: u32, startup: Time) -> World {
        World {
            pods: vec![Time::ZERO; initial as usize],
            startup,
            cpu_request_milli: 1000,
            log: vec![],
            spec: initial,
            initial,
        }
    }

    fn ready_at(&self, created: Time) -> Time {
        // Pods present from the start are ready at once.
        if created == Time::ZERO {
            Time::ZERO
        } else {
            created + self.startup
        }
    }

    fn samples(&self, now: Time, load: Load) -> Vec<PodSample> {
        let ready = self
            .pods
            .iter()
            .filter(|&&c| self.ready_at(c) <= now)
            .count()
            .max(1) as f64;
        self.pods
            .iter()
            .map(|&c| {
                let r = self.ready_at(c) <= now;
                PodSample {
                    phase: if r {
                        PodPhase::Running
                    } else {
                        PodPhase::Pending
                    },
                    ready: r,
                    deleting: false,
                    start: Some(c),
                    ready_transition: Some(self.ready_at(c)),
                    cpu_request_milli: self.cpu_request_milli,
                    memory_request_bytes: 0,
                    metrics: r.then_some(SignalValues {
                        cpu_milli: load.cpu_milli / ready,
                        concurrency: load.concurrency / ready,
                        queue_depth: load.queue / ready,
                        ..SignalValues::default()
                    }),
                }
            })
            .collect()
    }

    pub fn ready(&self, now: Time) -> u32 {
        self.pods
            .iter()
            .filter(|&&c| self.ready_at(c) <= now)
            .count() as u32
    }

    /// Runs one second-resolution step at `now`.
    pub fn step(&mut self, a: &mut Autoscaler, now: Time, load: Load) {
        let pods = self.samples(now, load);
        let ready = self.ready(now);
        let totals = SignalValues {
            cpu_milli: load.cpu_milli,
            concurrency: load.concurrency,
            queue_depth: load.queue,
            ..SignalValues::default()
        };
        let obs = Observation {
            spec_replicas: self.spec,
            status_replicas: self.pods.len() as u32,
            pods: &pods,
            totals: Ok(totals),
            activator_queue: if ready == 0 {
                load.concurrency.ceil() as u32
            } else {
                0
            },
        };
        if a.metric_interval().is_some() {
            a.record(now, &totals, ready);
        }
        if now >= a.next_decision() || a.wants_poke(&obs) {
            let d = a.decide(now, &obs);
            self.apply(now, d.desired);
            self.log.push((now, self.spec, d));
        }
    }

    fn apply(&mut self, now: Time, desired: u32) {
        self.spec = desired;
        while self.pods.len() > desired as usize {
            self.pods.pop();
        }
        while self.pods.len() < desired as usize {
            self.pods.push(now);
        }
    }

    /// Runs from `from` to `to` (exclusive) in 1 s steps.
    pub fn run(&mut self, a: &mut Autoscaler, from: u64, to: u64, load: impl Fn(u64) -> Load) {
        for s in from..to {
            self.step(a, Time::from_secs(s), load(s));
        }
    }

    /// Spec replicas in force at second `s`.
    pub fn replicas_at(&self, s: u64) -> u32 {
        let t = Time::from_secs(s);
        self.log
            .iter()
            .rev()
            .find(|(at, _, _)| *at <= t)
            .map_or(self.initial, |(_, r, _)| *r)
    }
}

pub fn secs(s: u64) -> Time {
    Time::from_secs(s)
}
