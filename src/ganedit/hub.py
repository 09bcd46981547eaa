"""From a registry `ModelSpec` to a verified weights file on local disk.

Resolution order: the bundled copy (inside the package, or next to a user's registry file), then the
huggingface-hub cache, then a download with ``hf_hub_download`` at the spec's pinned commit. Whatever
the source, the file's sha256 is checked against the registry before its path is returned, because
a checkpoint is executable-adjacent data we are about to load, and a cache can be damaged or tampered
with. A cached or downloaded file that fails the check is deleted from the cache (snapshot link and
blob) so that the next attempt downloads afresh instead of failing the same way forever.

huggingface-hub is imported inside the functions: it takes a noticeable time to import and most
ganedit invocations (``--help``, bundled weights, ``--weights PATH``) never need it. Its environment
variables (``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_TOKEN``...) keep their meaning; `HubOptions` can
override them per call, which tests rely on since huggingface-hub reads the environment at import.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import ChecksumError, RegistryError, UsageError, WeightsUnavailableError
from .registry import ModelSpec

log = logging.getLogger(__name__)

_TRUE = frozenset({"1", "ON", "YES", "TRUE"})  # huggingface-hub's truthy values for HF_HUB_OFFLINE
_HTTP_MODULES = frozenset({"httpx2", "httpx", "httpcore", "requests", "urllib3"})


@dataclass(frozen=True)
class HubOptions:
    cache_dir: Path | None = None  # None -> huggingface-hub default (HF_HUB_CACHE)
    endpoint: str | None = None  # None -> huggingface-hub default (HF_ENDPOINT)
    offline: bool | None = None  # None -> env HF_HUB_OFFLINE
    token: str | bool | None = None  # None -> HF_TOKEN / stored login; False -> send none


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    source: str  # "path" | "bundled" | "cache" | "download"
    sha256: str


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints can be hundreds of MB)."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def resolve_path(path: Path, expected_sha256: str | None = None) -> ResolvedWeights:
    """An explicit ``--weights PATH``: hashed (so reports can name exactly what ran), verified if asked."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist or is not a file")
    actual = sha256_file(path)
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ChecksumError(f"{path}: sha256 is {actual}, expected {expected_sha256.lower()}")
    return ResolvedWeights(path=path, source="path", sha256=actual)


def bundled_path(spec: ModelSpec) -> Path | None:
    """The model's local file, if present: ``ganedit/weights/FILE`` for the bundled registry, FILE
    relative to the registry's folder (or absolute) for a user registry. No hashing here."""
    candidate = _local_candidate(spec)
    return candidate if candidate.is_file() else None


def cached_path(spec: ModelSpec, options: HubOptions = HubOptions()) -> Path | None:
    """The file in the huggingface-hub cache at the pinned revision, or None. Never makes a request."""
    if spec.repo_id is None or spec.revision is None:
        return None
    _check_hf_environment()
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(
            spec.repo_id, spec.file, cache_dir=_cache_dir(options), revision=spec.revision
        )
    except ValueError as e:  # HFValidationError; the registry checks repo ids, this is a backstop
        raise _registry_error(spec, e) from None
    # Besides a path or None it may return a sentinel meaning "known not to exist at this commit".
    return Path(found) if isinstance(found, str) else None


