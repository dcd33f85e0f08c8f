"""A small shop front with a server-side template injection bug (CWE-1336):
/hello concatenates the `name` parameter into the template source."""
import sys

from flask import Flask, jsonify, render_template_string, request

app = Flask(__name__)
ITEMS = [
    {"id": 1, "name": "teapot", "price": 12.5},
    {"id": 2, "name": "kettle", "price": 30.0},
    {"id": 3, "name": "mug", "price": 4.2},
]
PAGE = """<!doctype html><title>shop</title><h1>Shop</h1>
<ul>{% for i in items %}<li><a href="/item/{{ i.id }}">{{ i.name }}</a> {{ i.price }}</li>{% endfor %}</ul>"""


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


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
