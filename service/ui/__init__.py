"""The built-in web pages (issue 10): a manager's dashboard on the same read and write layers as
the JSON API.

``service.main`` adds their routers under ``/ui``; they are left out of the OpenAPI document,
which describes the JSON API only. See ``service.ui.routes`` for the pages and
``service.ui.session`` for how they sign in. This package module imports nothing, so no page
module's import of a sibling (``from service.ui import render``) runs back through it.
"""
