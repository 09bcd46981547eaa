#!/usr/bin/env python3
"""Fetch the 3D furniture models the TDGAN chairs dataset is rendered from, from Debian packages.

Downloads ``sweethome3d-furniture`` (the training seats: ``usr/share/sweethome3d/furniture/*.sh3f``,
CC0 / CC-BY 3.0) and ``sweethome3d`` (its default catalogue inside ``usr/share/sweethome3d/sweethome3d.jar``:
the evaluation seats, never to be trained on) with ``apt-get download`` (no dependencies, nothing
installed) into ``data/debs/`` and unpacks both with ``dpkg-deb -x`` into ``data/chairs-src/``. Then::

    ganedit train render-chairs data/chairs-src data/chairs

Idempotent: a package whose .deb is already in ``data/debs/`` is not downloaded again (so this works
offline once fetched), and one already unpacked (a marker file ``data/chairs-src/.unpacked-<deb name>``)
is not unpacked again unless ``--force``. Standard library only, plus ``apt-get``, ``apt-cache`` and
``dpkg-deb``. As root, ``apt-get download`` is told to keep root (``APT::Sandbox::User=root``), since the
``_apt`` user could not write into ``data/debs/``.

usage: python scripts/fetch_chairs.py [--data-dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _debian import Apt, FetchError, deb_field, extract, find_deb  # scripts/_debian.py

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sweethome3d-furniture", "sweethome3d")
EXPECTED = {
    "sweethome3d-furniture": "usr/share/sweethome3d/furniture",
    "sweethome3d": "usr/share/sweethome3d/sweethome3d.jar",
}


def unpack(deb: Path, target: Path, *, force: bool) -> bool:
    """``dpkg-deb -x`` the package into ``target`` unless its marker says it is there; True if unpacked."""
    marker = target / f".unpacked-{deb.name}"
    if marker.is_file() and not force:
        return False
    target.mkdir(parents=True, exist_ok=True)
    extract(deb, target)
    marker.write_text(f"{deb_field(deb, 'Package')} {deb_field(deb, 'Version')}\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data", help="default: <repo>/data")
    parser.add_argument("--force", action="store_true", help="unpack again even if already unpacked")
    args = parser.parse_args(argv)

    data_dir: Path = args.data_dir.resolve()
    debs, target = data_dir / "debs", data_dir / "chairs-src"
    debs.mkdir(parents=True, exist_ok=True)
    apt = Apt()
    failures = []
    for package in PACKAGES:
        try:
            deb = find_deb(debs, package)
            if deb is None:
                deb = apt.download(package, apt.candidate(package), debs)
            else:
                print(f"{package}: {deb.name} already in {debs} (not downloaded again)")
            if unpack(deb, target, force=args.force):
                print(f"{package}: unpacked {deb.name} into {target}")
            else:
                print(f"{package}: already unpacked in {target} (use --force to redo)")
            expected = target / EXPECTED[package]
            if not expected.exists():
                raise FetchError(
                    f"{package}: {expected} missing after unpacking (has the package's layout changed?)"
                )
        except FetchError as error:
            print(f"error: {error}", file=sys.stderr)
            failures.append(package)
    if failures:
        print(f"\nfailed: {', '.join(failures)} (see the errors above; re-run to retry)", file=sys.stderr)
        return 1
    libraries = sorted((target / EXPECTED["sweethome3d-furniture"]).glob("*.sh3f"))
    print(f"\n{len(libraries)} furniture libraries ({', '.join(p.name for p in libraries)}) and the default")
    print(f"catalogue in {target / EXPECTED['sweethome3d']} (evaluation only). Next:")
    print(f"  ganedit train render-chairs {target} {data_dir / 'chairs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
