#!/usr/bin/env python3
"""Build a single-layer OCI image from files on this machine, without Docker.

Reproducible: entries are sorted, owned by root unless said otherwise, dated 1970-01-01, and
gzip carries no name or time, so the same inputs always give the same manifest digest.
Writes an OCI image layout (a directory) and, with --archive, the same layout as a tar that
`ctr images import` takes. Prints the manifest digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

EPOCH = "1970-01-01T00:00:00Z"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Layer:
    """The image's one filesystem layer: path -> (kind, mode, uid, gid, content)."""

    def __init__(self):
        self.entries = {}

    def add_dir(self, path, mode=0o755, uid=0, gid=0):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            self.entries.setdefault(parent, ("dir", 0o755, 0, 0, None))
        self.entries[path] = ("dir", mode, uid, gid, None)

    def add_file(self, path, content, mode=0o644, uid=0, gid=0):
        path = path.strip("/")
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self.add_dir(parent)
        self.entries[path] = ("file", mode, uid, gid, content)

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, mode, uid, gid, content = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, 0
                info.uname = info.gname = ""
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        return buf.getvalue()


def elf_libraries(binary):
    """The shared objects `binary` loads (as ldd resolves them here), by the path it asks for."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target:
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split("(")[0].strip())
    if not libs:
        sys.exit(f"oci-image: ldd found no libraries for {binary} (a static binary needs no --elf-libs)")
    return libs


def octal(text):
    return int(text, 8)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="OCI layout directory to write (replaced)")
    p.add_argument("--archive", help="also write the layout as this tar file")
    p.add_argument("--name", required=True, help="image reference, e.g. hatchet.local/hatchet-worker:0.1.0")
    p.add_argument("--user", help="uid:gid the image runs as")
    p.add_argument("--account", action="append", default=[], metavar="NAME:UID",
                   help="an /etc/passwd and /etc/group entry (with a home directory) beside root's")
    p.add_argument("--entrypoint", type=json.loads, help="JSON array")
    p.add_argument("--cmd", type=json.loads, help="JSON array")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--port", action="append", default=[], metavar="PORT/PROTO")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--file", action="append", default=[], metavar="SRC:DST[:MODE]")
    p.add_argument("--dir", action="append", default=[], metavar="DST[:MODE]")
    p.add_argument("--elf-libs", action="append", default=[], metavar="BINARY",
                   help="add the shared libraries BINARY needs, at the paths it loads them from")
    return p.parse_args()


def build_layer(args):
    layer = Layer()
    for spec in args.dir:
        dst, _, mode = spec.partition(":")
        layer.add_dir(dst, octal(mode) if mode else 0o755)
    for spec in args.file:
        src, dst, *mode = spec.split(":")
        with open(src, "rb") as f:
            content = f.read()
        layer.add_file(dst, content, octal(mode[0]) if mode else 0o644)
    for binary in args.elf_libs:
        for lib in elf_libraries(binary):
            with open(os.path.realpath(lib), "rb") as f:
                layer.add_file(lib, f.read(), 0o755)
    if args.account:
        passwd = ["root:x:0:0:root:/root:/sbin/nologin"]
        group = ["root:x:0:"]
        layer.add_dir("root", 0o700)
        for acct in args.account:
            name, uid = acct.split(":")
            passwd.append(f"{name}:x:{uid}:{uid}:{name}:/home/{name}:/sbin/nologin")
            group.append(f"{name}:x:{uid}:")
            layer.add_dir(f"home/{name}", 0o700, int(uid), int(uid))
        layer.add_file("etc/passwd", ("\n".join(passwd) + "\n").encode())
        layer.add_file("etc/group", ("\n".join(group) + "\n").encode())
    return layer.tar()


def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def main():
    args = parse_args()
    tar = build_layer(args)
    gz = gzip.compress(tar, compresslevel=6, mtime=0)

    out = args.out
    if os.path.exists(out):
        subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    layer_digest, layer_size = blob(out, gz)
    config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": args.env,
            "ExposedPorts": {p if "/" in p else f"{p}/tcp": {} for p in args.port},
            "Labels": dict(kv.split("=", 1) for kv in args.label),
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created": EPOCH, "created_by": "tests/env/lib/oci-image.py"}],
    }
    if args.user:
        config["config"]["User"] = args.user
    if args.entrypoint:
        config["config"]["Entrypoint"] = args.entrypoint
    if args.cmd:
        config["config"]["Cmd"] = args.cmd
    config_digest, config_size = blob(out, canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = blob(out, canonical(manifest))
    tag = args.name.rsplit(":", 1)[1] if ":" in args.name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": args.name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(canonical(index))
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    if args.archive:
        layout = Layer()
        for root, _, files in os.walk(out):
            for name in files:
                full = os.path.join(root, name)
                with open(full, "rb") as f:
                    layout.add_file(os.path.relpath(full, out), f.read())
        with open(args.archive, "wb") as f:
            f.write(layout.tar())
    print(manifest_digest)


if __name__ == "__main__":
    main()
