"""Ship a trained checkpoint inside the package and register it in weights.toml.

    python scripts/ship_checkpoint.py runs/pan-derain/model.safetensors pan-derain \
        --description "PAN de-raining, residual net 2.0 M params" --license CC-BY-SA-4.0

Copies the file to src/ganedit/weights/NAME.safetensors (what `hub.bundled_path` finds, and what the
wheel carries), then writes or replaces the [models."NAME"] table of weights.toml with the file's sha256,
size, task and arch read from the checkpoint itself, marked default for its task (other models of the
task lose the mark; ``--no-default`` registers it beside the default instead). The checkpoint's metadata
is checked by loading it strictly first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import tomllib
from pathlib import Path

from ganedit.checkpoint import KEY_FLIP_AVERAGE, RESERVED_KEYS, load_checkpoint, read_info, save_checkpoint
from ganedit.io.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "ganedit" / "weights"
REGISTRY = ROOT / "src" / "ganedit" / "weights.toml"  # the top-level weights.toml links to it
MAX_BYTES = 20 * 1000 * 1000


def table(name: str, fields: dict[str, object]) -> str:
    lines = [f'[models."{name}"]']
    for key, value in fields.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {json.dumps(str(value))}")  # a JSON string is a valid TOML basic string
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("name")
    parser.add_argument("--description", default="")
    parser.add_argument("--license", default="")
    parser.add_argument("--no-default", action="store_true", help="do not make it its task's default")
    parser.add_argument(
        "--no-flip-average",
        action="store_true",
        help="record in the checkpoint that it runs without flip averaging unless asked (a model trained "
        "to paint texture: averaging two mirrored outputs softens it); the shipped file gets the key",
    )
    args = parser.parse_args()

    info = read_info(args.checkpoint)
    load_checkpoint(args.checkpoint)  # strict: refuses a file whose weights do not match its config
    size = args.checkpoint.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{args.checkpoint} is {size / 1e6:.1f} MB, over the 20 MB budget (shipped models)")
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    target = WEIGHTS / f"{args.name}.safetensors"
    if args.no_flip_average and info.metadata.get(KEY_FLIP_AVERAGE) != "false":
        model, _ = load_checkpoint(args.checkpoint)
        extra = {k: v for k, v in info.metadata.items() if k not in RESERVED_KEYS}
        save_checkpoint(target, model, task=info.task, extra={**extra, KEY_FLIP_AVERAGE: "false"})
        size = target.stat().st_size
    elif args.checkpoint.resolve() != target.resolve():  # re-registering the shipped file is fine
        shutil.copyfile(args.checkpoint, target)
    target.chmod(0o644)
    sha256 = hashlib.sha256(target.read_bytes()).hexdigest()

    fields: dict[str, object] = {
        "task": info.task,
        "arch": info.arch,
        "file": target.name,
        "sha256": sha256,
        "size": size,
        "default": True,
        "card": f"docs/models/{args.name}.md",
    }
    if args.no_default:
        del fields["default"]
    if args.description:
        fields["description"] = args.description
    if args.license:
        fields["license"] = args.license

    # Replace an earlier table of this name where it stands (else append), and drop the default mark of
    # other models of the same task.
    blocks = re.split(r'(?=^\[models\.")', REGISTRY.read_text(), flags=re.M)
    replaced = False
    for i, block in enumerate(blocks):
        if block.startswith(f'[models."{args.name}"]\n'):
            blocks[i] = table(args.name, fields) + ("\n" if i < len(blocks) - 1 else "")
            replaced = True
        elif f'task = "{info.task}"' in block and not args.no_default:
            blocks[i] = re.sub(r"^default = true\n", "", block, flags=re.M)
    text = "".join(blocks).rstrip("\n") + "\n"
    if not replaced:
        text += "\n" + table(args.name, fields)
    tomllib.loads(text)  # never leave a registry every ganedit command would refuse
    atomic_write(REGISTRY, text.encode())
    print(f"{target.relative_to(ROOT)}  {size} bytes  sha256 {sha256}")


if __name__ == "__main__":
    main()
