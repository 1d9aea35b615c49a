"""The SQLite audit log: write-ahead durability, group commit, commits off the hot path.

Two ways an entry reaches the disk, both under one lock (one committer at a time):

* **inline**: a write-ahead append that finds the log idle (no other write-ahead
  append in flight, nothing queued, no commit running) commits on the caller's own
  thread. A lone call pays the commit and nothing else: no thread hand-offs.
* **the writer thread** (owned by the log, started in :meth:`SqliteAuditLog.open`
  and joined when it closes): everything else is queued; the thread takes all that
  is queued, assigns sequence numbers and hashes, and commits the batch in one
  transaction. While one transaction is being fsynced, new entries queue up for the
  next, so throughput grows with concurrency. A batch costs one hand-off to the
  thread and one wake-up of the event loop, whatever its size.

Entries that record something already done (:meth:`SqliteAuditLog.append_behind`, the
gateway's outcomes) are built at the event loop's next turn and ride along with the next
inline commit, so one client's calls cost one fsync each, not two; if none comes within
:data:`_DEFER_S` they go to the writer. Nobody waits for them: a failure is handed to
the ``on_failure`` their caller gave.

With ``synchronous: OVERLAPPED`` a commit only writes the WAL; a
:class:`~mcp_guard.audit.wal_sync.WalSyncer` thread fsyncs it straight after, and
:meth:`SqliteAuditLog.durable` waits for that fsync (the gateway: before it hands a
call's result back, while the upstream has been working meanwhile).

SQLite's own WAL checkpoints (copying the WAL back into the database) are taken off
the commit path: the writer thread runs them when commits pause, so that no
caller's commit pays for one, and the WAL file is reused rather than grown.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import anyio.lowlevel
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mcp_guard.audit.canonical import canonical_json
from mcp_guard.audit.chain import entry_hash, make_checkpoint
from mcp_guard.audit.models import (
    GENESIS_HASH,
    KIND_RE,
    AuditConfig,
    AuditReceipt,
    AuditUnavailableError,
    format_time,
)
from mcp_guard.audit.protocol import FailureHandler, RecordBuilder
from mcp_guard.audit.prune import PruneResult, prune_log
from mcp_guard.audit.schema import DDL, SCHEMA_VERSION
from mcp_guard.audit.wal_sync import WalSyncer
from mcp_guard.signing import SigningKeyError, load_or_create_signing_key

Clock = Callable[[], datetime]

_HEAD_SQL = """
SELECT seq, hash, time FROM (SELECT seq, hash, time FROM entries ORDER BY seq DESC LIMIT 1)
UNION ALL
SELECT seq, hash, time FROM (SELECT seq, hash, time FROM checkpoints ORDER BY seq DESC LIMIT 1)
ORDER BY seq DESC LIMIT 1
"""
_INSERT_ENTRY = (
    "INSERT INTO entries (seq, id, time, kind, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_BUSY = 5
_DEFER_S = 0.05
"""How long an entry appended behind waits for an inline commit to ride along with.
Long enough to span a client's turnaround over HTTP (several ms): committed alone by the
writer, an outcome would hold the commit lock through its fsync just as the next call's
decision arrives, and that decision would wait for two fsyncs instead of one."""
_WAL_POLL_S = 0.05
"""How often the writer looks at the WAL while commits happen elsewhere."""
_WAL_IDLE_S = 0.002
"""The writer checkpoints the WAL once no commit has happened for this long..."""
_WAL_IDLE_COMMITS = 256
"""...and at least this many commits are in the WAL..."""
_WAL_FORCE_COMMITS = 1024
"""...or at the next look when this many are, however busy the log is (a growing WAL
makes every fsync dearer)."""
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (seq, hash, time, first_seq, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class _Pending:
    kind: str
    record_json: str
    done: anyio.Event | None = None
    """Set once the entry is settled; made only for a write-ahead entry handed to someone else
    to commit (an inline commit returns its receipt directly)."""
    on_failure: FailureHandler | None = None
    """Told why an entry appended behind (nobody waits for it) was not committed."""
    receipt: AuditReceipt | None = None
    error: AuditUnavailableError | None = None


class _Stop:
    """Queued when the log closes: drain, write a final checkpoint, stop."""


class _Nudge:
    """Queued after inline commits have filled the WAL: the writer wakes to checkpoint it."""


_STOP = _Stop()
_NUDGE = _Nudge()
_Item = _Pending | _Stop | _Nudge


class SqliteAuditLog:
    """The :class:`~mcp_guard.audit.AuditLog` kept in a SQLite file (WAL mode).

    Create it only with :meth:`open`.
    """

    def __init__(
        self,
        *,
        config: AuditConfig,
        conn: sqlite3.Connection,
        key: Ed25519PrivateKey,
        clock: Clock,
        file_id: tuple[int, int],
        last_checkpoint_seq: int | None,
        syncer: WalSyncer | None = None,
    ) -> None:
        self._config = config
        self._conn = conn
        self._key = key
        self._clock = clock
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._file_id = file_id
        self._last_cp_seq = last_checkpoint_seq
        self._last_cp_at = time.monotonic()
        self._head: tuple[int, str, str] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._syncer = syncer
        """Set with ``synchronous: OVERLAPPED``: fsyncs the WAL after commits."""
        self._commit_lock = threading.Lock()
        """Held by whoever commits: the writer thread or an inline append."""
        self._write_ahead_in_flight = 0
        self._unbuilt: list[tuple[str, RecordBuilder, FailureHandler]] = []
        """Entries appended behind whose records are made at the loop's next turn."""
        self._deferred: list[_Pending] = []
        """Entries appended behind waiting to ride along with the next inline commit."""
        self._defer_timer: asyncio.TimerHandle | None = None
        """Hands ``_deferred`` to the writer :data:`_DEFER_S` after the first of them came."""
        self._wal_commits = 0
        self._last_commit_at = time.monotonic()
        self._append_this_turn = False
        """A write-ahead append has begun in this turn of the event loop (cleared at the next)."""
        self._last_append_inline = True
        """The last write-ahead append committed inline (not through the writer: no concurrency)."""
        self._path = os.fspath(config.path)

    @classmethod
    @asynccontextmanager
    async def open(cls, config: AuditConfig, *, clock: Clock = _utc_now) -> AsyncIterator[SqliteAuditLog]:
        """Open (creating if needed) the log at ``config.path`` and run its writer until exit.

        On exit, queued entries are committed and a final signed checkpoint of the
        exact head is written.

        Raises:
            AuditUnavailableError: the signing key cannot be loaded or created, or
                the database cannot be created, opened or initialised.
        """
        try:
            key = await anyio.to_thread.run_sync(load_or_create_signing_key, config.signing_key_path)
        except SigningKeyError as exc:
            raise AuditUnavailableError(str(exc)) from exc
        conn, file_id, last_cp = await anyio.to_thread.run_sync(_connect, config)
        loop = asyncio.get_running_loop()
        syncer = WalSyncer(config.path, loop) if config.synchronous == "OVERLAPPED" else None
        log = cls(
            config=config,
            conn=conn,
            key=key,
            clock=clock,
            file_id=file_id,
            last_checkpoint_seq=last_cp,
            syncer=syncer,
        )
        log._loop = loop
        writer = threading.Thread(target=log._run_writer, name=f"audit-writer:{config.path}", daemon=True)
        writer.start()
        if syncer is not None:
            syncer.start()
        try:
            yield log
        finally:
            log._build_behind()  # entries appended behind in this very turn are written too
            log._closed = True
            log._hand_deferred_to_writer()
            log._queue.put(_STOP)  # the writer drains what is queued, checkpoints, syncs, closes, returns
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(writer.join)
                if syncer is not None:
                    await anyio.to_thread.run_sync(syncer.stop)

    @property
    def config(self) -> AuditConfig:
        return self._config

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        """Append an entry ahead of what it records and return once it is committed (with
        ``OVERLAPPED``: written, its fsync under way; :meth:`durable` waits for it).

        The caller acts on the commit (a decision before the call is forwarded): when the
        log is idle the entry is committed at once on the caller's thread.

        If the caller is cancelled while waiting, the entry may still be committed.

        Raises:
            ValueError: ``kind`` is not a lower-case identifier, or ``record`` holds
                NaN/infinity/lone surrogates.
            TypeError: ``record`` holds values that are not JSON.
            AuditUnavailableError: the log is closed, its backlog is full, an earlier
                fsync failed (OVERLAPPED), or the entry could not be committed.
        """
        if not KIND_RE.match(kind):
            raise ValueError(f"invalid audit kind {kind!r}: expected a lower-case identifier")
        if self._syncer is not None:
            self._syncer.check()  # after a failed fsync nothing is appended any more
        pending = _Pending(kind, _record_json(record))
        self._write_ahead_in_flight += 1
        try:
            if self._alone():
                await anyio.lowlevel.checkpoint_if_cancelled()
            else:
                await anyio.lowlevel.checkpoint()  # concurrent appends arriving now join one batch
            receipt = self._commit_inline(pending)
            self._last_append_inline = receipt is not None
            return receipt if receipt is not None else await self._through_writer(pending)
        finally:
            self._write_ahead_in_flight -= 1

    def append_behind(self, kind: str, build: RecordBuilder, on_failure: FailureHandler) -> None:
        """Append an entry recording something already done, without waiting for it.

        ``build`` makes the record at the event loop's next turn (all such records of a
        turn together, or at once if the log closes first); the entry then rides along
        with the next inline commit, or goes to the writer thread within :data:`_DEFER_S`.
        It never holds up the caller's event loop. If the record cannot be encoded or the
        entry cannot be committed (the log is closed, its backlog full, an earlier fsync
        failed, a write failed), ``on_failure`` gets the error on the event loop's thread.

        Raises:
            ValueError: ``kind`` is not a lower-case identifier.
        """
        if not KIND_RE.match(kind):
            raise ValueError(f"invalid audit kind {kind!r}: expected a lower-case identifier")
        self._unbuilt.append((kind, build, on_failure))
        if len(self._unbuilt) == 1 and self._loop is not None:
            self._loop.call_soon(self._build_behind)

    def _build_behind(self) -> None:
        """Make the records appended behind and defer their entries (or report their failure)."""
        unbuilt, self._unbuilt = self._unbuilt, []
        for kind, build, on_failure in unbuilt:
            try:
                if self._syncer is not None:
                    self._syncer.check()
                self._check_backlog()
                record_json = _built_record_json(kind, build)
            except AuditUnavailableError as exc:
                on_failure(exc)
                continue
            self._defer(_Pending(kind, record_json, on_failure=on_failure))

    async def durable(self, receipt: AuditReceipt) -> None:
        """Return once the entry behind ``receipt`` is on disk: at once unless ``synchronous``
        is ``OVERLAPPED`` (FULL commits were synced by ``append``; NORMAL never waits for
        the disk), else when the fsync that covers it has finished.

        Raises:
            AuditUnavailableError: the fsync failed; the log accepts no more entries.
        """
        if self._syncer is not None:
            await self._syncer.wait(receipt.seq)

    def _alone(self) -> bool:
        """Whether this write-ahead append is alone: no other one in flight, none begun
        before it in this turn of the event loop, and the one before it was committed
        inline (none went to the writer, as under concurrency, since). It then commits
        without yielding first: the yield (a whole loop turn) only lets appends that
        arrive together meet, and a lone call, the common case, has no one to meet. Marks
        the turn, so that the appends that follow it in the same turn (a burst, or a
        caller appending in a loop) yield once and go to the writer together, as before."""
        if (
            self._write_ahead_in_flight > 1
            or self._append_this_turn
            or not self._last_append_inline
            or self._loop is None
        ):
            return False
        self._append_this_turn = True
        self._loop.call_soon(self._end_turn)  # runs at the start of the loop's next turn
        return True

    def _end_turn(self) -> None:
        self._append_this_turn = False

    def _commit_inline(self, pending: _Pending) -> AuditReceipt | None:
        """Commit ``pending`` on this thread if the log is idle; None if it is not.

        Raises:
            AuditUnavailableError: the log is closed or the entry could not be committed.
        """
        if self._closed:
            raise AuditUnavailableError("the audit log is closed")
        if self._write_ahead_in_flight > 1 or not self._queue.empty():
            return None
        if not self._commit_lock.acquire(blocking=False):
            return None
        riders = self._take_deferred()
        batch = [*riders, pending]
        try:
            receipts = self._commit(batch, force_checkpoint=False, wait_for_lock=False)
        except _Busy:  # another connection is writing: the writer thread waits for it
            for rider in riders:
                self._queue.put(rider)
            return None
        except AuditUnavailableError as exc:
            _settle(riders, None, exc)
            raise
        except Exception as exc:
            error = _unavailable(self._config.path, exc)
            _settle(riders, None, error)
            raise error from exc
        finally:
            self._commit_lock.release()
        _settle(riders, receipts, None)  # on the event loop's thread: no hand-off needed
        if self._wal_commits == _WAL_IDLE_COMMITS:
            self._queue.put(_NUDGE)  # the writer may be asleep for checkpoint_interval_s
        return receipts[-1]

    def _defer(self, pending: _Pending) -> None:
        """Commit with the next inline commit, or through the writer thread if none comes
        within :data:`_DEFER_S`: a gateway's outcome entry then shares the fsync of the
        next call's decision entry instead of paying its own."""
        self._deferred.append(pending)
        if self._defer_timer is None and self._loop is not None:
            self._defer_timer = self._loop.call_later(_DEFER_S, self._hand_deferred_to_writer)

    def _take_deferred(self) -> list[_Pending]:
        """Every deferred entry, and no timer left to hand over the next ones early."""
        if self._defer_timer is not None:
            self._defer_timer.cancel()
            self._defer_timer = None
        deferred, self._deferred = self._deferred, []
        return deferred

    def _hand_deferred_to_writer(self) -> None:
        deferred = self._take_deferred()
        for pending in deferred:
            self._queue.put(pending)

    async def _through_writer(self, pending: _Pending) -> AuditReceipt:
        self._check_backlog()
        pending.done = anyio.Event()
        self._queue.put(pending)
        return await self._settled(pending)

    def _check_backlog(self) -> None:
        """Raises: AuditUnavailableError: the log is closed or its backlog is full."""
        if self._closed:
            raise AuditUnavailableError("the audit log is closed")
        if self._queue.qsize() + len(self._deferred) >= self._config.max_pending:
            raise AuditUnavailableError(
                f"the audit backlog is full ({self._config.max_pending} entries waiting for the disk)"
            )

    @staticmethod
    async def _settled(pending: _Pending) -> AuditReceipt:
        assert pending.done is not None  # made before the entry was handed over
        await pending.done.wait()
        if pending.receipt is None:
            raise pending.error or AuditUnavailableError("entry was not committed")
        return pending.receipt

    async def prune(self, older_than: datetime) -> PruneResult:
        """Delete entries older than ``older_than`` up to the newest signed checkpoint before it.

        Raises:
            RetentionError: ``older_than`` is inside the minimum retention period,
                or the log does not verify.
            AuditUnavailableError: the database cannot be written.
        """
        cfg = self._config
        now = self._clock()
        return await anyio.to_thread.run_sync(
            lambda: prune_log(
                cfg.path,
                self._key,
                older_than,
                retention_days=cfg.retention_days,
                now=now,
                busy_timeout_ms=cfg.busy_timeout_ms,
            )
        )

    # -- writer (runs in the writer thread) ---------------------------------------

    def _run_writer(self) -> None:
        """Commit batches until :data:`_STOP`. When commits pause, checkpoint the WAL; a
        signed checkpoint is also written when unsigned entries have waited
        ``checkpoint_interval_s``."""
        interval = self._config.checkpoint_interval_s
        stop = False
        try:
            while not stop:
                timeout = min(interval, _WAL_POLL_S) if self._wal_commits else interval
                try:
                    first = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self._housekeeping()
                    continue
                batch: list[_Pending] = []
                items = [first]
                while len(batch) < self._config.max_batch:
                    for item in items:
                        if isinstance(item, _Stop):
                            stop = True
                        elif isinstance(item, _Pending):
                            batch.append(item)
                    try:
                        items = [self._queue.get_nowait()]
                    except queue.Empty:
                        break
                if batch:
                    overdue = time.monotonic() - self._last_cp_at >= interval
                    self._write_batch(batch, force_checkpoint=overdue)
                self._housekeeping()
            self._write_batch([], force_checkpoint=True)
            while True:  # anything queued after the stop marker fails closed
                try:
                    late = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(late, _Pending):
                    self._resolve([late], None, AuditUnavailableError("the audit log is closed"))
        finally:
            if self._syncer is not None:
                self._syncer.flush()
            with self._commit_lock, suppress(sqlite3.Error):
                self._conn.close()

    def _housekeeping(self) -> None:
        """Nothing queued for a while (inline commits may still be running): sign
        overdue entries; checkpoint the WAL if commits have paused or it has grown."""
        now = time.monotonic()
        if now - self._last_cp_at >= self._config.checkpoint_interval_s:
            self._write_batch([], force_checkpoint=True)
        paused = now - self._last_commit_at >= _WAL_IDLE_S
        if self._wal_commits >= (_WAL_IDLE_COMMITS if paused else _WAL_FORCE_COMMITS):
            self._checkpoint_wal()

    def _checkpoint_wal(self) -> None:
        """Copy the WAL back into the database so that the next commit restarts it."""
        with self._commit_lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                return  # retried after the next commits; SQLite stays consistent either way
            self._wal_commits = 0

    def _write_batch(self, batch: list[_Pending], *, force_checkpoint: bool) -> None:
        try:
            with self._commit_lock:
                receipts = self._commit(batch, force_checkpoint, wait_for_lock=True)
        except AuditUnavailableError as exc:
            self._resolve(batch, None, exc)
        except Exception as exc:  # top-level boundary of the writer: callers must never hang
            self._resolve(batch, None, _unavailable(self._config.path, exc))
        else:
            self._resolve(batch, receipts, None)

    def _resolve(
        self, batch: list[_Pending], receipts: list[AuditReceipt] | None, error: AuditUnavailableError | None
    ) -> None:
        """Hand the outcome of a batch to the waiting callers from the writer thread (one
        wake-up of the event loop)."""
        if not batch or self._loop is None:
            return
        with suppress(RuntimeError):  # the event loop is already closed: nobody is waiting
            self._loop.call_soon_threadsafe(_settle, batch, receipts, error)

    def _commit(
        self, batch: list[_Pending], force_checkpoint: bool, *, wait_for_lock: bool
    ) -> list[AuditReceipt]:
        """Commit ``batch`` (the caller holds ``_commit_lock``).

        The connection never waits inside SQLite for another connection's write lock:
        with ``wait_for_lock`` this retries until ``busy_timeout_ms`` has passed (the
        writer thread), otherwise it raises :class:`_Busy` at once (an inline commit,
        which must not stall its event loop).
        """
        self._check_file()
        deadline = time.monotonic() + self._config.busy_timeout_ms / 1000
        conflicts = 0
        while True:
            try:
                receipts = self._try_commit(batch, force_checkpoint)
            except sqlite3.IntegrityError:
                # Another connection appended (e.g. a prune's ``retention`` entry): reload the head, retry.
                self._head = None
                conflicts += 1
                if conflicts >= 3:
                    raise AuditUnavailableError("another writer keeps appending to the database") from None
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF != _SQLITE_BUSY:  # any SQLITE_BUSY_*
                    raise
                if not wait_for_lock:
                    raise _Busy from exc
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.001)
            else:
                if batch:
                    self._wal_commits += 1
                    self._last_commit_at = time.monotonic()
                    if self._syncer is not None:
                        self._syncer.committed(receipts[-1].seq)
                return receipts

    def _try_commit(self, batch: list[_Pending], force_checkpoint: bool) -> list[AuditReceipt]:
        conn = self._conn
        try:
            if self._head is None:
                row = conn.execute(_HEAD_SQL).fetchone()
                self._head = (int(row[0]), str(row[1]), str(row[2])) if row else (0, GENESIS_HASH, "")
            seq, prev, last_time = self._head
            now = max(format_time(self._clock()), last_time)
            rows_out: list[tuple[int, str, str, str, str, str, str]] = []
            receipts: list[AuditReceipt] = []
            for pending in batch:
                seq += 1
                id_ = uuid4().hex
                h = entry_hash(seq, id_, now, pending.kind, pending.record_json, prev)
                rows_out.append((seq, id_, now, pending.kind, pending.record_json, prev, h))
                receipts.append(AuditReceipt(id_, seq, h))
                prev = h
            if len(rows_out) == 1:
                conn.execute(_INSERT_ENTRY, rows_out[0])  # implicit BEGIN IMMEDIATE
            elif rows_out:
                conn.executemany(_INSERT_ENTRY, rows_out)
            last_cp = self._last_cp_seq
            due = last_cp is None or seq - last_cp >= self._config.checkpoint_every
            if seq > 0 and seq != last_cp and (due or force_checkpoint):
                first_seq = conn.execute("SELECT MIN(seq) FROM entries").fetchone()[0] or seq + 1
                cp = make_checkpoint(self._key, seq, prev, now, first_seq)
                conn.execute(
                    _INSERT_CHECKPOINT, (cp.seq, cp.hash, cp.time, cp.first_seq, cp.key_id, cp.signature)
                )
                last_cp = seq
                self._last_cp_at = time.monotonic()
            conn.commit()
        except BaseException:
            self._head = None  # re-read after any failure: the database is the truth
            _rollback(conn)
            raise
        self._last_cp_seq = last_cp
        self._head = (seq, prev, now)
        return receipts

    def _check_file(self) -> None:
        """Raises: AuditUnavailableError: the database file at the configured path is gone
        or another file (entries committed now would be lost with the old one)."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            raise AuditUnavailableError(f"database file {self._path} was removed") from None
        if st.st_ino != self._file_id[1] or st.st_dev != self._file_id[0]:
            raise AuditUnavailableError(f"database file {self._path} was replaced by another file")


class _Busy(Exception):
    """Another connection holds the database's write lock."""


