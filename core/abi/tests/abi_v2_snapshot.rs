//! Interface v2 may grow, but only by addition.
//!
//! This walks every type reachable from the v2 root module and compares it with
//! `abi-v2.snapshot`, where each line is tagged with the minor version that added it:
//!
//! * a type recorded there must still exist with the same kind and alignment;
//! * a *growable* type (a prefix type: the root module and every vtable; or a non-exhaustive
//!   enum) must still start with exactly the recorded lines, in order; anything after them is
//!   an addition;
//! * any other type must be unchanged, size included;
//! * an addition must be recorded, tagged with the current `INTERFACE_MINOR`, and that minor
//!   must be newer than the last released one (the snapshot's `released` line). Lines of a
//!   released minor never change.
//!
//! `UPDATE_ABI_SNAPSHOT=1 cargo test -p fstream-abi --test abi_v2_snapshot` records additions
//! (and, for an unreleased minor, rewrites its lines); it refuses while a released line would
//! change. The rules are in `CHANGELOG.md`, "Adding to the interface".

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use abi_stable::{type_layout::TLData, type_layout::TypeLayout, StableAbi};
use fstream_abi::v2::{INTERFACE_MAJOR, INTERFACE_MINOR};

/// One type as the snapshot sees it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// Kind, alignment, and size for types that cannot grow.
    header: String,
    growable: bool,
    /// Fields (`Variant.field` for enums), variants, and vtable signatures, in layout order.
    lines: Vec<String>,
}

fn key_of(layout: &'static TypeLayout) -> String {
    format!("{}::{}", layout.mod_path(), layout.full_type())
}

/// A field's type as text precise enough to see a change: an abi_stable container (`RVec`,
/// `NonExhaustive`, a trait object, ...) lists the interface types it holds.
fn sig(layout: &'static TypeLayout) -> String {
    let base = format!("{}", layout.full_type());
    let path = layout.mod_path().to_string();
    if !path.starts_with("abi_stable") {
        return if path.starts_with("fstream_abi") {
            format!("{path}::{base}")
        } else {
            base
        };
    }
    let mut inner = Vec::new();
    interface_types_in(layout, 4, &mut inner);
    if inner.is_empty() {
        base
    } else {
        format!("{base}{{{}}}", inner.join(", "))
    }
}

/// The interface's own types reachable from an abi_stable container, without going past them.
fn interface_types_in(layout: &'static TypeLayout, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    let fields = layout
        .get_fields()
        .map(|f| f.iter().map(|f| f.layout()).collect::<Vec<_>>());
    let phantoms = layout.phantom_fields().iter().map(|f| f.layout());
    for child in fields.unwrap_or_default().into_iter().chain(phantoms) {
        let path = child.mod_path().to_string();
        if path.starts_with("fstream_abi") {
            let s = format!("{path}::{}", child.full_type());
            if !out.contains(&s) {
                out.push(s);
            }
        } else if path.starts_with("abi_stable") {
            interface_types_in(child, depth - 1, out);
        }
    }
}

fn collect(
    layout: &'static TypeLayout,
    seen: &mut HashSet<usize>,
    out: &mut BTreeMap<String, Entry>,
) {
    if !seen.insert(layout as *const TypeLayout as usize) {
        return;
    }
    let data = layout.data();
    let (kind, growable) = match &data {
        TLData::Primitive(_) => ("primitive", false),
        TLData::Opaque => ("opaque", false),
        TLData::Struct { .. } => ("struct", false),
        TLData::Union { .. } => ("union", false),
        TLData::Enum(e) if e.exhaustiveness.is_exhaustive() => ("enum", false),
        TLData::Enum(_) => ("non-exhaustive enum", true),
        TLData::PrefixType(_) => ("prefix", true),
    };
    let header = if growable {
        format!("{kind} align={}", layout.alignment())
    } else {
        format!("{kind} size={} align={}", layout.size(), layout.alignment())
    };
    let mut lines = Vec::new();
    let mut children = Vec::new();
    let mut field_owner: Vec<String> = Vec::new();
    if let TLData::Enum(e) = &data {
        for (name, count) in e.variant_names_iter().zip(e.field_count.iter()) {
            lines.push(format!("variant {name}"));
            field_owner.extend(std::iter::repeat_n(format!("{name}."), usize::from(*count)));
        }
    }
    if let Some(fields) = layout.get_fields() {
        for (i, f) in fields.iter().enumerate() {
            let owner = field_owner.get(i).map(String::as_str).unwrap_or("");
            lines.push(format!("field {owner}{}: {}", f.name(), sig(f.layout())));
            children.push(f.layout());
            for func in f.function_range().iter() {
                lines.push(format!("  fn {}", func.to_string().replace('\n', " ")));
                for p in func.param_type_layouts.iter() {
                    children.push(p());
                }
                if let Some(r) = func.return_type_layout() {
                    children.push(r());
                }
            }
        }
    }
    if let TLData::Enum(_) = &data {
        // Variants first, then their fields: keep each variant's fields right after it so
        // that appending a variant appends lines.
        lines = regroup_enum(lines);
    }
    for f in layout.phantom_fields().iter() {
        children.push(f.layout());
    }
    for get in layout.shared_vars().type_layouts() {
        children.push(get());
    }
    let entry = Entry {
        header,
        growable,
        lines,
    };
    // abi_stable's generic containers share one name across their instances
    // (`RResult<u64, PluginError>`, `RResult<(), PluginError>`): their key includes what they
    // hold, so each instance is one entry whatever the order they are reached in. The
    // interface's own types are not generic and are keyed by path and name.
    let mut key = key_of(layout);
    if !key.starts_with("fstream_abi") {
        key = format!("{key} {{{}}}", entry.lines.join("; "));
    }
    out.insert(key, entry);
    for c in children {
        collect(c, seen, out);
    }
}

