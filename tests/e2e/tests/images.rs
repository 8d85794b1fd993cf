//! The images `tests/env/build-images` assembles without Docker (and that the real node runs)
//! agree with the Dockerfiles users build with Docker: same user, entrypoint, ports, env and
//! files. They run as non-root, carry no shell, rebuild to the same digest from the same
//! binaries, and are the images the node's containerd holds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hatchet_e2e::{Scratch, World, run};
use serde_json::Value;

/// What a Dockerfile's final stage says about the image it makes.
#[derive(Debug, Default)]
struct Stage {
    user: Option<String>,
    entrypoint: Vec<String>,
    ports: BTreeSet<String>,
    env: Vec<String>,
    files: Vec<String>,
}

/// Reads the last stage of a Dockerfile (continuation lines joined, comments dropped).
fn final_stage(dockerfile: &str) -> Stage {
    let joined = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let mut stage = Stage::default();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => stage = Stage::default(),
            "USER" => stage.user = Some(rest.to_owned()),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec (JSON) form"),
            "EXPOSE" => stage.ports.extend(rest.split_whitespace().map(|p| {
                if p.contains('/') {
                    p.to_owned()
                } else {
                    format!("{p}/tcp")
                }
            })),
            "ENV" => stage.env.push(rest.to_owned()),
            "COPY" => {
                let dst = rest.split_whitespace().last().expect("COPY has a destination");
                stage.files.push(dst.trim_start_matches('/').to_owned());
            }
            _ => {}
        }
    }
    stage
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// The image's manifest digest, config and layer listing (`tar -tzv` lines).
struct Image {
    digest: String,
    config: Value,
    layer: Vec<String>,
}

fn open_layout(layout: &Path) -> Image {
    let index = read_json(&layout.join("index.json"));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index names a manifest")
        .to_owned();
    let manifest = read_json(&blob(layout, &digest));
    let config = read_json(&blob(layout, manifest["config"]["digest"].as_str().unwrap()));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    let listing = run(Command::new("tar")
        .arg("-tzvf")
        .arg(blob(layout, layers[0]["digest"].as_str().unwrap())))
    .expect("list the layer");
    Image {
        digest,
        config,
        layer: listing.lines().map(str::to_owned).collect(),
    }
}

/// The layer entry for `path` (`tar -tv` line ending in it).
fn entry<'a>(image: &'a Image, path: &str) -> Option<&'a str> {
    image
        .layer
        .iter()
        .map(String::as_str)
        .find(|l| l.split_whitespace().last() == Some(path))
}

fn check_image(world: &World, name: &str, dockerfile: &str) {
    let images = PathBuf::from(world.var("IMAGES_DIR").expect("IMAGES_DIR"));
    let layout = images.join(name);
    let image = open_layout(&layout);
    let cfg = &image.config["config"];
    let stage = final_stage(&std::fs::read_to_string(repo().join(dockerfile)).unwrap());

    // The same contract as the Dockerfile.
    assert_eq!(cfg["User"].as_str(), stage.user.as_deref(), "{name}: user");
    let entrypoint: Vec<String> = serde_json::from_value(cfg["Entrypoint"].clone()).unwrap();
    assert_eq!(entrypoint, stage.entrypoint, "{name}: entrypoint");
    let ports: BTreeSet<String> = cfg["ExposedPorts"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(ports, stage.ports, "{name}: ports");
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for e in &stage.env {
        assert!(env.contains(&e.as_str()), "{name}: ENV {e} missing from {env:?}");
    }
    assert!(!stage.files.is_empty(), "{dockerfile} copies the binary");
    for f in &stage.files {
        let line = entry(&image, f).unwrap_or_else(|| panic!("{name}: {f} is not in the image"));
        assert!(
            line.starts_with("-rwxr-xr-x"),
            "{name}: {f} is an executable file: {line}"
        );
    }

    // Non-root, no shell, nothing setuid.
    let uid: u32 = stage
        .user
        .as_deref()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0, "{name} runs as root");
    for shell in [
        "bin/sh",
        "bin/bash",
        "bin/dash",
        "usr/bin/sh",
        "usr/bin/bash",
        "bin/busybox",
    ] {
        assert!(entry(&image, shell).is_none(), "{name} has a shell: {shell}");
    }
    for line in &image.layer {
        let mode = line.split_whitespace().next().unwrap_or("");
        assert!(
            !mode.contains('s') && !mode.contains('S'),
            "{name}: setuid/setgid entry {line}"
        );
    }

    // Reproducible: the recorded inputs assemble to the same digest again.
    let args = std::fs::read_to_string(images.join(format!("{name}.args"))).expect("recorded build arguments");
    let again = Scratch::new(&format!("hatchet-image-{name}"));
    let recorded = std::fs::read_to_string(images.join(format!("{name}.digest"))).unwrap();
    let index = read_json(&layout.join("index.json"));
    let reference = index["manifests"][0]["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap()
        .to_owned();
    let rebuilt = run(Command::new("python3")
        .arg(repo().join("tests/env/lib/oci-image.py"))
        .arg("--out")
        .arg(&again.path)
        .args(["--name", &reference])
        .args(args.lines()))
    .expect("assemble the image again");
    assert_eq!(rebuilt.trim(), image.digest, "{name}: same inputs, same digest");
    assert_eq!(recorded.trim(), image.digest, "{name}: the recorded digest");

    // The node's containerd holds exactly this image under its reference.
    let ctr = world.var("CTR").expect("CTR");
    let mut parts = ctr.split_whitespace();
    let listed = run(Command::new(parts.next().unwrap()).args(parts).args(["images", "ls"])).expect("ctr images ls");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("{reference} ")) && l.contains(&image.digest)),
        "{reference}@{} not in containerd:\n{listed}",
        image.digest
    );
}

