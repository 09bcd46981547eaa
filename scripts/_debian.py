"""Fetching and unpacking Debian packages, shared by fetch_chairs.py and fetch_training_data.py.

``apt-get download`` (no dependencies, nothing installed), ``dpkg-deb -f`` / ``-x``; standard library only.
The scripts import it as ``_debian``: running ``python scripts/X.py`` puts scripts/ first on sys.path.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path


class FetchError(Exception):
    """A package could not be fetched or unpacked; the message says which and why."""


def run(command: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise FetchError(
            f"{command[0]} not found: this script needs a Debian-like system with apt"
        ) from error


class Apt:
    """apt-cache / apt-get download with a single ``apt-get update`` when a package is unknown."""

    def __init__(self) -> None:
        self.updated = False

    def candidate(self, package: str) -> str:
        """The version ``apt-get download`` would fetch; runs ``apt-get update`` once if needed."""
        for attempt in range(2):
            result = run(["apt-cache", "show", "--no-all-versions", package])
            match = re.search(r"^Version:\s*(\S+)", result.stdout, re.MULTILINE)
            if result.returncode == 0 and match:
                return match.group(1)
            if attempt == 0 and not self.updated:
                self.update()
        raise FetchError(f"{package}: not known to apt (apt-cache show failed even after apt-get update)")

    def update(self) -> None:
        print("apt-get update ...", flush=True)
        result = run(["apt-get", "update"])
        self.updated = True
        if result.returncode != 0:
            raise FetchError(f"apt-get update failed (root needed?): {result.stderr.strip()[-300:]}")

    def download(self, package: str, version: str, debs: Path) -> Path:
        """The package's .deb in ``debs``, downloaded unless already there."""
        debs.mkdir(parents=True, exist_ok=True)
        existing = find_deb(debs, package, version)
        if existing:
            return existing
        command = ["apt-get", "download", f"{package}={version}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root, apt drops to the _apt user, who cannot write into our folder; say so explicitly
            # instead of a warning on every download.
            command[1:1] = ["-o", "APT::Sandbox::User=root"]
        print(f"  apt-get download {package}={version}", flush=True)
        result = run(command, cwd=debs)
        deb = find_deb(debs, package, version)
        if result.returncode != 0 or deb is None:
            raise FetchError(
                f"{package}: apt-get download failed (no network, or no Debian main in the apt sources?): "
                f"{result.stderr.strip()[-300:]}"
            )
        return deb


def deb_field(deb: Path, name: str) -> str:
    result = run(["dpkg-deb", "-f", str(deb), name])
    if result.returncode != 0:
        raise FetchError(f"{deb.name}: not a readable .deb ({result.stderr.strip()}); delete it and re-run")
    return result.stdout.strip()


def find_deb(debs: Path, package: str, version: str | None = None) -> Path | None:
    """The newest-named .deb of ``package`` (of that ``version``, if given) in ``debs``, checked with
    dpkg-deb, if any."""
    found = [
        deb
        for deb in sorted(debs.glob(f"{package}_*.deb"))
        if deb_field(deb, "Package") == package and (version is None or deb_field(deb, "Version") == version)
    ]
    return found[-1] if found else None


def extract(deb: Path, target: Path) -> None:
    """``dpkg-deb -x`` the package into ``target``."""
    result = run(["dpkg-deb", "-x", str(deb), str(target)])
    if result.returncode != 0:
        raise FetchError(f"{deb.name}: dpkg-deb -x failed: {result.stderr.strip()[-300:]}")
