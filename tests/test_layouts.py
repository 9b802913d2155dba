"""Readers of the layouts real sets ship in (FFHQ, CelebA, MegaFace-style Flickr folders) and
img2dataset's webdataset shards, each built small from real photos in a temporary folder."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LFW
from PIL import Image

from indexer.errors import ImageError, SourceError
from indexer.sources import detect_format, open_source

PHOTOS = sorted((LFW / "images" / "Aaron_Peirsol").iterdir())[:3] + sorted((LFW / "images" / "Al_Gore").iterdir())[:2]


def png(photo: Path) -> bytes:
    out = io.BytesIO()
    Image.open(photo).save(out, "PNG")
    return out.getvalue()


# -- FFHQ ----------------------------------------------------------------------------------


def ffhq_record(number: int, photo_url: str, author: str, *, wild: bool = True) -> dict:
    """One record of ffhq-dataset-v2.json, with every field NVIDIA's file has."""
    name = f"{number:05d}"
    landmarks = [[float(i), float(i + 1)] for i in range(68)]
    record = {
        "category": "training" if number < 60000 else "validation",
        "metadata": {
            "photo_url": photo_url,
            "photo_title": f"DSCF{number:04d}.JPG",
            "author": author,
            "country": "",
            "license": "Attribution-NonCommercial License",
            "license_url": "https://creativecommons.org/licenses/by-nc/2.0/",
            "date_uploaded": "2007-08-16",
            "date_crawled": "2018-10-10",
        },
        "image": {
            "file_url": "https://drive.google.com/uc?id=x",
            "file_path": f"images1024x1024/00000/{name}.png",
            "file_size": 1488194,
            "file_md5": "ddeaeea6ce59569643715759d537fd1b",
            "pixel_size": [1024, 1024],
            "pixel_md5": "47238b44dfb87644460cbdcc4607e289",
            "face_landmarks": landmarks,
        },
        "thumbnail": {
            "file_url": "https://drive.google.com/uc?id=y",
            "file_path": f"thumbnails128x128/00000/{name}.png",
            "file_size": 29050,
            "file_md5": "bd3e40b2ba20f76b55dc282907b89cd1",
            "pixel_size": [128, 128],
            "pixel_md5": "38d7e93eb9a796d0e65f8c64de8ba161",
        },
    }
    if wild:
        record["in_the_wild"] = {
            "file_url": "https://drive.google.com/uc?id=z",
            "file_path": f"in-the-wild-images/00000/{name}.png",
            "file_size": 3991569,
            "file_md5": "1dc0287e73e485efb0516a80ce9d42b4",
            "pixel_size": [250, 250],
            "pixel_md5": "86b3470c42e33235d76b979161fb2327",
            "face_rect": [60, 60, 190, 190],
            "face_landmarks": landmarks,
            "face_quad": [[1.0, 2.0]] * 4,
        }
    return record


