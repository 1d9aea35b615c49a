"""Factor 4, environmental context: production vs staging/dev, internal vs external targets.

The environment of the upstream scores by ``environments`` (``unknown_environment``
when not configured or not listed). Targets are read from the arguments: string values
under a recipient key (``to``, ``cc``, ...; lists and ``"a@x, b@y"`` included) are
email recipients, external when their domain is not an internal domain or a subdomain
of one; string values under a URL key, or any string value starting with ``http://`` or
``https://``, are URLs, external when their host is not an internal host (or a
subdomain), nor a private or loopback IP literal. The factor merges the environment and
target scores (largest plus ``spill`` times the other).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mcp_guard.risk.combine import merge
from mcp_guard.risk.config import EnvironmentConfig
from mcp_guard.risk.model import FactorScore

_EMAIL = re.compile(r"[^@\s<>,;\"']+@([A-Za-z0-9.-]+)")
MAX_DEPTH = 8
MAX_NAMED = 3
_CACHE_LIMIT = 4096
_SCALARS = frozenset({int, float, bool, type(None), bytes})


def _internal(host: str, internal: frozenset[str]) -> bool:
    """Whether ``host`` is one of ``internal`` or a subdomain of one."""
    labels = host.lower().rstrip(".").split(".")
    return any(".".join(labels[i:]) in internal for i in range(len(labels)))


def _private_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


def _host(value: str) -> str | None:
    text = value.strip()[:2048]
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return host.lower() if host else None


class EnvironmentFactor:
    def __init__(self, config: EnvironmentConfig, spill: float, weight: float) -> None:
        self.config = config
        self.spill = spill
        self.weight = weight
        self._envs = {k.lower(): v for k, v in config.environments.items()}
        self._by_environment: dict[str | None, tuple[float, tuple[str, ...], FactorScore]] = {}
        """Environment -> its score, its reasons and the factor of a call without external
        targets. Never stale: they depend on the environment's name and on ``config``
        alone, which is frozen and fixed for the scorer's life. Bounded: cleared when it
        holds ``_CACHE_LIMIT`` entries."""
        self._cache: dict[str, bool] = {}
        """Domain or host -> internal? (bounded; cleared when full)."""
        self._urls: dict[str, str | None] = {}
        """URL value -> its external host or ``None`` (bounded; cleared when full)."""

    def score(self, environment: str | None, arguments: Mapping[str, Any]) -> FactorScore:
        env, env_reasons, without_targets = self._environment(environment)
        domains: set[str] = set()
        hosts: set[str] = set()
        self._targets(arguments, domains, hosts)
        if not domains and not hosts:
            return without_targets
        cfg = self.config
        reasons = list(env_reasons)
        target = 0.0
        if domains:
            target = cfg.external_recipient_score
            reasons.append(f"external recipient domain: {', '.join(sorted(domains)[:MAX_NAMED])}")
        if hosts:
            target = max(target, cfg.external_url_score)
            reasons.append(f"external URL host: {', '.join(sorted(hosts)[:MAX_NAMED])}")
        return FactorScore(merge((env, target), self.spill), self.weight, tuple(reasons))

    def _environment(self, environment: str | None) -> tuple[float, tuple[str, ...], FactorScore]:
        known = self._by_environment.get(environment)
        if known is not None:
            return known
        cfg = self.config
        if environment is None:
            env = cfg.unknown_environment
            reasons: tuple[str, ...] = (f"environment not configured ({env:g})",)
        else:
            env = self._envs.get(environment.lower(), cfg.unknown_environment)
            reasons = (f"environment '{environment}' ({env:g})",) if env else ()
        known = (env, reasons, FactorScore(merge((env, 0.0), self.spill), self.weight, reasons))
        if len(self._by_environment) >= _CACHE_LIMIT:
            self._by_environment.clear()
        self._by_environment[environment] = known
        return known

    def _targets(self, arguments: Mapping[str, Any], domains: set[str], hosts: set[str]) -> None:
        """Collect external recipient domains and URL hosts (see the module docstring)."""
        cfg = self.config
        recipient_keys, url_keys = cfg.recipient_keys, cfg.url_keys
        budget = cfg.max_values
        stack: list[tuple[Any, Any, int]] = [(k, v, 0) for k, v in arguments.items()]
        while stack and budget > 0:
            key, value, depth = stack.pop()
            kind = type(value)
            if kind is str:
                budget -= 1
                lkey = key.lower() if type(key) is str else str(key).lower()
                if lkey in recipient_keys:
                    if "@" in value:
                        self._recipients(value, domains)
                elif lkey in url_keys or value.startswith(("http://", "https://")):
                    host = self._external_host(value)
                    if host is not None:
                        hosts.add(host)
            elif kind in _SCALARS or depth >= MAX_DEPTH:
                continue
            elif kind is dict or isinstance(value, Mapping):
                stack.extend((k, v, depth + 1) for k, v in value.items())
            elif kind is list or kind is tuple:
                stack.extend((key, v, depth + 1) for v in value[: cfg.max_values])

    def _recipients(self, value: str, domains: set[str]) -> None:
        internal = self.config.internal_domains
        for found in _EMAIL.findall(value[:4096]):
            domain = found.lower()
            known = self._cache.get(domain)
            if known is None:
                known = _internal(domain, internal)
                self._remember(domain, known)
            if not known:
                domains.add(domain)

    def _external_host(self, value: str) -> str | None:
        """The host of URL ``value`` when it is external, else ``None``."""
        if value in self._urls:
            return self._urls[value]
        host = _host(value)
        if host is None:
            return None
        known = self._cache.get(host)
        if known is None:
            known = _internal(host, self.config.internal_hosts) or (
                (host[0].isdigit() or host[0] in "[:") and _private_ip(host)
            )
            self._remember(host, known)
        external = None if known else host
        if len(value) <= 512:
            if len(self._urls) >= _CACHE_LIMIT:
                self._urls.clear()
            self._urls[value] = external
        return external

    def _remember(self, name: str, internal: bool) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[name] = internal
