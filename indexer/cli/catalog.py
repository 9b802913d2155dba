"""photocheck catalog: list and show the catalog of face datasets and remedies that ships with photocheck."""

from __future__ import annotations

import textwrap
from typing import Any

import click

from .common import echo_json, json_option

WIDTH = 100
STATUS_WORDS = {
    "distributed": "distributed",
    "restricted": "restricted (on request or agreement)",
    "withdrawn": "withdrawn",
    "withdrawn_circulating": "withdrawn, but copies circulate",
}


@click.group()
def catalog() -> None:
    """The catalog of disclosed face datasets, never-disclosed collections and the remedies a person has."""


@catalog.command("list")
@json_option
def catalog_list(as_json: bool) -> None:
    """List the catalog: disclosed datasets, collections never disclosed, remedies.

    \b
    Examples:
      photocheck catalog list
      photocheck catalog list --json
    """
    from ..catalog import load_catalog

    loaded = load_catalog()
    if as_json:
        echo_json(loaded.as_dict())
        return
    click.echo(f"{len(loaded.datasets)} disclosed face datasets (facts as of {loaded.updated}):")
    for entry in loaded.datasets:
        size = f"{entry['images']:,} images" if "images" in entry else f"{entry['videos']:,} videos"
        click.echo(f"  {entry['name']:<16} {entry['year']}  {size:>20}  {entry['status']:<22} {entry['title']}")
    click.echo(f"{len(loaded.undisclosed)} collections never disclosed (they cannot be checked):")
    for entry in loaded.undisclosed:
        click.echo(f"  {entry['name']:<16} {entry['title']}")
    click.echo(f"{len(loaded.remedies)} remedies:")
    for remedy in loaded.remedies:
        click.echo(f"  {remedy['name']:<16} {', '.join(remedy['where']):<24} {remedy['title']}")
    click.echo("`photocheck catalog show NAME` tells more. " + loaded.notice)


@catalog.command("show")
@click.argument("name")
@json_option
def catalog_show(name: str, as_json: bool) -> None:
    """Show one catalog entry (a dataset, a never-disclosed collection or a remedy) with its sources.

    \b
    Examples:
      photocheck catalog show ffhq
      photocheck catalog show gdpr-erasure --json
    """
    from ..catalog import get_entry, load_catalog

    loaded = load_catalog()
    remedy = next((r for r in loaded.remedies if r["name"] == name.strip().lower()), None)
    entry = remedy or get_entry(name, loaded)
    if as_json:
        echo_json(entry)
        return
    click.echo("\n".join(_remedy_lines(entry) if remedy else _entry_lines(entry)))


def _wrap(text: str, first: str, rest: str) -> list[str]:
    # Links stay whole: no breaks at their hyphens.
    return textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False, break_long_words=False
    )


def _field(label: str, text: str) -> list[str]:
    return _wrap(text, f"  {label + ':':<14}", " " * 16)


def _entry_lines(entry: dict[str, Any]) -> list[str]:
    lines = [f"{entry['name']}: {entry['title']}"]
    counts = [f"{entry[k]:,} {k}" for k in ("images", "videos", "identities") if k in entry]
    if "year" in entry:
        counts.insert(0, str(entry["year"]))
    if counts:
        lines.append("  " + ", ".join(counts))
    if not entry["disclosed"]:
        lines.append("  NEVER DISCLOSED: its photos were never published, so it cannot be checked.")
    lines += _field("about", entry["description"])
    lines += _field("photos from", entry["photo_source"])
    lines += _field("distribution", entry["distribution"])
    if "terms" in entry:
        lines += _field("terms", entry["terms"])
    if "status" in entry:
        lines += _field("status", f"{STATUS_WORDS[entry['status']]}. {entry['status_note']}")
    contact = f" ({entry['contact']})" if entry.get("contact") else ""
    lines += _field("maintainer", entry["maintainer"] + contact)
    if "known" in entry:
        lines += _field("known", entry["known"])
        lines += _field("what to do", entry["route"])
    if "page" in entry:
        lines += _field("page", entry["page"])
    if "search_url" in entry:
        lines += _field("look up", entry["search_url"])
    if "removal" in entry:
        removal = entry["removal"]
        lines += _field("removal", removal["summary"] + (f" {removal['url']}" if removal.get("url") else ""))
        for number, step in enumerate(removal["steps"], 1):
            lines += _wrap(step, f"{'':16}{number}. ", " " * 19)
    lines.append("  sources:")
    lines += [f"{'':16}{s['title']}: {s['url']}" for s in entry["sources"]]
    return lines


def _remedy_lines(remedy: dict[str, Any]) -> list[str]:
    lines = [f"{remedy['name']}: {remedy['title']}", f"  where: {', '.join(remedy['where'])} ({remedy['kind']})"]
    lines += _field("binds", remedy["binds"])
    lines += _field("needs", remedy["needs"])
    lines += _field("deadline", remedy["deadline"])
    lines += _field("notes", remedy["notes"])
    for order in remedy.get("orders", []):
        lines += _field(order["name"], order["summary"])
    lines.append("  sources:")
    lines += [f"{'':16}{s['title']}: {s['url']}" for s in remedy["sources"]]
    lines.append("  Not legal advice.")
    return lines
