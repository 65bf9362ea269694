"""The region config in the database, and a cache that notices a new revision."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.db.pool import Conn
from shared.region.model import RegionConfig, parse_region


class RegionNotApplied(RuntimeError):
    pass


def _digest(config: RegionConfig) -> str:
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def store_region(conn: Conn, config: RegionConfig) -> tuple[int, bool]:
    """Store the config; returns (revision, changed). Applying the same file is a no-op."""
    digest = _digest(config)
    async with conn.transaction():
        current = await conn.fetchrow(
            "SELECT revision, digest FROM region_config WHERE id = 1 FOR UPDATE"
        )
        if current is not None and current["digest"] == digest:
            return int(current["revision"]), False
        revision = 1 if current is None else int(current["revision"]) + 1
        await conn.execute(
            """INSERT INTO region_config (id, revision, config, digest, applied_at)
               VALUES (1, $1, $2, $3, now())
               ON CONFLICT (id) DO UPDATE
               SET revision = $1, config = $2, digest = $3, applied_at = now()""",
            revision,
            config.model_dump(mode="json"),
            digest,
        )
        return revision, True


@dataclass(frozen=True)
class AppliedRegion:
    revision: int
    applied_at: datetime
    config: RegionConfig


async def applied_region(conn: Conn) -> AppliedRegion | None:
    """The config the services run on, with its revision; None before the first apply."""
    row = await conn.fetchrow("SELECT revision, applied_at, config FROM region_config WHERE id = 1")
    if row is None:
        return None
    return AppliedRegion(int(row["revision"]), row["applied_at"], parse_region(row["config"]))


async def lock_stored_region(conn: Conn) -> RegionConfig | None:
    """The stored config, locked until the caller's transaction ends (`region apply`
    holds it while it stores a new one and acts on it); None before the first apply."""
    config = await conn.fetchval("SELECT config FROM region_config WHERE id = 1 FOR UPDATE")
    return None if config is None else parse_region(config)


class RegionCache:
    """The current region config, re-read when its revision changes (checked at most
    every `reload_seconds`)."""

    def __init__(self, pool: asyncpg.Pool[Any], reload_seconds: float = 5.0) -> None:
        self._pool = pool
        self._reload = reload_seconds
        self._config: RegionConfig | None = None
        self._revision = -1
        self._checked_at = float("-inf")

    async def get(self) -> RegionConfig:
        now = time.monotonic()
        if self._config is None or now - self._checked_at >= self._reload:
            await self._refresh()
            self._checked_at = now
        assert self._config is not None
        return self._config

    async def current(self, conn: Conn) -> RegionConfig:
        """The config in force for the caller's transaction on `conn`.

        Takes a share lock on the stored config, so a `region apply` cannot commit a
        new one (and act on it, as when a partner retires) while this transaction
        runs; one that committed first is read here, whatever the cache held.
        """
        revision = await conn.fetchval("SELECT revision FROM region_config WHERE id = 1 FOR SHARE")
        await self._load(conn, revision)
        assert self._config is not None
        return self._config

    async def _refresh(self) -> None:
        revision = await self._pool.fetchval("SELECT revision FROM region_config WHERE id = 1")
        await self._load(self._pool, revision)

    async def _load(self, db: Conn | asyncpg.Pool[Any], revision: int | None) -> None:
        """Read the stored config when `revision` is not the one held."""
        if revision is None:
            raise RegionNotApplied(
                "no region config in the database: run `verwijsindex region apply FILE`"
            )
        if revision != self._revision:
            row = await db.fetchrow("SELECT revision, config FROM region_config WHERE id = 1")
            assert row is not None
            self._config = parse_region(row["config"])
            self._revision = int(row["revision"])
