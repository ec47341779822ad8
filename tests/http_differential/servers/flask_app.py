"""Flask on Werkzeug's server: routes for the allowed and denied resources (matched against the
percent-decoded path), then the tree served with send_from_directory.

Usage: python3 flask_app.py PORT TREE
"""

import logging
import sys

from flask import Flask, send_from_directory

RESOURCES = [
    ("/admin", "DENIED"),
    ("/api/v1/admin", "DENIED"),
    ("/public", "ALLOWED"),
    ("/api/v1/users", "ALLOWED"),
]


def main():
    port, tree = int(sys.argv[1]), sys.argv[2]
    app = Flask(__name__, static_folder=None)
    for n, (prefix, kind) in enumerate(RESOURCES):
        def answer(rest=None, prefix=prefix, kind=kind):
            return f"RESOURCE-{kind} route {prefix}\n", 200, {"content-type": "text/plain"}

        app.add_url_rule(prefix, f"r{n}", answer)
        app.add_url_rule(prefix + "/<path:rest>", f"r{n}rest", answer)

    @app.route("/<path:name>")
    def files(name):
        return send_from_directory(tree, name)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()
