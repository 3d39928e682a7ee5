"""Collections of images through the library: reading a folder or a table of paths, indexing
with unreadable files left out and named, searching by image after a reopen, refusing encoders
of mixed input kinds, and near-duplicate groups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components import import_component
from embedcraft import Collection, load_encoder
from embedcraft.errors import InputError
from embedcraft.store.dedup import collection_near_duplicates, near_duplicates
from embedcraft.store.images import encode_images, index_images, read_images
from pictures import gradient

Image = import_component("PIL.Image", "Pillow (pip install 'embedcraft[images]')")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """a.png, its shrunk JPEG copy, two unrelated pictures, a damaged .jpg, a hidden file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    gradient(0).save(folder / "a.png")
    gradient(0).resize((64, 48)).save(folder / "sub" / "a_copy.jpg", quality=70)
    gradient(1).save(folder / "b.png")
    gradient(2).save(folder / "c.png")
    good = (folder / "b.png").read_bytes()
    (folder / "broken.png").write_bytes(good[: len(good) // 3])  # a truncated PNG
    (folder / ".hidden.png").write_bytes(good)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_folder_reads_as_ids_paths_and_metadata(photos: Path) -> None:
    table = read_images(photos)
    assert table.ids == ["a.png", "b.png", "broken.png", "c.png", "sub/a_copy.jpg"]
    assert table.paths[4] == (photos / "sub" / "a_copy.jpg").resolve()
    assert table.metadata[4] == {"path": "sub/a_copy.jpg", "suffix": ".jpg"}
    encoded = encode_images(load_encoder("pixels"), table)
    assert encoded.ids == ["a.png", "b.png", "c.png", "sub/a_copy.jpg"]
    assert [(f.id, f.path) for f in encoded.failed] == [
        ("broken.png", str((photos / "broken.png").resolve()))
    ]
    assert "damaged image data" in encoded.failed[0].reason
    assert (
        encoded.vectors.shape == (4, 832) and np.linalg.norm(encoded.vectors, axis=1).min() > 0.99
    )


def test_a_table_names_images_relative_to_itself(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "list.jsonl").write_text(
        '{"id": "x", "file": "photos/a.png", "year": 2001}\n'
        '{"id": "y", "file": "photos/sub/a_copy.jpg", "year": 2002}\n'
    )
    table = read_images(tmp_path / "list.jsonl", column="file")
    assert table.ids == ["x", "y"]
    assert table.paths == [(photos / "a.png").resolve(), (photos / "sub/a_copy.jpg").resolve()]
    assert table.metadata == [{"year": 2001}, {"year": 2002}]
    with pytest.raises(InputError, match="no column 'path'.*pass --column"):
        read_images(tmp_path / "list.jsonl")
    with pytest.raises(InputError, match="column 'id' holds no image paths"):
        read_images(tmp_path / "list.jsonl", column="id")


def test_index_reopen_and_search_by_image(photos: Path, tmp_path: Path) -> None:
    where = tmp_path / "col"
    with Collection(where, encoders=["pixels"]) as col:
        result = index_images(col, read_images(photos), batch_size=2)
        assert result.ids == ["a.png", "b.png", "c.png", "sub/a_copy.jpg"]
        assert [f.id for f in result.failed] == ["broken.png"]
        assert col.count() == 4
    with Collection(where) as col:  # a fresh open rebuilds the encoder from its stored spec
        hits = col.search(str(photos / "sub" / "a_copy.jpg"), k=2)
        assert [h.id for h in hits] == ["sub/a_copy.jpg", "a.png"]
        assert hits[1].text == str((photos / "a.png").resolve())
        assert hits[1].metadata == {"path": "a.png", "suffix": ".png"}
        only_jpg = col.search(str(photos / "a.png"), k=5, where={"suffix": ".jpg"})
        assert [h.id for h in only_jpg] == ["sub/a_copy.jpg"]
        with pytest.raises(InputError, match="'pixels' reads images and could not read query 0"):
            col.search("a colourful gradient")
        with pytest.raises(InputError, match="could not read document 0.*broken.png"):
            col.add([str(photos / "broken.png")])  # never stored with a made-up vector
        assert col.count() == 4
        groups = collection_near_duplicates(col, 0.95)
        assert [g.ids for g in groups] == [["a.png", "sub/a_copy.jpg"]]


def test_a_collection_refuses_encoders_of_mixed_kinds(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pixels reads image, bm25 reads text"):
        Collection(tmp_path / "mixed", encoders=["pixels", "bm25"])
    with Collection(tmp_path / "texts", encoders=["hashing"]) as col:
        with pytest.raises(InputError, match="this collection's encoders read text"):
            index_images(col, read_images(photos))
        assert col.count() == 0


def test_near_duplicates_link_groups_and_skip_zero_vectors() -> None:
    vectors = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.99, 0.14, 0.0],
            [0.96, 0.28, 0.0],
            [0, 0, 0],
            [0, 0, 0],
        ]
    )
    ids = ["a", "b", "a1", "a2", "zero1", "zero2"]
    groups = near_duplicates(vectors, ids, 0.98, block=2)
    # a~a1 (0.99) and a1~a2 (0.99): one group, though a~a2 is only 0.96
    assert [g.ids for g in groups] == [["a", "a1", "a2"]]
    assert groups[0].similarities[0] == 1.0
    assert groups[0].similarities[2] == pytest.approx(0.96 / np.linalg.norm([0.96, 0.28]))
    assert near_duplicates(vectors, ids, 0.999) == []
    with pytest.raises(InputError, match="between -1 and 1"):
        near_duplicates(vectors, ids, 1.5)
    with pytest.raises(InputError, match="6 vectors but 2 ids"):
        near_duplicates(vectors, ids[:2])


_REOPEN = """
import json, sys
from embedcraft import Collection
with Collection(sys.argv[1]) as col:
    hits = col.search(sys.argv[2], k=3)
    print(json.dumps([[h.id, h.score] for h in hits]))
"""


def test_an_efficientnet_collection_reopens_in_a_fresh_process(
    photos: Path, tmp_path: Path
) -> None:
    import_component("torch", "torch, for the one-time export (pip install 'embedcraft[images]')")
    where = tmp_path / "lite0"
    query = str(photos / "sub" / "a_copy.jpg")
    with Collection(where, encoders=["efficientnet-lite0"]) as col:
        index_images(col, read_images(photos))
        here = [[h.id, h.score] for h in col.search(query, k=3)]
    done = subprocess.run(
        [sys.executable, "-c", _REOPEN, str(where), query],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert [i for i, _ in there] == [i for i, _ in here]
    assert here[0][0] == "sub/a_copy.jpg" and here[1][0] == "a.png"
    np.testing.assert_allclose([s for _, s in there], [s for _, s in here], atol=1e-5)