#[test]
fn the_worker_image_matches_its_dockerfile_is_non_root_shell_free_and_reproducible() {
    let world = World::load().expect("local world (tests/env/up, then tests/env/build-images)");
    check_image(&world, "hatchet-worker", "worker-image/Dockerfile");
}

#[test]
fn the_operator_image_matches_its_dockerfile_is_non_root_shell_free_and_reproducible() {
    let world = World::load().expect("local world (tests/env/up, then tests/env/build-images)");
    check_image(&world, "hatchet-operator", "Dockerfile");
}

#[test]
fn dockerfile_stages_are_read_from_the_last_from() {
    let stage = final_stage(
        "FROM a AS build\nUSER root\nCOPY x /x\n# comment\nFROM b\nCOPY --from=build /out \\\n  /usr/local/bin/t\n\
         USER 1:1\nEXPOSE 80 53/udp\nENV A=1\nENTRYPOINT [\"/usr/local/bin/t\"]\n",
    );
    assert_eq!(stage.user.as_deref(), Some("1:1"));
    assert_eq!(stage.files, ["usr/local/bin/t"]);
    assert_eq!(stage.ports, BTreeSet::from(["80/tcp".to_owned(), "53/udp".to_owned()]));
    assert_eq!(stage.env, ["A=1"]);
    assert_eq!(stage.entrypoint, ["/usr/local/bin/t"]);
}

/// What the build stage (the first) of a Dockerfile copies into its work dir, as written.
fn build_stage_copies(dockerfile: &str) -> Vec<String> {
    let mut copies = Vec::new();
    let mut stages = 0;
    for line in dockerfile.lines().map(str::trim) {
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => stages += 1,
            "COPY" if stages == 1 => {
                let args: Vec<&str> = rest.split_whitespace().collect();
                if let Some((_, sources)) = args.split_last() {
                    copies.extend(sources.iter().map(|s| s.trim_end_matches('/').to_owned()));
                }
            }
            _ => {}
        }
    }
    copies
}

/// Cargo loads every workspace member to build any one of them, so a Dockerfile that leaves a
/// member out fails at its first `cargo build`.
#[test]
fn both_dockerfiles_copy_every_workspace_member() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("the workspace manifest");
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a members line");
    let list = members_line.split_once('=').expect("members = [...]").1.trim();
    let members: Vec<String> = serde_json::from_str(list).expect("members as a one-line list of strings");
    assert!(members.len() > 3, "{members:?}");
    for dockerfile in ["Dockerfile", "worker-image/Dockerfile"] {
        let text = std::fs::read_to_string(repo().join(dockerfile)).expect("the Dockerfile");
        let copies = build_stage_copies(&text);
        for member in &members {
            let copied = copies
                .iter()
                .any(|c| member == c || member.starts_with(&format!("{c}/")));
            assert!(
                copied,
                "{dockerfile} does not copy workspace member {member} (it copies {copies:?})"
            );
        }
    }
}
