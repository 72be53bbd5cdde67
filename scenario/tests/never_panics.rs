//! The parser's promise on any input: a scenario or diagnostics, never a panic.
//! (The libFuzzer target in `fuzz/` explores further; this runs in every test pass.)

use proptest::prelude::*;
use std::path::Path;

const EXAMPLES: &[&str] = &[
    include_str!("../../scenarios/spike.toml"),
    include_str!("../../scenarios/scale-to-zero.toml"),
    include_str!("../../scenarios/keda-queue.toml"),
    include_str!("../../scenarios/timeslice-vs-mig.toml"),
];

fn parse(text: &str, overrides: &[String]) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    if let Err(e) = lab_scenario::parse(text, "fuzz.toml", &base, overrides) {
        // Every diagnostic says something.
        assert!(e.diagnostics.iter().all(|d| !d.message.is_empty()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_examples_never_panic(which in 0..EXAMPLES.len(), at in any::<prop::sample::Index>(), cut in 0usize..40, insert in "\\PC{0,12}") {
        let text = EXAMPLES[which];
        let mut pos = at.index(text.len());
        while !text.is_char_boundary(pos) { pos -= 1; }
        let mut end = (pos + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let mutated = format!("{}{}{}", &text[..pos], insert, &text[end..]);
        parse(&mutated, &[]);
    }

    #[test]
    fn random_overrides_never_panic(key in "[a-z_.0-9\"]{1,30}", value in "\\PC{0,20}") {
        parse(EXAMPLES[0], &[format!("{key}={value}")]);
    }

    #[test]
    fn numbers_in_any_field_never_panic(which in 0..EXAMPLES.len(), n in prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), any::<i64>()]) {
        // Replace every small integer with an extreme one.
        let text: String = EXAMPLES[which]
            .split(' ')
            .map(|w| if w.parse::<u32>().is_ok() { n.to_string() } else { w.to_string() })
            .collect::<Vec<_>>()
            .join(" ");
        parse(&text, &[]);
    }
}
