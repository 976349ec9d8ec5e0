"""Letterheads: a folder of templates, CSS, logo and fonts, loaded once and fenced off from everything else."""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import jinja2
from weasyprint import CSS
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from pipeline.errors import RenderError
from pipeline.render.format import isolate
from pipeline.render.templates import default_templates

DEFAULT_LETTERHEAD = "default"
LETTER_TEMPLATE = "letter.html.j2"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TYPES = {
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".otf": "font/otf",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}


class RefusedURL(ValueError):
    """A URL the letter may not load: anything but a file inside the letterhead's folder."""


class LetterheadFetcher(URLFetcher):
    """Serves files inside one folder and refuses everything else: other files, http(s), data:, ftp.

    The last requests are kept in `requests` as (url, served) pairs, so a test can show what was asked for.
    """

    def __init__(self, root: Path, *, keep: int = 256) -> None:
        super().__init__(allowed_protocols={"file"}, allow_redirects=False, timeout=1)
        self.root = root.resolve()
        self.requests: deque[tuple[str, bool]] = deque(maxlen=keep)

    def path_for(self, url: str) -> Path | None:
        """The file a URL names when it is a file:// URL of a file inside the folder, else None."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost") or parts.query:
            return None
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve()
        except (OSError, ValueError):
            return None
        # resolve() follows symlinks first, so a link pointing out of the folder is refused too.
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        """Return the file's bytes, or raise RefusedURL (WeasyPrint then leaves the resource out)."""
        path = self.path_for(url)
        self.requests.append((url, path is not None))
        if path is None:
            raise RefusedURL(f"the letter may only load files of its letterhead folder, not {url[:200]!r}")
        content_type = _TYPES.get(path.suffix.lower(), "application/octet-stream")
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})


@dataclass
class Letterhead:
    """One letterhead folder with what rendering needs, made once per folder and reused."""

    name: str
    root: Path
    env: jinja2.Environment
    fonts: FontConfiguration
    fetcher: LetterheadFetcher
    _css: CSS | None = None
    # WeasyPrint's font configuration is not made for several threads at once: one render at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stylesheet_text(self) -> str:
        """The shared base.css followed by the letterhead's letter.css."""
        loader = self.env.loader
        assert loader is not None
        return "\n".join(loader.get_source(self.env, name)[0] for name in ("base.css", "letter.css"))

    def stylesheet(self) -> CSS:
        """The stylesheets parsed once; their @font-face rules load the fonts into `fonts` once."""
        if self._css is None:
            self._css = CSS(
                string=self.stylesheet_text(), base_url=self.base_url, url_fetcher=self.fetcher, font_config=self.fonts
            )
        return self._css

    @property
    def base_url(self) -> str:
        """The folder as a file:// URL ending in a slash, so `logo.svg` resolves inside it."""
        return self.root.as_uri() + "/"


_cache: dict[Path, Letterhead] = {}
_lock = threading.Lock()


def letterhead_names(templates: Path | None = None) -> list[str]:
    """The letterheads available: the folders of templates/letterhead that hold a letter template."""
    base = (templates or default_templates()) / "letterhead"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / LETTER_TEMPLATE).is_file())


def load_letterhead(name: str | None = None, templates: Path | None = None) -> Letterhead:
    """The letterhead called `name` (the default one when None), from the cache after the first call."""
    name = name or DEFAULT_LETTERHEAD
    templates = (templates or default_templates()).resolve()
    if not _NAME.match(name):
        raise RenderError(f"letterhead {name!r} is not a folder name", hint="use letters, digits, '-', '_' or '.'")
    root = templates / "letterhead" / name
    if not (root / LETTER_TEMPLATE).is_file():
        available = ", ".join(letterhead_names(templates)) or "none"
        raise RenderError(
            f"letterhead {name!r} not found (no {LETTER_TEMPLATE} in templates/letterhead/{name}/)",
            hint=f"available: {available}; a new letterhead is a new folder, see docs/letterheads.md",
        )
    with _lock:
        cached = _cache.get(root)
        if cached is None:
            cached = _cache[root] = _make(name, root, templates)
        return cached


def _make(name: str, root: Path, templates: Path) -> Letterhead:
    env = jinja2.Environment(
        # The letterhead's own files first, then the shared letter structure it may extend.
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(root), jinja2.FileSystemLoader(templates / "letter")]),
        autoescape=jinja2.select_autoescape(["html", "j2", "xml"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["bidi"] = isolate  # `{{ name|bidi }}`: a name in any direction keeps the sentence's order
    return Letterhead(name, root, env, FontConfiguration(), LetterheadFetcher(root))
