//! Interface v1 is frozen: it must never change.
//!
//! This walks every type reachable from the v1 root module (fields, enum variants, function
//! signatures in vtables) and compares a stable text form of their layouts against
//! `abi-v1.snapshot`. v1 was frozen on 2026-11-23 (see `CHANGELOG.md`): a failure here means a
//! change that would break every plugin built against v1. Put new types in a `v2` module
//! instead; `UPDATE_ABI_SNAPSHOT=1` is for a new interface's own snapshot, never for v1.

use std::collections::{BTreeSet, HashSet};

use abi_stable::{type_layout::TLData, type_layout::TypeLayout, StableAbi};

/// Collects the text form of `layout` and everything it reaches. Layouts are visited once each
/// (by address); identical texts collapse in the sorted set, so the output does not depend on
/// build details such as addresses or type ids.
fn describe(layout: &'static TypeLayout, seen: &mut HashSet<usize>, out: &mut BTreeSet<String>) {
    if !seen.insert(layout as *const TypeLayout as usize) {
        return;
    }
    let key = format!("{}", layout.full_type());
    let mut text = format!(
        "{key} ({}::{}) size={} align={}\n",
        layout.package(),
        layout.name(),
        layout.size(),
        layout.alignment()
    );
    let data = layout.data();
    if let TLData::Enum(e) = &data {
        let names: Vec<_> = e.variant_names_iter().collect();
        text.push_str(&format!("  variants: {}\n", names.join(", ")));
    }
    let mut children = Vec::new();
    if let Some(fields) = layout.get_fields() {
        for f in fields.iter() {
            text.push_str(&format!("  {}: {}\n", f.name(), f.full_type()));
            children.push(f.layout());
            for func in f.function_range().iter() {
                text.push_str(&format!("    fn {}\n", func.to_string().replace('\n', " ")));
                for p in func.param_type_layouts.iter() {
                    children.push(p());
                }
                if let Some(r) = func.return_type_layout() {
                    children.push(r());
                }
            }
        }
    }
    for get in layout.shared_vars().type_layouts() {
        children.push(get());
    }
    out.insert(text);
    for c in children {
        describe(c, seen, out);
    }
}

#[test]
fn interface_v1_layout_matches_the_snapshot() {
    let mut types = BTreeSet::new();
    describe(
        <fstream_abi::v1::PluginModV1_Ref as StableAbi>::LAYOUT,
        &mut HashSet::new(),
        &mut types,
    );
    let current: String = types.into_iter().collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("abi-v1.snapshot");
    if std::env::var_os("UPDATE_ABI_SNAPSHOT").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != current {
        let first = expected
            .lines()
            .zip(current.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("snapshot: {a}\ncurrent:  {b}"))
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "interface v1 changed. First difference:\n{first}\n\
             v1 is frozen: add new types in a v2 module instead (core/abi/CHANGELOG.md)."
        );
    }
}
