"""The ISPRS Vaihingen archives: fetch, verify, extract safely, manifest (§3).

One code path serves both data sources: the real archives (a local path or a URL from
the config) and the synthetic ones (``resources/synthetic/<archive>`` + ``md5.json``)
are both obtained with :func:`fetch_archive`, then unpacked by :func:`extract_archives`.

- Download: streamed to ``<dest>.part`` with a tqdm bar; an existing ``.part`` is resumed
  with an HTTP ``Range: bytes=N-`` request (a server that ignores Range and answers 200
  restarts the file from zero; 416 restarts as well). The md5 is checked before the file
  is renamed into place, so nothing downstream ever sees an unverified archive.
- Local path: hard-linked when on the same filesystem (no copy of ~1 GB), else copied;
  verified the same way.
- Extraction: every member of every archive is checked for zip-slip (absolute paths,
  drive letters, ``..``) before anything is written; members are located by the
  patterns of :mod:`vaiseg.data.layout`; only the members of the requested areas are
  extracted, CRC-checked while streaming; the manifest is written last, atomically.
  The ``gt`` archive is optional: the labelled areas' full GT is also in the ``top``
  archive's ``gts_for_participants/`` (:func:`vaiseg.data.layout.archives_needed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Sequence
from urllib.parse import urlparse

from tqdm import tqdm

from ..atomic import atomic_path, write_json
from ..errors import DataError
from .layout import ARCHIVES, KNOWN_MD5, PATTERNS

log = logging.getLogger(__name__)

ISPRS_REQUEST_URL = "https://www.isprs.org/education/benchmarks/UrbanSemLab/default.aspx"
#: how to get a real archive (every message about a missing ISPRS archive ends with it)
HOW_TO_GET = (
    f"The ISPRS Vaihingen data are given out on request: fill in the data request form at {ISPRS_REQUEST_URL}, "
    "download {name}, then set data.isprs.archives.{key}.path (a local file) or "
    "data.isprs.archives.{key}.url in your config (see config/vaihingen.yaml)."
)
CHUNK = 1 << 20
#: manifest fields per area; ``ndsm`` is null when no normalised DSM is supplied
MANIFEST_FIELDS = ("top", "dsm", "gt", "gt_eroded", "ndsm")


def how_to_get(key: str) -> str:
    """:data:`HOW_TO_GET` for archive ``key`` (its ISPRS file name and config key)."""
    return HOW_TO_GET.format(name=ARCHIVES[key], key=key)


# --------------------------------------------------------------------------- md5


def md5sum(path: str | Path, *, progress: bool = False) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    path = Path(path)
    h = hashlib.md5()
    with open(path, "rb") as f, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"md5 {path.name}", disable=not progress, leave=False
    ) as bar:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _verify(tmp: Path, name: str, md5: str | None, progress: bool) -> None:
    """Check ``tmp`` against ``md5``; on mismatch delete it and raise DataError."""
    actual = md5sum(tmp, progress=progress)
    if md5 is None:
        log.info("%s: md5 %s (no expected md5 configured)", name, actual)
        return
    if actual.lower() != md5.lower():
        tmp.unlink(missing_ok=True)
        raise DataError(name, f"md5 mismatch: expected {md5.lower()}, got {actual} (file deleted; fetch it again)")
    log.info("%s: md5 %s verified", name, actual)


# --------------------------------------------------------------------------- fetch


def fetch_archive(
    source: str | Path,
    dest: str | Path,
    md5: str | None,
    *,
    progress: bool = True,
    timeout: float = 60.0,
    key: str | None = None,
) -> Path:
    """Obtain one archive at ``dest`` from a URL or a local path, md5-verified (§3).

    ``source``: ``http(s)://...`` (streamed, resumable), ``file://...`` or a local path
    (hard link, else copy). ``md5``: expected hex digest, or None to skip the check
    (the actual md5 is logged). The file appears at ``dest`` only once verified
    (atomic rename of ``<dest>.part``). An existing ``dest`` with the right md5 is kept.
    ``key``: the archive's key under ``data.isprs.archives`` when ``source`` comes from
    the config; a missing local file's message then names that key and how to get it.

    Raises DataError naming the URL/path and the problem: missing file, HTTP status,
    connection error, incomplete download, md5 mismatch (expected and actual).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and md5 is not None and md5sum(dest).lower() == md5.lower():
        log.info("%s: already present with md5 %s", dest, md5)
        return dest
    part = dest.with_name(dest.name + ".part")
    src = str(source)
    scheme = urlparse(src).scheme.lower()
    if scheme in ("http", "https"):
        _download(src, part, progress=progress, timeout=timeout)
    elif scheme in ("", "file") or re.match(r"^[a-zA-Z]$", scheme):  # plain or Windows path
        local = Path(urlparse(src).path) if scheme == "file" else Path(src)
        _copy_local(local, part, progress=progress, key=key)
    else:
        raise DataError(src, f"unsupported source scheme {scheme!r}: give an http(s) URL or a local path")
    _verify(part, src, md5, progress)
    os.replace(part, dest)
    log.info("%s -> %s", src, dest)
    return dest