def make_ffhq(root: Path, records: list[tuple[str, str, Path | None]], *, folder: str = "images1024x1024") -> Path:
    """An FFHQ tree: ffhq-dataset-v2.json and the images of the records that have a photo (None: not downloaded)."""
    root.mkdir(parents=True, exist_ok=True)
    document = {}
    for number, (url, author, photo) in enumerate(records):
        document[str(number)] = ffhq_record(number, url, author)
        if photo is not None:
            section = {"images1024x1024": "image", "in-the-wild-images": "in_the_wild"}[folder]
            target = root / document[str(number)][section]["file_path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png(photo))
    # NVIDIA's file is indented JSON; the reader decodes it one record at a time.
    (root / "ffhq-dataset-v2.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    return root


def test_ffhq_keeps_each_photos_flickr_url_author_and_licence(tmp_path: Path):
    root = make_ffhq(
        tmp_path / "ffhq",
        [
            ("https://www.flickr.com/photos/jeremyfrumkin/1133484654/", "Jeremy Frumkin", PHOTOS[0]),
            ("https://www.flickr.com/photos/12345678@N00/2000000001/", "Someone Else", PHOTOS[1]),
            ("https://www.flickr.com/photos/notdownloaded/3000000001/", "Not Downloaded", None),
        ],
    )
    assert detect_format(root) == "ffhq"
    assert detect_format(root / "ffhq-dataset-v2.json") == "ffhq"
    source = open_source(root)
    assert source.format == "ffhq" and source.count() == 3
    first, second, missing = list(source)
    assert first.key == "images1024x1024/00000/00000.png"
    assert first.metadata == {
        "ffhq_index": "0",
        "category": "training",
        "photo_url": "https://www.flickr.com/photos/jeremyfrumkin/1133484654/",
        "photo_title": "DSCF0000.JPG",
        "author": "Jeremy Frumkin",
        "license": "Attribution-NonCommercial License",
        "license_url": "https://creativecommons.org/licenses/by-nc/2.0/",
        "date_uploaded": "2007-08-16",
        "date_crawled": "2018-10-10",
    }
    assert Image.open(io.BytesIO(first.read())).format == "PNG"
    assert second.metadata["author"] == "Someone Else"
    # A record whose image was not downloaded is still an entry: reported missing, its metadata kept.
    assert missing.metadata["photo_url"].endswith("/3000000001/")
    with pytest.raises(ImageError) as caught:
        missing.read()
    assert caught.value.code == "missing_file"


def test_ffhq_reads_in_the_wild_images_with_their_face_rectangle(tmp_path: Path):
    root = make_ffhq(
        tmp_path / "ffhq",
        [("https://www.flickr.com/photos/a/1000000001/", "A", PHOTOS[0])],
        folder="in-the-wild-images",
    )
    (entry,) = list(open_source(root, "ffhq"))
    assert entry.key == "in-the-wild-images/00000/00000.png"
    assert entry.metadata["face_rect"] == [60, 60, 190, 190]
    assert entry.read()


def test_broken_ffhq_metadata_is_a_clear_error(tmp_path: Path):
    root = make_ffhq(tmp_path / "ffhq", [("https://www.flickr.com/photos/a/1000000001/", "A", PHOTOS[0])])
    text = (root / "ffhq-dataset-v2.json").read_text()
    (root / "ffhq-dataset-v2.json").write_text(text[: len(text) // 2])
    with pytest.raises(SourceError, match="not valid JSON near character"):
        list(open_source(root))
    (root / "ffhq-dataset-v2.json").write_text("[1, 2]")
    with pytest.raises(SourceError, match="JSON object"):
        list(open_source(root, "ffhq"))


# -- CelebA --------------------------------------------------------------------------------


def make_celeba(root: Path, photos: list[Path], *, official: bool = True) -> Path:
    """CelebA as its Google Drive ships it (Img/, Anno/, Eval/), or flat as torchvision keeps it."""
    images = root / ("Img/img_celeba" if official else "img_align_celeba")
    anno = root / "Anno" if official else root
    evaluation = root / "Eval" if official else root
    for folder in (images, anno, evaluation):
        folder.mkdir(parents=True, exist_ok=True)
    names = [f"{n:06d}.jpg" for n in range(1, len(photos) + 1)]
    for name, photo in zip(names, photos, strict=True):
        (images / name).write_bytes(photo.read_bytes())
    (anno / "identity_CelebA.txt").write_text("".join(f"{name} {2880 + n}\n" for n, name in enumerate(names)))
    boxes = [f"{name:<14}{95 + n:>4} {71:>4} {226:>4} {313:>4}\n" for n, name in enumerate(names)]
    (anno / "list_bbox_celeba.txt").write_text(f"{len(names)}\nimage_id x_1 y_1 width height\n" + "".join(boxes))
    (evaluation / "list_eval_partition.txt").write_text("".join(f"{name} {n % 3}\n" for n, name in enumerate(names)))
    return root


@pytest.mark.parametrize("official", [True, False])
def test_celeba_keeps_identity_and_the_annotated_box(tmp_path: Path, official: bool):
    root = make_celeba(tmp_path / "celeba", PHOTOS[:3], official=official)
    assert detect_format(root) == "celeba"
    entries = list(open_source(root))
    assert [e.key for e in entries] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert entries[0].metadata == {"identity": 2880, "bbox": [95, 71, 226, 313], "partition": "train"}
    assert entries[2].metadata == {"identity": 2882, "bbox": [97, 71, 226, 313], "partition": "test"}
    assert entries[1].read() == PHOTOS[1].read_bytes()


def test_celeba_annotations_without_images_or_with_bad_lines_are_refused(tmp_path: Path):
    root = tmp_path / "celeba"
    (root / "Anno").mkdir(parents=True)
    (root / "Anno" / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    with pytest.raises(SourceError, match="no image folder"):
        open_source(root)
    make_celeba(root, PHOTOS[:1])
    (root / "Anno" / "identity_CelebA.txt").write_text("000001.jpg person-one\n")
    with pytest.raises(SourceError, match="line 1"):
        list(open_source(root))


# -- MegaFace-style Flickr folders ---------------------------------------------------------


def make_megaface(root: Path, layout: dict[str, Path]) -> Path:
    """MegaFace's FlickrFinal2: <3 digits>/<NSID>/<photo id>_<face>.jpg with a .jpg.json sidecar."""
    for relative, photo in layout.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(photo.read_bytes())
        if "FlickrFinal2" in relative:
            box = {"x": 20.5, "y": 31.0, "width": 150.0, "height": 151.5}
            landmarks = {str(i): {"x": 10.0 * i, "y": 12.0 * i} for i in range(49)}
            target.with_name(target.name + ".json").write_text(
                json.dumps({"bounding_box": box, "landmarks": landmarks}), encoding="utf-8"
            )
    return root


def test_megaface_paths_give_the_owner_nsid_and_the_photo_id(tmp_path: Path):
    root = make_megaface(
        tmp_path / "megaface",
        {
            "FlickrFinal2/123/12345678@N00/8032652775_0.jpg": PHOTOS[0],
            "FlickrFinal2/123/12345678@N00/8032652775_1.jpg": PHOTOS[1],
            "FlickrFinal2/876/87654321@N05/4811548600_0.jpg": PHOTOS[3],
        },
    )
    assert detect_format(root) == "megaface"
    entries = list(open_source(root))
    assert [e.key for e in entries] == [
        "FlickrFinal2/123/12345678@N00/8032652775_0.jpg",
        "FlickrFinal2/123/12345678@N00/8032652775_1.jpg",
        "FlickrFinal2/876/87654321@N05/4811548600_0.jpg",
    ]
    first = entries[0].metadata
    assert (first["flickr_nsid"], first["flickr_photo_id"], first["face_index"]) == ("12345678@N00", "8032652775", 0)
    assert first["bounding_box"] == {"x": 20.5, "y": 31.0, "width": 150.0, "height": 151.5}
    assert len(first["landmarks"]) == 49
    assert entries[1].metadata["face_index"] == 1
    assert entries[2].metadata["flickr_nsid"] == "87654321@N05"


def test_flickr_download_names_and_nsid_folders_without_megafaces_root(tmp_path: Path):
    root = make_megaface(
        tmp_path / "flickr",
        {"99999999@N01/5123456789_a1b2c3d4e5_b.jpg": PHOTOS[2], "99999999@N01/notes/readme.jpg": PHOTOS[4]},
    )
    assert detect_format(root) == "megaface"
    by_key = {e.key: e.metadata for e in open_source(root)}
    assert by_key["99999999@N01/5123456789_a1b2c3d4e5_b.jpg"] == {
        "flickr_nsid": "99999999@N01",
        "flickr_photo_id": "5123456789",
    }
    assert by_key["99999999@N01/notes/readme.jpg"] == {"flickr_nsid": "99999999@N01"}  # no photo id in its name


def test_an_ordinary_folder_of_people_stays_a_folder(tmp_path: Path):
    (tmp_path / "obama").mkdir()
    (tmp_path / "obama" / "1.jpg").write_bytes(PHOTOS[0].read_bytes())
    assert detect_format(tmp_path) == "folder"


# -- img2dataset webdataset shards (PubFig, FaceScrub, LAION-Face) ------------------------

#: The columns img2dataset appends to the input's (downloader.py), in its order.
IMG2DATASET_COLUMNS = [
    ("key", pa.string()),
    ("status", pa.string()),
    ("error_message", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("original_width", pa.int32()),
    ("original_height", pa.int32()),
    ("exif", pa.string()),
    ("sha256", pa.string()),
]


def write_img2dataset_shard(folder: Path, shard: int, rows: list[dict], input_columns: list[tuple[str, pa.DataType]]):
    """One shard exactly as `img2dataset --output_format webdataset` leaves it: {shard:05d}.tar with
    {key}.jpg, {key}.json (the row's metadata, indent=4) and {key}.txt (the caption, when there is a
    caption column) for each downloaded image, {shard:05d}.parquet with every row (failed ones too),
    and {shard:05d}_stats.json."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([pa.field(n, t) for n, t in input_columns + IMG2DATASET_COLUMNS])
    metas = []
    with tarfile.open(folder / f"{shard:05d}.tar", "w") as tar:
        for index, row in enumerate(rows):
            key = f"{shard:05d}{index:04d}"
            photo = row.pop("_photo", None)
            meta = {name: row.get(name) for name, _ in input_columns}
            meta.update(
                key=key,
                status="success" if photo else "failed_to_download",
                error_message=None if photo else "HTTP Error 404: Not Found",
                width=250 if photo else None,
                height=250 if photo else None,
                original_width=250 if photo else None,
                original_height=250 if photo else None,
                exif="{}" if photo else None,
                sha256="0" * 64 if photo else None,
            )
            metas.append(meta)
            if photo is None:
                continue
            members = {"jpg": photo.read_bytes(), "json": json.dumps(meta, indent=4).encode()}
            if "caption" in meta:
                members["txt"] = str(meta["caption"] or "").encode()
            for extension in sorted(members):  # webdataset's TarWriter writes a sample's files sorted
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(members[extension])
                info.mode = 0o444
                tar.addfile(info, io.BytesIO(members[extension]))
    table = pa.Table.from_pydict({n: [m[n] for m in metas] for n in schema.names}, schema)
    pq.write_table(table, folder / f"{shard:05d}.parquet")
    stats = {"count": len(rows), "successes": sum(1 for m in metas if m["status"] == "success")}
    (folder / f"{shard:05d}_stats.json").write_text(json.dumps(stats))


def test_laion_face_shards_keep_url_caption_and_the_laion_columns(tmp_path: Path):
    columns = [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("NSFW", pa.string()),
        ("similarity", pa.float64()),
        ("LICENSE", pa.string()),
        ("SAMPLE_ID", pa.int64()),
        ("faces", pa.string()),  # the face boxes joined from LAION-Face's detection metadata
    ]
    rows = [
        {
            "url": "https://live.staticflickr.com/65535/49876543210_0123456789_b.jpg",
            "caption": "Aaron at the pool",
            "NSFW": "UNLIKELY",
            "similarity": 0.31,
            "LICENSE": "?",
            "SAMPLE_ID": 1001,
            "faces": "[[61, 70, 185, 201]]",
            "_photo": PHOTOS[0],
        },
        {"url": "https://example.org/gone.jpg", "caption": "lost", "SAMPLE_ID": 1002, "_photo": None},
        {"url": "https://example.org/gore.jpg", "caption": "Al Gore speaks", "SAMPLE_ID": 1003, "_photo": PHOTOS[3]},
    ]
    write_img2dataset_shard(tmp_path / "split_00000", 0, rows, columns)
    folder = tmp_path / "split_00000"
    assert detect_format(folder) == "webdataset"
    source = open_source(folder)
    assert source.count() == 2  # the parquet's successful rows
    first, second = list(source)
    assert first.key == "00000/000000000" and second.key == "00000/000000002"
    assert first.metadata["url"] == rows[0]["url"] and first.metadata["caption"] == "Aaron at the pool"
    assert first.metadata["SAMPLE_ID"] == 1001 and first.metadata["faces"] == "[[61, 70, 185, 201]]"
    assert first.metadata["status"] == "success" and first.metadata["original_width"] == 250
    assert second.metadata["caption"] == "Al Gore speaks"
    assert first.read() == PHOTOS[0].read_bytes()


def test_pubfig_and_facescrub_shards_keep_their_box_columns(tmp_path: Path):
    pubfig = [("person", pa.string()), ("imagenum", pa.int64()), ("url", pa.string()), ("rect", pa.string())]
    write_img2dataset_shard(
        tmp_path / "pubfig",
        0,
        [
            {
                "person": "Al Gore",
                "imagenum": 1,
                "url": "http://example.org/a.jpg",
                "rect": "42,37,205,200",
                "_photo": PHOTOS[3],
            }
        ],
        pubfig,
    )
    (entry,) = list(open_source(tmp_path / "pubfig"))
    assert entry.metadata["rect"] == "42,37,205,200" and entry.metadata["person"] == "Al Gore"
    assert "caption" not in entry.metadata  # no caption column, so img2dataset wrote no .txt
    facescrub = [
        ("name", pa.string()),
        ("image_id", pa.int64()),
        ("face_id", pa.int64()),
        ("url", pa.string()),
        ("bbox", pa.string()),
    ]
    write_img2dataset_shard(
        tmp_path / "facescrub",
        3,
        [
            {
                "name": "Aaron Peirsol",
                "image_id": 7,
                "face_id": 70,
                "url": "http://example.org/b.jpg",
                "bbox": "1,2,3,4",
                "_photo": PHOTOS[1],
            }
        ],
        facescrub,
    )
    (entry,) = list(open_source(tmp_path / "facescrub"))
    assert entry.key == "00003/000030000"
    assert (entry.metadata["name"], entry.metadata["bbox"], entry.metadata["face_id"]) == (
        "Aaron Peirsol",
        "1,2,3,4",
        70,
    )
