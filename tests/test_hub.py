"""Weights resolution against a fake hub: bundled -> cache -> pinned download, always sha256-verified."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ganedit
from fakehub import FakeHub, isolate_hf
from ganedit import hub as hubmod
from ganedit.errors import ChecksumError, RegistryError, UsageError, WeightsUnavailableError
from ganedit.hub import (
    HubOptions,
    ResolvedWeights,
    bundled_path,
    cached_path,
    resolve,
    resolve_path,
    sha256_file,
)
from ganedit.registry import ModelSpec

DATA = b"ganedit-weights\0" * 512  # 8 KiB of "checkpoint"
REPO = "acme/hub-test-derain"


def make_spec(
    data: bytes = DATA, *, revision: str | None = None, repo_id: str | None = REPO, **kw: object
) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "hub-test-derain",
        "task": "derain",
        "arch": "pan",
        "file": "hub-test-derain.safetensors",
        "sha256": hashlib.sha256(data).hexdigest(),
        "repo_id": repo_id,
        "revision": revision if repo_id else None,
    }
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_hf(monkeypatch, tmp_path / "hf")


@pytest.fixture(params=[False, True], ids=["direct", "lfs-redirect"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeHub]:
    with FakeHub(lfs_redirect=request.param) as hub:
        yield hub


@pytest.fixture
def plain() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


def options(hub: FakeHub, cache: Path, **kw: object) -> HubOptions:
    return HubOptions(cache_dir=cache, endpoint=hub.endpoint, **{"offline": False, "token": False, **kw})  # type: ignore[arg-type]


def files_in(folder: Path) -> list[Path]:
    """Every file or link under the hub cache, lock files and the CACHEDIR.TAG marker aside."""
    return sorted(
        p
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".locks" not in p.parts and p.name != "CACHEDIR.TAG"
    )


# -- hashing -------------------------------------------------------------------------------------


def test_sha256_file_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)  # several chunks
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == digest
    assert resolve_path(path, digest.upper()).sha256 == digest
    with pytest.raises(ChecksumError, match=f"sha256 is {digest}, expected {'0' * 64}") as info:
        resolve_path(path, "0" * 64)
    assert info.value.exit_code == 3


def test_resolve_path_hashes_an_explicit_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.safetensors"
    path.write_bytes(DATA)
    digest = hashlib.sha256(DATA).hexdigest()
    assert resolve_path(path) == ResolvedWeights(path=path, source="path", sha256=digest)
    assert resolve_path(path, digest).sha256 == digest
    with pytest.raises(ChecksumError):
        resolve_path(path, "0" * 64)
    with pytest.raises(UsageError, match="does not exist"):
        resolve_path(tmp_path / "nope.safetensors")


# -- download and cache --------------------------------------------------------------------------


def test_first_resolve_downloads_second_makes_no_request(fake: FakeHub, cache: Path) -> None:
    rev = fake.add(REPO, "hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev)
    opts = options(fake, cache)

    assert cached_path(spec, opts) is None
    first = resolve(spec, opts)
    assert first.source == "download"
    assert first.sha256 == spec.sha256
    assert first.path.read_bytes() == DATA
    assert first.path.is_relative_to(cache.resolve())
    assert fake.count("HEAD") == 1
    assert fake.count("GET") == 1

    fake.reset()
    second = resolve(spec, opts)
    assert second.source == "cache"
    assert second.path == cached_path(spec, opts)
    assert second.path.read_bytes() == DATA
    assert fake.count() == 0, fake.counts
    # cached and offline: still fine, still no request
    assert resolve(spec, options(fake, cache, offline=True)).source == "cache"
    assert fake.count() == 0


def test_the_pinned_revision_is_requested_not_main(plain: FakeHub, cache: Path) -> None:
    old = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    newer = plain.add(REPO, "hub-test-derain.safetensors", b"retrained weights")  # now "main"
    assert old != newer

    got = resolve(make_spec(revision=old), options(plain, cache))

    assert got.path.read_bytes() == DATA
    path = plain.resolve_path(REPO, "hub-test-derain.safetensors", old)
    assert plain.counts == {("HEAD", path): 1, ("GET", path): 1}
    assert got.path.parent.name == old  # stored under the pinned commit's snapshot


def test_token_is_sent_when_given(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    resolve(make_spec(revision=rev), options(plain, cache, token="hf_secret"))
    assert plain.requests[0].headers.get("authorization") == "Bearer hf_secret"


def test_no_token_is_sent_with_token_false(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    resolve(make_spec(revision=rev), options(plain, cache))
    assert all("authorization" not in r.headers for r in plain.requests)


def test_files_in_a_repo_subfolder(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "v1/hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev, file="v1/hub-test-derain.safetensors")
    assert resolve(spec, options(plain, cache)).source == "download"
    assert resolve(spec, options(plain, cache)).source == "cache"


# -- resolution order ----------------------------------------------------------------------------


def test_a_file_next_to_a_user_registry_beats_cache_and_download(
    plain: FakeHub, cache: Path, tmp_path: Path
) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    registry_file = tmp_path / "reg" / "mine.toml"
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "hub-test-derain.safetensors").write_bytes(DATA)
    spec = make_spec(revision=rev, origin=registry_file)

    got = resolve(spec, options(plain, cache))

    assert got.source == "bundled"
    assert got.path == tmp_path / "reg" / "hub-test-derain.safetensors"
    assert plain.count() == 0
    assert not cache.exists() or files_in(cache) == []


def test_the_package_copy_beats_cache_and_download(
    plain: FakeHub, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev)
    resolve(spec, options(plain, cache))  # now cached too
    plain.reset()

    package = tmp_path / "site-packages" / "ganedit"
    (package / "weights").mkdir(parents=True)
    (package / "weights" / "hub-test-derain.safetensors").write_bytes(DATA)
    monkeypatch.setattr(ganedit, "__file__", str(package / "__init__.py"))

    assert bundled_path(spec) == package / "weights" / "hub-test-derain.safetensors"
    got = resolve(spec, options(plain, cache))
    assert (got.source, got.path) == ("bundled", package / "weights" / "hub-test-derain.safetensors")
    assert plain.count() == 0


def test_a_damaged_bundled_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    local = tmp_path / "hub-test-derain.safetensors"
    local.write_bytes(b"not the weights")
    spec = make_spec(repo_id=None, origin=tmp_path / "reg.toml")
    with pytest.raises(
        ChecksumError, match=r"bundled weights file .* has sha256 .* fix the file or its sha256"
    ):
        resolve(spec, HubOptions(offline=True))
    assert local.read_bytes() == b"not the weights"


def test_no_repo_id_and_no_local_file_says_how_to_get_it(tmp_path: Path) -> None:
    spec = make_spec(repo_id=None, origin=tmp_path / "reg.toml")
    with pytest.raises(WeightsUnavailableError, match="no repo_id") as info:
        resolve(spec, HubOptions(offline=False))
    assert "--weights PATH" in str(info.value)
    assert str(tmp_path / "hub-test-derain.safetensors") in str(info.value)
    assert info.value.exit_code == 3
    assert cached_path(spec) is None


# -- checksum failures ---------------------------------------------------------------------------


def test_a_corrupted_download_is_refused_and_evicted(fake: FakeHub, cache: Path) -> None:
    rev = fake.add(REPO, "hub-test-derain.safetensors", DATA, corrupt=True)
    spec = make_spec(revision=rev)

    with pytest.raises(ChecksumError, match=r"downloaded weights file .* removed it from the cache") as info:
        resolve(spec, options(fake, cache))
    assert info.value.exit_code == 3
    assert files_in(cache) == []
    assert cached_path(spec, options(fake, cache)) is None

    # The hub is fixed: a retry downloads afresh and succeeds.
    fake.add(REPO, "hub-test-derain.safetensors", DATA, revision=rev)
    fake.reset()
    assert resolve(spec, options(fake, cache)).source == "download"
    assert fake.count("GET") == 1


def test_a_tampered_cache_file_is_refused_and_evicted(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev)
    path = resolve(spec, options(plain, cache)).path
    blob = path.resolve()
    assert path.is_symlink() and blob != path
    blob.write_bytes(b"X" + DATA[1:])

    with pytest.raises(ChecksumError, match=r"cached weights file .* removed it from the cache"):
        resolve(spec, options(plain, cache, offline=True))
    assert not path.exists() and not path.is_symlink()
    assert not blob.exists()

    plain.reset()
    assert resolve(spec, options(plain, cache)).source == "download"
    assert plain.count("GET") == 1


def test_a_wrong_size_is_refused(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev, size=len(DATA) + 1)
    with pytest.raises(ChecksumError, match=f"has {len(DATA)} bytes instead of {len(DATA) + 1}"):
        resolve(spec, options(plain, cache))
    assert files_in(cache) == []


# -- unavailable ---------------------------------------------------------------------------------


def _assert_helpful(error: WeightsUnavailableError) -> None:
    message = str(error)
    assert error.exit_code == 3
    assert "ganedit weights pull hub-test-derain" in message
    assert "--weights PATH" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "case",
    [
        (REPO, None, "other.safetensors", "file hub-test-derain.safetensors is not in acme/hub-test-derain@"),
        ("acme/missing", None, "hub-test-derain.safetensors", "repository acme/missing was not found"),
        (REPO, "f" * 40, "hub-test-derain.safetensors", f"revision {'f' * 40} was not found"),
    ],
    ids=["entry", "repo", "revision"],
)
def test_404s_say_what_is_missing_and_how_to_get_weights(
    plain: FakeHub, cache: Path, case: tuple[str, str | None, str, str]
) -> None:
    repo_id, revision, filename, expected = case
    rev = plain.add(REPO, filename, DATA)
    spec = make_spec(repo_id=repo_id, revision=revision or rev)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve(spec, options(plain, cache))
    assert not isinstance(info.value, ChecksumError)
    assert expected in str(info.value)
    assert plain.endpoint in str(info.value)
    _assert_helpful(info.value)
    # huggingface-hub may remember "not at this commit" in the cache: that is still "not cached".
    assert cached_path(spec, options(plain, cache)) is None


def test_a_bare_404_from_a_mirror(cache: Path) -> None:
    with FakeHub(error_codes=False) as hub:
        spec = make_spec(revision="f" * 40)
        with pytest.raises(WeightsUnavailableError, match="HTTP 404") as info:
            resolve(spec, options(hub, cache))
    _assert_helpful(info.value)


def test_a_forbidden_answer(plain: FakeHub, cache: Path) -> None:
    plain.force_status = 403
    with pytest.raises(WeightsUnavailableError, match="HTTP 403") as info:
        resolve(make_spec(revision="f" * 40), options(plain, cache))
    _assert_helpful(info.value)


def test_offline_with_an_empty_cache_makes_no_request(plain: FakeHub, cache: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    with pytest.raises(WeightsUnavailableError, match="offline mode is on") as info:
        resolve(make_spec(revision=rev), options(plain, cache, offline=True))
    _assert_helpful(info.value)
    assert plain.count() == 0


def test_offline_none_reads_hf_hub_offline(
    plain: FakeHub, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    spec = make_spec(revision=rev)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="offline"):
        resolve(spec, options(plain, cache, offline=None))
    assert plain.count() == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert resolve(spec, options(plain, cache, offline=None)).source == "download"


def test_connection_failures_map_to_weights_unavailable(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real unreachable host makes huggingface-hub retry for ~20 s, so simulate what it raises then.
    import httpx2
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args: object, **kwargs: object) -> str:
        error = LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub")
        error.__cause__ = httpx2.ConnectError("[Errno 111] Connection refused")
        raise error

    def dropped(*args: object, **kwargs: object) -> str:
        raise httpx2.ReadTimeout("timed out")

    spec = make_spec(revision="f" * 40)
    opts = HubOptions(cache_dir=cache, endpoint="http://127.0.0.1:9", offline=False, token=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(WeightsUnavailableError, match=r"ConnectError: .*Connection refused") as info:
        resolve(spec, opts)
    _assert_helpful(info.value)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", dropped)
    with pytest.raises(WeightsUnavailableError, match="ReadTimeout: timed out") as info:
        resolve(spec, opts)
    _assert_helpful(info.value)


def test_an_invalid_repo_id_is_a_registry_error(cache: Path) -> None:
    spec = make_spec(repo_id="acme/bad--name", revision="f" * 40)
    with pytest.raises(RegistryError, match="model 'hub-test-derain'"):
        resolve(spec, HubOptions(cache_dir=cache, endpoint="http://127.0.0.1:9", offline=False, token=False))


# -- hygiene -------------------------------------------------------------------------------------


def test_importing_registry_and_hub_stays_light() -> None:
    code = (
        "import sys, ganedit.registry, ganedit.hub; "
        "print(sorted(m for m in ('torch', 'huggingface_hub', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nothing_is_written_outside_the_test_cache(plain: FakeHub, cache: Path, tmp_path: Path) -> None:
    rev = plain.add(REPO, "hub-test-derain.safetensors", DATA)
    resolve(make_spec(revision=rev), options(plain, cache))
    assert {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")} <= {"hf"}
    assert not (tmp_path / "hf" / ".agent_harnesses.json").exists()
    assert hubmod.HubOptions().cache_dir is None
