"""`ganedit.data`: the one paired-folder matcher and tags.json reader, and the aliases at the old paths."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganedit.data.pairs import is_paired, match_pairs, split_side_by_side
from ganedit.data.tagset import read_document, read_index
from ganedit.errors import UsageError


def _save(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("ganedit.evaluate", "ganedit.eval.pan"),
        ("ganedit.evaluate_tdgan", "ganedit.eval.tdgan"),
        ("ganedit.metrics", "ganedit.eval.metrics"),
        ("ganedit.train.synth", "ganedit.data.synth"),
        ("ganedit.train.tagset", "ganedit.data.tagset"),
    ],
)
def test_old_module_paths_are_the_new_modules(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def test_rain_clean_and_input_target_folders_pair_by_stem(tmp_path: Path) -> None:
    for stem in ("a", "sub/b"):
        _save(tmp_path / "clean" / f"{stem}.png")
        _save(tmp_path / "rain" / f"{stem}.bmp", 9)
    assert is_paired(tmp_path)
    folder = match_pairs(tmp_path)
    assert (folder.target_dir, folder.input_dir) == ("clean", "rain")
    assert [p.name for p in folder.pairs] == ["a", "sub/b"]
    assert folder.pairs[1].input == tmp_path / "rain" / "sub" / "b.bmp"

    _save(tmp_path / "rain" / "extra.png")
    with pytest.raises(UsageError, match=r"rain/extra\.\* has no clean/extra"):
        match_pairs(tmp_path)  # strict: an input without its target is an error
    assert len(match_pairs(tmp_path, strict=False).pairs) == 2  # evaluation may hold extra inputs
    (tmp_path / "rain" / "a.bmp").unlink()
    with pytest.raises(UsageError, match=r"clean/a\.\* has no rain/a"):
        match_pairs(tmp_path, strict=False)


def test_masks_of_a_paired_folder(tmp_path: Path) -> None:
    _save(tmp_path / "target" / "x.png")
    with pytest.raises(UsageError, match="needs mask/"):
        match_pairs(tmp_path, needs_input=False, masks="required")
    assert not is_paired(tmp_path)
    _save(tmp_path / "mask" / "x.png", 255)
    assert is_paired(tmp_path)
    (pair,) = match_pairs(tmp_path, needs_input=False, masks="optional").pairs
    assert pair.mask == tmp_path / "mask" / "x.png" and pair.input is None
    _save(tmp_path / "target" / "y.png")
    with pytest.raises(UsageError, match=r"target/y\.\* has no mask/y"):
        match_pairs(tmp_path, needs_input=False, masks="optional")


def test_side_by_side_halves() -> None:
    both = np.concatenate([np.zeros((4, 5, 3), np.uint8), np.ones((4, 5, 3), np.uint8)], axis=1)
    inp, target = split_side_by_side(both, "left")
    assert target.max() == 0 and inp.min() == 1
    inp, target = split_side_by_side(np.pad(both, ((0, 0), (0, 1), (0, 0))), "right")  # odd width
    assert inp.max() == 0 and target.min() == 1 and target.shape == (4, 5, 3)


def test_tags_json_reader(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a tagged image set"):
        read_index(tmp_path, 64)
    assert read_document(tmp_path / "tags.json", "ganedit-chairs/1") is None
    index = {
        "format": "ganedit-chairs/1",
        "sizes": [64],
        "vocabulary": {"azimuth": [0.0, 12.4]},
        "images": [],
    }
    (tmp_path / "tags.json").write_text(json.dumps(index))
    assert read_index(tmp_path, 64).vocabulary == {"azimuth": ("0", "12")}
    with pytest.raises(UsageError, match="not 32"):
        read_index(tmp_path, 32)
    assert read_document(tmp_path / "tags.json", "ganedit-chairs/1") == index
    assert read_document(tmp_path / "tags.json", "other/1") is None


def _imports(path: Path, package: str) -> set[str]:
    """The modules `path` (a module of ganedit.`package`) imports, absolute."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = ["ganedit", package][: 3 - node.level] if node.level else []
            base = ".".join([*parts, node.module] if node.module else parts)
            names.update([base] + [f"{base}.{alias.name}" for alias in node.names])
    return names