def _copy_local(src: Path, part: Path, *, progress: bool, key: str | None = None) -> None:
    if not src.is_file():
        if key is None:
            raise DataError(src, "archive not found")
        raise DataError(
            src, f"archive '{key}' not found at the path set in data.isprs.archives.{key}.path. {how_to_get(key)}"
        )
    part.unlink(missing_ok=True)
    try:
        os.link(src, part)
        log.info("hard-linked %s", src)
        return
    except OSError:
        pass
    with open(src, "rb") as fin, open(part, "wb") as fout, tqdm(
        total=src.stat().st_size, unit="B", unit_scale=True, desc=f"copy {src.name}", disable=not progress
    ) as bar:
        for chunk in iter(lambda: fin.read(CHUNK), b""):
            fout.write(chunk)
            bar.update(len(chunk))


def _open_url(url: str, start: int, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": "vaiseg/0.1"})
    if start > 0:
        req.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start > 0:
            return None  # range not satisfiable: caller restarts from zero
        raise DataError(url, f"download failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(url, f"download failed: cannot connect ({reason})") from e


def _download(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming an existing partial file with Range."""
    start = part.stat().st_size if part.exists() else 0
    resp = _open_url(url, start, timeout)
    if resp is None:
        log.warning("%s: server refused the range of the partial download; restarting", url)
        start = 0
        part.unlink(missing_ok=True)
        resp = _open_url(url, 0, timeout)
    with resp:
        status = resp.status
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if start > 0 and status == 206:
            mode = "ab"
            log.info("%s: resuming at byte %d", url, start)
        else:
            if start > 0:
                log.warning("%s: server ignored the Range request (HTTP %d); restarting", url, status)
            mode, start = "wb", 0
        total = start + length if length is not None else None
        received = 0
        try:
            with open(part, mode) as f, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=Path(part.name).stem, disable=not progress
            ) as bar:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, urllib.error.URLError, http.client.HTTPException) as e:  # timeouts, IncompleteRead
            raise DataError(url, f"download interrupted after {start + received} bytes ({e}); run again to resume") from e
    if length is not None and received != length:
        raise DataError(url, f"incomplete download: got {received} of {length} bytes; run again to resume")


# --------------------------------------------------------------------------- sources


def archive_source(key: str, spec: dict | None) -> tuple[str, str | None]:
    """(source, md5) of a real ISPRS archive from its config entry
    ``data.isprs.archives.<key>`` (``path`` or ``url``, optional ``md5``; the published
    md5 of :data:`layout.KNOWN_MD5` is used when none is configured).

    Raises DataError saying which archive is missing and how to get it."""
    spec = spec or {}
    source = spec.get("path") or spec.get("url")
    if not source:
        raise DataError(
            ARCHIVES[key],
            f"archive '{key}' is not configured (neither data.isprs.archives.{key}.path nor .url is set). "
            + how_to_get(key),
        )
    return str(source), spec.get("md5") or KNOWN_MD5.get(key)


def synthetic_source(key: str, synthetic_dir: str | Path) -> tuple[str, str | None]:
    """(source, md5) of a synthetic archive: ``<synthetic_dir>/<ISPRS name>`` and its md5
    from ``<synthetic_dir>/md5.json`` (keyed by archive key or by file name)."""
    synthetic_dir = Path(synthetic_dir)
    md5_file = synthetic_dir / "md5.json"
    try:
        md5s = json.loads(md5_file.read_text())
    except (OSError, ValueError) as e:
        raise DataError(md5_file, f"cannot read the synthetic archives' md5 list ({e})") from e
    name = ARCHIVES[key]
    md5 = md5s.get(key) or md5s.get(name)
    if md5 is None:
        raise DataError(md5_file, f"no md5 for archive '{key}' ({name}); the generator did not write it")
    return str(synthetic_dir / name), md5


def obtain_archive(
    key: str,
    dest: str | Path,
    *,
    source: str,
    archives: dict | None = None,
    synthetic_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Resolve archive ``key`` for data ``source`` ('isprs' or 'synthetic') and fetch it
    to ``dest`` with :func:`fetch_archive` (the same path for both sources)."""
    if key not in ARCHIVES:
        raise DataError(dest, f"unknown archive key {key!r} (expected one of {sorted(ARCHIVES)})")
    if source == "isprs":
        src, md5 = archive_source(key, (archives or {}).get(key))
    elif source == "synthetic":
        src, md5 = synthetic_source(key, synthetic_dir or "resources/synthetic")
    else:
        raise DataError(dest, f"unknown data source {source!r} (expected 'isprs' or 'synthetic')")
    return fetch_archive(src, dest, md5, progress=progress, key=key if source == "isprs" else None)


# --------------------------------------------------------------------------- extract


def _unsafe_member(name: str) -> str | None:
    """Why a member name is unsafe to extract (zip-slip), or None."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[a-zA-Z]:", norm):
        return "absolute path"
    if ".." in PurePosixPath(norm).parts:
        return "'..' component"
    return None


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(path, f"corrupt or truncated zip archive ({e}); delete it and fetch it again") from e


def _index_members(key: str, zf: zipfile.ZipFile, zpath: Path) -> dict[str, dict[int, zipfile.ZipInfo]]:
    """{field: {area: member}} for the patterns of archive ``key``."""
    found: dict[str, dict[int, zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        if info.is_dir() or info.filename.startswith("__MACOSX/") or PurePosixPath(info.filename).name.startswith("._"):
            continue
        for (akey, field), pat in PATTERNS.items():
            if akey != key:
                continue
            m = pat.search(info.filename)
            if not m:
                continue
            area = int(m.group(1))
            prev = found.setdefault(field, {}).get(area)
            if prev is not None and (prev.CRC, prev.file_size) != (info.CRC, info.file_size):
                raise DataError(zpath, f"two different members for {field} of area {area}: {prev.filename}, {info.filename}")
            if prev is None:
                found[field][area] = info
    return found


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zpath: Path, target: Path) -> None:
    """Stream one member to ``target`` atomically; CRC is checked at end of stream."""
    try:
        with atomic_path(target) as tmp, zf.open(info) as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise DataError(zpath, f"corrupt member {info.filename} ({e}); delete the archive and fetch it again") from e


def extract_archives(
    archives: dict[str, str | Path], dest: str | Path, areas: Sequence[int], *, progress: bool = True
) -> dict:
    """Extract the TOP, DSM, full GT, eroded GT (and nDSM) of ``areas`` (§3).

    ``archives``: {key: zip path} with keys ``top``, ``gt_eroded`` and optionally ``gt``
    and ``ndsm``. The full GT of an area comes from the ``gt`` archive, or from
    ``gts_for_participants/`` of the ``top`` archive when the ``gt`` archive lacks it or
    is not given (enough for the 16 labelled areas; see
    :func:`vaiseg.data.layout.archives_needed`).
    Members go to ``<dest>/<key>/<member path>``; ``<dest>/manifest.json`` is written last:
    ``{area: {top, dsm, gt, gt_eroded, ndsm|null}}`` with paths relative to ``dest``
    (read it back with :func:`load_manifest`). Returns that dict (str keys).

    Raises DataError naming the zip for: a missing required archive, a corrupt or
    truncated zip, an unsafe member (absolute path or ``..``; checked in every archive
    before anything is extracted), an area without one of its files (an area whose full
    GT is only in the ``gt`` archive, when that is not given: which archive to configure
    and how to get it).
    """
    dest = Path(dest)
    missing = [k for k in ("top", "gt_eroded") if k not in archives]
    if missing:
        raise DataError(dest, f"required archives missing: {', '.join(missing)}")
    with contextlib.ExitStack() as stack:
        zips: dict[str, tuple[zipfile.ZipFile, Path]] = {}
        for key, p in archives.items():
            if key not in ARCHIVES:
                raise DataError(p, f"unknown archive key {key!r}")
            zips[key] = (stack.enter_context(_open_zip(Path(p))), Path(p))
        # 1) zip-slip check of every member of every archive before writing anything
        for key, (zf, zpath) in zips.items():
            for info in zf.infolist():
                why = _unsafe_member(info.filename)
                if why:
                    raise DataError(zpath, f"unsafe member {info.filename!r} ({why}); refusing to extract anything")
        # 2) locate the members of every requested area
        index = {key: _index_members(key, zf, zpath) for key, (zf, zpath) in zips.items()}
        plan: dict[int, dict[str, tuple[str, zipfile.ZipInfo] | None]] = {}
        problems = []
        need_gt_archive = []  # areas whose full GT is only in the (not given) gt archive
        for area in areas:
            entry: dict[str, tuple[str, zipfile.ZipInfo] | None] = {}
            for field, key in (("top", "top"), ("dsm", "top"), ("gt", "gt"), ("gt_eroded", "gt_eroded")):
                info = index[key].get(field, {}).get(area) if key in index else None
                if info is None and field == "gt":
                    key, info = "top", index["top"].get("gt", {}).get(area)
                if info is None:
                    if field == "gt" and "gt" not in zips:
                        src = f"gts_for_participants/ of {ARCHIVES['top']}"
                        need_gt_archive.append(area)
                    else:
                        src = ARCHIVES["gt"] + " or gts_for_participants/" if field == "gt" else ARCHIVES[key]
                    problems.append(f"area {area}: no {field} in {src}")
                entry[field] = (key, info) if info is not None else None
            entry["ndsm"] = None
            if "ndsm" in zips:
                info = index["ndsm"].get("ndsm", {}).get(area)
                if info is None:
                    problems.append(f"area {area}: no ndsm in {zips['ndsm'][1].name}")
                entry["ndsm"] = ("ndsm", info) if info is not None else None
            plan[area] = entry
        if problems:
            msg = "archives incomplete for the configured split: " + "; ".join(problems)
            if need_gt_archive:
                which = ", ".join(map(str, need_gt_archive))
                whose = (
                    f"Area {which}'s full ground truth"
                    if len(need_gt_archive) == 1
                    else f"The full ground truth of areas {which}"
                )
                msg += (
                    f". {whose} is in {ARCHIVES['gt']} (not in gts_for_participants/), "
                    f"which must be configured under data.isprs.archives.gt. {how_to_get('gt')}"
                )
            raise DataError(dest, msg)
        # 3) extract only the needed members
        todo = [(a, f, kv) for a, e in plan.items() for f, kv in e.items() if kv is not None]
        manifest: dict[str, dict[str, str | None]] = {}
        written: list[Path] = []
        try:
            for area, field, (key, info) in tqdm(todo, desc="extract", unit="file", disable=not progress):
                zf, zpath = zips[key]
                rel = Path(key) / PurePosixPath(info.filename.replace("\\", "/"))
                _extract_member(zf, info, zpath, dest / rel)
                written.append(dest / rel)
                manifest.setdefault(str(area), {f: None for f in MANIFEST_FIELDS})[field] = rel.as_posix()
        except BaseException:
            for p in written:  # no partial extraction left behind
                p.unlink(missing_ok=True)
            raise
        manifest = {str(a): manifest[str(a)] for a in areas}
    write_json(dest / "manifest.json", manifest)
    log.info("extracted %d files of %d areas into %s", len(todo), len(areas), dest)
    return manifest


def load_manifest(path: str | Path) -> dict[int, dict[str, Path | None]]:
    """Read a manifest written by :func:`extract_archives`: {area: {field: Path|None}},
    paths resolved against the manifest's folder."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot read manifest ({e})") from e
    out = {}
    for area, entry in raw.items():
        missing = [f for f in MANIFEST_FIELDS[:4] if not entry.get(f)]
        if missing:
            raise DataError(path, f"area {area}: manifest lacks {', '.join(missing)}")
        out[int(area)] = {f: (path.parent / entry[f] if entry.get(f) else None) for f in MANIFEST_FIELDS}
    return out
