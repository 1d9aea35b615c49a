"""Overlapped durability: the audit log's WAL is fsynced beside the caller, not in its way.

With ``synchronous: OVERLAPPED`` SQLite commits in ``NORMAL`` mode: a commit writes
the entry into the WAL file, so it survives a killed gateway, without waiting for the
disk. A :class:`WalSyncer` thread then fdatasyncs the WAL file (one fsync covers every
commit written before it started) and wakes whoever waits for those entries. The
gateway forwards a call once its decision entry is written and hands the result back
only once that entry is synced, so the fsync runs while the upstream works.

A failed fsync is final: after one, Linux may already have dropped the unwritten pages,
so a later successful fsync would prove nothing. Every waiter and every later append
then fails closed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import suppress
from pathlib import Path

import anyio

from mcp_guard.audit.models import AuditUnavailableError


class WalSyncer:
    """Owns the thread that fsyncs one SQLite WAL file after commits."""

    def __init__(self, database: Path, loop: asyncio.AbstractEventLoop) -> None:
        self._wal = Path(f"{database}-wal")
        self._loop = loop
        self._cond = threading.Condition()
        self._committed = 0
        """Highest sequence number written to the WAL (guarded by ``_cond``)."""
        self._synced = 0
        """Highest sequence number known to be on disk (written under ``_cond``)."""
        self._stopping = False
        self._directory_synced = False
        self.error: AuditUnavailableError | None = None
        self._waiters: list[tuple[int, anyio.Event]] = []  # touched on the event loop's thread only
        self._thread = threading.Thread(target=self._run, name=f"audit-sync:{database}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Sync what is committed, then end the thread (blocks: call it from a worker thread)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def committed(self, seq: int) -> None:
        """Entries up to ``seq`` are in the WAL (called by whichever thread committed them)."""
        with self._cond:
            if seq > self._committed:
                self._committed = seq
                self._cond.notify()

    def check(self) -> None:
        """Raises: AuditUnavailableError — an fsync failed; nothing may be appended any more."""
        if self.error is not None:
            raise self.error

    async def wait(self, seq: int) -> None:
        """Return once entry ``seq`` is on disk.

        Raises:
            AuditUnavailableError: the fsync failed (now or earlier).
        """
        if seq > self._synced:
            self.check()
            event = anyio.Event()
            self._waiters.append((seq, event))
            await event.wait()
        if seq > self._synced:  # woken by a failure, not by its fsync
            self.check()

    def flush(self) -> None:
        """Sync everything committed, on the calling thread (the writer, before it closes the database)."""
        with self._cond:
            target = self._committed
        if target > self._synced and self.error is None:
            self._sync(target)

    def _run(self) -> None:
        while self.error is None:
            with self._cond:
                while self._committed <= self._synced and not self._stopping:
                    self._cond.wait()
                if self._committed <= self._synced:
                    return  # stopping, and everything committed is on disk
                target = self._committed
            self._sync(target)

    def _sync(self, target: int) -> None:
        try:
            self._fsync_wal()
        except OSError as exc:
            self.error = AuditUnavailableError(f"cannot fsync {self._wal}: {exc.strerror or exc}")
        except Exception as exc:  # the thread's top-level boundary: no waiter may hang
            self.error = AuditUnavailableError(f"internal error in the audit sync thread: {exc!r}")
        else:
            with self._cond:
                self._synced = max(self._synced, target)
        with suppress(RuntimeError):  # the event loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._release)

    def _fsync_wal(self) -> None:
        # SQLite deletes the WAL only when its last connection closes, and the log's own
        # connection stays open until after the last flush: a missing WAL was removed by
        # someone else, with entries in it that will never reach the database.
        fd = os.open(self._wal, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if not self._directory_synced:  # a new WAL file's directory entry, once
            _fsync_directory(self._wal.parent)
            self._directory_synced = True

    def _release(self) -> None:
        waiting: list[tuple[int, anyio.Event]] = []
        for seq, event in self._waiters:
            if seq <= self._synced or self.error is not None:
                event.set()
            else:
                waiting.append((seq, event))
        self._waiters = waiting


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["WalSyncer"]
