//! Contract test: our `contracts/` must describe exactly the engine's wire.
//!
//! The engine's own `.proto` files (Hatchet v0.104.7, `api-contracts/`) are compiled with
//! protox at test time and compared, descriptor by descriptor, with
//! [`hatchet_proto::FILE_DESCRIPTOR_SET`]. Every difference is reported; any difference
//! (including a message, enum, service, field, value or rpc only one side has) fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

use hatchet_e2e::hatchet::ENGINE_VERSION;

/// The engine's contracts, relative to its `api-contracts/` include root.
const CONTRACTS: &[&str] = &[
    "dispatcher/dispatcher.proto",
    "events/events.proto",
    "workflows/workflows.proto",
    "v1/workflows.proto",
    "v1/dispatcher.proto",
    "v1/shared/condition.proto",
    "v1/shared/trigger.proto",
];

#[test]
fn contracts_match_the_engine() {
    let dir = engine_contracts_dir();
    let engine = protox::compile(CONTRACTS, [&dir])
        .unwrap_or_else(|e| panic!("compiling the engine's contracts in {}: {e}", dir.display()));
    let ours = ours();

    let differences = diff(&engine, &ours);
    assert!(
        differences.is_empty(),
        "{} difference(s) between the engine's contracts ({}) and ours:\n  {}",
        differences.len(),
        dir.display(),
        differences.join("\n  "),
    );

    let index = Index::new(&engine);
    println!(
        "contracts match engine {ENGINE_VERSION}: {} files, {} messages, {} enums, {} services",
        index.files.len(),
        index.messages.len(),
        index.enums.len(),
        index.services.len(),
    );
}

/// The comparison must not be vacuous: it has to notice small, wire-breaking edits.
#[test]
fn comparison_detects_changes() {
    let base = ours();
    assert_eq!(diff(&base, &base), Vec::<String>::new());

    // A renumbered field.
    let mut changed = base.clone();
    let field = message_mut(&mut changed, "dispatcher/dispatcher.proto", "WorkerRegisterRequest")
        .field
        .iter_mut()
        .find(|f| f.name() == "slot_config")
        .expect("slot_config");
    field.number = Some(8);
    let d = diff(&base, &changed);
    assert!(
        d.iter()
            .any(|l| l.contains(".WorkerRegisterRequest.slot_config") && l.contains("number")),
        "renumbered field not reported: {d:#?}"
    );

    // A message we lack.
    let mut changed = base.clone();
    file_mut(&mut changed, "v1/workflows.proto")
        .message_type
        .retain(|m| m.name() != "CreateTaskOpts");
    let d = diff(&base, &changed);
    assert!(
        d.iter()
            .any(|l| l.contains(".v1.CreateTaskOpts") && l.contains("missing")),
        "missing message not reported: {d:#?}"
    );

    // A flipped streaming flag.
    let mut changed = base.clone();
    let listen = file_mut(&mut changed, "dispatcher/dispatcher.proto").service[0]
        .method
        .iter_mut()
        .find(|m| m.name() == "ListenV2")
        .expect("ListenV2");
    listen.server_streaming = Some(false);
    let d = diff(&base, &changed);
    assert!(
        d.iter()
            .any(|l| l.contains(".Dispatcher/ListenV2") && l.contains("server_streaming")),
        "streaming flag not reported: {d:#?}"
    );
}

fn ours() -> FileDescriptorSet {
    FileDescriptorSet::decode(hatchet_proto::FILE_DESCRIPTOR_SET).expect("hatchet_proto::FILE_DESCRIPTOR_SET decodes")
}

/// The engine's contracts, checked to hold the files compared.
fn engine_contracts_dir() -> PathBuf {
    let dir = hatchet_e2e::hatchet::engine_contracts();
    assert!(
        dir.join(CONTRACTS[0]).is_file(),
        "{} holds no {}",
        dir.display(),
        CONTRACTS[0]
    );
    dir
}

fn file_mut<'a>(set: &'a mut FileDescriptorSet, name: &str) -> &'a mut FileDescriptorProto {
    set.file.iter_mut().find(|f| f.name() == name).expect(name)
}

