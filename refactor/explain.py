"""``lightify rules`` and ``lightify explain CODE``: the rules' own documentation, on demand.

Both read the rule modules (``lightify.rules``), which declare their code, a
one-line summary and a doc in ruff's shape, so the help can never drift from
the rules.
"""

from __future__ import annotations

import click

from lightify.cli import main


@main.command(short_help="List every finding code with its one-line summary.")
def rules() -> None:
    """List every finding code with its one-line summary.

    `lightify explain CODE` prints one rule's documentation.
    """
    from lightify.rules import registry

    for rule in registry():
        click.echo(f"{rule.CODE}  {rule.SUMMARY}")


@main.command(short_help="Print one rule's documentation.")
@click.argument("code")
def explain(code: str) -> None:
    """Print the documentation of rule CODE (for example LFY201): what it does,
    why, an example, what to use instead, and how safe its fix is.
    """
    from lightify.rules import by_code

    rule = by_code().get(code.strip().upper())
    if rule is None:
        raise click.BadParameter(
            f"unknown code {code!r}; `lightify rules` lists them", param_hint="CODE"
        )
    click.echo(f"# {rule.CODE}: {rule.SUMMARY}\n\n{rule.DOC.rstrip()}")
