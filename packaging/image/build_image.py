"""Build the vk-trio OCI image without a container engine: mmdebstrap, then umoci; skopeo inspects.

Two layers:

1. **base**: a minimal Debian bookworm with CPython 3.11 (``python3.11-minimal``,
   ``libpython3.11-stdlib``) and ``ca-certificates``, made by mmdebstrap (essential variant,
   merged /usr, no docs/man/locales) plus a ``vk-trio`` user and group 65532. It depends only on
   its recipe, so the tar is cached under ``~/.cache/vk-trio/image/`` keyed on a hash of the
   recipe; ``--refresh-base`` rebuilds it (to pick up Debian security updates).
2. **app**: ``/opt/vk-trio``, a venv made from the .pyz *inside* the base (``PEX_TOOLS=1
   vk-trio.pyz venv``), so its interpreter links point at the image's Python; every module is
   compiled to ``unchecked-hash`` bytecode at build time, so a start writes nothing and the
   image runs with a read-only root filesystem (nothing is written outside /tmp).

The entrypoint is ``/opt/vk-trio/pex`` (the venv's launcher of ``vk_trio.cli:main``), the
default command ``run``, the user 65532:65532. Every timestamp comes from SOURCE_DATE_EPOCH
(fixed, 2024-01-01, unless set), the app layer is written in sorted order with normalised
owners and times, so the same base and the same .pyz give the same manifest digest.

Needs root (mmdebstrap --mode=root, chroot) and Debian's mmdebstrap, umoci and skopeo, which it
installs with apt-get when missing.

Usage::

    python packaging/image/build_image.py [--pyz dist/vk-trio.pyz] [--layout dist/oci]
    skopeo inspect oci:dist/oci:<version>
    skopeo copy oci:dist/oci:<version> docker://REGISTRY/vk-trio:<version>
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
UID = GID = 65532
APP_DIR = "/opt/vk-trio"
TOOLS = {"mmdebstrap": "mmdebstrap", "umoci": "umoci", "skopeo": "skopeo"}  # command: package

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "ca-certificates")
EXCLUDED = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
USER_HOOKS = (
    f'echo "vk-trio:x:{UID}:{GID}:vk-trio:/nonexistent:/usr/sbin/nologin" >> "$1/etc/passwd"',
    f'echo "vk-trio:x:{GID}:" >> "$1/etc/group"',
)


def log(message: str) -> None:
    print(f"build_image: {message}", file=sys.stderr, flush=True)


def ensure_tools() -> None:
    """Install mmdebstrap, umoci and skopeo from Debian when one is missing."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    log(f"installing {' '.join(missing)} with apt-get")
    quiet = {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env={**os.environ, **quiet})
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env={**os.environ, **quiet},
        stdout=subprocess.DEVNULL,
    )


def mmdebstrap_argv(output: str) -> list[str]:
    """The mmdebstrap command line: with SOURCE_DATE_EPOCH, the whole recipe of the base layer."""
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(PACKAGES)}",
        *[f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDED],
        *[f"--customize-hook={hook}" for hook in USER_HOOKS],
        "--quiet",
        SUITE,
        output,
        *MIRRORS,
    ]


def base_key(epoch: int) -> str:
    version = subprocess.run(
        ["mmdebstrap", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    recipe = {"argv": mmdebstrap_argv("OUTPUT"), "epoch": epoch, "mmdebstrap": version}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "vk-trio" / "image"


def base_rootfs(epoch: int, *, refresh: bool = False) -> Path:
    """The base layer tar, from the cache or built now (about 30 s)."""
    key = base_key(epoch)
    cached = cache_dir() / f"base-{key}.tar"
    if cached.exists() and not refresh:
        log(f"base rootfs from cache: {cached}")
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial.tar")
    argv = mmdebstrap_argv(str(partial))
    log(f"building the base rootfs with mmdebstrap ({cached.name})")
    started = time.monotonic()
    subprocess.run(argv, check=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
    partial.rename(cached)
    log(f"base rootfs built in {time.monotonic() - started:.0f}s")
    for stale in cached.parent.glob("base-*.tar"):
        if stale != cached:
            stale.unlink()
    return cached


def install_venv(rootfs: Path, pyz: Path, epoch: int) -> None:
    """Unpack the .pyz into a venv at APP_DIR inside ``rootfs``, compiled, with its Python."""
    shutil.copyfile(pyz, rootfs / "tmp" / "vk-trio.pyz")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "SOURCE_DATE_EPOCH": str(epoch),
        "PEX_TOOLS": "1",
        "LC_ALL": "C.UTF-8",
    }
    subprocess.run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3.11",
            "/tmp/vk-trio.pyz",
            "venv",
            "--site-packages-copies",
            "--pex-root",
            "/tmp/pex-root",
            APP_DIR,
        ],
        check=True,
        env=env,
    )
    # unchecked-hash: no timestamps in the .pyc files, and no stat of the sources at import
    subprocess.run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3.11",
            "-m",
            "compileall",
            "-q",
            "-j1",
            "--invalidation-mode",
            "unchecked-hash",
            f"{APP_DIR}/lib",
        ],
        check=True,
        env={k: v for k, v in env.items() if k != "PEX_TOOLS"},
    )


