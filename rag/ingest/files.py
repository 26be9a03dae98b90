"""Finding the files to read: folders walked in sorted order, links followed only inside them.

A source folder may come from anyone, so a link in it is followed only when its target stays
inside the folder that was named (the source root). A link that leaves the root (to
``/etc/passwd``, say), a dangling link and a link loop are reported as problems, never followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from rag.errors import SourceError
from rag.models import Problem

FORMATS = {
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def format_of(path: Path) -> str | None:
    """The reader a file's name asks for (``.gz`` looked through), or None.

    >>> format_of(Path("wire/2023.JSONL.gz")), format_of(Path("notes.pdf"))
    ('jsonl', None)
    """
    name = path.name.lower().removesuffix(".gz")
    return FORMATS.get(Path(name).suffix)


def check_sources(sources: Iterable[str | Path] | str | Path) -> list[Path]:
    """The sources as paths; SourceError for the first one that does not exist."""
    # A lone str is iterable too; reading its characters as paths would be a baffling error.
    roots = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    for root in roots:
        if not root.exists():
            raise SourceError(
                f"source not found: {root}: check the path, "
                "or pass a folder of .txt/.md/.html/.json/.jsonl articles"
            )
    return roots


def iter_source_files(sources: Iterable[str | Path] | str | Path) -> Iterator[Path]:
    """Yield the files to read: folders recursively in sorted order, files as given.

    Hidden files and folders, and unsupported files inside folders, are skipped; a file named
    explicitly is yielded whatever its type, so that :func:`~rag.ingest.iter_articles` can say
    why it is unusable. Links that cannot be followed are left out (:func:`walk` reports them).
    Every source is checked before anything is yielded.

    >>> list(iter_source_files(["seeds/000_29be564519ffc8c1.txt"]))
    [PosixPath('seeds/000_29be564519ffc8c1.txt')]
    """
    return (item for item in walk(check_sources(sources)) if isinstance(item, Path))


def walk(roots: list[Path]) -> Iterator[Path | Problem]:
    """The files of ``roots`` (see :func:`iter_source_files`), each once, and a ``Problem`` for
    every link or folder that cannot be followed."""
    seen: set[Path | str] = set()
    for root in roots:
        items = _folder(root, root.resolve(), (), set()) if root.is_dir() else iter([root])
        for item in items:
            # The same file reached twice (a folder and a file inside it) would only add duplicates.
            key = item.resolve() if isinstance(item, Path) else item.origin
            if key not in seen:
                seen.add(key)
                yield item


def _folder(folder: Path, top: Path, chain: tuple[Path, ...], walked: set[Path]) -> Iterator[Path | Problem]:
    # ``chain``: the real folders this walk is inside, where a link back is a loop. ``walked``:
    # every real folder walked so far; a second link to one would only add duplicates, and
    # links to links could multiply the walk (ten links to ten links to ...).
    real = folder.resolve()
    chain = (*chain, real)
    walked.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        yield Problem(str(folder), f"cannot read folder: {e.strerror or e}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            target = _link_target(entry, top)
            if isinstance(target, Problem):
                yield target
            elif target.is_dir():
                if target in chain:
                    yield Problem(str(entry), f"link loop: it points to {target}, a folder that holds "
                                              "it: not followed; remove the link")
                elif target not in walked:
                    yield from _folder(entry, top, chain, walked)
            elif target.is_file() and format_of(entry):
                yield entry
        elif entry.is_dir():
            if entry.resolve() not in walked:
                yield from _folder(entry, top, chain, walked)
        elif entry.is_file() and format_of(entry):
            yield entry


def _link_target(link: Path, top: Path) -> Path | Problem:
    """Where ``link`` leads, if that is inside ``top``; else the problem to report."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return Problem(str(link), f"broken link: its target {os.readlink(link)} does not exist; "
                                  "remove the link or restore the file")
    except (RuntimeError, OSError):  # a loop of links: RuntimeError before Python 3.13, OSError after
        return Problem(str(link), "link loop: the link leads back to itself: not followed; remove the link")
    if not target.is_relative_to(top):
        return Problem(str(link), f"link to {target}, outside the source folder {top}: not followed; "
                                  "copy the file into the folder to index it")
    return target
