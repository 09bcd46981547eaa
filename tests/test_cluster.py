"""Running on a cluster: shares from scheduler variables, `ganedit report merge`, the docs' recipes, Ray.

What users depend on: the share a task takes (and that a bad variable stops it with exit 2 instead of
editing every input or none), the reports saying which share ran, a merged report whose exit code tells
the truth, and the recipes in docs/cluster.md doing what they say.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"
SCHEDULER_VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
    "GANEDIT_SHARD_COUNT",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
)


@pytest.fixture(autouse=True)
def _no_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the variables they mean; none leaks in from a CI runner that is itself a Slurm task."""
    for name in SCHEDULER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinymodels import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "derain.safetensors", "derain")


def photo(path: Path, seed: int, size: tuple[int, int] = (16, 16)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def photos(folder: Path, count: int) -> list[str]:
    """`count` small PNGs; returns their names in ganedit's (sorted) order."""
    names = [f"{i:02d}.png" for i in range(count)]
    for i, name in enumerate(names):
        photo(folder / name, seed=i)
    return names


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def edit(src: Path, out: Path, weights: Path, *extra: str, env: dict[str, str] | None = None):
    return run("derain", str(src), "-o", str(out), "--weights", str(weights), "--json", *extra, env=env)


# ------------------------------------------------------------------------------ shares from the environment


@pytest.mark.parametrize(
    ("env", "extra", "share", "source"),
    [
        ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}, [], (2, 3), "SLURM_ARRAY_TASK_ID"),
        (  # --array=1-3: IDs from 1
            {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3"},
            [],
            (2, 3),
            "SLURM_ARRAY_TASK_ID",
        ),
        (  # what Slurm sets for --array=0-4:2 (tasks 0, 2, 4)
            {
                "SLURM_ARRAY_TASK_ID": "4",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "4",
                "SLURM_ARRAY_TASK_STEP": "2",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            [],
            (2, 3),
            "SLURM_ARRAY_TASK_ID",
        ),
        (  # task 5 of 8 re-submitted alone (sbatch --array=5) with the count named: still share 5 of 8
            {
                "SLURM_ARRAY_TASK_ID": "5",
                "SLURM_ARRAY_TASK_MIN": "5",
                "SLURM_ARRAY_TASK_MAX": "5",
                "SLURM_ARRAY_TASK_COUNT": "1",
            },
            ["--shard-count", "8"],
            (5, 8),
            "SLURM_ARRAY_TASK_ID",
        ),
        ({"JOB_COMPLETION_INDEX": "1"}, ["--shard-count", "3"], (1, 3), "JOB_COMPLETION_INDEX"),
        ({"JOB_COMPLETION_INDEX": "1", "GANEDIT_SHARD_COUNT": "3"}, [], (1, 3), "JOB_COMPLETION_INDEX"),
        ({"RANK": "1", "WORLD_SIZE": "3"}, [], (1, 3), "RANK"),
        (  # a torchrun of 2 processes inside array task 1 of 2: that task's share, split in two
            {
                "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_ARRAY_TASK_COUNT": "2",
                "RANK": "1",
                "WORLD_SIZE": "2",
                "LOCAL_WORLD_SIZE": "2",
            },
            [],
            (3, 4),
            "SLURM_ARRAY_TASK_ID+RANK",
        ),
    ],
)
def test_scheduler_variables_pick_the_share(
    tmp_path: Path, weights: Path, env: dict[str, str], extra: list[str], share: tuple[int, int], source: str
) -> None:
    names = photos(tmp_path / "in", 9)
    code, stdout, stderr = edit(tmp_path / "in", tmp_path / "out", weights, *extra, env=env)
    assert code == 0, stderr
    report = json.loads(stdout)
    index, count = share
    assert report["shard"] == {"index": index, "count": count, "source": source}
    expected = names[index::count]
    assert sorted(Path(f["input"]).name for f in report["files"]) == expected
    assert sorted(p.name for p in (tmp_path / "out").glob("[!.]*")) == expected  # .ganedit: the index
    assert f"(shard {index}/{count} from {source})" in stderr  # the summary line says which share ran


@pytest.mark.parametrize(
    ("env", "extra", "needle"),
    [
        ({"RANK": "-1", "WORLD_SIZE": "2"}, [], "RANK='-1'"),
        ({"RANK": "7", "WORLD_SIZE": "2"}, [], "RANK=7 is out of range"),
        ({"RANK": "abc", "WORLD_SIZE": "2"}, [], "RANK='abc' is not a whole number"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, [], "WORLD_SIZE='0'"),
        ({"RANK": "0", "WORLD_SIZE": "two"}, [], "WORLD_SIZE='two'"),
        ({"RANK": "1"}, [], "WORLD_SIZE"),
        ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "x"}, [], "LOCAL_RANK='x'"),
        ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, [], "SLURM_ARRAY_TASK_ID='x'"),
        ({"SLURM_ARRAY_TASK_ID": "-1", "SLURM_ARRAY_TASK_COUNT": "4"}, [], "SLURM_ARRAY_TASK_ID='-1'"),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, [], "SLURM_ARRAY_TASK_ID=4"),
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "four"}, [], "SLURM_ARRAY_TASK_COUNT"),
        ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "0"}, [], "SLURM_ARRAY_TASK_COUNT"),
        ({"SLURM_ARRAY_TASK_ID": "0"}, [], "SLURM_ARRAY_TASK_COUNT"),
        (
            {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3"},
            [],
            "SLURM_ARRAY_TASK_ID=0",
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "y"},
            [],
            "SLURM_ARRAY_TASK_MAX='y'",
        ),
        (  # --array=1,3,8: not a range, numbering shares by ID would leave some out
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "8",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            [],
            "not a plain range",
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "4",
                "SLURM_ARRAY_TASK_STEP": "2",
            },
            [],
            "SLURM_ARRAY_TASK_ID=1",
        ),
        (
            {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_STEP": "0"},
            [],
            "SLURM_ARRAY_TASK_STEP",
        ),
        ({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "9"}, ["--shard-count", "8"], "SLURM"),
        ({"JOB_COMPLETION_INDEX": "abc", "GANEDIT_SHARD_COUNT": "4"}, [], "JOB_COMPLETION_INDEX='abc'"),
        ({"JOB_COMPLETION_INDEX": "-2", "GANEDIT_SHARD_COUNT": "4"}, [], "JOB_COMPLETION_INDEX='-2'"),
        ({"JOB_COMPLETION_INDEX": "4", "GANEDIT_SHARD_COUNT": "4"}, [], "JOB_COMPLETION_INDEX=4 is out of"),
        ({"JOB_COMPLETION_INDEX": "4"}, ["--shard-count", "4"], "JOB_COMPLETION_INDEX=4 is out of"),
        ({"JOB_COMPLETION_INDEX": "1"}, [], "--shard-count"),
        ({"JOB_COMPLETION_INDEX": "1", "GANEDIT_SHARD_COUNT": "0"}, [], "GANEDIT_SHARD_COUNT='0'"),
        ({"JOB_COMPLETION_INDEX": "1", "GANEDIT_SHARD_COUNT": "x"}, [], "GANEDIT_SHARD_COUNT='x'"),
        ({"GANEDIT_SHARD_COUNT": "4"}, [], "no shard index"),
        ({}, ["--shard-count", "4"], "no shard index"),
        ({}, ["--shard-count", "0"], "--shard-count"),
        ({"RANK": "0", "WORLD_SIZE": "2", "GANEDIT_SHARD_COUNT": "3"}, [], "WORLD_SIZE=2"),
        (
            {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "JOB_COMPLETION_INDEX": "0"},
            ["--shard-count", "2"],
            "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX",
        ),
        (  # a torchrun across nodes inside an array task: RANK may already count the tasks
            {
                "SLURM_ARRAY_TASK_ID": "0",
                "SLURM_ARRAY_TASK_COUNT": "2",
                "RANK": "0",
                "WORLD_SIZE": "4",
                "LOCAL_WORLD_SIZE": "2",
            },
            [],
            "spans several nodes",
        ),
    ],
)
def test_bad_scheduler_variables_are_usage_errors(
    tmp_path: Path, weights: Path, env: dict[str, str], extra: list[str], needle: str
) -> None:
    photos(tmp_path / "in", 3)
    code, stdout, stderr = edit(tmp_path / "in", tmp_path / "out", weights, *extra, env=env)
    assert code == 2, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith(("ganedit: error:", "Error:"))]
    assert needle in line and "Traceback" not in stderr  # one clear line naming the variable
    assert stdout == "" and not (tmp_path / "out").exists()  # stopped before anything was written


