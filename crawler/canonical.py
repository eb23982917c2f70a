"""One canonical form per URL and per text, so reposts and re-shares are recognised as one mention."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

#: Query parameters that only say who shared a link or how it was reached; never content.
TRACKING_PARAMS = frozenset({
    "spm", "spm_id_from", "from", "fr", "wfr", "isappinstalled", "fbclid", "gclid", "yclid",
    "scene", "subscene", "srcid", "clicktime", "enterid", "mpshare", "vd_source", "tt_from",
    "ref", "ref_src", "refer", "referer", "_hsenc", "_hsmi", "mc_cid", "mc_eid", "chksm",
    "sessionid", "timestamp", "ivk_sa", "bd_source", "sharesource", "sharer",
})
TRACKING_PREFIXES = ("utm_", "share", "sharer_")
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Below this many normalised characters a text alone is not distinctive (think "服务很好").
SHORT_TEXT_CHARS = 50

_WS = re.compile(r"\s+")


def is_tracking(name: str) -> bool:
    """True for share/tracking parameters that must not make one page look like two."""
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def canonical_url(url: str, keep_fragment: bool = False) -> str:
    """Tracking parameters stripped, fragment dropped, host lowercased, default port dropped, query sorted.

    keep_fragment is for reviews, whose only stable address is the review page plus an anchor.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking(k)]
    fragment = parts.fragment if keep_fragment else ""
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), fragment))
    return canonicalize_url(rebuilt, keep_fragments=keep_fragment)


def within_domains(url: str, domains: list[str]) -> bool:
    """True when the URL's host is one of the domains or a subdomain of one."""
    if not url.startswith(("http://", "https://")):
        return False
    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and any(host == d or host.endswith("." + d) for d in domains)


def url_key(canonical: str) -> str:
    """sha256 of the canonical URL: the unique key of MentionURL."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalise_text(text: str) -> str:
    """NFKC (full-width folded), case folded, all whitespace removed: copies compare equal."""
    return _WS.sub("", unicodedata.normalize("NFKC", text or "")).casefold()


def content_hash(text: str, title: str = "", author: str | None = None,
                 published_at: datetime | None = None) -> str:
    """Hash of normalised text; short texts also hash title, author and time so two "很好" stay two."""
    body = normalise_text(text)
    if len(body) < SHORT_TEXT_CHARS:
        when = published_at.isoformat() if published_at else ""
        body = "\x1f".join((normalise_text(title), normalise_text(author or ""), when, body))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