@pytest.mark.parametrize(
    ("package", "banned"),
    [("eval", ("train",)), ("data", ("train", "eval")), ("archs", ("train", "eval", "data"))],
)
def test_evaluation_and_data_never_import_training(package: str, banned: tuple[str, ...]) -> None:
    """eval/ imports data/, never train/; data/ and archs/ import neither (archs/ names the training
    pieces that moved out of it only by string, for one release)."""
    import ganedit

    folder = Path(ganedit.__file__).parent / package
    for path in sorted(folder.glob("*.py")):
        wrong = {n for n in _imports(path, package) for b in banned if n.startswith(f"ganedit.{b}")}
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


def test_training_reads_rain_and_clean_folders_as_pairs(tmp_path: Path) -> None:
    from ganedit.train.data import DataOptions, open_training_data

    for stem in ("a", "b"):
        _save(tmp_path / "clean" / f"{stem}.png", 200)
        _save(tmp_path / "rain" / f"{stem}.png", 100)
    options = DataOptions(task="derain", crop=8, paired_downscale=(1.0, 1.0), val_fraction=0.0)
    data = open_training_data(tmp_path, None, options, seed=0)
    assert data.layout == "pairs" and data.description["files"] == 2
    item = data.train[0]
    assert float(item["input"].mean()) < float(item["target"].mean())


def test_training_draws_from_every_data_folder(tmp_path: Path) -> None:
    """Several folders of photos (``--data A --data B``, joined by os.pathsep in the config) train as one
    set: same-named files in two folders are both kept, and samples come from both folders."""
    import os

    from ganedit.train.data import DataOptions, open_training_data

    for stem in ("a", "b"):
        _save(tmp_path / "wallpapers" / f"{stem}.png", 40)
    _save(tmp_path / "facades" / "a.png", 220)
    options = DataOptions(task="derain", crop=8, downscale=(1.0, 1.0), val_fraction=0.0, rain="classic")
    joined = os.pathsep.join(str(tmp_path / name) for name in ("wallpapers", "facades"))
    data = open_training_data(joined, None, options, seed=0)
    assert data.layout == "photos" and data.description["files"] == 3
    levels = {round((float(data.train[i]["target"].mean()) + 1) * 127.5) for i in range(30)}  # [-1, 1]
    assert levels == {40, 220}
    # the held-out share is drawn by file name: two folders' a.png are two files, one of each kept
    _save(tmp_path / "only-a" / "a.png", 90)
    joined = os.pathsep.join(str(tmp_path / name) for name in ("facades", "only-a"))
    halves = DataOptions(task="derain", crop=8, downscale=(1.0, 1.0), val_fraction=0.5, rain="classic")
    split = open_training_data(joined, None, halves, seed=0)
    assert split.description["files"] == 1 and split.description["val_files"] == 1
    # a folder whose name holds the separator is still one folder
    odd = tmp_path / f"run{os.pathsep}1"
    _save(odd / "a.png", 40)
    assert open_training_data(str(odd), None, options, seed=0).description["files"] == 1


def test_data_folders_listed_twice_nested_or_of_two_layouts_are_refused(tmp_path: Path) -> None:
    import os

    from ganedit.train.data import DataOptions, data_folders, open_training_data

    _save(tmp_path / "photos" / "a.png", 40)
    _save(tmp_path / "photos" / "more" / "b.png", 40)
    for stem in ("a",):
        _save(tmp_path / "paired" / "clean" / f"{stem}.png", 200)
        _save(tmp_path / "paired" / "rain" / f"{stem}.png", 100)
    photos, nested, paired = (str(tmp_path / p) for p in ("photos", "photos/more", "paired"))
    with pytest.raises(UsageError, match="listed twice"):
        data_folders(os.pathsep.join([photos, str(tmp_path / "paired" / ".." / "photos")]))
    with pytest.raises(UsageError, match="is inside"):
        data_folders(os.pathsep.join([photos, nested]))
    with pytest.raises(UsageError, match="is inside"):
        data_folders(os.pathsep.join([nested, photos]))
    options = DataOptions(task="derain", crop=8, downscale=(1.0, 1.0), val_fraction=0.0)
    with pytest.raises(UsageError, match="one layout"):
        open_training_data(os.pathsep.join([photos, paired]), None, options, seed=0)
    assert data_folders(photos) == [Path(photos)]