@pytest.mark.parametrize(
    "env",
    [
        {"RANK": "abc", "WORLD_SIZE": "2"},
        {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"},
        {"JOB_COMPLETION_INDEX": "9"},
        {"JOB_COMPLETION_INDEX": "0", "GANEDIT_SHARD_COUNT": "nope"},
    ],
)
def test_shard_option_overrides_the_environment(tmp_path: Path, weights: Path, env: dict[str, str]) -> None:
    names = photos(tmp_path / "in", 5)
    code, stdout, stderr = edit(tmp_path / "in", tmp_path / "out", weights, "--shard", "1/2", env=env)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["shard"] == {"index": 1, "count": 2, "source": "--shard"}
    assert [Path(f["input"]).name for f in report["files"]] == names[1::2]


def test_shard_and_shard_count_must_agree(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 3)
    code, _, stderr = edit(tmp_path / "in", tmp_path / "out", weights, "--shard", "1/2", "--shard-count", "3")
    assert code == 2 and "--shard-count 3" in stderr
    code, stdout, stderr = edit(
        tmp_path / "in", tmp_path / "out", weights, "--shard", "1/2", "--shard-count", "2"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["shard"]["count"] == 2


def test_unsharded_report_says_so(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 2)
    code, stdout, _ = edit(tmp_path / "in", tmp_path / "out", weights)
    assert code == 0
    report = json.loads(stdout)
    assert report["shard"] is None and report["merged"] is None


# ---------------------------------------------------------------------------------------- report merge


def shard_reports(
    src: Path, out: Path, reports: Path, weights: Path, count: int, *extra: str
) -> dict[int, Path]:
    """Run every share of `src` into `out`, each writing reports/shard-K.json (as a Slurm array would)."""
    reports.mkdir(parents=True, exist_ok=True)
    written = {}
    for k in range(count):
        code, stdout, stderr = edit(src, out, weights, "--shard", f"{k}/{count}", *extra)
        assert code in (0, 1), stderr
        written[k] = reports / f"shard-{k}.json"
        written[k].write_text(stdout)
    return written


def merge(*files: Path | str, as_json: bool = True) -> tuple[int, dict | None, str]:
    code, stdout, stderr = run("report", "merge", *map(str, files), *(["--json"] if as_json else []))
    return code, (json.loads(stdout) if as_json and stdout else None), stderr


def test_merge_totals_every_file_once(tmp_path: Path, weights: Path) -> None:
    names = photos(tmp_path / "in", 7)
    files = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 3)
    code, merged, stderr = merge(*files.values())
    assert code == 0, stderr
    assert merged is not None
    assert merged["totals"] == {"inputs": 7, "ok": 7, "skipped": 0, "failed": 0, "skipped_stale": 0}
    assert sorted(Path(f["input"]).name for f in merged["files"]) == names
    assert merged["shard"] is None
    assert merged["merged"]["shard_count"] == 3 and merged["merged"]["missing_shards"] == []
    assert [p["shard"]["index"] for p in merged["merged"]["reports"]] == [0, 1, 2]
    assert merged["model"] == "derain.safetensors" and len(merged["sha256"]) == 64
    assert set(merged) == set(json.loads(files[0].read_text())), "one schema for a run and a merge"

    code, stdout, stderr = run("report", "merge", *map(str, files.values()))  # human summary, no JSON
    assert code == 0 and stdout == ""
    assert "3 reports, 3 of 3 shards: 7 done, 0 skipped (output exists), 0 failed" in stderr

    # A re-run of every share skips everything, and says so; merged with nothing to do, still 0.
    again = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "again", weights, 3)
    code, merged, _ = merge(*again.values())
    assert code == 0 and merged is not None
    assert merged["totals"] == {"inputs": 7, "ok": 0, "skipped": 7, "failed": 0, "skipped_stale": 0}


