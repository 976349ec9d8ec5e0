"""The templates of the bundle's own pages (the redline, index.html, each email as HTML), escaped by default."""

from __future__ import annotations

import functools

import jinja2

from pipeline.render.templates import default_templates


@functools.cache
def page_env() -> jinja2.Environment:
    """The Jinja environment of templates/archive: every value escaped, an unknown name an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(default_templates() / "archive"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def render_page(name: str, **context: object) -> str:
    """One template of templates/archive rendered with `context`."""
    return page_env().get_template(name).render(context)