def resolve(spec: ModelSpec, options: HubOptions = HubOptions()) -> ResolvedWeights:
    """Bundled -> cache -> download; sha256-verified. See the module docstring."""
    local = bundled_path(spec)
    if local is not None:
        _check(spec, local, how="bundled")
        log.info("model %s: bundled weights %s", spec.name, local)
        return ResolvedWeights(path=local, source="bundled", sha256=spec.sha256)

    if spec.repo_id is None or spec.revision is None:
        raise WeightsUnavailableError(
            f"model {spec.name!r}: weights file {_local_candidate(spec)} is missing and the registry "
            f"names no repo_id to download it from; {_how_to_get(spec, pull=False)}"
        )

    cached = cached_path(spec, options)
    if cached is not None:
        _check(spec, cached, how="cached", cache=_cache_dir(options))
        log.info("model %s: cached weights %s", spec.name, cached)
        return ResolvedWeights(path=cached, source="cache", sha256=spec.sha256)

    if _is_offline(options):
        # Not calling hf_hub_download(local_files_only=True) here: the cache has just been looked up the
        # same way, and huggingface-hub may still make a request of its own while building headers.
        raise WeightsUnavailableError(
            f"model {spec.name!r}: {spec.file} from {spec.repo_id}@{spec.revision[:12]} is not in the "
            f"huggingface-hub cache ({_cache_dir(options)}) and offline mode is on; {_how_to_get(spec)}"
        )

    log.info("model %s: downloading %s from %s@%s", spec.name, spec.file, spec.repo_id, spec.revision[:12])
    downloaded = _download(spec, options)
    _check(spec, downloaded, how="downloaded", cache=_cache_dir(options))
    return ResolvedWeights(path=downloaded, source="download", sha256=spec.sha256)


# -- internals ---------------------------------------------------------------------------------------


def _local_candidate(spec: ModelSpec) -> Path:
    if spec.origin is None:
        import ganedit

        return Path(ganedit.__file__).parent / "weights" / spec.file
    return spec.origin.parent / Path(spec.file).expanduser()


def _is_offline(options: HubOptions) -> bool:
    if options.offline is not None:
        return options.offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _cache_dir(options: HubOptions) -> Path:
    if options.cache_dir is not None:
        return Path(options.cache_dir).expanduser()
    _check_hf_environment()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _how_to_get(spec: ModelSpec, *, pull: bool = True) -> str:
    if not pull:
        return (
            f"pass --weights PATH with the checkpoint, or fix the registry entry ({spec.origin or 'bundled'})"
        )
    return (
        f"run `ganedit weights pull {spec.name}` on a machine with network access and copy its "
        "huggingface-hub cache (HF_HUB_CACHE) here, or pass --weights PATH with the checkpoint"
    )


def _check(spec: ModelSpec, path: Path, *, how: str, cache: Path | None = None) -> None:
    """Verify size (cheap) and sha256; a bad hub-cache file is evicted so a retry downloads afresh."""
    actual_size = path.stat().st_size
    bad_size = spec.size is not None and actual_size != spec.size
    actual = None if bad_size else sha256_file(path)
    if not bad_size and actual == spec.sha256:
        return
    found = f"{actual_size} bytes instead of {spec.size}" if bad_size else f"sha256 {actual}"
    message = (
        f"model {spec.name!r}: {how} weights file {path} has {found}, but the registry says {spec.sha256}"
    )
    if how == "bundled" and spec.origin is None:
        raise ChecksumError(
            f"{message}; the installation is damaged: reinstall ganedit or pass --weights PATH"
        )
    if how == "bundled":
        raise ChecksumError(f"{message}; fix the file or its sha256 in {spec.origin}")
    removed = cache is not None and _evict(path, cache)
    if removed:
        raise ChecksumError(f"{message}; removed it from the cache, run again to download it afresh")
    raise ChecksumError(f"{message}; could not remove it from the cache: delete {path} and its blob by hand")


def _evict(pointer: Path, cache: Path) -> bool:
    """Delete a hub-cache snapshot entry and the blob it links to. True if the cache no longer holds it.

    Only paths inside ``cache`` are deleted: a snapshot entry that links outside it (a tampered or
    hand-made cache) loses the link, never the file it points to; an entry that is not itself in the
    cache (a snapshot folder linked from elsewhere) is left alone and reported as not removed.
    """
    root = cache.expanduser().resolve()
    if not _is_inside(pointer.parent.resolve(), root):
        return False
    targets = [pointer]
    if pointer.is_symlink() and _is_inside(pointer.resolve(), root):
        targets.insert(0, pointer.resolve())  # the blob (blobs/<etag>); the snapshot entry is a link
    ok = True
    for target in targets:
        try:
            target.unlink(missing_ok=True)
        except OSError:
            ok = False
    return ok