def _unavailable(path: Path, exc: BaseException) -> AuditUnavailableError:
    if isinstance(exc, sqlite3.Error | OSError | ValueError):
        return AuditUnavailableError(f"cannot write {path}: {exc}")
    return AuditUnavailableError(f"internal error in the audit writer: {exc!r}")


def _settle(
    batch: list[_Pending], receipts: list[AuditReceipt] | None, error: AuditUnavailableError | None
) -> None:
    """Hand the outcome of a batch (``receipts[i]`` is ``batch[i]``'s) to its waiting callers,
    and a failure to the ``on_failure`` of entries nobody waits for, on the event loop's thread."""
    for i, pending in enumerate(batch):
        pending.receipt = receipts[i] if receipts is not None else None
        pending.error = error
        if pending.done is not None:
            pending.done.set()
        elif error is not None and pending.on_failure is not None:
            pending.on_failure(error)


def _built_record_json(kind: str, build: RecordBuilder) -> str:
    """The canonical JSON of the record ``build`` makes.

    Raises:
        AuditUnavailableError: the record is not JSON, or ``build`` failed.
    """
    try:
        record = build()
    except Exception as exc:  # top-level boundary of a record nobody awaits: report it, build the others
        raise AuditUnavailableError(f"internal error while building the {kind} record: {exc!r}") from exc
    try:
        return _record_json(record)
    except (ValueError, TypeError) as exc:
        raise AuditUnavailableError(f"the {kind} record cannot be encoded: {exc}") from exc