def test_merge_reports_failures_and_exits_1(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 5)
    (tmp_path / "in" / "03.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    files = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 2)
    code, merged, stderr = merge(*files.values())
    assert code == 1
    assert merged is not None
    assert merged["totals"] == {"inputs": 5, "ok": 4, "skipped": 0, "failed": 1, "skipped_stale": 0}
    [failure] = [f for f in merged["files"] if f["status"] == "failed"]
    assert Path(failure["input"]).name == "03.png" and failure["error"]
    assert "failed files:" in stderr and "03.png" in stderr


def test_merge_with_a_missing_shard_exits_1(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 6)
    files = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 3)
    code, merged, stderr = merge(files[0], files[2])
    assert code == 1
    assert merged is not None and merged["merged"]["missing_shards"] == [1]
    assert merged["totals"]["failed"] == 0  # nothing failed, but the run is not done
    assert "missing shards" in stderr and "1 of 3" in stderr


def test_merge_with_an_interrupted_shard_exits_1(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 4)
    files = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 2)
    data = json.loads(files[1].read_text())
    data["interrupted"] = True  # what a Ctrl-C'd task writes with --json
    files[1].write_text(json.dumps(data))
    code, merged, stderr = merge(*files.values())
    assert code == 1 and merged is not None and merged["interrupted"] is True
    assert "interrupted" in stderr and "shard-1.json" in stderr


