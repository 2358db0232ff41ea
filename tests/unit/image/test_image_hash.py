"""The image content hash filter: deterministic, sensitive to what changes the image, blind to the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.coderstack.platform.plugins.filter import image_hash

REPO = Path(__file__).resolve().parents[3]
content_hash = image_hash.image_content_hash


@pytest.fixture()
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "bootstrap.fish").write_text("echo hi\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a\n")
    return tmp_path


def test_hash_is_stable_hex(ctx: Path) -> None:
    h = content_hash(str(ctx), {"A": "1"})
    assert len(h) == 64 and int(h, 16) >= 0
    assert content_hash(str(ctx), {"A": "1"}) == h


def test_same_content_elsewhere_gives_same_hash(ctx: Path, tmp_path_factory) -> None:
    other = tmp_path_factory.mktemp("copy")
    for rel in ("Containerfile", "bootstrap.fish", "sub/a.txt"):
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        (other / rel).write_bytes((ctx / rel).read_bytes())
    os.utime(other / "Containerfile", (0, 0))  # mtimes do not matter
    assert content_hash(str(other), {"A": "1"}) == content_hash(str(ctx), {"A": "1"})


def test_build_arg_order_does_not_matter(ctx: Path) -> None:
    assert content_hash(str(ctx), {"A": "1", "B": "2"}) == content_hash(str(ctx), {"B": "2", "A": "1"})


@pytest.mark.parametrize(
    "change",
    [
        lambda p: (p / "bootstrap.fish").write_text("echo changed\n"),
        lambda p: (p / "sub" / "new.txt").write_text("new\n"),
        lambda p: (p / "sub" / "a.txt").rename(p / "sub" / "b.txt"),
        lambda p: (p / "bootstrap.fish").chmod(0o755),
    ],
    ids=["content", "new-file", "rename", "exec-bit"],
)
def test_changes_to_the_context_change_the_hash(ctx: Path, change) -> None:
    before = content_hash(str(ctx), {})
    change(ctx)
    assert content_hash(str(ctx), {}) != before


def test_build_args_change_the_hash(ctx: Path) -> None:
    assert content_hash(str(ctx), {"CODE_SERVER_VERSION": "4.89.1"}) != content_hash(
        str(ctx), {"CODE_SERVER_VERSION": "4.89.0"}
    )
    # None and "" are the same build argument value (an empty --build-arg)
    assert content_hash(str(ctx), {"X": None}) == content_hash(str(ctx), {"X": ""})


def test_excluded_paths_do_not_matter(ctx: Path) -> None:
    before = content_hash(str(ctx), {}, ["README.md", "__pycache__"])
    (ctx / "README.md").write_text("docs\n")
    (ctx / "sub" / "__pycache__").mkdir()
    (ctx / "sub" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert content_hash(str(ctx), {}, ["README.md", "__pycache__"]) == before
    assert content_hash(str(ctx), {}, []) != before


def test_symlinks_are_hashed_by_target(ctx: Path) -> None:
    (ctx / "link").symlink_to("sub")
    first = content_hash(str(ctx), {})
    (ctx / "link").unlink()
    (ctx / "link").symlink_to("bootstrap.fish")
    assert content_hash(str(ctx), {}) != first


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AnsibleFilterError, match="is not a directory"):
        content_hash(str(tmp_path / "missing"), {})
    with pytest.raises(AnsibleFilterError, match="build_args must be a dict"):
        content_hash(str(tmp_path), ["A=1"])


def test_filter_is_registered() -> None:
    assert image_hash.FilterModule().filters()["image_content_hash"] is content_hash


def test_repo_image_context_hashes() -> None:
    assert len(content_hash(str(REPO / "image"), {"BASE_IMAGE": "debian:bookworm"})) == 64