/// `variant A, variant B, field A.x, field B.y` → `variant A, field A.x, variant B, field B.y`.
fn regroup_enum(lines: Vec<String>) -> Vec<String> {
    let (variants, rest): (Vec<_>, Vec<_>) =
        lines.into_iter().partition(|l| l.starts_with("variant "));
    let mut out = Vec::new();
    for v in variants {
        let name = v.trim_start_matches("variant ").to_string();
        out.push(v);
        let prefix = format!("field {name}.");
        out.extend(rest.iter().filter(|l| l.starts_with(&prefix)).cloned());
    }
    out
}

fn current() -> BTreeMap<String, Entry> {
    let mut types = BTreeMap::new();
    collect(
        <fstream_abi::v2::PluginModV2_Ref as StableAbi>::LAYOUT,
        &mut HashSet::new(),
        &mut types,
    );
    types
}

/// The snapshot: the last released minor, and each type's lines with the minor that added them.
#[derive(Debug, Default)]
struct Snapshot {
    released: Option<u16>,
    types: BTreeMap<String, (Entry, Vec<u16>)>,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("abi-v2.snapshot")
}

fn parse(text: &str) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut cur: Option<(String, Entry, Vec<u16>)> = None;
    for raw in text.lines() {
        if let Some(r) = raw.strip_prefix("released: ") {
            snap.released = r.trim().strip_prefix("2.").and_then(|m| m.parse().ok());
        } else if let Some(rest) = raw.strip_prefix("type ") {
            if let Some((k, e, m)) = cur.take() {
                snap.types.insert(k, (e, m));
            }
            let (key, header) = rest
                .split_once(" | ")
                .expect("type line: `type KEY | HEADER`");
            let growable = header.starts_with("prefix") || header.starts_with("non-exhaustive");
            cur = Some((
                key.to_string(),
                Entry {
                    header: header.to_string(),
                    growable,
                    lines: Vec::new(),
                },
                Vec::new(),
            ));
        } else if let Some(line) = raw.strip_prefix("    ") {
            let (line, minor) = line
                .rsplit_once("  @2.")
                .expect("item line ends with `  @2.N`");
            let (_, entry, minors) = cur.as_mut().expect("item line before any type line");
            entry.lines.push(line.to_string());
            minors.push(minor.parse().expect("minor version"));
        }
    }
    if let Some((k, e, m)) = cur.take() {
        snap.types.insert(k, (e, m));
    }
    snap
}

fn render(snap: &Snapshot) -> String {
    let mut out = String::from(
        "# Interface v2 as built, by type. Each item line ends with the minor version that added\n\
         # it. Written by `UPDATE_ABI_SNAPSHOT=1 cargo test -p fstream-abi --test abi_v2_snapshot`;\n\
         # see tests/abi_v2_snapshot.rs and CHANGELOG.md.\n",
    );
    match snap.released {
        Some(m) => out.push_str(&format!("released: 2.{m}\n")),
        None => out.push_str("released: none\n"),
    }
    for (key, (entry, minors)) in &snap.types {
        out.push_str(&format!("type {key} | {}\n", entry.header));
        for (line, minor) in entry.lines.iter().zip(minors) {
            out.push_str(&format!("    {line}  @2.{minor}\n"));
        }
    }
    out
}

