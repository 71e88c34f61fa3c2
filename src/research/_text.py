"""Text helpers for messages (base layer): credentials never reach a message, however the user
wrote the URL or connection string that held them."""

from __future__ import annotations

import re

__all__ = ["is_secret_parameter", "mask_credentials", "mask_secret_parameters", "mask_userinfo"]

# ``user:password@`` at the start of the text or after a slash, a space, a quote or ``(``:
# well-formed URLs (``scheme://user:pw@host``) and malformed ones (``postgres//user:pw@host``,
# ``http//user:pw@host``, ``user:pw@host``) alike.
_USERINFO = re.compile(r"""(^|[/\s'"(])([^\s:/@'"()]+):([^\s@/'"()]+)@""")


def mask_userinfo(text: str) -> str:
    """``text`` with the password of every ``user:password@`` replaced by ``***``.

    Examples
    --------
    >>> mask_userinfo("--db postgres//me:secret@host/lab: no such file")
    '--db postgres//me:***@host/lab: no such file'
    >>> mask_userinfo("'user:secret@127.0.0.1:1/v1' is not a URL")
    "'user:***@127.0.0.1:1/v1' is not a URL"
    """
    return _USERINFO.sub(r"\1\2:***@", text)


_SECRET_NAMES = (
    r"api[-_]?key|key|token|access[-_]?token|auth|authorization|secret|client[-_]?secret"
    r"|password|passwd|pwd|sig|signature"
)
_SECRET_PARAMETER = re.compile(rf"(?i)^(?:{_SECRET_NAMES})$")
# ``?name=value`` / ``&name=value`` of a secret-named query parameter: the value up to the next
# ``&``, ``#``, space or quote
_SECRET_QUERY = re.compile(rf"""(?i)([?&](?:{_SECRET_NAMES})=)[^&#\s'"]*""")


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter called ``name`` holds a credential (``api_key``, ``token``,
    ``password``, ``sig`` and the like)."""
    return _SECRET_PARAMETER.match(name) is not None


def mask_secret_parameters(text: str) -> str:
    """``text`` with the value of every secret query parameter (:func:`is_secret_parameter`)
    replaced by ``***``.

    Examples
    --------
    >>> mask_secret_parameters("https://host/v1?api_key=abc&x=1")
    'https://host/v1?api_key=***&x=1'
    """
    return _SECRET_QUERY.sub(r"\1***", text)


def mask_credentials(text: str) -> str:
    """``text`` with every ``user:password@`` password (:func:`mask_userinfo`) and every secret
    query value (:func:`mask_secret_parameters`) replaced by ``***``.

    Examples
    --------
    >>> mask_credentials("postgresql://me:pw@db/lab?user=me&password=pw")
    'postgresql://me:***@db/lab?user=me&password=***'
    """
    return mask_secret_parameters(mask_userinfo(text))
