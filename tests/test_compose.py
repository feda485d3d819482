"""The docker-compose demo, checked by parsing (docker/demo.sh brings it up for real; its transcript is in
benchmarks/results/docker-demo.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

COMPOSE_FILES = ["compose.yaml", "compose.secure.yaml"]
COORDINATOR = {"superlink", "serverapp", "submit"}


def _load(root: Path, name: str) -> dict:
    return yaml.safe_load((root / "docker" / name).read_text())


def _departments(root: Path) -> list[str]:
    return [d["name"] for d in yaml.safe_load((root / "scenarios" / "demo-4depts.yaml").read_text())["departments"]]


def _volumes(svc: dict) -> list[tuple[str, str]]:
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out.append((str(v.get("source", "")), str(v.get("target", ""))))
        else:
            src, dst = str(v).split(":")[:2]
            out.append((src, dst))
    return out


def _data_sources(svc: dict) -> list[str]:
    return [src for src, dst in _volumes(svc) if dst == "/data" or "data/" in src or src.startswith("./data")]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_one_supernode_and_clientapp_per_department(root: Path, name: str) -> None:
    services = {s: svc for s, svc in _load(root, name)["services"].items() if "profiles" not in svc}
    depts = _departments(root)
    assert len(depts) == 4
    supernodes = sorted(s for s in services if s.startswith("supernode-"))
    assert supernodes == sorted(f"supernode-{d}" for d in depts)
    for d in depts:
        cmd = " ".join(services[f"supernode-{d}"]["command"])
        assert f'department="{d}"' in cmd and "--superlink superlink:9093" in cmd
        exec_cmd = " ".join(services[f"clientapp-{d}"]["command"])
        assert "flower-superexec" in exec_cmd and f"supernode-{d}:9094" in exec_cmd
    assert COORDINATOR <= set(services)
    assert set(services) == COORDINATOR | {f"{k}-{d}" for d in depts for k in ("supernode", "clientapp")}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_each_department_data_only_in_its_own_services(root: Path, name: str) -> None:
    services = _load(root, name)["services"]
    for d in _departments(root):
        own = {f"supernode-{d}", f"clientapp-{d}"}
        mounted_in = {s for s, svc in services.items() if any(d in src for src in _data_sources(svc))}
        assert mounted_in and mounted_in <= own, (d, mounted_in)
        assert _data_sources(services[f"clientapp-{d}"]) == [f"./data/{d}"]
        # nothing of another department's (data, outputs, keys) in this department's containers
        others = [o for o in _departments(root) if o != d]
        for s in own:
            for src, _ in _volumes(services[s]):
                assert not any(o in src for o in others), (s, src)
    for s in COORDINATOR:
        assert _data_sources(services[s]) == [], s
        assert all(dst != "/data" for _, dst in _volumes(services[s])), s


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_images_are_pinned(root: Path, name: str) -> None:
    import re

    for s, svc in _load(root, name)["services"].items():
        image = svc.get("image")
        assert image, f"{s} has no image"
        var = re.fullmatch(r"\$\{(C2GR_SUPERLINK_IMAGE|C2GR_SUPERNODE_IMAGE):-(.+)\}", image)
        if var:  # an official Flower image by default, replaceable by this project's image (same executable)
            image = var.group(2)
            assert svc["entrypoint"] == [f"flower-{var.group(1).split('_')[1].lower()}"], s
        assert "$" not in image, f"{s}: {image} is not a pinned image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{s}: {image} is not tagged"
        assert tag not in ("latest", "nightly"), f"{s}: {image}"
        assert tag[0].isdigit(), f"{s}: {image} is not a version tag"
        if repo.startswith("flwr/"):
            assert tag == "1.42.0", f"{s}: Flower images must match the pinned flwr 1.42.0"


def test_secure_profile_uses_tls_and_node_auth(root: Path) -> None:
    services = _load(root, "compose.secure.yaml")["services"]
    link = " ".join(services["superlink"]["command"])
    assert "--enable-supernode-auth" in link and "--ssl-certfile" in link and "--insecure" not in link
    for s, svc in services.items():
        cmd = " ".join(svc["command"])
        assert "--insecure" not in cmd, s
        if s == "supernode-unlisted":  # the refusal check: an unregistered key, started only on request
            assert svc["profiles"] == ["unlisted"] and "--auth-supernode-private-key" in cmd
            assert [src for src, _ in _volumes(svc) if src.endswith(".key")] == ["./certs/unlisted/unlisted.key"]
            continue
        if s.startswith("supernode-"):
            assert "--root-certificates /certs/ca.crt" in cmd and "--auth-supernode-private-key" in cmd
            keys = [src for src, _ in _volumes(svc) if "nodes/" in src]
            assert keys == [f"./certs/nodes/{s.removeprefix('supernode-')}.key"]
    plain = _load(root, "compose.yaml")["services"]
    assert all("--insecure" in " ".join(svc["command"]) for s, svc in plain.items() if s != "submit")


def test_compose_files_match_the_generator(root: Path) -> None:
    cp = subprocess.run([sys.executable, str(root / "docker" / "gen_compose.py"), "--check"], capture_output=True,
                        text=True)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_dockerfile_cpu_default_and_cuda_arg(root: Path) -> None:
    text = (root / "docker" / "Dockerfile").read_text()
    assert "FROM ${PYTHON_IMAGE}" in text and "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text and "torch==${TORCH_VERSION}" in text
    assert "ARG TORCH_VERSION=2.13.0" in text


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("ssh-keygen")), reason="needs openssl + ssh-keygen")
def test_make_certs(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    env = {**os.environ, "CERTS_DIR": str(out)}
    cp = subprocess.run(["bash", str(root / "docker" / "make-certs.sh")], env=env, capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    depts = _departments(root)
    assert sorted(p.stem for p in (out / "registered").glob("*.pub")) == sorted(depts)
    assert sorted(p.stem for p in (out / "nodes").glob("*.key")) == sorted(depts)
    text = subprocess.run(["openssl", "x509", "-in", str(out / "server" / "server.pem"), "-noout", "-text"],
                          capture_output=True, text=True).stdout
    for host in ["superlink", "localhost", *[f"supernode-{d}" for d in depts]]:
        assert f"DNS:{host}" in text
    # the keys are what flwr 1.42 expects: OpenSSH EC private keys, NIST P-384 public keys
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

    key = load_ssh_private_key((out / "nodes" / f"{depts[0]}.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert isinstance(load_ssh_public_key((out / "registered" / f"{depts[0]}.pub").read_bytes()), ec.EllipticCurvePublicKey)
    assert not (out / "server" / "ca.key").exists()  # the CA key is mounted nowhere