def _is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_hf_environment() -> None:
    """huggingface-hub parses HF_ENDPOINT when it is imported and dies with a ValueError traceback on a
    malformed one (``http://[::1``, a port above 65535): check it first and say so in one line."""
    raw = os.environ.get("HF_ENDPOINT", "")
    if raw.rstrip("/"):  # huggingface-hub strips trailing slashes, and takes an empty value as unset
        _check_endpoint(raw.rstrip("/"), "HF_ENDPOINT")


def _check_endpoint(url: str, what: str) -> None:
    problem = None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        problem = str(e)
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it must start with http:// or https://"
        elif not parts.hostname:
            problem = "it names no host"
    if problem is not None:
        raise WeightsUnavailableError(
            f"{what}={url!r} is not a valid hub address ({problem}); fix it, or unset it to use the "
            "default hub"
        )


def _download(spec: ModelSpec, options: HubOptions) -> Path:
    assert spec.repo_id is not None and spec.revision is not None
    _check_hf_environment()
    if options.endpoint is not None:  # the CLI's comes from HF_ENDPOINT; a library caller's from HubOptions
        from_env = options.endpoint == os.environ.get("HF_ENDPOINT")
        _check_endpoint(options.endpoint, "HF_ENDPOINT" if from_env else "HubOptions.endpoint")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{spec.repo_id}@{spec.revision[:12]}"
    endpoint = options.endpoint or _default_endpoint()
    try:
        path = hf_hub_download(
            spec.repo_id,
            spec.file,
            revision=spec.revision,
            cache_dir=options.cache_dir,
            endpoint=options.endpoint,
            local_files_only=False,
            token=options.token,
            library_name="ganedit",
            library_version=__version__,
        )
    except LocalEntryNotFoundError as e:
        # hf_hub_download's catch-all for "the metadata request failed and nothing is cached": a
        # connection error, an outage, or a 404 without the hub's X-Error-Code header.
        cause = _describe(e.__cause__) or "the hub could not be reached"
        raise WeightsUnavailableError(
            f"model {spec.name!r}: cannot download {spec.file} from {where} at {endpoint} ({cause}) and it "
            f"is not cached; {_how_to_get(spec)}"
        ) from None
    except GatedRepoError:
        problem = f"repository {spec.repo_id} on {endpoint} is gated: accept its terms and set HF_TOKEN"
    except RepositoryNotFoundError:
        problem = f"repository {spec.repo_id} was not found on {endpoint} (if it is private, set HF_TOKEN)"
    except RevisionNotFoundError:
        problem = f"revision {spec.revision} was not found in {spec.repo_id} on {endpoint}"
    except EntryNotFoundError:
        problem = f"file {spec.file} is not in {where} on {endpoint}"
    except HfHubHTTPError as e:
        problem = f"the hub at {endpoint} answered {_describe(e)}"
    except HFValidationError as e:
        raise _registry_error(spec, e) from None
    except Exception as e:
        # OSError: disk full, size mismatch while streaming. The HTTP client's own errors (connection
        # lost during the GET, proxy errors, too many redirects) are not OSErrors: match them by module
        # so that this works whichever client this huggingface-hub version uses.
        if not isinstance(e, OSError) and type(e).__module__.split(".")[0] not in _HTTP_MODULES:
            raise
        problem = f"downloading {spec.file} from {where} at {endpoint} failed: {_describe(e)}"
    else:
        return Path(path)
    raise WeightsUnavailableError(f"model {spec.name!r}: {problem}; {_how_to_get(spec)}")


def _registry_error(spec: ModelSpec, error: Exception) -> RegistryError:
    where = spec.origin or "the bundled weights.toml"
    return RegistryError(f"{where}: model {spec.name!r}: {str(error).strip().splitlines()[0]}")


def _describe(error: BaseException | None) -> str | None:
    if error is None:
        return None
    response: Any = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status} for {getattr(response, 'url', '?')}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _default_endpoint() -> str:
    _check_hf_environment()
    from huggingface_hub import constants

    return constants.ENDPOINT
