"""photocheck lookup: which of a Flickr account's photos (or is a photo) in each dataset of an index."""

from __future__ import annotations

from pathlib import Path

import click

from .common import echo_json, index_option, json_option

#: Photo links printed per dataset in the text answer; --json has them all (up to the lookup's limit).
SHOWN = 20
NEEDS = {
    "nsid": "its metadata names no Flickr owner NSIDs",
    "username": "its metadata holds no Flickr usernames (path aliases or author names)",
    "photo": "its metadata names no Flickr photo ids",
}


@click.command("lookup")
@index_option
@json_option
@click.argument("query", metavar="flickr:USERNAME|NSID|URL")
def lookup(index_dir: Path, as_json: bool, query: str) -> None:
    """Look up a Flickr account or photo in the index's datasets, by their own metadata.

    Give a username (flickr:USERNAME), an NSID (flickr:12345678@N00), an account URL or a photo URL.
    The answer says, per dataset, how many of the account's photos it holds and which, with each
    photo's Flickr page. Nothing about the query is kept.

    \b
    Examples:
      photocheck lookup --index ./index flickr:12345678@N00
      photocheck lookup --index ./index flickr:jeremyfrumkin --json
      photocheck lookup --index ./index https://www.flickr.com/photos/jeremyfrumkin/1133484654/
    """
    from ..lookup import BadFlickrQuery, DatasetRef, FlickrLookup, Query, parse_query
    from ..store import IndexStore

    text = query.strip()
    if not text.lower().startswith("flickr:") and "flickr.com" not in text.lower() and "flic.kr" not in text.lower():
        raise BadFlickrQuery(f"Say which site the account is on: flickr:{text} (or give a Flickr URL).")
    parsed = parse_query(text)
    store = IndexStore(index_dir, readonly=True)
    try:
        datasets = [DatasetRef(d.id, d.name, d.title or d.name) for d in store.datasets()]
    finally:
        store.close()
    finder = FlickrLookup(index_dir)
    try:
        results = finder.lookup(parsed, datasets)
        # Which datasets name owners by NSID, to point a username that cannot be found there to it.
        by_nsid = {r["dataset"]: r["searchable"] for r in finder.lookup(Query("nsid", "0@N00"), datasets)}
    finally:
        finder.close()
    if as_json:
        echo_json({"query": parsed.as_dict(), "results": results, "error": None})
        return
    kind = {"nsid": "Flickr account (NSID)", "username": "Flickr username", "photo": "Flickr photo"}[parsed.kind]
    click.echo(f"{kind} {parsed.value}:")
    if not results:
        click.echo("  the index holds no datasets yet")
    width = max((len(r["dataset"]) for r in results), default=0)
    for result in results:
        name = result["dataset"].ljust(width)
        if result["photos"]:
            noun = "photo" if result["photos"] == 1 else "photos"
            click.echo(f"  {name}  {result['photos']} {noun} in this dataset:")
            for item in result["items"][:SHOWN]:
                click.echo(f"  {'':{width}}    {item['url']}")
            if result["photos"] > min(SHOWN, len(result["items"])):
                click.echo(f"  {'':{width}}    ... and {result['photos'] - min(SHOWN, len(result['items']))} more")
        elif result["searchable"] and parsed.kind == "nsid" and result["username_searchable"]:
            # Photo URLs name an account by its custom URL name when it has one, not by its NSID.
            click.echo(f"  {name}  not in this dataset by NSID (it also names accounts by username: try yours)")
        elif result["searchable"]:
            click.echo(f"  {name}  not in this dataset")
        elif parsed.kind == "username" and by_nsid.get(result["dataset"]):
            click.echo(f"  {name}  cannot tell: {NEEDS['username']}: look up your NSID instead")
        else:
            click.echo(f"  {name}  cannot tell: {NEEDS[parsed.kind]}")