def test_merged_reports_merge_again(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 6)
    files = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 3)
    code, first, _ = merge(files[0], files[1])
    assert code == 1 and first is not None  # shard 2 is missing so far
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(first))
    code, merged, stderr = merge(partial, files[2])
    assert code == 0, stderr
    assert merged is not None and merged["totals"]["ok"] == 6
    assert merged["merged"]["missing_shards"] == []
    assert not any("no report for shard" in note for note in merged["notes"])


def _bad_report(tmp_path: Path, kind: str, good: dict[int, Path], other: Path) -> list[Path | str]:
    broken = tmp_path / f"{kind}.json"
    data = json.loads(good[0].read_text())
    if kind == "missing":
        return [good[0], tmp_path / "nope.json"]
    if kind == "empty":
        broken.write_text("")  # a task that died while its report was being written
    elif kind == "not-json":
        broken.write_text(good[0].read_text()[:40])  # truncated
    elif kind == "not-a-report":
        broken.write_text(json.dumps({"task": "rerender", "counts": {}, "entries": []}))
    elif kind == "totals-mismatch":
        data["files"][0]["status"] = "failed"
        broken.write_text(json.dumps(data))
    elif kind == "bad-status":
        data["files"][0]["status"] = "done"
        broken.write_text(json.dumps(data))
    elif kind == "duplicate-shard":  # shard 0 re-run into another file, both given
        broken.write_text(good[0].read_text())
        return [good[0], good[1], broken]
    elif kind == "given-twice":
        return [good[0], good[1], good[0]]
    elif kind == "bad-merged":
        data["merged"] = {"reports": [{"shard": None}]}
        broken.write_text(json.dumps(data))
    elif kind == "other-count":
        return [good[0], other]
    elif kind == "folder":
        return [good[0], tmp_path]
    return [broken, good[1]]


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("missing", "no such report file"),
        ("empty", "empty report"),
        ("not-json", "not a JSON report"),
        ("not-a-report", "rerender"),
        ("totals-mismatch", "do not match"),
        ("bad-status", "status"),
        ("duplicate-shard", "two reports"),
        ("given-twice", "given twice"),
        ("bad-merged", "'merged'"),
        ("other-count", "one of"),
        ("folder", "folder"),
    ],
)
def test_merge_refuses_bad_report_files(tmp_path: Path, weights: Path, kind: str, needle: str) -> None:
    photos(tmp_path / "in", 4)
    good = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 2)
    other = shard_reports(tmp_path / "in", tmp_path / "out3", tmp_path / "reports3", weights, 3)[1]
    code, merged, stderr = merge(*_bad_report(tmp_path, kind, good, other))
    assert code == 2, stderr
    assert merged is None  # no report printed that a CI job could mistake for the result
    assert stderr.startswith("ganedit: error:") and needle in stderr
    assert "Traceback" not in stderr


