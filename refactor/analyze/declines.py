"""Why a loop stays as it is: a Decline carries a code and the node to point at."""

from __future__ import annotations

import libcst as cst


class Decline(Exception):
    """The program cannot be converted exactly; the file is left as it was."""

    def __init__(self, code: str, message: str, node: cst.CSTNode) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node