/// Compares the build with the snapshot. Returns the problems (breaking changes, or
/// additions not yet recorded) and the snapshot as it should be written.
fn compare(snap: &Snapshot, now: &BTreeMap<String, Entry>) -> (Vec<String>, Vec<String>, Snapshot) {
    let released = snap.released;
    let is_released = |m: u16| released.is_some_and(|r| m <= r);
    let mut breaking = Vec::new();
    let mut unrecorded = Vec::new();
    let mut next = Snapshot {
        released,
        types: BTreeMap::new(),
    };
    for (key, (old, minors)) in &snap.types {
        let frozen_type = minors.iter().all(|m| is_released(*m)) && !minors.is_empty()
            || (minors.is_empty() && released.is_some());
        match now.get(key) {
            None if frozen_type => breaking.push(format!("{key}: removed")),
            None => {}
            Some(new) => {
                if new.header != old.header && frozen_type {
                    breaking.push(format!("{key}: was `{}`, now `{}`", old.header, new.header));
                }
                for (i, (line, minor)) in old.lines.iter().zip(minors).enumerate() {
                    if is_released(*minor) && new.lines.get(i) != Some(line) {
                        breaking.push(format!(
                            "{key}: released line {} `{line}` (v2.{minor}) is now `{}`",
                            i + 1,
                            new.lines.get(i).map(String::as_str).unwrap_or("<gone>")
                        ));
                    }
                }
                if frozen_type && !old.growable && new.lines.len() != old.lines.len() {
                    breaking.push(format!("{key}: a type that cannot grow changed its fields"));
                }
            }
        }
    }
    for (key, new) in now {
        let old = snap.types.get(key);
        let mut minors = Vec::new();
        for (i, line) in new.lines.iter().enumerate() {
            let recorded = old.and_then(|(e, m)| (e.lines.get(i) == Some(line)).then(|| m[i]));
            match recorded {
                Some(m) => minors.push(m),
                None => {
                    if is_released(INTERFACE_MINOR) {
                        breaking.push(format!(
                            "{key}: `{line}` is new, but v2.{INTERFACE_MINOR} is released: raise INTERFACE_MINOR"
                        ));
                    }
                    unrecorded.push(format!("{key}: {line}"));
                    minors.push(INTERFACE_MINOR);
                }
            }
        }
        if old.is_none() && new.lines.is_empty() {
            unrecorded.push(format!("{key}: new type"));
        }
        next.types.insert(key.clone(), (new.clone(), minors));
    }
    (breaking, unrecorded, next)
}

#[test]
fn interface_v2_only_grows_by_recorded_additions() {
    assert_eq!(INTERFACE_MAJOR, 2);
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    let snap = parse(&text);
    let (breaking, unrecorded, next) = compare(&snap, &current());
    assert!(
        breaking.is_empty(),
        "interface v2 changed in a way that breaks plugins built against a released v2.x:\n  {}\n\
         Undo the change, or add what you need at the end (see CHANGELOG.md, \"Adding to the interface\").",
        breaking.join("\n  ")
    );
    if std::env::var_os("UPDATE_ABI_SNAPSHOT").is_some() {
        std::fs::write(path(), render(&next)).unwrap();
        return;
    }
    assert!(
        unrecorded.is_empty(),
        "interface v2 has additions abi-v2.snapshot does not record (as v2.{INTERFACE_MINOR}):\n  {}\n\
         Record them with UPDATE_ABI_SNAPSHOT=1 cargo test -p fstream-abi --test abi_v2_snapshot",
        unrecorded.join("\n  ")
    );
}

/// The rules themselves, on a made-up type: additions pass once recorded, anything else fails.
#[test]
fn the_rules_catch_removals_reorderings_and_changes() {
    let entry = |growable: bool, lines: &[&str]| Entry {
        header: if growable {
            "prefix align=8".into()
        } else {
            "struct size=8 align=8".into()
        },
        growable,
        lines: lines.iter().map(|s| s.to_string()).collect(),
    };
    let snap = |released: Option<u16>, e: Entry| Snapshot {
        released,
        types: BTreeMap::from([("T".to_string(), (e.clone(), vec![0; e.lines.len()]))]),
    };
    let now = |e: Entry| BTreeMap::from([("T".to_string(), e)]);
    let released = snap(Some(0), entry(true, &["field a: u8", "field b: u8"]));
    // An addition at the end of a growable type: not breaking, but must be recorded.
    let (b, u, _) = compare(
        &released,
        &now(entry(true, &["field a: u8", "field b: u8", "field c: u8"])),
    );
    assert!(
        u.len() == 1 && (b.is_empty() || INTERFACE_MINOR == 0),
        "{b:?} {u:?}"
    );
    // Reordering, removal, a changed type: breaking.
    for lines in [
        &["field b: u8", "field a: u8"][..],
        &["field a: u8"],
        &["field a: u16", "field b: u8"],
    ] {
        let (b, _, _) = compare(&released, &now(entry(true, lines)));
        assert!(!b.is_empty(), "{lines:?} should break");
    }
    // A plain struct may not grow at all once released.
    let plain = snap(Some(0), entry(false, &["field a: u8"]));
    let (b, _, _) = compare(&plain, &now(entry(false, &["field a: u8", "field b: u8"])));
    assert!(!b.is_empty());
    // Before release, anything goes (the lines are rewritten on update).
    let draft = snap(None, entry(false, &["field a: u8"]));
    let (b, u, _) = compare(&draft, &now(entry(false, &["field z: u64"])));
    assert!(b.is_empty() && !u.is_empty());
    // The file format round-trips.
    let (_, _, next) = compare(
        &released,
        &now(entry(true, &["field a: u8", "field b: u8"])),
    );
    let text = render(&next);
    assert_eq!(render(&parse(&text)), text);
}