def _record_json(record: Mapping[str, Any]) -> str:
    """Raises: ValueError, TypeError: as :func:`~mcp_guard.audit.canonical.canonical_json`."""
    return canonical_json(record if type(record) is dict else dict(record))


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.rollback()
    except (sqlite3.Error, ValueError):
        pass  # the connection is broken; the transaction dies with it


def _connect(config: AuditConfig) -> tuple[sqlite3.Connection, tuple[int, int], int | None]:
    """Open the database for the writer thread (WAL, busy timeout, schema).

    Raises:
        AuditUnavailableError: the folder, the file or the schema cannot be created.
    """
    path = Path(config.path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditUnavailableError(f"cannot create directory {path.parent}: {exc.strerror}") from None
    try:
        conn = sqlite3.connect(str(path), isolation_level="IMMEDIATE", check_same_thread=False)
    except sqlite3.Error as exc:
        raise AuditUnavailableError(f"cannot open audit database {path}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints when commits pause
        if str(mode[0]).lower() != "wal":
            raise AuditUnavailableError(f"{path}: cannot switch the database to WAL mode")
        sqlite_synchronous = "NORMAL" if config.synchronous == "OVERLAPPED" else config.synchronous
        conn.execute(f"PRAGMA synchronous = {sqlite_synchronous}")
        conn.executescript(DDL)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
        conn.commit()
        conn.execute("PRAGMA busy_timeout = 0")  # _commit waits for other writers, never SQLite
        last_cp: int | None = conn.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0]
        st = os.stat(path)
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        raise AuditUnavailableError(f"cannot initialise audit database {path}: {exc}") from None
    except AuditUnavailableError:
        conn.close()
        raise
    return conn, (st.st_dev, st.st_ino), last_cp


__all__ = ["Clock", "SqliteAuditLog"]
