"""The whole-script fixtures under fixtures/: what each case holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass(frozen=True)
class Case:
    name: str
    folder: Path

    @property
    def before(self) -> Path:
        return self.folder / "before.py"

    @property
    def after(self) -> Path:
        return self.folder / "after.py"

    @property
    def findings(self) -> list[str]:
        return (self.folder / "findings.txt").read_text().splitlines()

    @property
    def runs(self) -> list[list[list[str]]]:
        """Chains of argument lists to train with: the defaults, plus one per line of runs.txt.

        A line may chain runs with ``&&`` (``--epochs 2 && --resume last.pt``): they run one
        after the other in the same folder, so a later run reads what an earlier one wrote.
        """
        extra = self.folder / "runs.txt"
        lines = extra.read_text().splitlines() if extra.exists() else []
        return [
            [[]],
            *([part.split() for part in line.split("&&")] for line in lines if line.strip()),
        ]

    @property
    def multiprocess(self) -> bool:
        """Trains in processes it starts (mp.spawn, DDP): the capture harness does not follow
        them, so tests/test_distributed.py compares these runs instead."""
        return (self.folder / "multiprocess.txt").exists()

    @property
    def converts(self) -> bool:
        return self.before.read_text() != self.after.read_text()


def cases() -> list[Case]:
    return [Case(p.name, p) for p in sorted(FIXTURES.iterdir()) if (p / "before.py").exists()]
