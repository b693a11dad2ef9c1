"""`idia scan`: every caption format read the same, pieces in parallel, counts merged exactly in bounded memory,
photos gathered for the right people, and bad input told in one line naming the file."""

import csv
import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from idia_testkit import assert_one_line_error, photo, run_idia
from PIL import Image

from idia.attack.inputs.captions import formats
from idia.attack.inputs.captions.run import ScanSettings, keep_row, scan_captions
from idia.attack.inputs.captions.tally import Counts, Tally
from idia.attack.inputs.occurrences import occurrence_key, read_occurrences
from idia.attack.record.occurrences import bin_edges
from idia.errors import InputError
from idia.world.caption_set import labelled_captions

CAPTIONS = labelled_captions(3000, seed=5, n_people=120).captions


def names_csv(path: Path) -> dict[str, int]:
    return {r["name"]: int(r["count"]) for r in csv.DictReader(path.open(encoding="utf-8"))}


def scan(tmp_path, *sources, **changes) -> dict[str, int]:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    settings = ScanSettings(sources=list(sources), out=out, progress=False, **{"workers": 1, **changes})
    result = scan_captions(settings)
    assert json.loads((out / "scan.json").read_text())["captions"] == result.captions
    return names_csv(out / "names.csv")


def write_all_formats(root: Path, captions: list[str]) -> None:
    """The same captions in every format: text, gzipped JSONL, CSV, TSV, Parquet (LAION's TEXT column) and a
    webdataset shard with .txt and .json captions."""
    root.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(captions)), 6)
    take = [[captions[i] for i in p] for p in parts]
    (root / "a.txt").write_text("\n".join(take[0]) + "\n", encoding="utf-8")
    with gzip.open(root / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"caption": c, "url": "http://example.invalid/x.jpg"}) + "\n" for c in take[1])
    with open(root / "c.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "Text"]] + [[i, c] for i, c in enumerate(take[2])])
    with open(root / "d.tsv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows([["alt_text"]] + [[c] for c in take[3]])
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"URL": ["u"] * len(take[4]), "TEXT": take[4]}), root / "e.parquet", row_group_size=100)
    with tarfile.open(root / "f.tar", "w") as tar:
        for i, c in enumerate(take[5]):
            data = (c.encode() if i % 2 else json.dumps({"caption": c, "width": 64}).encode())
            info = tarfile.TarInfo(f"{i:05d}.{'txt' if i % 2 else 'json'}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.slow
def test_every_format_gives_the_counts_of_the_captions_read_directly(tmp_path):
    write_all_formats(tmp_path / "src", CAPTIONS)
    (tmp_path / "src" / "notes.md").write_text("not a caption file")  # skipped in a folder
    from_files = scan(tmp_path, tmp_path / "src", workers=2)
    (tmp_path / "all.txt").write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    assert from_files == scan(tmp_path, tmp_path / "all.txt")
    assert len(from_files) > 50


def test_byte_range_pieces_read_every_line_once(tmp_path, monkeypatch):
    src = tmp_path / "c.txt"
    src.write_text("\n".join(CAPTIONS) + "\n", encoding="utf-8")
    whole = scan(tmp_path, src)
    monkeypatch.setattr(formats, "PIECE_BYTES", 997)  # many pieces, cut mid-line
    pieces = formats.FORMATS.get("text").pieces(src, formats.Options())
    assert len(pieces) > 100
    assert sum(1 for p in pieces for _ in formats.FORMATS.get("text").read(p, formats.Options())) == len(CAPTIONS)
    assert scan(tmp_path, src, workers=2) == whole


def test_counts_are_exact_and_memory_bounded_when_they_spill_to_disk():
    """A stream of 8,000 captions merged with room for 50 names in memory: the same rows as with no bound, and
    never more than the bound plus one piece's names held at once."""
    captions = labelled_captions(8_000, seed=3).captions
    from idia.attack.inputs.captions.extract import RuleExtractor
    extract = RuleExtractor().extract
    unbounded, bounded = Counts(), Counts(max_in_memory=50, partitions=64)
    for start in range(0, len(captions), 500):  # pieces of 500 captions, as the engines hand them over
        tally = Tally()
        for c in captions[start:start + 500]:
            tally.add(c, extract(c))
        unbounded.add(tally)
        bounded.add(tally)
    want = [(k, e[:3]) for k, e in unbounded.rows(keep_row(1))]
    got = [(k, e[:3]) for k, e in bounded.rows(keep_row(1))]
    assert got == want and len(want) > 300
    assert bounded.spills > 10 and unbounded.spills == 0
    assert bounded.peak_in_memory <= 50 + 500  # the bound, or one piece's names arriving at once
    assert bounded._tmp is None  # the spill files are gone


def test_the_caption_column_is_found_or_named_and_a_missing_one_is_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"url": ["u", "v"], "blurb": ["Alice Moreno at the gala", "Alice Moreno smiles"]}),
                   tmp_path / "x.parquet")
    with pytest.raises(InputError, match=r"x\.parquet: no caption column found among url, blurb; name it with"):
        scan(tmp_path, tmp_path / "x.parquet")
    assert scan(tmp_path, tmp_path / "x.parquet", column="blurb") == {"Alice Moreno": 2}
    with pytest.raises(InputError, match=r"x\.parquet: has no caption column 'TEXT' \(its columns: url, blurb\)"):
        scan(tmp_path, tmp_path / "x.parquet", column="TEXT")


