"""What each setting means, read from the config files' own comments (one source for the files and
for ``--help``): the comment block right above a key explains it, the first comment of a group's
option file explains that option."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w.]*):")
# Blocks that configure Hydra or compose the file, not settings of the command.
_NOT_SETTINGS = ("defaults", "hydra")


def key_comments(text: str) -> dict[str, str]:
    """Dotted key -> the comment block above it, for every key of a YAML file that has one."""
    described: dict[str, str] = {}
    comments: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the keys enclosing the current line
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not stripped.startswith("# @package"):
                comments.append(stripped.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if stripped and match and not stripped.startswith("-"):
            indent = len(match.group(1))
            while parents and parents[-1][0] >= indent:
                parents.pop()
            parents.append((indent, match.group(2)))
            key = ".".join(name for _, name in parents)
            if comments and key.split(".")[0] not in _NOT_SETTINGS:
                described[key] = " ".join(comments)
        comments = []
    return described


def option_summary(path: Path) -> str:
    """The first comment line of a group's option file (what the option is), or ''."""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("# @package"):
            return stripped.lstrip("#").strip()
        if stripped and not stripped.startswith("#"):
            return ""
    return ""


def included_files(config_file: Path) -> list[Path]:
    """The config files beside ``config_file`` that its defaults list names (``- face_options``)."""
    names = re.findall(r"^  - ([A-Za-z_]\w*)\s*$", config_file.read_text(), flags=re.MULTILINE)
    return [config_file.with_name(f"{name}.yaml") for name in names
            if name != "_self_" and config_file.with_name(f"{name}.yaml").is_file()]


def _shown(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return str(value)


def settings_help(config_file: Path, cfg: DictConfig) -> str:
    """Every setting of a composed command config as ``key=default``, each under its explanation."""
    described = {}
    for included in included_files(config_file):  # shared settings (face_options.yaml) explain themselves
        described.update(key_comments(included.read_text()))
    described.update(key_comments(config_file.read_text()))
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    lines, explained = [], set()
    for key, value in flat.items():
        # The nearest described key at or above this one: a block's comment is said once, at its first key.
        owner = next((k for k in _ancestors(key) if k in described), None)
        if owner is not None and owner not in explained:
            explained.add(owner)
            lines.append(textwrap.fill(described[owner], 100, initial_indent="  # ", subsequent_indent="  # "))
        lines.append(f"  {key}={_shown(value)}")
    return "\n".join(lines)


def _ancestors(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def groups_help(conf_dir: Path, chosen: dict[str, str]) -> str:
    """Each config group of ``conf_dir`` with its options, the one in use marked with '*'."""
    lines = []
    for group_dir in sorted(p for p in conf_dir.rglob("*") if p.is_dir() and any(p.glob("*.yaml"))):
        group = group_dir.relative_to(conf_dir).as_posix()
        if group.split("/")[0] == "hydra":
            continue
        lines.append(f"  {group}=")
        for option in sorted(group_dir.glob("*.yaml")):
            mark = "*" if chosen.get(group) == option.stem else " "
            summary = option_summary(option)
            lines.append(f"   {mark} {option.stem:<22} {summary}".rstrip())
    return "\n".join(lines)