def test_merge_refuses_reports_of_different_models(tmp_path: Path, weights: Path) -> None:
    from tinymodels import make_checkpoint

    other = make_checkpoint(tmp_path / "other.safetensors", "derain", seed=3)
    photos(tmp_path / "in", 4)
    first = shard_reports(tmp_path / "in", tmp_path / "a", tmp_path / "ra", weights, 2)
    second = shard_reports(tmp_path / "in", tmp_path / "b", tmp_path / "rb", other, 2)
    code, _, stderr = merge(first[0], second[1])
    assert code == 2 and "different model" in stderr


def test_merge_refuses_a_whole_run_mixed_with_shards(tmp_path: Path, weights: Path) -> None:
    photos(tmp_path / "in", 4)
    shards = shard_reports(tmp_path / "in", tmp_path / "out", tmp_path / "reports", weights, 2)
    code, stdout, _ = edit(tmp_path / "in", tmp_path / "whole", weights)
    (tmp_path / "whole.json").write_text(stdout)
    code, _, stderr = merge(shards[0], tmp_path / "whole.json")
    assert code == 2 and "whole run" in stderr


# ------------------------------------------------------------------------------- the docs' own recipes


def _docs_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if marker in b]
    return block


def _shell(command: str, env: dict[str, str]) -> int:
    """Run one of the docs' command lines the way sh would: $VARS, globs, `mkdir -p`, `&&`, `> FILE`."""
    code = 0
    for part in command.split("&&"):
        words = shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], part))
        if words[:2] == ["mkdir", "-p"]:
            for folder in words[2:]:
                Path(folder).mkdir(parents=True, exist_ok=True)
            continue
        target = None
        if ">" in words:
            at = words.index(">")
            words, target = words[:at], words[at + 1]
        assert words[0] == "ganedit", command
        args = [a for w in words[1:] for a in (sorted(map(str, Path().glob(w))) if "*" in w else [w])]
        result = CliRunner(env=env).invoke(main, args, catch_exceptions=False)
        if target is not None:
            Path(target).write_text(result.stdout)
        code = result.exit_code
        if code:
            return code
    return code


