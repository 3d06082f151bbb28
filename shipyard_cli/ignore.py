"""Which files of a directory are left out of an upload: gitignore pattern rules.

A directory's `.gitignore` and then its `.shipyardignore` apply to it and below, with
git's rules: blank lines and `#` comments are skipped, `!` re-includes, a leading or
middle `/` anchors a pattern to the directory of its file, a trailing `/` matches only
directories, `*` and `?` never cross a `/`, `**` spans directories, and the last
matching pattern wins. Patterns of a deeper file beat those of its ancestors, and
`.shipyardignore` beats `.gitignore` in the same directory, so it can re-include what
git ignores (a built `dist/`, say). As in git, nothing inside an excluded directory can
be re-included: the walk never enters it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILES = (".gitignore", ".shipyardignore")

# Never uploaded, whatever the ignore files say: VCS data, dependencies and caches that
# the build recreates; the CLI's own link to a project (.shipyard/project.json).
ALWAYS_EXCLUDED = frozenset({".git", "node_modules", ".venv", "__pycache__", ".shipyard"})


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    source: str

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(relative) is not None


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces are dropped unless the last one is escaped with a backslash."""
    stripped = line.rstrip(" ")
    backslashes = len(stripped) - len(stripped.rstrip("\\"))
    if stripped != line and backslashes % 2 == 1:
        return stripped + " "
    return stripped


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """Translate the `[...]` class that opens at `start`; None if it never closes."""
    index = start + 1
    negate = index < len(pattern) and pattern[index] in "!^"
    if negate:
        index += 1
    body: list[str] = []
    first = True
    while index < len(pattern) and (pattern[index] != "]" or first):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            index += 1
            char = pattern[index]
            body.append("\\" + char if char in "\\[]^-" else char)
        else:
            body.append("\\" + char if char in "\\[]^" else char)
        index += 1
        first = False
    if index >= len(pattern):
        return None
    # A class never matches the separator, as with fnmatch's FNM_PATHNAME.
    return ("[^/" if negate else "(?!/)[") + "".join(body) + "]", index + 1


def _translate(pattern: str) -> str:
    out: list[str] = []
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "*":
            run_end = index
            while run_end < length and pattern[run_end] == "*":
                run_end += 1
            at_start = index == 0 or pattern[index - 1] == "/"
            at_end = run_end == length or pattern[run_end] == "/"
            if run_end - index >= 2 and at_start and at_end:
                if run_end == length:
                    out.append(".*")
                else:
                    # `**/` matches zero or more whole directories.
                    out.append("(?:.*/)?")
                    run_end += 1
            else:
                out.append("[^/]*")
            index = run_end
        elif char == "?":
            out.append("[^/]")
            index += 1
        elif char == "[":
            translated = _bracket(pattern, index)
            if translated is None:
                out.append(re.escape(char))
                index += 1
            else:
                out.append(translated[0])
                index = translated[1]
        elif char == "\\" and index + 1 < length:
            out.append(re.escape(pattern[index + 1]))
            index += 2
        else:
            out.append(re.escape(char))
            index += 1
    return "".join(out)


def parse_line(line: str) -> Pattern | None:
    """One line of an ignore file as a pattern; None for blanks and comments."""
    source = line
    line = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    body = _translate(line)
    regex = body if anchored else "(?:.*/)?" + body
    return Pattern(re.compile(regex, re.DOTALL), negated, dir_only, source.rstrip("\r\n"))


def parse(text: str) -> list[Pattern]:
    return [p for p in (parse_line(line) for line in text.splitlines()) if p is not None]


@dataclass(frozen=True)
class Rules:
    """The patterns that apply in one directory, from the root's files down to its own."""

    layers: tuple[tuple[str, tuple[Pattern, ...]], ...] = ()

    def with_directory(self, directory: Path, relative_dir: str) -> Rules:
        """These rules plus the ignore files found in `directory` (at `relative_dir`)."""
        patterns: list[Pattern] = []
        for name in IGNORE_FILES:
            path = directory / name
            if path.is_file():
                patterns.extend(parse(path.read_text(encoding="utf-8", errors="replace")))
        if not patterns:
            return self
        return Rules((*self.layers, (relative_dir, tuple(patterns))))

    def excluded(self, relative: str, is_dir: bool) -> bool:
        """Whether the path (relative to the root, `/`-separated) is left out."""
        if relative.rsplit("/", 1)[-1] in ALWAYS_EXCLUDED:
            return True
        for base, patterns in reversed(self.layers):
            local = relative[len(base) + 1 :] if base else relative
            for pattern in reversed(patterns):
                if pattern.matches(local, is_dir):
                    return not pattern.negated
        return False
