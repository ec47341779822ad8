"""Starlette on uvicorn: routes for the allowed and denied resources (matched against the
percent-decoded path, dot segments not resolved), then StaticFiles over the tree.

Usage: python3 starlette_app.py PORT TREE
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

RESOURCES = [
    ("/admin", "DENIED"),
    ("/api/v1/admin", "DENIED"),
    ("/public", "ALLOWED"),
    ("/api/v1/users", "ALLOWED"),
]


def handler(prefix, kind):
    async def answer(request):
        return PlainTextResponse(f"RESOURCE-{kind} route {prefix}\n")

    return answer


def main():
    port, tree = int(sys.argv[1]), sys.argv[2]
    routes = []
    for prefix, kind in RESOURCES:
        routes.append(Route(prefix, handler(prefix, kind)))
        routes.append(Route(prefix + "/{rest:path}", handler(prefix, kind)))
    routes.append(Mount("/", app=StaticFiles(directory=tree, html=True)))
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
