"""A PostgreSQL store's password kept out of what other processes are handed.

A batch hands its store's URL to Dask workers (in task arguments, which the scheduler keeps
and may log) and to notebook kernels. :func:`split_password` takes the password out of the
URL; the workers find it where libpq looks for one (``PGPASSWORD``, ``PGPASSFILE``,
``~/.pgpass``), and fm_lab puts it in ``PGPASSWORD`` of the processes it starts itself.
"""

from __future__ import annotations

from urllib.parse import unquote

PASSWORD_VARIABLE = "PGPASSWORD"


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password (in the user part or a ``password=`` parameter), and
    that password (None when it has none). The rest of the URL is kept as written."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    end = min(ends) if ends else len(rest)
    authority, tail = rest[:end], rest[end:]
    password = None
    if "@" in authority:
        users, host = authority.rsplit("@", 1)
        user, colon, secret = users.partition(":")
        if colon:
            password = unquote(secret) or None
            authority = f"{user}@{host}"
    path, mark, query = tail.partition("?")
    if mark:
        query, hashmark, fragment = query.partition("#")
        kept = []
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if unquote(key) == "password":
                password = unquote(value) or password
            else:
                kept.append(part)
        tail = path + ("?" + "&".join(kept) if kept else "") + hashmark + fragment
    return f"{scheme}://{authority}{tail}", password


def password_env(password: str | None) -> dict[str, str]:
    """The environment that gives a process started by fm_lab the store's password."""
    return {PASSWORD_VARIABLE: password} if password else {}