fn message_mut<'a>(set: &'a mut FileDescriptorSet, file: &str, name: &str) -> &'a mut DescriptorProto {
    file_mut(set, file)
        .message_type
        .iter_mut()
        .find(|m| m.name() == name)
        .expect(name)
}

/// Every message, enum and service of a set (well-known types left out), by
/// fully-qualified name, with the file that declares it.
struct Index<'a> {
    files: BTreeMap<&'a str, &'a FileDescriptorProto>,
    messages: BTreeMap<String, (&'a str, &'a DescriptorProto)>,
    enums: BTreeMap<String, (&'a str, &'a EnumDescriptorProto)>,
    services: BTreeMap<String, (&'a str, &'a ServiceDescriptorProto)>,
}

impl<'a> Index<'a> {
    fn new(set: &'a FileDescriptorSet) -> Self {
        let mut index = Index {
            files: BTreeMap::new(),
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
            services: BTreeMap::new(),
        };
        for file in set.file.iter().filter(|f| !f.name().starts_with("google/protobuf/")) {
            let scope = match file.package() {
                "" => String::new(),
                package => format!(".{package}"),
            };
            index.files.insert(file.name(), file);
            for message in &file.message_type {
                index.add_message(file.name(), &scope, message);
            }
            for e in &file.enum_type {
                index.enums.insert(format!("{scope}.{}", e.name()), (file.name(), e));
            }
            for service in &file.service {
                index
                    .services
                    .insert(format!("{scope}.{}", service.name()), (file.name(), service));
            }
        }
        index
    }

    fn add_message(&mut self, file: &'a str, scope: &str, message: &'a DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        for nested in &message.nested_type {
            self.add_message(file, &name, nested);
        }
        for e in &message.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), (file, e));
        }
        self.messages.insert(name, (file, message));
    }
}

/// Every difference between `engine` and `ours`, one human-readable line each.
fn diff(engine: &FileDescriptorSet, ours: &FileDescriptorSet) -> Vec<String> {
    let (e, o) = (Index::new(engine), Index::new(ours));
    let mut out = Vec::new();

    for (name, (ef, of)) in paired("file", &e.files, &o.files, &mut out) {
        let attrs = |f: &FileDescriptorProto| {
            let deps: BTreeSet<&String> = f.dependency.iter().collect();
            vec![
                ("package", dbg(f.package())),
                ("syntax", dbg(f.syntax())),
                ("dependencies", dbg(deps)),
                ("public_dependency", dbg(&f.public_dependency)),
            ]
        };
        compare(&format!("file {name}"), attrs(ef), attrs(of), &mut out);
    }

    for (name, ((ef, em), (of, om))) in paired("message", &e.messages, &o.messages, &mut out) {
        compare(
            &format!("message {name}"),
            message_attrs(ef, em),
            message_attrs(of, om),
            &mut out,
        );
        let what = format!("field of {name}");
        let (efs, ofs) = (by_name(&em.field, |f| f.name()), by_name(&om.field, |f| f.name()));
        for (field, (ef, of)) in paired(&what, &efs, &ofs, &mut out) {
            compare(
                &format!("field {name}.{field}"),
                field_attrs(em, ef),
                field_attrs(om, of),
                &mut out,
            );
        }
    }

    for (name, ((ef, ee), (of, oe))) in paired("enum", &e.enums, &o.enums, &mut out) {
        let attrs = |file: &str, e: &EnumDescriptorProto| {
            vec![
                ("file", dbg(file)),
                ("options", dbg(&e.options)),
                ("reserved_range", dbg(&e.reserved_range)),
                ("reserved_name", dbg(&e.reserved_name)),
            ]
        };
        compare(&format!("enum {name}"), attrs(ef, ee), attrs(of, oe), &mut out);
        let what = format!("value of {name}");
        let (evs, ovs) = (by_name(&ee.value, |v| v.name()), by_name(&oe.value, |v| v.name()));
        for (value, (ev, ov)) in paired(&what, &evs, &ovs, &mut out) {
            compare(
                &format!("enum value {name}.{value}"),
                vec![("number", dbg(ev.number())), ("options", dbg(&ev.options))],
                vec![("number", dbg(ov.number())), ("options", dbg(&ov.options))],
                &mut out,
            );
        }
    }

    for (name, ((ef, es), (of, os))) in paired("service", &e.services, &o.services, &mut out) {
        compare(
            &format!("service {name}"),
            vec![("file", dbg(ef)), ("options", dbg(&es.options))],
            vec![("file", dbg(of)), ("options", dbg(&os.options))],
            &mut out,
        );
        let what = format!("rpc of {name}");
        let (ems, oms) = (by_name(&es.method, |m| m.name()), by_name(&os.method, |m| m.name()));
        for (rpc, (em, om)) in paired(&what, &ems, &oms, &mut out) {
            let attrs = |m: &prost_types::MethodDescriptorProto| {
                vec![
                    ("input_type", dbg(m.input_type())),
                    ("output_type", dbg(m.output_type())),
                    ("client_streaming", dbg(m.client_streaming())),
                    ("server_streaming", dbg(m.server_streaming())),
                    ("options", dbg(&m.options)),
                ]
            };
            compare(&format!("rpc {name}/{rpc}"), attrs(em), attrs(om), &mut out);
        }
    }
    out
}

