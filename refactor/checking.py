"""The engine of ``lightify check``: read, prefilter, analyze in parallel, keep the input order.

The main process reads every file and applies the text prefilter (cheap, and
what rules out almost every file of a large tree); only the candidates are
analyzed, largest first, across a pool of processes, so the slowest file
starts first and the workers finish together. A run with little to analyze
stays in one process: starting a pool would cost more than it saves. With a
cache (``lightify.cache``) a text analyzed before is not analyzed again, and a
run where every candidate is cached never imports libcst.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lightify.api import convert_source
from lightify.cache import FindingsCache
from lightify.cli import _internal
from lightify.config import Config
from lightify.diagnostics import Finding, ParseFailure
from lightify.prefilter import mentions_backward
from lightify.progress import Progress
from lightify.source import read_source_file
from lightify.suppress import unsuppressed

#: Below this much candidate text (about 500 lines, a second of analysis) one process is faster.
PARALLEL_MIN_CHARS = 20_000


@dataclass(frozen=True)
class FileResult:
    """One file's findings, or why it could not be processed (a whole line for stderr)."""

    display: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None


def available_cores() -> int:
    """The cores this process may run on (honours ``taskset`` and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_files(
    files: list[tuple[str, Path]],
    config: Config,
    progress: Progress,
    debug: bool = False,
    cache: FindingsCache | None = None,
) -> list[FileResult]:
    """Check ``(display, path)`` pairs; the results come back in the same order."""
    results: list[FileResult] = [FileResult(display) for display, _ in files]
    pending: list[tuple[int, str, str]] = []
    for index, (display, path) in enumerate(files):
        try:
            text = read_source_file(path).text
        except ParseFailure as failure:  # unreadable, undecodable
            results[index] = FileResult(display, error=failure.format(display))
            progress.advance()
            continue
        found = _cached(cache, display, text, config) if mentions_backward(text) else ()
        if found is None:
            pending.append((index, display, text))
        else:
            results[index] = _shown(display, found, text, config)
            progress.advance()
    for index, result in _analyze(pending, config, debug, cache):
        results[index] = result
        progress.advance()
    return results


def check_text(
    display: str,
    text: str,
    config: Config,
    debug: bool = False,
    cache: FindingsCache | None = None,
) -> FileResult:
    """Analyze one script; keep the findings selected and not suppressed by a comment."""
    try:
        with _collector_paused():
            conversion = convert_source(text, path=display, target=config.target)
    except ParseFailure as failure:
        return FileResult(display, error=failure.format(display))
    except Exception as error:  # a bug must not stop the other files
        if debug:
            raise
        return FileResult(display, error=f"{display}: error: {_internal(error)}")
    if cache is not None:
        cache.put(cache.key(text, config.target), conversion.findings)
    return _shown(display, conversion.findings, text, config)


def _cached(
    cache: FindingsCache | None, display: str, text: str, config: Config
) -> tuple[Finding, ...] | None:
    return None if cache is None else cache.get(cache.key(text, config.target), display)


def _shown(display: str, findings: tuple[Finding, ...], text: str, config: Config) -> FileResult:
    """Suppression comments and select/ignore apply after analysis, so the cache holds all."""
    shown = unsuppressed(tuple(sorted(findings)), text)
    return FileResult(display, tuple(finding for finding in shown if config.wants(finding.code)))


def _analyze(
    pending: list[tuple[int, str, str]], config: Config, debug: bool, cache: FindingsCache | None
) -> Iterator[tuple[int, FileResult]]:
    """``(index, result)`` for each candidate, in the order they finish."""
    work = sorted(pending, key=lambda item: -len(item[2]))
    jobs = min(config.jobs or available_cores(), len(work))
    if jobs < 2 or sum(len(text) for _, _, text in work) < PARALLEL_MIN_CHARS:
        for index, display, text in work:
            yield index, check_text(display, text, config, debug, cache)
        return
    import lightify.convert  # noqa: F401  (forked workers inherit it instead of importing it)

    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
        futures = {
            pool.submit(check_text, display, text, config, debug, cache): index
            for index, display, text in work
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while libcst builds a tree: a tree of a million
    objects makes every full collection walk it again (about a fifth of the time on
    large files); refcounting frees the tree anyway, and the collector resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _context() -> multiprocessing.context.BaseContext:
    """fork on Linux: workers start in milliseconds with every module already imported."""
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()