@pytest.mark.parametrize("name, data, needle", [
    ("bad.parquet", b"PAR1 not really", "bad.parquet: not a readable Parquet file"),
    ("bad.jsonl", b'{"caption": "ok"}\n[1, 2]\n', "bad.jsonl: the line at byte 18 is not a JSON object"),
    ("bad.tar", b"not a tar at all" * 40, "bad.tar: not a readable tar shard"),
    ("notes.doc", b"hello", "notes.doc: not a caption file idia reads"),
])
def test_bad_input_is_one_line_naming_the_file(tmp_path, name, data, needle):
    (tmp_path / name).write_bytes(data)
    proc = run_idia("scan", tmp_path / name, "--out", tmp_path / "out", "--quiet")
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "out" / "names.csv").exists()


def test_ner_model_folders_are_loaded_from_disk_only_with_one_line_errors(tmp_path):
    assert_one_line_error(run_idia("scan", tmp_path, "--out", tmp_path / "o", "--ner-model", tmp_path / "none"),
                          "none: --ner-model must be a folder holding a spaCy pipeline or a GLiNER model")
    (tmp_path / "m").mkdir()
    assert_one_line_error(run_idia("scan", tmp_path, "--out", tmp_path / "o", "--ner-model", tmp_path / "m"),
                          "m: not a spaCy pipeline (config.cfg and meta.json) or a GLiNER model")
    (tmp_path / "m" / "config.cfg").write_text("[nlp]\n")
    (tmp_path / "m" / "meta.json").write_text("{}")
    pytest.importorskip("pytest")  # spaCy is not an idia dependency: without it, the error says so
    try:
        import spacy  # noqa: F401
    except ImportError:
        assert_one_line_error(run_idia("scan", tmp_path, "--out", tmp_path / "o", "--ner-model", tmp_path / "m"),
                              "a spaCy pipeline needs spaCy, which is not installed (pip install spacy)")


