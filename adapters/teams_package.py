"""The Teams app package: ``config/teams/manifest.json`` and its two icons, zipped for upload.

Teams installs a bot from a zip holding ``manifest.json``, a 192×192 colour icon and a 32×32
outline icon (white on transparent). The manifest in the repository carries placeholders; the
package gets the bot's id (``MicrosoftAppId``, which Teams requires to be the Azure Bot's GUID)
and name (``TEAMS_APP_NAME``) from the configuration, so one file serves every installation. The
icons are checked before they are packed: Teams rejects a package with a wrong size quietly.
"""

from __future__ import annotations

import json
import struct
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bot.config import TeamsSettings
from bot.errors import ConfigError

FOLDER = Path(__file__).resolve().parent.parent / "config" / "teams"
ICONS = {"color": ("color.png", 192), "outline": ("outline.png", 32)}


def manifest(settings: TeamsSettings, folder: Path = FOLDER) -> dict[str, Any]:
    """The manifest with this installation's bot id and name."""
    try:
        uuid.UUID(settings.app_id)
    except ValueError:
        raise ConfigError(f"MicrosoftAppId must be the Azure Bot's app id (a GUID) to build a Teams package, "
                          f"got {settings.app_id!r}") from None
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data["id"] = settings.app_id
    for bot in data.get("bots", []):
        bot["botId"] = settings.app_id
    data["name"]["short"] = settings.app_name
    if settings.app_name != "Resync":
        data["name"]["full"] = settings.app_name
    return data


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ConfigError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def write_package(settings: TeamsSettings, out: str | Path, folder: Path = FOLDER) -> Path:
    """Write the zip; returns its path."""
    data = manifest(settings, folder)
    out = Path(out)
    icons = []
    for role, (name, side) in ICONS.items():
        path = folder / data["icons"].get(role, name)
        if png_size(path) != (side, side):
            raise ConfigError(f"{path} must be {side}×{side} pixels, it is {png_size(path)}")
        icons.append(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(data, indent=2, ensure_ascii=False))
        for path in icons:
            package.write(path, path.name)
    return out
