"""A small shop front with a server-side template injection bug (CWE-1336):
/hello concatenates the `name` parameter into the template source.

Like a production app it also has ordinary churn: /upload stores files
through a temp file made with mkstemp in /tmp (a random name every time)
before moving it into the upload folder under its hash, /login writes a
session file /tmp/sess_<random hex>, and every request is logged to
logs/app.log through a handler that follows log rotation."""
import hashlib
import logging
import logging.handlers
import os
import secrets
import sys
import tempfile

from flask import Flask, jsonify, render_template_string, request

HERE = os.path.dirname(os.path.abspath(__file__))
UPLOADS = os.path.join(HERE, "uploads")
os.makedirs(UPLOADS, exist_ok=True)
os.makedirs(os.path.join(HERE, "logs"), exist_ok=True)
log = logging.getLogger("shop")
log.setLevel(logging.INFO)
log.addHandler(logging.handlers.WatchedFileHandler(os.path.join(HERE, "logs", "app.log")))

app = Flask(__name__)
ITEMS = [
    {"id": 1, "name": "teapot", "price": 12.5},
    {"id": 2, "name": "kettle", "price": 30.0},
    {"id": 3, "name": "mug", "price": 4.2},
]
PAGE = """<!doctype html><title>shop</title><h1>Shop</h1>
<ul>{% for i in items %}<li><a href="/item/{{ i.id }}">{{ i.name }}</a> {{ i.price }}</li>{% endfor %}</ul>"""


@app.after_request
def access_log(resp):
    log.info("%s %s %s", request.method, request.path, resp.status_code)
    return resp


@app.route("/")
def index():
    return render_template_string(PAGE, items=ITEMS)


@app.route("/hello")
def hello():
    name = request.args.get("name", "guest")
    # BUG: user input becomes part of the template source
    return render_template_string("<h1>Hello " + name + "!</h1>")


@app.route("/item/<int:item_id>")
def item(item_id):
    for i in ITEMS:
        if i["id"] == item_id:
            return render_template_string("<h1>{{ i.name }}</h1><p>{{ i.price }}</p>", i=i)
    return "no such item", 404


@app.route("/api/items")
def api_items():
    return jsonify(ITEMS)


@app.route("/login")
def login():
    token = secrets.token_hex(12)
    with open(os.path.join(tempfile.gettempdir(), "sess_" + token), "w") as f:
        f.write("user=alice\n")
    return jsonify({"session": token})


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files.get("file")
    if f is None:
        return "no file", 400
    fd, tmp = tempfile.mkstemp(prefix="upload-", dir=tempfile.gettempdir())
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: f.stream.read(65536), b""):
            digest.update(chunk)
            out.write(chunk)
    os.replace(tmp, os.path.join(UPLOADS, digest.hexdigest()))
    return jsonify({"stored": digest.hexdigest()}), 201


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
