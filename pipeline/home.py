"""The pipeline's home: the directory that holds the settings, the store, the archive, the mailbox and the spool.

Which home: `--home DIR`, else $MUTUALPLAN_HOME, else $XDG_DATA_HOME/mutualplan (~/.local/share/mutualplan).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.archive import Archive
    from pipeline.store import Store

ENV_HOME = "MUTUALPLAN_HOME"
ENV_STORE_URL = "MUTUALPLAN_STORE_URL"
SETTINGS = "mutualplan.toml"
DATABASE = "mutualplan.db"
ARCHIVE = "archive"
MAIL = "mail"
SPOOL = "spool"
# The commented settings a new home starts with; the same file documents every setting in the source tree
# (config/), and an installed wheel carries it in pipeline/_data/config/ (setup.py copies it there).
_PACKAGED_SETTINGS = Path(__file__).resolve().parent / "_data" / "config" / SETTINGS
EXAMPLE_SETTINGS = (
    _PACKAGED_SETTINGS if _PACKAGED_SETTINGS.is_file() else Path(__file__).resolve().parent.parent / "config" / SETTINGS
)


def default_home(env: Mapping[str, str] = os.environ) -> Path:
    """$XDG_DATA_HOME/mutualplan, or ~/.local/share/mutualplan (a relative XDG_DATA_HOME is ignored, per XDG)."""
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "mutualplan"


def resolve_home(option: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The home to use: the --home option, else $MUTUALPLAN_HOME, else the default."""
    if option:
        return Path(option).expanduser()
    if env.get(ENV_HOME):
        return Path(env[ENV_HOME]).expanduser()
    return default_home(env)


@dataclass(frozen=True)
class Home:
    """A home directory and the paths inside it."""

    root: Path

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS

    @property
    def database_path(self) -> Path:
        return self.root / DATABASE

    @property
    def archive_dir(self) -> Path:
        return self.root / ARCHIVE

    @property
    def mail_dir(self) -> Path:
        return self.root / MAIL

    @property
    def spool_dir(self) -> Path:
        return self.root / SPOOL

    def exists(self) -> bool:
        """Whether `init` has made this directory a home (its settings file is there)."""
        return self.settings_path.is_file()

    def settings(self) -> dict[str, Any]:
        """The settings file, read; a file that is not TOML is a ConfigError naming where."""
        try:
            with self.settings_path.open("rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            raise _not_a_home(self.root) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{self.settings_path}: {exc}", hint="fix the file, or compare it with `mutualplan init` output"
            ) from None
        except UnicodeDecodeError as exc:
            # TOML is UTF-8; a file saved in a legacy code page is named with the line of its first odd byte.
            line = exc.object[:exc.start].count(b"\n") + 1
            raise ConfigError(f"{self.settings_path}: not UTF-8 (line {line}, byte {exc.object[exc.start]:#04x})",
                              hint="save it as UTF-8 in your editor") from None

    def store_url(self, env: Mapping[str, str] = os.environ) -> str:
        """$MUTUALPLAN_STORE_URL, else [store] url, else the SQLite file in this home."""
        if env.get(ENV_STORE_URL):
            return env[ENV_STORE_URL]
        from pipeline.config import store_url

        return store_url(self.settings(), str(self.settings_path)) or f"sqlite:///{self.database_path}"

    def open_store(self, env: Mapping[str, str] = os.environ) -> Store:
        """The store this home's settings name, created or upgraded as needed."""
        from pipeline.store import Store

        return Store.open(self.store_url(env))

    def open_archive(self) -> Archive:
        """The content-addressed archive in this home."""
        from pipeline.archive import Archive

        return Archive(self.archive_dir)


def open_home(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> Home:
    """The home at `path` (resolved as resolve_home does), which must have been made by `init`."""
    home = Home(resolve_home(path, env))
    if not home.exists():
        raise _not_a_home(home.root)
    return home


def init_home(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> Home:
    """Make `path` a home: its folders, a commented settings file (an existing one is kept) and the store."""
    home = Home(Path(path).expanduser())
    try:
        # Private: the home keeps other companies' email.
        for folder in (home.root, home.archive_dir, home.mail_dir, home.spool_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not home.settings_path.exists():
            home.settings_path.write_bytes(EXAMPLE_SETTINGS.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"the example settings {EXAMPLE_SETTINGS} are missing",
            hint="reinstall mutualplan (pip install .) or run it from its source tree",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot make a home at {home.root}: {exc.strerror}") from None
    home.open_store(env).close()
    return home


def _not_a_home(root: Path) -> ConfigError:
    return ConfigError(
        f"{root} is not a Mutual Plan home (no {SETTINGS})",
        hint=f"create one with `mutualplan init {root}`, or name another with --home or ${ENV_HOME}",
    )