@pytest.fixture
def studio(tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The docs' working folder: photos/ (a tree), and the docs' model name standing for a tiny model."""
    monkeypatch.chdir(tmp_path)
    names = [f"photos/{name}" for name in photos(tmp_path / "photos", 7)]
    names += [f"photos/trip/{name}" for name in photos(tmp_path / "photos" / "trip", 4)]
    registry = tmp_path / "registry.toml"  # the bundled pan-derain's name, a tiny model's file
    registry.write_text(
        '[models."pan-derain"]\ntask = "derain"\narch = "pan"\ndefault = true\n'
        f'file = "{weights}"\nsha256 = "{hashlib.sha256(weights.read_bytes()).hexdigest()}"\n'
    )
    monkeypatch.setenv("GANEDIT_REGISTRY", str(registry))
    return sorted(names)


def _written(folder: Path) -> list[str]:
    """The outputs under ``folder`` (not the index of what made them, in ``.ganedit/``)."""
    files = [p for p in folder.rglob("*") if p.is_file() and ".ganedit" not in p.relative_to(folder).parts]
    return sorted(f"photos/{p.relative_to(folder).as_posix()}" for p in files)


def test_docs_slurm_array_recipe(studio: list[str]) -> None:
    script = _docs_block("bash", "#SBATCH --array")
    first, last = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)\n", script).groups())  # type: ignore[union-attr]
    [command] = [line for line in script.splitlines() if line.startswith("ganedit ")]
    submit = _docs_block("bash", "sbatch --parsable")
    merge_command = re.search(r'--wrap "(.*)"', submit).group(1)  # type: ignore[union-attr]
    Path("reports").mkdir()  # `mkdir -p logs reports` in the docs

    def task(task_id: int) -> int:
        env = {
            "SLURM_ARRAY_TASK_ID": str(task_id),
            "SLURM_ARRAY_TASK_MIN": str(first),
            "SLURM_ARRAY_TASK_MAX": str(last),
            "SLURM_ARRAY_TASK_COUNT": str(last - first + 1),
            "SLURM_ARRAY_TASK_STEP": "1",
            "SLURM_CPUS_PER_TASK": "1",
        }
        return _shell(command, env)

    failed_node = 5
    for task_id in range(first, last + 1):
        if task_id != failed_node:
            assert task(task_id) == 0
    # The node running task 5 died: the merge says the run is not done, and which share to re-run.
    assert _shell(merge_command, {}) == 1
    merged = json.loads(Path("reports/derain.json").read_text())
    assert merged["merged"]["missing_shards"] == [failed_node - first]

    # Re-running task 5 (scontrol requeue) finishes the run: every input edited exactly once.
    assert task(failed_node) == 0
    assert _shell(merge_command, {}) == 0
    merged = json.loads(Path("reports/derain.json").read_text())
    assert merged["totals"] == {
        "inputs": len(studio),
        "ok": len(studio),
        "skipped": 0,
        "failed": 0,
        "skipped_stale": 0,
    }
    assert sorted(f["input"] for f in merged["files"]) == studio
    assert _written(Path("clean")) == studio
    shard = json.loads(Path("reports/shard-3.json").read_text())["shard"]
    assert shard == {"index": 3 - first, "count": last - first + 1, "source": "SLURM_ARRAY_TASK_ID"}

    # A task that died half-way left an empty report and some outputs: its re-run skips those.
    Path("clean/trip/00.png").unlink()
    owner = next(
        k
        for k in range(first, last + 1)
        if "photos/trip/00.png" in Path(f"reports/shard-{k}.json").read_text()
    )
    Path(f"reports/shard-{owner}.json").write_text("")
    assert _shell(merge_command, {}) == 2  # an empty report is an unreadable report
    assert task(owner) == 0
    redone = json.loads(Path(f"reports/shard-{owner}.json").read_text())
    assert redone["totals"]["ok"] == 1 and redone["totals"]["skipped"] == redone["totals"]["inputs"] - 1
    assert _shell(merge_command, {}) == 0


def test_docs_kubernetes_indexed_job_recipe(studio: list[str]) -> None:
    manifest = _docs_block("yaml", "completionMode: Indexed")
    completions = int(re.search(r"\bcompletions: (\d+)", manifest).group(1))  # type: ignore[union-attr]
    count = re.search(r'name: GANEDIT_SHARD_COUNT\s+value: "(\d+)"', manifest).group(1)  # type: ignore[union-attr]
    assert int(count) == completions, "the manifest's two numbers must agree"
    [command] = json.loads(re.search(r"args: (\[.*\])", manifest).group(1))  # type: ignore[union-attr]

    for index in range(completions):
        assert _shell(command, {"JOB_COMPLETION_INDEX": str(index), "GANEDIT_SHARD_COUNT": count}) == 0
    shard = json.loads(Path("reports/shard-2.json").read_text())["shard"]
    assert shard == {"index": 2, "count": completions, "source": "JOB_COMPLETION_INDEX"}
    assert _written(Path("clean")) == studio

    merge_command = re.search(r"`cd /data && (ganedit report merge [^`]*)`", DOCS.read_text()).group(1)  # type: ignore[union-attr]
    assert _shell(merge_command + " --json > merged.json", {}) == 0
    merged = json.loads(Path("merged.json").read_text())
    assert merged["totals"]["ok"] == len(studio) and merged["merged"]["shard_count"] == completions

    # A pod started without the count (the env entry dropped from the manifest) stops with exit 2.
    assert _shell(command, {"JOB_COMPLETION_INDEX": "0"}) == 2


# ---------------------------------------------------------------------------------------------- Ray Data


@pytest.fixture(scope="module")
def ray_editor(weights: Path):
    from ganedit.ray import RayEditor

    return RayEditor(str(weights), device="cpu", precision="fp32")


def test_ray_editor_edits_a_numpy_batch(ray_editor, weights: Path) -> None:
    import ganedit

    direct = ganedit.load(str(weights), device="cpu", precision="fp32")
    rng = np.random.default_rng(0)
    same = rng.integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)  # read_images' stacked column
    batch = {"image": same, "path": np.array(["a.png", "b.png", "c.png"])}
    out = ray_editor(batch)
    assert out["image"].shape == same.shape and out["image"].dtype == np.uint8
    assert list(out["path"]) == ["a.png", "b.png", "c.png"]  # other columns pass through
    for before, after in zip(same, out["image"], strict=True):
        assert np.abs(after.astype(int) - direct.edit(before).astype(int)).max() <= 1
    assert not np.array_equal(out["image"], same)

    ragged = np.empty(2, dtype=object)  # images of different sizes: a column of arrays
    ragged[0], ragged[1] = same[0], rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    out = ray_editor({"image": ragged})
    assert [im.shape for im in out["image"]] == [(24, 32, 3), (40, 20, 3)]


def test_ray_editor_inpaints_with_a_mask_column(tmp_path: Path) -> None:
    from ganedit.ray import RayEditor
    from tinymodels import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "inpaint.safetensors", "inpaint")
    editor = RayEditor(str(ckpt), device="cpu", mask_column="mask")
    image = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    mask = np.zeros((2, 16, 16), dtype=np.uint8)
    mask[:, 4:12, 4:12] = 255
    out = editor({"image": image, "mask": mask})["image"]
    keep = mask == 0
    assert np.array_equal(out[keep], image[keep])  # unmasked pixels untouched
    assert not np.array_equal(out[~keep], image[~keep])


def test_ray_editor_usage_errors(ray_editor, weights: Path) -> None:
    from ganedit.errors import UsageError
    from ganedit.ray import RayEditor

    with pytest.raises(UsageError, match="no column 'image'"):
        ray_editor({"img": np.zeros((1, 8, 8, 3), dtype=np.uint8)})
    with pytest.raises(UsageError, match="takes no mask"):
        RayEditor(str(weights), device="cpu", mask_column="mask")


@pytest.mark.slow
def test_ray_data_pipeline_on_a_local_cluster(tmp_path: Path, weights: Path) -> None:
    """The docs' pipeline, read_images -> map_batches(RayEditor) -> write_images, on a 2-CPU local Ray."""
    ray = pytest.importorskip("ray")
    import ganedit
    from ganedit.ray import RayEditor

    src = tmp_path / "photos"
    for i in range(6):
        photo(src / f"{i}.png", seed=i, size=(32, 24) if i % 2 else (16, 16))
    direct = ganedit.load(str(weights), device="cpu", precision="fp32")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.read_images(str(src), mode="RGB", include_paths=True)
        ds = ds.map_batches(
            RayEditor,
            fn_constructor_kwargs={"model": str(weights), "device": "cpu", "precision": "fp32"},
            concurrency=2,
            num_cpus=0.5,  # two 1-CPU actors would take both CPUs and leave none to read the images
            batch_size=2,
        ).materialize()
        rows = ds.take_all()
        ds.write_images(str(tmp_path / "clean"), column="image", file_format="png")
    finally:
        ray.shutdown()
    assert len(rows) == 6
    for row in rows:
        original = np.asarray(Image.open(_local(row["path"])).convert("RGB"))
        assert row["image"].shape == original.shape
        assert np.abs(row["image"].astype(int) - direct.edit(original).astype(int)).max() <= 1
    assert len(list((tmp_path / "clean").glob("*.png"))) == 6


def _local(path: str) -> str:
    return path if Path(path).is_file() else "/" + path.lstrip("/")
