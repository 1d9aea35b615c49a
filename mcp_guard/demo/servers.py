"""The demo servers: a bank, a customer database, a mailbox and a file store."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
EXTERNAL = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


class Balance(BaseModel):
    account: str
    balance: float
    currency: str


class Refund(BaseModel):
    refund_id: str
    payment_id: str
    amount: float
    currency: str
    status: str


def bank() -> MCPServer:
    server = MCPServer("demo-bank", instructions="Payments: balances, refunds and transfers (demo data).")
    accounts = {"ACC-1001": 25_000.0, "ACC-1002": 1_250.5}
    refunds: list[Refund] = []

    @server.tool(annotations=READ_ONLY)
    def get_balance(account: str) -> Balance:
        """Return the balance of an account, e.g. ACC-1001."""
        if account not in accounts:
            raise ValueError(f"unknown account {account}")
        return Balance(account=account, balance=accounts[account], currency="EUR")

    @server.tool(annotations=WRITES)
    def refund(payment_id: str, amount: float, currency: str = "EUR", reason: str = "") -> Refund:
        """Refund a card payment (partially or fully) to the customer."""
        if amount <= 0:
            raise ValueError("amount must be positive")
        item = Refund(
            refund_id=f"RF-{len(refunds) + 1:05d}",
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            status="succeeded",
        )
        refunds.append(item)
        return item

    @server.tool(annotations=EXTERNAL)
    def transfer(from_account: str, to_iban: str, amount: float, currency: str = "EUR") -> str:
        """Send money from one of our accounts to an external IBAN."""
        if accounts.get(from_account, 0.0) < amount:
            raise ValueError("insufficient funds")
        accounts[from_account] -= amount
        return f"Transferred {amount:.2f} {currency} from {from_account} to {to_iban}."

    return server


def db() -> MCPServer:
    server = MCPServer("demo-db", instructions="A customer database (SQLite, in memory).")
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, country TEXT, plan TEXT);
        INSERT INTO customers (name, email, country, plan) VALUES
          ('Ada Lovelace', 'ada@example.com', 'UK', 'pro'),
          ('Grace Hopper', 'grace@example.com', 'US', 'team'),
          ('Alan Turing', 'alan@example.com', 'UK', 'free');
        """
    )

    @server.tool(annotations=READ_ONLY)
    def query(sql: str) -> list[dict[str, Any]]:
        """Run a read-only SQL query against the customer database and return the rows."""
        if not sql.lstrip().lower().startswith(("select", "with")):
            raise ValueError("query accepts SELECT statements only; use delete_records to delete")
        cur = conn.execute(sql)
        names = [c[0] for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @server.tool(annotations=DESTRUCTIVE)
    def delete_records(table: str, where: str) -> str:
        """Delete the rows of a table that match a WHERE clause."""
        if table != "customers":
            raise ValueError(f"unknown table {table}")
        cur = conn.execute(f"DELETE FROM customers WHERE {where}")
        return f"Deleted {cur.rowcount} row(s) from {table}."

    return server


def mail() -> MCPServer:
    server = MCPServer("demo-mail", instructions="Send and read email (nothing leaves this process).")
    outbox: list[dict[str, str]] = []
    inbox = [
        {"from": "alice@example.com", "subject": "Invoice 2291", "body": "Please find the invoice attached."},
        {"from": "bob@example.org", "subject": "Lunch?", "body": "Thursday works for me."},
    ]

    @server.tool(annotations=EXTERNAL)
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email to any address."""
        outbox.append({"to": to, "subject": subject, "body": body})
        return f"Sent message #{len(outbox)} to {to}."

    @server.tool(annotations=READ_ONLY)
    def list_inbox(limit: int = 10) -> list[dict[str, str]]:
        """List the most recent messages in the inbox."""
        return inbox[: max(0, limit)]

    return server


def files() -> MCPServer:
    root = Path(os.environ.get("DEMO_FILES_ROOT") or tempfile.mkdtemp(prefix="mcp-guard-demo-files-"))
    (root / "notes.txt").write_text("Quarterly numbers are in reports/q3.csv\n", encoding="utf-8")
    server = MCPServer("demo-files", instructions=f"Read and write files inside {root}.")

    def inside(path: str) -> Path:
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()):
            raise ValueError("path escapes the file store")
        return target

    @server.tool(annotations=READ_ONLY)
    def read_file(path: str) -> str:
        """Read a text file from the file store."""
        return inside(path).read_text(encoding="utf-8")

    @server.tool(annotations=WRITES)
    def write_file(path: str, content: str) -> str:
        """Write a text file in the file store (creating folders as needed)."""
        target = inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        return f"Wrote {len(content)} characters to {path}."

    @server.tool(annotations=READ_ONLY)
    def list_dir(path: str = ".") -> list[str]:
        """List the entries of a folder in the file store."""
        return sorted(p.name + ("/" if p.is_dir() else "") for p in inside(path).iterdir())

    return server


SERVERS: dict[str, Callable[[], MCPServer]] = {"bank": bank, "db": db, "mail": mail, "files": files}