type Attrs = Vec<(&'static str, String)>;

fn message_attrs(file: &str, m: &DescriptorProto) -> Attrs {
    let oneofs: Vec<&str> = m.oneof_decl.iter().map(|o| o.name()).collect();
    vec![
        ("file", dbg(file)),
        ("options", dbg(&m.options)),
        ("oneofs", dbg(oneofs)),
        ("reserved_range", dbg(&m.reserved_range)),
        ("reserved_name", dbg(&m.reserved_name)),
        ("extension_range", dbg(&m.extension_range)),
        ("extensions", dbg(m.extension.len())),
    ]
}

fn field_attrs(m: &DescriptorProto, f: &FieldDescriptorProto) -> Attrs {
    let oneof = f
        .oneof_index
        .and_then(|i| m.oneof_decl.get(usize::try_from(i).ok()?))
        .map(|o| o.name());
    vec![
        ("number", dbg(f.number())),
        ("type", dbg(f.r#type())),
        ("type_name", dbg(f.type_name())),
        ("label", dbg(f.label())),
        ("proto3_optional", dbg(f.proto3_optional())),
        ("oneof", dbg(oneof)),
        ("json_name", dbg(f.json_name())),
        ("default_value", dbg(f.default_value())),
        ("extendee", dbg(f.extendee())),
        ("options", dbg(&f.options)),
    ]
}

fn by_name<'x, T>(items: &'x [T], name: impl Fn(&'x T) -> &'x str) -> BTreeMap<&'x str, &'x T> {
    items.iter().map(|item| (name(item), item)).collect()
}

fn dbg(value: impl Debug) -> String {
    format!("{value:?}")
}

/// Reports keys only one side has; returns the pairs present on both.
fn paired<'m, K: Ord + std::fmt::Display, V>(
    what: &str,
    engine: &'m BTreeMap<K, V>,
    ours: &'m BTreeMap<K, V>,
    out: &mut Vec<String>,
) -> Vec<(&'m K, (&'m V, &'m V))> {
    for key in engine.keys().filter(|k| !ours.contains_key(k)) {
        out.push(format!("{what} {key}: missing from ours"));
    }
    for key in ours.keys().filter(|k| !engine.contains_key(k)) {
        out.push(format!("{what} {key}: ours only, the engine has no such thing"));
    }
    engine
        .iter()
        .filter_map(|(k, e)| ours.get(k).map(|o| (k, (e, o))))
        .collect()
}

fn compare(what: &str, engine: Attrs, ours: Attrs, out: &mut Vec<String>) {
    for ((attr, e), (_, o)) in engine.into_iter().zip(ours) {
        if e != o {
            out.push(format!("{what}: {attr} is {o} in ours, {e} in the engine"));
        }
    }
}
