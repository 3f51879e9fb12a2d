"""A small Sphinx extension for the book's static site (loaded by _config.yml's local_extensions).

- The site makes no request to another host: the thebe scripts that sphinx-thebe adds (twice,
  which also logs "Identifier 'THEBE_JS_URL' has already been declared") are removed; the book
  does not use thebe, readers launch a chapter on Colab or Binder instead.
- The theme's colour mode defaults to "light" (left empty, every page logs "Got invalid theme
  mode").
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    def keep(js) -> bool:
        name = str(getattr(js, "filename", js) or "")
        body = str(getattr(js, "attributes", {}).get("body", ""))
        return "thebe" not in name and "THEBE_JS_URL" not in body
    if "script_files" in context:
        context["script_files"] = [js for js in context["script_files"] if keep(js)]
    context.setdefault("default_mode", "light")
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
