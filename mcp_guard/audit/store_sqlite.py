"""The SQLite audit log: one writer task, group commit, write-ahead durability.

Callers enqueue an entry and wait for its commit; the writer task (owned by the
log, started in :meth:`SqliteAuditLog.open`) takes everything queued, assigns
sequence numbers and hashes, and commits the batch in one transaction. While one
transaction is being fsynced, new entries queue up for the next: throughput
grows with concurrency while each caller still waits only for its own commit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiosqlite
import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
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
from mcp_guard.audit.prune import PruneResult, prune_log
from mcp_guard.audit.schema import DDL, SCHEMA_VERSION
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
_INSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (seq, hash, time, first_seq, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class _Pending:
    kind: str
    record_json: str
    done: anyio.Event = field(default_factory=anyio.Event)
    receipt: AuditReceipt | None = None
    error: AuditUnavailableError | None = None


class _Tick:
    """Queued by the ticker: "write a checkpoint if unsigned entries are waiting"."""


_TICK = _Tick()
_Item = _Pending | _Tick


class SqliteAuditLog:
    """The :class:`~mcp_guard.audit.AuditLog` kept in a SQLite file (WAL mode).

    Create it only with :meth:`open`.
    """

    def __init__(
        self,
        *,
        config: AuditConfig,
        conn: aiosqlite.Connection,
        key: Ed25519PrivateKey,
        clock: Clock,
        send: MemoryObjectSendStream[_Item],
        file_id: tuple[int, int],
        last_checkpoint_seq: int | None,
    ) -> None:
        self._config = config
        self._conn = conn
        self._key = key
        self._clock = clock
        self._send = send
        self._file_id = file_id
        self._last_cp_seq = last_checkpoint_seq
        self._head: tuple[int, str, str] | None = None
        self._closed = False

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
        conn, file_id, last_cp = await _connect(config)
        send, receive = anyio.create_memory_object_stream[_Item](config.max_pending)
        log = cls(
            config=config,
            conn=conn,
            key=key,
            clock=clock,
            send=send,
            file_id=file_id,
            last_checkpoint_seq=last_cp,
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(log._run_writer, receive)
                ticker = anyio.CancelScope()
                tg.start_soon(log._run_ticker, ticker)
                try:
                    yield log
                finally:
                    log._closed = True
                    ticker.cancel()
                    send.close()  # the writer drains what is queued, checkpoints, and returns
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    @property
    def config(self) -> AuditConfig:
        return self._config

    async def append(self, kind: str, record: Mapping[str, Any]) -> AuditReceipt:
        """Append an entry and return once it is durably committed.

        If the caller is cancelled while waiting, the entry may still be committed.

        Raises:
            ValueError: ``kind`` is not a lower-case identifier, or ``record`` holds
                NaN/infinity/lone surrogates.
            TypeError: ``record`` holds values that are not JSON.
            AuditUnavailableError: the log is closed or the entry could not be committed.
        """
        if not KIND_RE.match(kind):
            raise ValueError(f"invalid audit kind {kind!r}: expected a lower-case identifier")
        pending = _Pending(kind, canonical_json(dict(record)))
        if self._closed:
            raise AuditUnavailableError("the audit log is closed")
        try:
            await self._send.send(pending)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise AuditUnavailableError("the audit log is closed") from None
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

    # -- writer ---------------------------------------------------------------

    async def _run_ticker(self, scope: anyio.CancelScope) -> None:
        with scope:
            while True:
                await anyio.sleep(self._config.checkpoint_interval_s)
                try:
                    self._send.send_nowait(_TICK)
                except anyio.WouldBlock:
                    continue  # the writer is busy anyway; the next batch checks again
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def _run_writer(self, receive: MemoryObjectReceiveStream[_Item]) -> None:
        async with receive:
            while True:
                try:
                    first = await receive.receive()
                except anyio.EndOfStream:
                    break
                batch: list[_Pending] = []
                tick = isinstance(first, _Tick)
                if isinstance(first, _Pending):
                    batch.append(first)
                while len(batch) < self._config.max_batch:
                    try:
                        item = receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    if isinstance(item, _Pending):
                        batch.append(item)
                    else:
                        tick = True
                await self._write_batch(batch, force_checkpoint=tick)
        with anyio.CancelScope(shield=True):
            await self._write_batch([], force_checkpoint=True)

    async def _write_batch(self, batch: list[_Pending], *, force_checkpoint: bool) -> None:
        try:
            receipts = await self._commit(batch, force_checkpoint)
        except AuditUnavailableError as exc:
            error = exc
        except (sqlite3.Error, OSError, ValueError) as exc:
            error = AuditUnavailableError(f"cannot write {self._config.path}: {exc}")
        except Exception as exc:  # top-level boundary of the writer: callers must never hang
            error = AuditUnavailableError(f"internal error in the audit writer: {exc!r}")
        else:
            for pending, receipt in zip(batch, receipts, strict=True):
                pending.receipt = receipt
                pending.done.set()
            return
        for pending in batch:
            pending.error = error
            pending.done.set()

    async def _commit(self, batch: list[_Pending], force_checkpoint: bool) -> list[AuditReceipt]:
        self._check_file()
        for _attempt in range(3):
            try:
                return await self._try_commit(batch, force_checkpoint)
            except sqlite3.IntegrityError:
                # Another connection appended (e.g. a prune's ``retention`` entry): reload the head, retry.
                self._head = None
        raise AuditUnavailableError("another writer keeps appending to the same database")

    async def _try_commit(self, batch: list[_Pending], force_checkpoint: bool) -> list[AuditReceipt]:
        conn = self._conn
        try:
            if self._head is None:
                rows = await conn.execute_fetchall(_HEAD_SQL)
                row = next(iter(rows), None)
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
                receipts.append(AuditReceipt(id=id_, seq=seq, hash=h))
                prev = h
            if rows_out:
                await conn.executemany(_INSERT_ENTRY, rows_out)  # implicit BEGIN IMMEDIATE
            last_cp = self._last_cp_seq
            due = last_cp is None or seq - last_cp >= self._config.checkpoint_every
            if seq > 0 and seq != last_cp and (due or force_checkpoint):
                first = await conn.execute_fetchall("SELECT MIN(seq) FROM entries")
                first_seq = next(iter(first))[0] or seq + 1
                cp = make_checkpoint(self._key, seq, prev, now, first_seq)
                await conn.execute(
                    _INSERT_CHECKPOINT, (cp.seq, cp.hash, cp.time, cp.first_seq, cp.key_id, cp.signature)
                )
                last_cp = seq
            await conn.commit()
        except BaseException:
            self._head = None  # re-read after any failure: the database is the truth
            with anyio.CancelScope(shield=True):
                await _rollback(conn)
            raise
        self._last_cp_seq = last_cp
        self._head = (seq, prev, now)
        return receipts

    def _check_file(self) -> None:
        path = self._config.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise AuditUnavailableError(f"database file {path} was removed") from None
        if (st.st_dev, st.st_ino) != self._file_id:
            raise AuditUnavailableError(f"database file {path} was replaced by another file")


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        if conn.in_transaction:
            await conn.rollback()
    except (sqlite3.Error, ValueError):
        pass  # the connection is broken; the transaction dies with it


async def _connect(config: AuditConfig) -> tuple[aiosqlite.Connection, tuple[int, int], int | None]:
    path = Path(config.path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditUnavailableError(f"cannot create directory {path.parent}: {exc.strerror}") from None
    try:
        conn = await aiosqlite.connect(str(path), isolation_level="IMMEDIATE")
    except sqlite3.Error as exc:
        raise AuditUnavailableError(f"cannot open audit database {path}: {exc}") from None
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
        mode = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
        if next(iter(mode))[0].lower() != "wal":
            raise AuditUnavailableError(f"{path}: cannot switch the database to WAL mode")
        await conn.execute(f"PRAGMA synchronous = {config.synchronous}")
        await conn.executescript(DDL)
        await conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
        await conn.commit()
        rows = await conn.execute_fetchall("SELECT MAX(seq) FROM checkpoints")
        last_cp: int | None = next(iter(rows))[0]
        st = os.stat(path)
    except (sqlite3.Error, OSError) as exc:
        await conn.close()
        raise AuditUnavailableError(f"cannot initialise audit database {path}: {exc}") from None
    except AuditUnavailableError:
        await conn.close()
        raise
    return conn, (st.st_dev, st.st_ino), last_cp


__all__ = ["Clock", "SqliteAuditLog"]
