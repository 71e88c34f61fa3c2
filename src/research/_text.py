"""Text helpers for messages (base layer): credentials never reach a message, however the user
wrote the URL or connection string that held them."""

from __future__ import annotations

import re

__all__ = ["mask_userinfo"]

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