def write_app_layer(rootfs: Path, out: Path, epoch: int) -> None:
    """A tar of APP_DIR (and its parents), in sorted order, owned by root, every mtime = epoch."""
    app = rootfs / APP_DIR.strip("/")
    parents = [p for p in reversed(app.relative_to(rootfs).parents) if p != Path(".")]
    names = [p.as_posix() for p in parents] + [app.relative_to(rootfs).as_posix()]
    names += sorted(p.relative_to(rootfs).as_posix() for p in app.rglob("*"))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tar.gettarinfo(str(rootfs / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
            if info.isreg():
                with (rootfs / name).open("rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


def umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True)


def assemble(layout: Path, tag: str, *, base: Path, app: Path, epoch: int, version: str) -> str:
    """The OCI layout at ``layout`` with the image ``tag``; returns its manifest digest."""
    created = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if layout.exists():
        shutil.rmtree(layout)
    image = f"{layout}:{tag}"
    umoci("init", "--layout", str(layout))
    umoci("new", "--image", image)
    for tar, what in ((base, "debian bookworm, python3.11"), (app, f"vk-trio {version}")):
        umoci(
            "raw",
            "add-layer",
            "--image",
            image,
            "--history.created",
            created,
            "--history.created_by",
            what,
            str(tar),
        )
    umoci(
        "config",
        "--image",
        image,
        "--no-history",
        "--created",
        created,
        "--os",
        "linux",
        "--architecture",
        "amd64",
        "--config.user",
        f"{UID}:{GID}",
        "--config.workingdir",
        "/tmp",
        "--config.entrypoint",
        f"{APP_DIR}/pex",
        "--config.cmd",
        "run",
        "--config.env",
        f"PATH={APP_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.env",
        "PYTHONDONTWRITEBYTECODE=1",
        "--config.env",
        "LC_ALL=C.UTF-8",
        "--config.stopsignal",
        "SIGTERM",
        "--config.label",
        "org.opencontainers.image.title=vk-trio",
        "--config.label",
        f"org.opencontainers.image.version={version}",
        "--config.label",
        "org.opencontainers.image.licenses=Apache-2.0",
        "--config.label",
        "org.opencontainers.image.description=virtual kubelet: Kubernetes pods as cloud GPU "
        "instances",
    )
    umoci("gc", "--layout", str(layout))
    return manifest_digest(layout, tag)


def manifest_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    for manifest in index["manifests"]:
        if manifest.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            digest: str = manifest["digest"]
            return digest
    raise SystemExit(f"tag {tag} not in {layout}/index.json")


def project_version() -> str:
    """``vk_trio.__version__``, read from the file (this script imports nothing of vk_trio)."""
    text = (ROOT / "vk_trio" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if found is None:
        raise SystemExit("no __version__ in vk_trio/__init__.py")
    return found.group(1)


def build(
    *, pyz: Path, layout: Path, tag: str | None = None, epoch: int, refresh_base: bool = False
) -> str:
    if os.geteuid() != 0:
        raise SystemExit("build_image.py needs root (mmdebstrap --mode=root and chroot)")
    ensure_tools()
    version = project_version()
    tag = tag or version
    base = base_rootfs(epoch, refresh=refresh_base)
    with tempfile.TemporaryDirectory(prefix="vk-trio-image-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        subprocess.run(["tar", "-C", str(rootfs), "-xf", str(base)], check=True)
        install_venv(rootfs, pyz, epoch)
        app = Path(tmp) / "app.tar"
        write_app_layer(rootfs, app, epoch)
        return assemble(layout, tag, base=base, app=app, epoch=epoch, version=version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "vk-trio.pyz")
    parser.add_argument("--layout", type=Path, default=ROOT / "dist" / "oci")
    parser.add_argument("--tag", default=None, help="image tag (default: the project version)")
    parser.add_argument("--refresh-base", action="store_true", help="rebuild the cached base")
    args = parser.parse_args(argv)
    if not args.pyz.is_file():
        raise SystemExit(f"{args.pyz} not found: run `python build_zipapp.py` first")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    started = time.monotonic()
    digest = build(
        pyz=args.pyz, layout=args.layout, tag=args.tag, epoch=epoch, refresh_base=args.refresh_base
    )
    size = sum(f.stat().st_size for f in args.layout.rglob("*") if f.is_file())
    log(f"built oci:{args.layout}:{args.tag or project_version()} ({size / 1e6:.1f} MB)")
    log(f"manifest {digest} in {time.monotonic() - started:.1f}s")
    print(digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
