"""Fetching (HTTP with resume, local path, md5) and safe extraction of ISPRS archives (§3)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fake_isprs import colour_gt, fake_area, fake_labels, write_fake_archives
from helpers_http import serve
from vaiseg.config import LABELLED_AREAS, SPLITS, TEST_AREAS, all_areas
from vaiseg.data.archives import (
    ISPRS_REQUEST_URL,
    archive_source,
    extract_archives,
    fetch_archive,
    load_manifest,
    obtain_archive,
)
from vaiseg.data.layout import ARCHIVES, archives_needed
from vaiseg.errors import ConfigError, DataError
from vaiseg.raster import read_raster

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ HTTP


def test_full_download(tmp_path):
    with serve({"/a.zip": PAYLOAD}) as (url, log):
        out = fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", MD5, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["top.zip"]
    assert log.ranges == []


def test_resumed_download_uses_range(tmp_path):
    (tmp_path / "top.zip.part").write_bytes(PAYLOAD[:123_456])
    with serve({"/a.zip": PAYLOAD}) as (url, log):
        fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", MD5, progress=False)
    assert log.ranges == ["bytes=123456-"]
    assert (tmp_path / "top.zip").read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == ["top.zip"]


def test_server_ignoring_range_restarts(tmp_path):
    (tmp_path / "top.zip.part").write_bytes(b"garbage that must not stay in front")
    with serve({"/a.zip": PAYLOAD}, honor_range=False) as (url, log):
        fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", MD5, progress=False)
    assert log.ranges  # it did ask
    assert (tmp_path / "top.zip").read_bytes() == PAYLOAD


def test_complete_part_gets_416_and_restarts(tmp_path):
    (tmp_path / "top.zip.part").write_bytes(PAYLOAD + b"extra")
    with serve({"/a.zip": PAYLOAD}) as (url, _):
        fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", MD5, progress=False)
    assert (tmp_path / "top.zip").read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_then_resumes(tmp_path):
    dest = tmp_path / "top.zip"
    with serve({"/a.zip": PAYLOAD}, cut_after=100_000) as (url, _):
        with pytest.raises(DataError) as e:
            fetch_archive(f"{url}/a.zip", dest, MD5, progress=False)
    assert "a.zip" in str(e.value) and "resume" in str(e.value)
    assert not dest.exists()
    assert (tmp_path / "top.zip.part").read_bytes() == PAYLOAD[:100_000]
    with serve({"/a.zip": PAYLOAD}) as (url, log):
        fetch_archive(f"{url}/a.zip", dest, MD5, progress=False)
    assert log.ranges == ["bytes=100000-"] and dest.read_bytes() == PAYLOAD


def test_md5_mismatch_leaves_nothing(tmp_path):
    wrong = "0" * 32
    with serve({"/a.zip": PAYLOAD}) as (url, _):
        with pytest.raises(DataError) as e:
            fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", wrong, progress=False)
    msg = str(e.value)
    assert "a.zip" in msg and wrong in msg and MD5 in msg and "mismatch" in msg
    assert _leftovers(tmp_path) == []


def test_404_is_clear(tmp_path):
    with serve({"/a.zip": PAYLOAD}) as (url, _):
        with pytest.raises(DataError) as e:
            fetch_archive(f"{url}/missing.zip", tmp_path / "top.zip", MD5, progress=False)
    assert "missing.zip" in str(e.value) and "404" in str(e.value)
    assert _leftovers(tmp_path) == []


def test_connection_refused_is_clear(tmp_path):
    with serve({}) as (url, _):
        pass  # server stopped: the port is closed now
    with pytest.raises(DataError, match="cannot connect"):
        fetch_archive(f"{url}/a.zip", tmp_path / "top.zip", MD5, progress=False, timeout=5)


# ------------------------------------------------------------------ local / config


def test_local_path_and_existing_dest_kept(tmp_path):
    src = tmp_path / "src" / "ISPRS.zip"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "top.zip"
    fetch_archive(src, dest, MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD and src.exists()
    mtime = dest.stat().st_mtime_ns
    fetch_archive(src, dest, MD5, progress=False)  # already there and verified: untouched
    assert dest.stat().st_mtime_ns == mtime
    # md5 mismatch on a local file: the source survives, nothing is left at dest
    with pytest.raises(DataError, match="md5 mismatch"):
        fetch_archive(src, tmp_path / "out2" / "top.zip", "f" * 32, progress=False)
    assert src.read_bytes() == PAYLOAD and _leftovers(tmp_path / "out2") == []


def test_missing_local_file(tmp_path):
    with pytest.raises(DataError, match="not found") as e:
        fetch_archive(tmp_path / "nope.zip", tmp_path / "top.zip", None, progress=False)
    assert "nope.zip" in str(e.value) and "<key>" not in str(e.value)


@pytest.mark.parametrize("key", ["gt_eroded", "top"])
@pytest.mark.parametrize("as_url", [False, True])
def test_missing_configured_path_names_key_and_request_site(tmp_path, key, as_url):
    missing = tmp_path / "downloads" / "nope.zip"
    spec = {"path": missing.as_uri() if as_url else str(missing)}
    with pytest.raises(DataError, match="not found") as e:
        obtain_archive(key, tmp_path / f"{key}.zip", source="isprs", archives={key: spec}, progress=False)
    msg = str(e.value)
    assert str(missing) in msg and "<key>" not in msg
    assert f"data.isprs.archives.{key}.path" in msg and ISPRS_REQUEST_URL in msg and ARCHIVES[key] in msg
    assert not (tmp_path / f"{key}.zip").exists()


def test_missing_synthetic_archive_does_not_blame_isprs_config(tmp_path):
    write_fake_archives(tmp_path / "synth", areas=(1,))
    (tmp_path / "synth" / ARCHIVES["top"]).unlink()
    with pytest.raises(DataError, match="not found") as e:
        obtain_archive("top", tmp_path / "top.zip", source="synthetic", synthetic_dir=tmp_path / "synth", progress=False)
    assert "data.isprs" not in str(e.value)


@pytest.mark.parametrize("spec", [None, {}, {"path": None, "url": None, "md5": "a" * 32}])
def test_missing_source_explains_how_to_get_it(tmp_path, spec):
    with pytest.raises(DataError) as e:
        obtain_archive("gt", tmp_path / "gt.zip", source="isprs", archives={"gt": spec})
    msg = str(e.value)
    assert "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip" in msg
    assert ISPRS_REQUEST_URL in msg and "data.isprs.archives.gt.path" in msg
    assert not (tmp_path / "gt.zip").exists()


def test_known_md5_used_when_not_configured():
    assert archive_source("top", {"path": "x.zip"}) == ("x.zip", "462b8dca7b6fa9eaf729840f0cdfc7f3")
    assert archive_source("gt_eroded", {"url": "http://h/x.zip"}) == ("http://h/x.zip", None)


def test_synthetic_source_same_code_path(tmp_path):
    paths = write_fake_archives(tmp_path / "synth", areas=(1,))
    out = obtain_archive("top", tmp_path / "archives" / "top.zip", source="synthetic", synthetic_dir=tmp_path / "synth",
                         progress=False)
    assert out.read_bytes() == paths["top"].read_bytes()
    # a tampered synthetic archive is caught by the md5 from md5.json
    md5s = json.loads((tmp_path / "synth" / "md5.json").read_text())
    md5s["gt"] = "0" * 32
    (tmp_path / "synth" / "md5.json").write_text(json.dumps(md5s))
    with pytest.raises(DataError, match="md5 mismatch"):
        obtain_archive("gt", tmp_path / "archives" / "gt.zip", source="synthetic", synthetic_dir=tmp_path / "synth",
                       progress=False)
    assert not (tmp_path / "archives" / "gt.zip").exists()


# ------------------------------------------------------------------ extraction


def test_extract_manifest_and_contents(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1, 3, 11), with_ndsm=True, participants=(3,), gt_missing=(3,))
    manifest = extract_archives(paths, tmp_path / "ex", [1, 3], progress=False)
    assert set(manifest) == {"1", "3"}
    assert all(manifest[a][f] for a in manifest for f in ("top", "dsm", "gt", "gt_eroded", "ndsm"))
    # GT of area 3 came from gts_for_participants (the gt archive lacks it)
    assert "gts_for_participants" in manifest["3"]["gt"]
    # only the requested areas were extracted
    assert not list((tmp_path / "ex").rglob("*area11*"))
    loaded = load_manifest(tmp_path / "ex" / "manifest.json")
    top, _ = read_raster(loaded[1]["top"])
    np.testing.assert_array_equal(top, fake_area(1)["top"])
    assert json.loads((tmp_path / "ex" / "manifest.json").read_text()) == manifest


def test_extract_without_gt_archive_for_labelled_areas(tmp_path):
    """Main + eroded archives only: the full GT of labelled areas is gts_for_participants/."""
    areas = (1, 3, 11)
    paths = write_fake_archives(tmp_path / "zips", areas=areas, participants=areas, with_gt=False)
    assert set(paths) == {"top", "gt_eroded"}
    manifest = extract_archives(paths, tmp_path / "ex", list(areas), progress=False)
    loaded = load_manifest(tmp_path / "ex" / "manifest.json")
    with zipfile.ZipFile(paths["top"]) as zf:
        for a in areas:
            member = f"ISPRS_semantic_labeling_Vaihingen/gts_for_participants/top_mosaic_09cm_area{a}.tif"
            assert manifest[str(a)]["gt"] == f"top/{member}"
            assert loaded[a]["gt"].read_bytes() == zf.read(member)
            gt, _ = read_raster(loaded[a]["gt"])
            np.testing.assert_array_equal(gt, colour_gt(fake_labels(a)))
            assert manifest[str(a)]["gt_eroded"].startswith("gt_eroded/")
    assert not (tmp_path / "ex" / "gt").exists()


def test_given_gt_archive_still_preferred(tmp_path):
    """With the COMPLETE archive given, the full GT comes from it as before."""
    paths = write_fake_archives(tmp_path / "zips", areas=(1, 3), participants=(1, 3))
    manifest = extract_archives(paths, tmp_path / "ex", [1, 3], progress=False)
    assert all(manifest[a]["gt"] == f"gt/top_mosaic_09cm_area{a}.tif" for a in ("1", "3"))


@pytest.mark.parametrize("test_areas", [(2,), (2, 4)])
def test_test_area_without_gt_archive_says_which_archive(tmp_path, test_areas):
    areas = (1,) + test_areas
    paths = write_fake_archives(tmp_path / "zips", areas=areas, participants=(1,), with_gt=False)
    with pytest.raises(DataError) as e:
        extract_archives(paths, tmp_path / "ex", list(areas), progress=False)
    msg = str(e.value)
    who = (f"Area {test_areas[0]}'s full ground truth" if len(test_areas) == 1
           else "full ground truth of areas " + ", ".join(map(str, test_areas)))
    assert f"{who} is in ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip" in msg
    assert "configured under data.isprs.archives.gt" in msg and ISPRS_REQUEST_URL in msg
    assert "area 1:" not in msg  # area 1's GT is in gts_for_participants/
    assert not (tmp_path / "ex").exists()


def test_extract_requires_top_and_eroded(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1,), participants=(1,))
    del paths["gt_eroded"]
    with pytest.raises(DataError, match="required archives missing: gt_eroded$"):
        extract_archives(paths, tmp_path / "ex", [1], progress=False)


PAPER_AREAS = all_areas({"data": {"split": "paper"}})
ALL_CONFIGURED = {k: {"path": f"/dl/{name}"} for k, name in ARCHIVES.items() if k != "ndsm"}


@pytest.mark.parametrize(
    "areas, configured, expected",
    [
        (PAPER_AREAS, {}, ("top", "gt_eroded")),
        (PAPER_AREAS, ALL_CONFIGURED, ("top", "gt_eroded")),  # configured but not needed: not fetched
        (all_areas({"data": {"split": "benchmark"}}), {}, ("top", "gt", "gt_eroded")),
        ((1, 3, 2), None, ("top", "gt", "gt_eroded")),  # custom data.areas with a test area
        ((1, 11), None, ("top", "gt_eroded")),  # custom data.areas, labelled only
        (("1", "11"), {}, ("top", "gt_eroded")),  # area numbers as strings (e.g. manifest keys)
        (PAPER_AREAS, {"ndsm": {"path": "/dl/ndsm.zip"}}, ("top", "gt_eroded", "ndsm")),
        ((2,), {"ndsm": {"url": "http://h/ndsm.zip"}}, ("top", "gt", "gt_eroded", "ndsm")),
        (PAPER_AREAS, {"ndsm": {"path": None, "url": None, "md5": "a" * 32}}, ("top", "gt_eroded")),
        (PAPER_AREAS, {"ndsm": None}, ("top", "gt_eroded")),
    ],
)
def test_archives_needed_isprs(areas, configured, expected):
    assert archives_needed("isprs", areas, configured) == expected


def test_archives_needed_splits_match_labelled_areas():
    assert set(PAPER_AREAS) == set(LABELLED_AREAS)  # the paper split never needs the gt archive
    assert set(SPLITS["benchmark"]["val"]) == set(TEST_AREAS)


@pytest.mark.parametrize("areas", [PAPER_AREAS, (2,)])
def test_archives_needed_synthetic_is_all_four(areas):
    assert archives_needed("synthetic", areas, {}) == ("top", "gt", "gt_eroded", "ndsm")


def test_archives_needed_unknown_source():
    with pytest.raises(ConfigError, match="nowhere"):
        archives_needed("nowhere", (1,), {})


def test_extract_without_ndsm_gives_null(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1,))
    manifest = extract_archives(paths, tmp_path / "ex", [1], progress=False)
    assert manifest["1"]["ndsm"] is None


def test_missing_area_files_named(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1, 3), gt_missing=(3,))
    with pytest.raises(DataError) as e:
        extract_archives(paths, tmp_path / "ex", [1, 3, 5], progress=False)
    msg = str(e.value)
    assert "area 3: no gt" in msg and "area 5: no top" in msg and "area 5: no dsm" in msg
    assert not (tmp_path / "ex").exists() or not any((tmp_path / "ex").rglob("*"))


@pytest.mark.parametrize("bad", ["../evil.tif", "top/../../evil.tif", "/abs/evil.tif"])
def test_zip_slip_refused_before_anything_extracted(tmp_path, bad):
    paths = write_fake_archives(tmp_path / "zips", areas=(1,))
    # add the evil member to the LAST archive so an extract-as-you-go would already have written files
    with zipfile.ZipFile(paths["gt_eroded"], "a") as zf:
        zf.writestr(bad, b"pwned")
    with pytest.raises(DataError) as e:
        extract_archives(paths, tmp_path / "deep" / "ex", [1], progress=False)
    assert bad in str(e.value) and paths["gt_eroded"].name in str(e.value)
    assert not (tmp_path / "deep").exists()
    assert not list(tmp_path.rglob("evil.tif"))


def test_truncated_zip_fails_clearly(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1,))
    data = paths["top"].read_bytes()
    paths["top"].write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated") as e:
        extract_archives(paths, tmp_path / "ex", [1], progress=False)
    assert paths["top"].name in str(e.value)
    assert not (tmp_path / "ex").exists()


def test_corrupt_deflate_stream(tmp_path):
    paths = write_fake_archives(tmp_path / "zips", areas=(1,))
    zpath = paths["gt"]
    with zipfile.ZipFile(zpath) as zf:
        info = zf.infolist()[0]
        offset, size = info.header_offset, info.compress_size
        name_len = len(info.filename.encode())
        extra_len = len(info.extra)
    raw = bytearray(zpath.read_bytes())
    start = offset + 30 + name_len + extra_len  # local header is 30 bytes + name + extra
    for i in range(start + size // 3, start + size // 3 + 16):
        raw[i] ^= 0x5A
    zpath.write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        extract_archives(paths, tmp_path / "ex", [1], progress=False)
    assert zpath.name in str(e.value) and "corrupt" in str(e.value)
    # members extracted before the failure were removed again; no manifest
    assert not [p for p in (tmp_path / "ex").rglob("*") if p.is_file()]
