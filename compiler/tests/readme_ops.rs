//! README.md's "Supported ONNX operators" section names exactly the ops the importer takes: an
//! op added without documenting it, or documented without an importer, fails here.

use std::collections::BTreeSet;

use edgefuse_compiler::onnx::Registry;

#[test]
fn readme_lists_every_supported_op_and_no_other() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the compiler crate");
    let start = readme
        .find("## Supported ONNX operators")
        .expect("README.md has a \"Supported ONNX operators\" section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let documented: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_string)
        .collect();
    let supported: BTreeSet<String> = Registry::with_all_ops()
        .ops()
        .into_iter()
        .map(|(_, op)| op.to_string())
        .collect();
    let missing: Vec<_> = supported.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&supported).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's operator list differs from the importer: not listed {missing:?}, listed but not imported {extra:?}\nsupported: {supported:?}"
    );
}
