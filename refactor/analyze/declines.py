"""Why a loop stays as it is: analysis and rules raise Decline with a code and the node to point at."""

from __future__ import annotations

import libcst as cst


class Decline(Exception):  # noqa: N818 - it is a verdict, not an error
    """The program cannot be converted exactly; the file is left as it was."""

    def __init__(self, code: str, message: str, node: cst.CSTNode) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
