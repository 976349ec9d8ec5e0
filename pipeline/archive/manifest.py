"""The bundle's manifest.json: its format, the names a bundle may hold, and the shape verify accepts."""

from __future__ import annotations

import json
import re
from typing import Any

FORMAT = "mutualplan-archive/1"
MANIFEST = "manifest.json"
INDEX = "index.html"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def json_bytes(data: Any) -> bytes:
    """Indented, sorted JSON: the same data always gives the same bytes."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def unsafe_name(name: str) -> str | None:
    """Why `name` cannot be a file inside a bundle (absolute, `..`, a drive, a backslash), or None when it can."""
    if not name or len(name) > 400:
        return "an empty or overlong name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if "\\" in name or "\x00" in name:
        return "a backslash or NUL in the name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "a path that leaves the bundle or has an empty part"
    return None


class ShapeError(ValueError):
    """A manifest field of the wrong type or value, named by its path (`versions[1].letters`)."""


def check_shape(manifest: Any) -> dict[str, Any]:
    """The manifest when it has the shape this release writes; a ShapeError naming the first field that does not."""
    _need(isinstance(manifest, dict), "the manifest", "a JSON object")
    _need(manifest.get("format") == FORMAT, "format", repr(FORMAT))
    files = manifest.get("files")
    _need(isinstance(files, dict), "files", "an object of file names")
    for name, entry in files.items():
        why = unsafe_name(name)
        _need(why is None, f"files[{name!r}]", f"a name inside the bundle, not {why}")
        _need(isinstance(entry, dict), f"files[{name!r}]", "an object")
        _need(_is_sha(entry.get("sha256")), f"files[{name!r}].sha256", "64 lowercase hex digits")
        size = entry.get("size")
        _need(isinstance(size, int) and not isinstance(size, bool) and size >= 0, f"files[{name!r}].size",
              "a whole number of bytes")
    versions = manifest.get("versions")
    _need(isinstance(versions, list), "versions", "a list")
    for i, entry in enumerate(versions):
        at = f"versions[{i}]"
        _need(isinstance(entry, dict), at, "an object")
        _need(isinstance(entry.get("number"), int) and not isinstance(entry.get("number"), bool), f"{at}.number",
              "a whole number")
        _need(_is_sha(entry.get("hash")), f"{at}.hash", "64 lowercase hex digits")
        _need(entry.get("parent_hash") is None or _is_sha(entry.get("parent_hash")), f"{at}.parent_hash",
              "null or 64 lowercase hex digits")
        _need(isinstance(entry.get("plan"), str), f"{at}.plan", "a file name")
        letters = entry.get("letters")
        _need(isinstance(letters, list) and all(isinstance(n, str) for n in letters), f"{at}.letters",
              "a list of file names")
        _need(entry.get("redline") is None or isinstance(entry.get("redline"), str), f"{at}.redline",
              "null or a file name")
    emails = manifest.get("emails", [])
    _need(isinstance(emails, list) and all(isinstance(e, dict) and isinstance(e.get("file"), str)
                                           and isinstance(e.get("html", ""), str) for e in emails),
          "emails", "a list of objects each naming its file (and its page)")
    _need(isinstance(manifest.get("index", ""), str), "index", "a file name")
    documents = manifest.get("documents", [])
    _need(isinstance(documents, list) and all(isinstance(n, str) for n in documents), "documents",
          "a list of file names")
    cert = manifest.get("certificate")
    _need(cert is None or (isinstance(cert, dict) and isinstance(cert.get("file"), str)
                           and _is_sha(cert.get("evidence_manifest_sha256"))),
          "certificate", "null or an object naming its file and the SHA-256 it states")
    return manifest


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and bool(_SHA256.match(value))


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ShapeError(f"{where} must be {what}")