def _shard(path: Path, samples: list[tuple[str, bytes | None, str]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, image, caption in samples:
            for name, data in ((f"{key}.txt", caption.encode()), (f"{key}.png", image)):
                if data is None:
                    continue
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_photos_are_gathered_for_people_named_alone_often_enough(tmp_path):
    samples = [(f"a{i}", _png(i), f"Alice Moreno at the gala, day {i}") for i in range(4)]
    samples += [("pair", _png(10), "Alice Moreno and Boris Novak at the gala")]  # two people: nobody's photo
    samples += [(f"b{i}", _png(20 + i), f"Boris Novak on stage, night {i}") for i in range(2)]  # too few
    samples += [("broken", b"\x89PNG\r\n\x1a\n broken", "Alice Moreno, a damaged photo"),
                ("noimage", None, "Alice Moreno without a picture"),
                ("tree", _png(30), "a tree in the park")]
    _shard(tmp_path / "s.tar", samples)
    # Hugging Face's imagefolder layout: metadata.jsonl with file_name beside the images, hard-linked.
    photo(tmp_path / "hf" / "c1.png", seed=40), photo(tmp_path / "hf" / "c2.png", seed=41)
    (tmp_path / "hf" / "metadata.jsonl").write_text(
        "".join(json.dumps({"file_name": f, "text": "Alice Moreno in the studio"}) + "\n"
                for f in ("c1.png", "c2.png")))
    out, photos = tmp_path / "out", tmp_path / "photos"
    proc = run_idia("scan", tmp_path / "s.tar", tmp_path / "hf", "--out", out, "--photos-out", photos,
                    "--min-photos", "3", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert names_csv(out / "names.csv") == {"Alice Moreno": 9, "Boris Novak": 3}
    assert sorted(p.name for p in photos.iterdir()) == ["Alice Moreno"]
    got = sorted(p.name for p in (photos / "Alice Moreno").iterdir())
    assert got == ["metadata-byte_0.png", "metadata-byte_62.png", "s-a0.png", "s-a1.png", "s-a2.png", "s-a3.png"]
    assert (photos / "Alice Moreno" / "metadata-byte_0.png").stat().st_ino == (tmp_path / "hf" / "c1.png").stat().st_ino
    rows = list(csv.DictReader((out / "photos.csv").open()))
    assert len(rows) == 6 and {r["person"] for r in rows} == {"Alice Moreno"}
    assert "1 image(s) not gathered: 1 " in proc.stderr  # the damaged one (why: as the decoder words it)
    record = json.loads((out / "scan.json").read_text())
    assert record["photos"]["people"] == 1 and record["photos"]["people_with_too_few"] == 0


def test_photos_need_images_beside_the_captions(tmp_path):
    (tmp_path / "c.txt").write_text("Alice Moreno at the gala\n")
    assert_one_line_error(run_idia("scan", tmp_path / "c.txt", "--out", tmp_path / "o", "--photos-out",
                                   tmp_path / "p"), "--photos-out needs images beside the captions")


def test_occurrences_are_matched_by_name_like_the_scan_merges_them(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("name,count,alone\nZoë Saldaña,40,30\nAnna van der Berg,7,7\nJohn F. Kennedy,3,1\n")
    occ = read_occurrences(path)
    assert occ[occurrence_key("ZOE SALDANA")] == 40
    assert occ[occurrence_key("Anna Van Der Berg")] == 7 and occ[occurrence_key("John Kennedy")] == 3
    path.write_text("name,count\nAlice,many\n")
    with pytest.raises(InputError, match=r"names\.csv:2: count must be a whole number, got 'many'"):
        read_occurrences(path)
    path.write_text("person,n\n")
    with pytest.raises(InputError, match=r"names\.csv: needs a header with name and count columns"):
        read_occurrences(path)
    assert bin_edges(40)[:5] == [(0, 0), (1, 2), (3, 9), (10, 29), (30, 99)]


def test_caption_text_in_names_csv_is_inert_in_spreadsheets(tmp_path):
    """Examples are scraped caption text: one starting with '=' must not become a spreadsheet formula."""
    source = tmp_path / "captions.txt"
    source.write_text("=HYPERLINK(\"http://x\") Alice Moreno at the beach\n" * 2, encoding="utf-8")
    out = tmp_path / "out"
    scan_captions(ScanSettings(sources=[source], out=out, progress=False, workers=1))
    rows = list(csv.DictReader((out / "names.csv").open(encoding="utf-8")))
    assert [(r["name"], r["count"]) for r in rows] == [("Alice Moreno", "2")]
    assert rows[0]["examples"].startswith("'=HYPERLINK")
