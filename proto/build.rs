//! Compiles `contracts/` with protox (no system `protoc`) and generates the prost
//! messages plus tonic clients and servers, all reachable through `hatchet.rs`.
//! Also writes the encoded `FileDescriptorSet` for `hatchet_proto::FILE_DESCRIPTOR_SET`.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

/// Every contract, relative to `contracts/` (the include root, as in the engine repo).
const CONTRACTS: &[&str] = &[
    "dispatcher/dispatcher.proto",
    "events/events.proto",
    "workflows/workflows.proto",
    "v1/shared/condition.proto",
    "v1/shared/trigger.proto",
    "v1/workflows.proto",
    "v1/dispatcher.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=contracts");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let fds = protox::compile(CONTRACTS, ["contracts"])?;

    // The exported set carries no source info: it is for comparison and reflection.
    let mut bare = fds.clone();
    for file in &mut bare.file {
        file.source_code_info = None;
    }
    fs::write(out_dir.join("hatchet_descriptor.bin"), bare.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .include_file("hatchet.rs")
        .compile_fds(fds)?;
    Ok(())
}
