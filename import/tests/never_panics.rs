//! Whatever the bytes, `import_yaml` returns an import or an error, never a panic,
//! and an error's position lies inside the text.

use lab_import::import_yaml;
use proptest::prelude::*;

const MANIFESTS: &[&str] = &[
    include_str!("manifests/hpa.yaml"),
    include_str!("manifests/scaledobject.yaml"),
    include_str!("manifests/isvc-serverless.yaml"),
    include_str!("manifests/hpa-kubectl.yaml"),
];

fn check(text: &str) {
    if let Err(e) = import_yaml(text) {
        if let Some(p) = e.position {
            let lines = text.lines().count().max(1) as u64;
            assert!(p.line >= 1 && p.line <= lines + 1, "{e} in {lines} lines");
            assert!(p.column >= 1, "{e}");
        }
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text(s in "\\PC{0,200}") {
        check(&s);
    }

    /// A real manifest with one span of it replaced: the errors that matter.
    #[test]
    fn a_manifest_with_a_span_replaced(
        which in 0..MANIFESTS.len(),
        at in 0.0f64..1.0,
        len in 0usize..12,
        with in "[ a-z0-9:\\-\\[\\]{}\"'#\\n]{0,8}",
    ) {
        let text = MANIFESTS[which];
        let chars: Vec<char> = text.chars().collect();
        let start = (at * chars.len() as f64) as usize;
        let end = (start + len).min(chars.len());
        let mutated: String = chars[..start]
            .iter()
            .chain(with.chars().collect::<Vec<_>>().iter())
            .chain(chars[end..].iter())
            .collect();
        check(&mutated);
    }
}
