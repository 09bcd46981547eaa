"""Resumable training state without pickle: tensors in safetensors, everything else JSON.

``torch.save`` would pickle optimizer state dicts, and unpickling a file runs whatever code it names; a
run directory is something people copy between machines and share. So a state is one safetensors file,
``RUN_DIR/state/step-00001234.safetensors``: the tensors (model state dicts, optimizer moments, RNG
states) by name, and in its header metadata one JSON document (``ganedit.train_state``) with the step,
the optimizers' hyper-parameters and any other plain values. Optimizer state dicts are flattened by hand
(`flatten_optimizer` / `unflatten_optimizer`). Each file is written atomically (`ganedit.io.atomic`),
so an interrupted save leaves the previous state intact, and the newest `keep` states are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import CheckpointError
from ..io.atomic import atomic_write_named

__all__ = [
    "STATE_KEY",
    "flatten_optimizer",
    "latest_state",
    "load_state",
    "restore_rng_state",
    "rng_state_tensors",
    "save_state",
    "unflatten_optimizer",
]

STATE_KEY = "ganedit.train_state"
STATE_VERSION = 1
_NAME = re.compile(r"^step-(\d{8,})\.safetensors$")


def flatten_optimizer(state_dict: Mapping[str, Any], prefix: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors named ``{prefix}.{param}.{key}`` and a JSON-able rest.

    Per-parameter entries that are tensors (Adam's exp_avg, exp_avg_sq and its 0-d ``step``) go to the
    tensors; plain numbers stay in the JSON part with the param groups (lr, betas, ...).
    """
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{param_id}.{key}"] = value
            else:
                plain.setdefault(str(param_id), {})[key] = _jsonable(value, f"{prefix} state {key}")
    groups = [_jsonable(dict(group), f"{prefix} param group") for group in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "plain": plain, "ids": [str(k) for k in state_dict["state"]]}


def unflatten_optimizer(
    tensors: Mapping[str, Tensor], meta: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    """The inverse of `flatten_optimizer`: a dict ``optimizer.load_state_dict`` accepts."""
    state: dict[int, dict[str, Any]] = {}
    for param_id in meta["ids"]:
        entries: dict[str, Any] = dict(meta["plain"].get(param_id, {}))
        head = f"{prefix}.{param_id}."
        for name, value in tensors.items():
            if name.startswith(head):
                entries[name[len(head) :]] = value
        state[int(param_id)] = entries
    groups = []
    for saved in meta["param_groups"]:
        group = dict(saved)
        for key, value in saved.items():  # JSON turned tuples (betas) into lists
            if isinstance(value, list) and key != "params":
                group[key] = tuple(value)
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _jsonable(value: Any, what: str) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        raise CheckpointError(f"cannot store {what}: {type(value).__name__} is not plain JSON data") from None
    return value


def save_state(
    state_dir: Path, step: int, tensors: Mapping[str, Tensor], meta: Mapping[str, Any], *, keep: int = 2
) -> Path:
    """Write ``state_dir/step-{step:08d}.safetensors`` atomically; delete all but the newest `keep`."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"step-{step:08d}.safetensors"
    document = {"version": STATE_VERSION, "step": step, **meta}
    # clone(): views and shared storages are refused by safetensors; CPU: the file is device-independent
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    metadata = {STATE_KEY: json.dumps(document, sort_keys=True)}
    atomic_write_named(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))
    for old in _states(state_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def _states(state_dir: Path) -> list[Path]:
    """State files in step order (oldest first)."""
    if not state_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in state_dir.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_state(state_dir: Path) -> Path | None:
    """The newest state file in `state_dir`, or None when there is none."""
    states = _states(Path(state_dir))
    return states[-1] if states else None


def read_state_meta(path: Path) -> dict[str, Any]:
    """The JSON document of a state file written by `save_state`, from its header alone (no tensors)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable training state ({e})") from None
    return _document(path, metadata)


def load_state(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(tensors on the CPU, JSON document) of a state file written by `save_state`."""
    path = Path(path)
    document = read_state_meta(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable training state ({e})") from None
    return tensors, document


def _document(path: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    if STATE_KEY not in metadata:
        raise CheckpointError(f"{path}: not a ganedit training state (no {STATE_KEY} in its metadata)")
    document = json.loads(metadata[STATE_KEY])
    if document.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: training state version {document.get('version')!r} is not supported")
    return document


def rng_state_tensors() -> dict[str, Tensor]:
    """torch's global RNG states (CPU, and CUDA when initialised) as uint8 tensors."""
    out = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng_state(tensors: Mapping[str, Tensor]) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
